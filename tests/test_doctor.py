"""ecr_helper.setup.doctor: each check passes, fails with a hint naming the role or registry, or
warns; and it asks AWS live even when a token is cached."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from ecr_helper import cache, config
from ecr_helper.config import RegistrySettings
from ecr_helper.daemon import lock
from ecr_helper.errors import (
    AssumeRoleDenied,
    AwsError,
    EndpointError,
    NoCredentialsError,
    TokenDenied,
)
from ecr_helper.setup import doctor
from ecr_helper.token import Token
from tests.fakeaws import FakeAws
from tests.helpers import CENTRAL, CENTRAL_HOST, HELPER, PULL_ROLE, installed

NOW = 1_800_000_000.0
HUB_ROLE = "arn:aws:iam::333333333333:role/hub"
CALLER = "arn:aws:iam::123456789012:user/dev"


class FakeProbes:
    """Records every call; each probe fails with the error it is given."""

    def __init__(
        self,
        identity: AwsError | None = None,
        assume: AwsError | None = None,
        token: AwsError | None = None,
    ) -> None:
        self.errors = {"identity": identity, "assume": assume, "token": token}
        self.calls: list[tuple[str, str]] = []

    def _maybe_fail(self, name: str) -> None:
        error = self.errors[name]
        if error is not None:
            raise error

    def identity(self, region: str, profile: str | None) -> str:
        self.calls.append(("identity", f"{region}/{profile}"))
        self._maybe_fail("identity")
        return CALLER

    def assume(self, settings: RegistrySettings) -> None:
        self.calls.append(("assume", settings.host))
        self._maybe_fail("assume")

    def token(self, settings: RegistrySettings) -> Token:
        self.calls.append(("token", settings.host))
        self._maybe_fail("token")
        return Token(
            "AWS",
            "pw-secret-value",
            NOW,
            NOW + 43200,
            settings.host,
            settings.registry_id,
            settings.region,
            settings.role_arn,
        )

    def probes(self) -> doctor.Probes:
        return doctor.Probes(self.identity, self.assume, self.token)


@pytest.fixture(autouse=True)
def daemon_not_running(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lock, "is_running", lambda folder: None)


@pytest.fixture(autouse=True)
def helper_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    # Docker finds docker-credential-xecr on the PATH; these tests are not about that
    # (tests/test_doctor_docker.py is), so it is there whatever PATH pytest ran with.
    installed(HELPER)
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")


@pytest.fixture
def healthy(isolated_env: Path, write_config: Callable[[str], Path]) -> Path:
    write_config(
        f'[registries."{CENTRAL_HOST}"]\nrole_arn = "{PULL_ROLE}"\nexternal_id = "fleet-1"\n'
    )
    docker = isolated_env / ".docker"
    docker.mkdir()
    (docker / "config.json").write_text(json.dumps({"credHelpers": {CENTRAL_HOST: "xecr"}}))
    return isolated_env


def _run(fake: FakeProbes, *registries: str, docker: bool = True) -> list[doctor.Check]:
    return doctor.run(dict(os.environ), registries, fake.probes(), lambda: NOW, docker=docker)


def _by_name(checks: list[doctor.Check]) -> dict[str, doctor.Check]:
    return {check.name: check for check in checks}


def test_healthy_setup_passes_with_a_daemon_warning(healthy: Path) -> None:
    fake = FakeProbes()
    checks = _run(fake)
    assert [c.name for c in checks] == [
        "config",
        "credentials",
        "assume role",
        "token",
        "docker config",
        "cache folder",
        "daemon",
    ]
    assert all(c.ok for c in checks[:-1]), [c.line() for c in checks]
    assert doctor.passed(checks)
    named = _by_name(checks)
    assert named["credentials"].detail == f"source credentials are {CALLER}"
    assert named["assume role"].detail == f"assumed {PULL_ROLE}"
    assert named["token"].line() == (
        f"PASS token: GetAuthorizationToken for registry {CENTRAL} in us-east-1 as "
        f"{PULL_ROLE}: valid for 12h0m"
    )
    assert named["daemon"].warning_only and named["daemon"].line().startswith("WARN daemon: ")
    assert fake.calls == [
        ("identity", "us-east-1/None"),
        ("assume", CENTRAL_HOST),
        ("token", CENTRAL_HOST),
    ]


def test_assume_role_denied_fails_naming_the_role(healthy: Path) -> None:
    fake = FakeProbes(assume=AssumeRoleDenied(PULL_ROLE, "AccessDenied"))
    checks = _run(fake)
    assert not doctor.passed(checks)
    failed = [c for c in checks if c.failed]
    assert [c.name for c in failed] == ["assume role"]
    line = failed[0].line()
    assert line.startswith(f"FAIL assume role: AssumeRole denied for {PULL_ROLE}")
    assert f"-- {PULL_ROLE}'s trust policy must name {CALLER} as principal" in line
    assert "sts:ExternalId must be 'fleet-1'" in line
    assert ("token", CENTRAL_HOST) not in fake.calls  # no token without the role


def test_a_later_hop_denied_names_that_hop(write_config: Callable[[str], Path]) -> None:
    write_config(f'[registries."{CENTRAL_HOST}"]\nrole_arn = ["{HUB_ROLE}", "{PULL_ROLE}"]\n')
    checks = _run(FakeProbes(assume=AssumeRoleDenied(PULL_ROLE, "AccessDenied")))
    check = _by_name(checks)["assume role"]
    assert PULL_ROLE in check.detail
    assert "the role before it in the chain" in check.hint
    # an error that does not say which role still gets one named
    checks = _run(FakeProbes(assume=EndpointError("cannot reach AWS STS in us-east-1")))
    assert _by_name(checks)["assume role"].detail == (
        f"role {PULL_ROLE}: cannot reach AWS STS in us-east-1"
    )


def test_token_denied_fails_naming_the_registry(healthy: Path) -> None:
    checks = _run(FakeProbes(token=TokenDenied(CENTRAL, PULL_ROLE, "AccessDeniedException")))
    check = _by_name(checks)["token"]
    assert check.failed
    assert f"registry {CENTRAL}" in check.detail and PULL_ROLE in check.hint
    checks = _run(FakeProbes(token=EndpointError("AWS ECR in us-east-1 did not answer in time")))
    assert _by_name(checks)["token"].detail.startswith(f"registry {CENTRAL}: ")


def test_no_source_credentials_stops_that_registry(healthy: Path) -> None:
    fake = FakeProbes(identity=NoCredentialsError("no AWS credentials found"))
    checks = _run(fake)
    named = _by_name(checks)
    assert named["credentials"].failed
    assert "no AWS credentials found" in named["credentials"].detail
    assert "assume role" not in named and "token" not in named
    assert [call[0] for call in fake.calls] == ["identity"]


def test_identity_is_asked_once_per_profile_and_region(
    healthy: Path, write_config: Callable[[str], Path]
) -> None:
    other = "222222222222.dkr.ecr.us-east-1.amazonaws.com"
    write_config(f'[registries."{CENTRAL_HOST}"]\n[registries."{other}"]\n')
    fake = FakeProbes()
    checks = _run(fake)
    assert [call for call in fake.calls if call[0] == "identity"] == [
        ("identity", "us-east-1/None")
    ]
    assert f"token [{other}]" in _by_name(checks)
    assert _by_name(checks)[f"assume role [{other}]"].ok


@pytest.mark.parametrize(
    ("document", "ok", "words"),
    [
        (None, False, "no credential helper is named"),
        (
            {"credHelpers": {CENTRAL_HOST: "ecr-login"}},
            False,
            'credHelpers sends it to "ecr-login"',
        ),
        ({"credsStore": "desktop"}, False, 'credsStore sends it to "desktop"'),
        ({"credsStore": "xecr"}, True, "(credsStore)"),
        ("{not json", False, "not valid JSON"),
    ],
)
def test_docker_config_check(
    isolated_env: Path, write_config: Callable[[str], Path], document: object, ok: bool, words: str
) -> None:
    write_config(f'[registries."{CENTRAL_HOST}"]\n')
    if document is not None:
        (isolated_env / ".docker").mkdir()
        text = document if isinstance(document, str) else json.dumps(document)
        (isolated_env / ".docker" / "config.json").write_text(text)
    check = _by_name(_run(FakeProbes()))["docker config"]
    assert check.ok is ok and words in check.detail
    if not ok:
        assert f"xecr configure {CENTRAL_HOST}" in check.hint


def test_docker_check_can_be_skipped(
    isolated_env: Path, write_config: Callable[[str], Path]
) -> None:
    write_config(f'[registries."{CENTRAL_HOST}"]\n')
    checks = _run(FakeProbes(), docker=False)
    assert "docker config" not in _by_name(checks)
    assert doctor.passed(checks)


def test_cache_folder_open_to_others_fails(healthy: Path) -> None:
    folder = healthy / ".cache" / "xecr"
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)
    check = _by_name(_run(FakeProbes()))["cache folder"]
    assert check.failed and "0755" in check.detail and f"chmod 700 {folder}" in check.hint
    folder.chmod(0o700)
    check = _by_name(_run(FakeProbes()))["cache folder"]
    assert check.ok and check.detail == f"{folder} is private (0700)"


def test_a_missing_cache_folder_passes(isolated_env: Path) -> None:
    # With no config file nothing has made the folder yet; xecr makes it private later.
    check = _by_name(_run(FakeProbes(), CENTRAL_HOST, docker=False))["cache folder"]
    assert check.ok and "does not exist yet" in check.detail


def test_a_broken_config_is_the_only_check(write_config: Callable[[str], Path]) -> None:
    path = write_config("[defaults]\nregion = 5\n")
    fake = FakeProbes()
    checks = _run(fake)
    assert len(checks) == 1 and checks[0].failed
    assert str(path) in checks[0].detail and "defaults.region" in checks[0].detail
    assert fake.calls == []


def test_unknown_or_missing_registries_fail(isolated_env: Path) -> None:
    checks = _run(FakeProbes())
    assert _by_name(checks)["registry"].failed
    assert "xecr configure HOST" in _by_name(checks)["registry"].hint
    check = _by_name(_run(FakeProbes(), "mirror.example.com"))["registry"]
    assert check.failed and "'mirror.example.com'" in check.detail


def test_a_running_daemon_passes(healthy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lock, "is_running", lambda folder: 321)
    assert _by_name(_run(FakeProbes()))["daemon"].line() == "PASS daemon: running (pid 321)"


# -- live probes against the loopback fake ----------------------------------------------


@pytest.mark.slow
def test_live_doctor_calls_aws_even_with_a_cached_token(healthy: Path, fake_aws: FakeAws) -> None:
    env = dict(os.environ)
    loaded = config.load(env)
    store = cache.open_cache(loaded, env)
    settings = loaded.resolve(CENTRAL_HOST)
    cached = Token(
        "AWS",
        "cached-secret-value",
        NOW,
        4_000_000_000.0,
        CENTRAL_HOST,
        CENTRAL,
        "us-east-1",
        PULL_ROLE,
    )
    store.write(cache.cache_key(settings, env), cached)
    checks = doctor.run(env)
    assert doctor.passed(checks), [c.line() for c in checks]
    assert fake_aws.calls("GetCallerIdentity") == 1
    assert fake_aws.calls("AssumeRole") >= 1
    assert fake_aws.calls("GetAuthorizationToken") == 1
    external = [r.params.get("ExternalId") for r in fake_aws.requests("AssumeRole")]
    assert external and set(external) == {"fleet-1"}
    assert store.read(cache.cache_key(settings, env)) == cached  # doctor stores nothing


def test_live_doctor_names_the_role_on_access_denied(healthy: Path, fake_aws: FakeAws) -> None:
    fake_aws.fail("AssumeRole", "access_denied")
    checks = doctor.run(dict(os.environ))
    failed = [c for c in checks if c.failed]
    assert [c.name for c in failed] == ["assume role"]
    assert PULL_ROLE in failed[0].line() and "AccessDenied" in failed[0].line()
    assert fake_aws.calls("GetAuthorizationToken") == 0


# -- issue 11: causes told apart, advice once, broken sections, routes xecr does not serve --


def test_an_unreachable_sts_is_reported_as_the_network_not_credentials(
    healthy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("HTTPS_PROXY", "http://user:proxy-pass@proxy.example:3128")
    error = EndpointError("cannot reach AWS STS in us-east-1: check the network")
    check = _by_name(_run(FakeProbes(identity=error)))["credentials"]
    assert check.failed
    assert "http://127.0.0.1:9" in check.hint and "HTTPS_PROXY" in check.hint
    assert "proxy-pass" not in check.line()  # names of proxy variables, never their values
    assert "aws sso login" not in check.hint and "AWS_PROFILE" not in check.hint


@pytest.mark.parametrize("probe", ["assume", "token"])
def test_an_unreachable_endpoint_later_on_is_the_network_too(healthy: Path, probe: str) -> None:
    error = EndpointError(f"cannot reach AWS {'STS' if probe == 'assume' else 'ECR'} in us-east-1")
    checks = _by_name(_run(FakeProbes(**{probe: error})))
    check = checks["assume role" if probe == "assume" else "token"]
    assert check.failed and "not the credentials" in check.hint
    assert "trust policy" not in check.hint and "ecr:GetAuthorizationToken" not in check.hint
    assert "no proxy variable is set" in check.hint


def test_the_missing_credentials_advice_is_given_once(
    isolated_env: Path, write_config: Callable[[str], Path]
) -> None:
    other = "222222222222.dkr.ecr.eu-west-1.amazonaws.com"
    write_config(f'[registries."{CENTRAL_HOST}"]\n[registries."{other}"]\n')
    checks = _run(FakeProbes(identity=NoCredentialsError("no AWS credentials found")), docker=False)
    failed = [c for c in checks if c.name.startswith("credentials")]
    assert len(failed) == 2 and all(c.failed for c in failed)
    lines = "\n".join(c.line() for c in checks)
    assert lines.count("aws sso login") == 1
    assert failed[1].hint == "see above"


def test_a_broken_section_is_shown_and_the_others_are_checked(
    isolated_env: Path, write_config: Callable[[str], Path]
) -> None:
    path = write_config(
        f'[registries."mirror.example.com"]\nregistry_id = "{CENTRAL}"\nregion = 5\n'
        f'[registries."{CENTRAL_HOST}"]\nrole_arn = "{PULL_ROLE}"\n'
    )
    fake = FakeProbes()
    checks = _run(fake, docker=False)
    named = _by_name(checks)
    assert named["config"].ok and "1 broken" in named["config"].detail
    broken = named["config [mirror.example.com]"]
    assert broken.failed
    assert f'config error in {path}: registries."mirror.example.com".region' in broken.detail
    assert named[f"token [{CENTRAL_HOST}]"].ok
    assert ("token", CENTRAL_HOST) in fake.calls
    assert not any(call[1] == "mirror.example.com" for call in fake.calls)
    assert not doctor.passed(checks)


def test_cred_helpers_sending_hosts_xecr_does_not_serve_are_flagged(healthy: Path) -> None:
    (healthy / ".docker" / "config.json").write_text(
        json.dumps(
            {
                "credHelpers": {
                    CENTRAL_HOST: "xecr",
                    "quay.io": "xecr",
                    "gcr.io": "gcloud",
                    "333333333333.dkr.ecr.eu-west-1.amazonaws.com": "xecr",
                }
            }
        )
    )
    checks = _run(FakeProbes())
    flagged = [c for c in checks if c.name.startswith("docker config [")]
    assert [c.name for c in flagged] == ["docker config [quay.io]"]
    [check] = flagged
    assert check.failed and "quay.io" in check.detail and "without credentials" in check.detail
    assert "xecr configure quay.io" in check.hint
    assert not doctor.passed(checks)
    assert "docker config [quay.io]" not in _by_name(_run(FakeProbes(), docker=False))


def test_live_doctor_with_aws_down_blames_the_network_once(
    healthy: Path, fake_aws: FakeAws, write_config: Callable[[str], Path]
) -> None:
    other = "222222222222.dkr.ecr.us-east-1.amazonaws.com"
    write_config(f'[registries."{CENTRAL_HOST}"]\n[registries."{other}"]\n')
    fake_aws.go_down()  # connection refused, as a firewall or a wrong endpoint gives
    checks = doctor.run(dict(os.environ), docker=False)
    failed = [c for c in checks if c.failed]
    assert [c.name for c in failed] == [f"credentials [{CENTRAL_HOST}]", f"credentials [{other}]"]
    check, again = failed
    assert again.hint == "see above"
    assert "cannot reach AWS STS in us-east-1" in check.detail
    assert fake_aws.url in check.hint and "not the credentials" in check.hint
    assert "aws sso login" not in check.hint
    lines = "\n".join(c.line() for c in checks)
    assert lines.count("not the credentials") == 1


def test_the_endpoint_named_is_the_one_a_client_here_would_call() -> None:
    from ecr_helper.setup import endpoints

    assert endpoints.endpoint_url("sts", "eu-west-1", {}) == "https://sts.eu-west-1.amazonaws.com"
    assert endpoints.endpoint_url("ecr", "cn-north-1", {}) == (
        "https://api.ecr.cn-north-1.amazonaws.com.cn"
    )
    env = {"AWS_ENDPOINT_URL": "http://a:1", "AWS_ENDPOINT_URL_ECR": "http://b:2"}
    assert endpoints.endpoint_url("ecr", "us-east-1", env) == "http://b:2"
    assert endpoints.endpoint_url("sts", "us-east-1", env) == "http://a:1"
    assert endpoints.proxies_set({"no_proxy": "x", "HTTPS_PROXY": "", "HTTP_PROXY": "y"}) == [
        "HTTP_PROXY",
        "no_proxy",
    ]
