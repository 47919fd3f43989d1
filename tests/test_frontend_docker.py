"""ecr_helper.frontends.docker: Docker's credential-helper verbs over in-memory byte streams with
an injected fetch (no AWS), plus the exact line Docker reads for a registry that is not ours."""

from __future__ import annotations

import io
import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings

from ecr_helper import __version__
from ecr_helper.config import RegistrySettings
from ecr_helper.errors import NO_SERVER_URL, NOT_FOUND, AwsError, InputError, NotOurRegistry
from ecr_helper.frontends import docker
from ecr_helper.token import Token
from tests.helpers import CENTRAL, CENTRAL_HOST, PASSWORD, PULL_ROLE, installed, token_of
from tests.strategies import TARGETS

ALIAS = "registry.example.com"
OTHER_HOST = "333333333333.dkr.ecr.eu-west-1.amazonaws.com"


class Fetch:
    def __init__(self) -> None:
        self.calls: list[RegistrySettings] = []
        self.error: AwsError | None = None

    def __call__(self, settings: RegistrySettings, quick: bool) -> Token:
        self.calls.append(settings)
        if self.error is not None:
            raise self.error
        secret = f"secret-for-{settings.registry_id}-{len(self.calls)}"
        return token_of(settings, secret, time.time(), 43200)


@pytest.fixture
def fetch() -> Fetch:
    return Fetch()


def env() -> dict[str, str]:
    return dict(os.environ)


def stdin(text: str | bytes) -> io.BytesIO:
    return io.BytesIO(text.encode() if isinstance(text, str) else text)


def get(address: str, fetch: Fetch) -> dict[str, str]:
    out = docker.get(stdin(address), env(), fetch)
    assert out.endswith("\n") and out.count("\n") == 1
    answer: dict[str, str] = json.loads(out)
    return answer


def test_get_answers_docker_shape(fetch: Fetch) -> None:
    answer = get(CENTRAL_HOST, fetch)
    assert answer == {
        "ServerURL": CENTRAL_HOST,
        "Username": "AWS",
        "Secret": f"secret-for-{CENTRAL}-1",
    }
    assert list(answer) == ["ServerURL", "Username", "Secret"]
    [asked] = fetch.calls
    assert (asked.host, asked.registry_id, asked.region) == (CENTRAL_HOST, CENTRAL, "us-east-1")


@pytest.mark.parametrize(
    "address",
    [
        f"{CENTRAL_HOST}\n",
        f"https://{CENTRAL_HOST}",
        f"https://{CENTRAL_HOST}/v2/",
        f"{CENTRAL_HOST.upper()}:443",
        f"  {CENTRAL_HOST}  \n",
    ],
)
def test_get_echoes_the_address_it_was_given(fetch: Fetch, address: str) -> None:
    answer = get(address, fetch)
    assert answer["ServerURL"] == address.strip()
    assert fetch.calls[0].host == CENTRAL_HOST


def test_every_form_of_one_host_shares_one_cached_token(fetch: Fetch) -> None:
    secrets = {
        get(a, fetch)["Secret"]
        for a in (CENTRAL_HOST, f"https://{CENTRAL_HOST}/v2/", CENTRAL_HOST.upper())
    }
    assert len(secrets) == 1 and len(fetch.calls) == 1


@pytest.mark.parametrize(
    "address",
    [
        "docker.io",
        "https://index.docker.io/v1/",
        "ghcr.io",
        "localhost:5000",
        f"evil.example/{CENTRAL_HOST}",
        f"{CENTRAL_HOST}.evil.example",
        f"{CENTRAL_HOST}:5000",
        "11111111111.dkr.ecr.us-east-1.amazonaws.com",
    ],
)
def test_not_ours_without_a_fetch(fetch: Fetch, address: str) -> None:
    with pytest.raises(NotOurRegistry) as caught:
        docker.get(stdin(address), env(), fetch)
    assert str(caught.value) == "credentials not found in native keychain" == NOT_FOUND
    assert fetch.calls == []


@pytest.mark.slow
def test_docker_reads_exactly_the_not_found_line() -> None:
    result = subprocess.run(
        [installed("docker-credential-xecr"), "get"],
        input=b"ghcr.io\n",
        capture_output=True,
        env=dict(os.environ),
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert result.stdout == b"credentials not found in native keychain\n"


def test_a_failed_fetch_propagates_and_caches_nothing(fetch: Fetch) -> None:
    fetch.error = AwsError("ECR GetAuthorizationToken for registry 111111111111 failed (X)")
    with pytest.raises(AwsError):
        docker.get(stdin(CENTRAL_HOST), env(), fetch)
    fetch.error = None
    assert get(CENTRAL_HOST, fetch)["Secret"] == f"secret-for-{CENTRAL}-2"


def test_store_accepts_and_ignores(fetch: Fetch, isolated_env: Path) -> None:
    payload = json.dumps({"ServerURL": CENTRAL_HOST, "Username": "AWS", "Secret": "planted"})
    assert docker.store(stdin(payload)) == ""
    answer = get(CENTRAL_HOST, fetch)
    assert answer["Secret"] != "planted" and len(fetch.calls) == 1


def test_erase_forgets_the_cached_token(fetch: Fetch) -> None:
    first = get(CENTRAL_HOST, fetch)["Secret"]
    assert get(CENTRAL_HOST, fetch)["Secret"] == first
    assert docker.erase(stdin(f"https://{CENTRAL_HOST}\n"), env()) == ""
    assert get(CENTRAL_HOST, fetch)["Secret"] != first
    assert len(fetch.calls) == 2
    assert docker.erase(stdin(CENTRAL_HOST), env()) == ""
    assert docker.erase(stdin(CENTRAL_HOST), env()) == ""  # twice is fine


def test_list_shows_configured_and_cached_hosts_whose_keys_come_back_to_get(
    fetch: Fetch, write_config: Callable[[str], Path]
) -> None:
    write_config(
        f'[defaults]\nrole_arn = "{PULL_ROLE}"\n'
        f'[registries."{CENTRAL_HOST}"]\n'
        f'[registries."{ALIAS}"]\nregistry_id = "{CENTRAL}"\nregion = "us-west-2"\n'
    )
    assert json.loads(docker.list_(env())) == {CENTRAL_HOST: "AWS", ALIAS: "AWS"}
    get(f"https://{OTHER_HOST}/v2/", fetch)  # not configured, but now cached
    listed = json.loads(docker.list_(env()))
    assert listed == {CENTRAL_HOST: "AWS", ALIAS: "AWS", OTHER_HOST: "AWS"}
    for host in listed:
        assert get(host, fetch)["ServerURL"] == host
    assert {s.host for s in fetch.calls} == set(listed)
    alias = next(s for s in fetch.calls if s.host == ALIAS)
    assert (alias.registry_id, alias.region, alias.role_arn) == (CENTRAL, "us-west-2", PULL_ROLE)


def test_list_with_nothing_is_an_empty_object() -> None:
    assert docker.list_(env()) == "{}\n"


def test_version() -> None:
    assert docker.version() == f"docker-credential-xecr {__version__}\n"
    assert docker.run("version", stdin(""), env()) == docker.version()


def test_run_dispatches_every_verb(fetch: Fetch, monkeypatch: pytest.MonkeyPatch) -> None:
    # run() uses the real fetch: warm the cache first, and point any stray call at a closed
    # loopback port so it can never leave the machine.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    warm = get(CENTRAL_HOST, fetch)
    assert set(docker.VERBS) == {"get", "list", "store", "erase", "version"}
    assert json.loads(docker.run("get", stdin(CENTRAL_HOST), env())) == warm
    assert CENTRAL_HOST in json.loads(docker.run("list", stdin(""), env()))
    assert docker.run("store", stdin("{}"), env()) == ""
    assert docker.run("erase", stdin(CENTRAL_HOST), env()) == ""
    assert json.loads(docker.run("list", stdin(""), env())) == {}
    assert len(fetch.calls) == 1


# -- what arrives on stdin -----------------------------------------------------------------


def test_oversized_stdin_is_refused_before_anything_else(fetch: Fetch) -> None:
    big = CENTRAL_HOST.encode() + b" " * docker.MAX_INPUT
    for verb in (
        lambda s: docker.get(s, env(), fetch),
        docker.store,
        lambda s: docker.erase(s, env()),
    ):
        with pytest.raises(InputError, match=f"longer than {docker.MAX_INPUT} bytes"):
            verb(stdin(big))
    assert fetch.calls == []


def test_stdin_of_exactly_the_limit_is_read() -> None:
    data = b"a" * docker.MAX_INPUT
    assert docker.read_input(stdin(data)) == data.decode()


@pytest.mark.parametrize(
    "data", [b"\xff\xfe", b"111111111111.dkr.ecr\xc0.amazonaws.com", b"\xed\xa0\x80"]
)
def test_non_utf8_stdin_is_refused(fetch: Fetch, data: bytes) -> None:
    with pytest.raises(InputError, match="not UTF-8") as caught:
        docker.get(stdin(data), env(), fetch)
    assert "\n" not in str(caught.value)
    assert fetch.calls == []


@pytest.mark.parametrize("data", [b"", b"\n", b"   ", b" \t\r\n"])
@pytest.mark.parametrize("verb", ["get", "erase"])
def test_empty_stdin_answers_as_docker_credential_helpers_do(
    fetch: Fetch, data: bytes, verb: str
) -> None:
    """The client library recognises exactly this text (IsCredentialsMissingServerURL)."""
    with pytest.raises(InputError) as caught:
        if verb == "get":
            docker.get(stdin(data), env(), fetch)
        else:
            docker.erase(stdin(data), env())
    assert str(caught.value) == NO_SERVER_URL == "no credentials server URL"
    assert caught.value.registry is None  # nothing on stderr: no registry was named
    assert fetch.calls == []


def test_a_failed_get_names_the_registry_it_was_for(fetch: Fetch) -> None:
    fetch.error = AwsError("STS could not be reached")
    with pytest.raises(AwsError) as caught:
        docker.get(stdin(f"https://{CENTRAL_HOST.upper()}/v2/\n"), env(), fetch)
    assert caught.value.registry == CENTRAL_HOST


def test_a_host_not_ours_names_no_registry(fetch: Fetch) -> None:
    with pytest.raises(NotOurRegistry) as caught:
        docker.get(stdin("docker.io\n"), env(), fetch)
    assert caught.value.registry is None


@settings(max_examples=200, deadline=None)
@given(TARGETS["stdin"].strategy)
def test_read_input_raises_only_input_error(data: bytes) -> None:
    TARGETS["stdin"].check(data)


@pytest.mark.slow
def test_get_answers_after_one_line_while_stdin_stays_open(
    fake_aws: object, write_config: Callable[[str], Path]
) -> None:
    """A client that writes its line and keeps stdin open must not hang the helper."""
    write_config(f'[registries."{CENTRAL_HOST}"]\nrole_arn = "{PULL_ROLE}"\n')
    proc = subprocess.Popen(
        [installed("docker-credential-xecr"), "get"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=dict(os.environ),
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(CENTRAL_HOST.encode() + b"\n")
        proc.stdin.flush()
        assert proc.wait(timeout=30) == 0  # stdin is still open here
        answer = json.loads(proc.stdout.read())
    finally:
        proc.kill()
        proc.stdin.close()
        proc.stdout.close()
    assert answer["Secret"] == PASSWORD
