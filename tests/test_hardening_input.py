"""Issue 7 point 1, through the installed ``docker-credential-xecr``: whatever
arrives on stdin or argv, the helper answers one clear line, exits 1, ends
within :data:`BOUND` seconds, stays within :data:`MEMORY` of address space
(it reads a bounded amount of stdin), never prints a traceback and never calls
AWS for an address that is not ours.
"""

from __future__ import annotations

import base64
import json
import os
import random
import re
import resource
import string
from collections.abc import Callable
from pathlib import Path

import pytest

from tests import k8s_tokens
from tests.fakeaws import FakeAws
from tests.helpers import (
    CENTRAL_HOST,
    CONFIG,
    HELPER,
    PULL_ROLE,
    XECR,
    Result,
    assert_one_line_failure,
    cache_folder,
    run,
    scan,
    token_entries,
)

# Every test here starts the installed executables (or a shell script).
pytestmark = pytest.mark.slow

BOUND = 10.0
MEMORY = 512 << 20
MIB = 1 << 20
NOT_FOUND = "credentials not found in native keychain"
ALIAS = "registry.example.com"
ALIAS_CONFIG = CONFIG + f'\n[registries."{ALIAS}"]\nregistry_id = "333333333333"\n'
_NO_ADDRESS = "no credentials server URL"
_TOO_LONG = "input on stdin is longer than 65536 bytes"
_NOT_UTF8 = "input on stdin is not UTF-8 text"


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))


def _bounded(args: list[str], stdin: bytes | int) -> Result:
    result = run(args, stdin, timeout=BOUND, preexec_fn=_limit_memory)
    assert result.elapsed < BOUND
    return result


def _random_text(size: int) -> bytes:
    rng = random.Random(7)
    alphabet = string.ascii_letters + string.digits + string.punctuation + " \t\n"
    return "".join(rng.choices(alphabet, k=size)).encode()


def _garbage(size: int) -> bytes:
    rng = random.Random(11)
    # A leading 0xff byte can never start UTF-8, so the case is never accidentally text.
    return b"\xff" + rng.randbytes(size - 1)


BAD_INPUT = {
    "empty stdin": (b"", _NO_ADDRESS),
    "a blank line": (b"\n", _NO_ADDRESS),
    "only whitespace": (b" \t\r\n \n", _NO_ADDRESS),
    "1 MiB of random text": (_random_text(MIB), _TOO_LONG),
    "1 MiB on one line": (b"a" * MIB, _TOO_LONG),
    "binary garbage": (_garbage(4096), _NOT_UTF8),
    "1 MiB of binary garbage": (_garbage(MIB), _TOO_LONG),
    "a host with a stray invalid byte": (CENTRAL_HOST.encode() + b"\xc3\n", _NOT_UTF8),
    "NUL bytes": (b"\x00" * 64, NOT_FOUND),
}


@pytest.fixture
def configured(write_config: Callable[[str], Path], fake_aws: FakeAws) -> FakeAws:
    """A real configuration (so a mistake could reach AWS) and the loopback fake."""
    write_config(ALIAS_CONFIG)
    return fake_aws


@pytest.mark.parametrize("verb", ["get", "erase"])
@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_is_one_line_exit_1(
    case: str, verb: str, configured: FakeAws, tmp_path: Path, isolated_env: Path
) -> None:
    stdin, message = BAD_INPUT[case]
    result = _bounded([HELPER, verb], stdin)
    assert_one_line_failure(result, message)
    assert configured.counts() == {}, "bad input reached AWS"
    assert token_entries(cache_folder(isolated_env)) == []
    scan(configured, tmp_path, [result])


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_endless_stdin_is_read_only_in_part(
    device: str, configured: FakeAws, tmp_path: Path
) -> None:
    """An endless stream: unbounded reading would hit the memory limit or the time bound."""
    fd = os.open(device, os.O_RDONLY)
    try:
        result = _bounded([HELPER, "get"], fd)
    finally:
        os.close(fd)
    assert_one_line_failure(result, _TOO_LONG)
    assert configured.counts() == {}
    scan(configured, tmp_path, [result])


def test_store_refuses_oversized_input(configured: FakeAws) -> None:
    result = _bounded([HELPER, "store"], _random_text(MIB))
    assert_one_line_failure(result, _TOO_LONG)


LOOK_ALIKES = [
    f"{CENTRAL_HOST}.evil.example",
    f"{CENTRAL_HOST}@evil.example",
    f"https://{CENTRAL_HOST}@evil.example/v2/",
    f"evil.example/{CENTRAL_HOST}",
    f"{CENTRAL_HOST}:8443",
    f"{CENTRAL_HOST} evil.example",
    f"{CENTRAL_HOST}\n{CENTRAL_HOST}.evil.example",
    f"{CENTRAL_HOST}%00.evil.example",
    f"{CENTRAL_HOST}\u200b",
    "111111111111.dkr.ecr.us-east-1.amazonaws.co",
    "111111111111.dkr.ecr.us-east-1.amazonaws.com.cn",
    "111111111111.dkr.ecr.us-east-1.evil.amazonaws.com",
    "111111111111-dkr-ecr-us-east-1-amazonaws.com",
    "111111111111.dkr-ecr.us-east-1.amazonaws.com",
    "1111111111111.dkr.ecr.us-east-1.amazonaws.com",
    "11111111111.dkr.ecr.us-east-1.amazonaws.com",
    "111111111111.dkr.ecr.us-east-1.amazonaws.c\u043em",  # Cyrillic o
    "111111111111.dkr.ecr.us-\u0435ast-1.amazonaws.com",  # Cyrillic e
    "xn--111111111111.dkr.ecr.us-east-1.amazonaws.com",
    f"{ALIAS}.evil.example",
    f"evil-{ALIAS}",
    f"{ALIAS}:5000",
    "registry.example.co",
    "docker.io",
    "localhost",
]


@pytest.mark.parametrize("address", LOOK_ALIKES, ids=[repr(a)[1:-1][:60] for a in LOOK_ALIKES])
def test_look_alike_hosts_are_not_ours(
    address: str, configured: FakeAws, tmp_path: Path, isolated_env: Path
) -> None:
    result = _bounded([HELPER, "get"], address.encode() + b"\n")
    line = assert_one_line_failure(result)
    assert line == NOT_FOUND  # Docker's own "no credentials" text, so it moves on
    assert result.stderr == b""  # `docker build` asks about every host: not ours, silent
    assert configured.counts() == {}, "a look-alike host reached AWS"
    assert token_entries(cache_folder(isolated_env)) == []
    scan(configured, tmp_path, [result])


def test_look_alike_in_a_people_command(configured: FakeAws) -> None:
    address = f"{CENTRAL_HOST}.evil.example"
    result = _bounded([XECR, "get-login-password", address], b"")
    assert_one_line_failure(result, address, stream="stderr")
    assert configured.counts() == {}


def test_a_failing_get_for_our_registry_says_why_on_stderr_too(configured: FakeAws) -> None:
    """What pulls show: the same reason, prefixed, naming the registry; stdout keeps the
    protocol's one line."""
    configured.fail("AssumeRole", "access_denied")
    result = _bounded([HELPER, "get"], f"https://{CENTRAL_HOST}/v2/\n".encode())
    line = assert_one_line_failure(result, "AssumeRole denied for")
    assert not line.startswith("xecr")
    assert (
        result.err
        == f"xecr: {CENTRAL_HOST}: {line} (`xecr doctor {CENTRAL_HOST}` checks each step)\n"
    )


def test_the_real_host_still_answers(configured: FakeAws) -> None:
    """The control for the cases above: the same setup does answer for our host."""
    result = _bounded([HELPER, "get"], CENTRAL_HOST.upper().encode() + b"\n")
    assert result.returncode == 0, result.out
    assert configured.calls("GetAuthorizationToken") == 1


@pytest.mark.parametrize("verb", ["frobnicate", "GET", "--get"])
def test_unknown_verb_is_one_line_exit_1(verb: str, configured: FakeAws) -> None:
    result = _bounded([HELPER, verb], CENTRAL_HOST.encode())
    assert_one_line_failure(result, verb)
    assert configured.counts() == {}


@pytest.mark.parametrize("flag", ["-v", "--version"])
@pytest.mark.parametrize("exe", [HELPER, XECR])
def test_version_flags_exit_0_with_the_version(flag: str, exe: str, configured: FakeAws) -> None:
    from ecr_helper import __version__

    result = _bounded([exe, flag], b"")
    assert result.returncode == 0
    assert result.out.endswith(f" {__version__}\n") and result.out.count("\n") == 1
    assert result.stderr == b""
    assert configured.counts() == {}


@pytest.mark.parametrize("verb", ["get", "erase", "store", "list"])
def test_a_verb_with_an_argument_says_how_to_call_it(verb: str, configured: FakeAws) -> None:
    result = _bounded([HELPER, verb, CENTRAL_HOST], CENTRAL_HOST.encode())
    line = assert_one_line_failure(result, "Usage: docker-credential-xecr <store|get|erase|list")
    assert f"{verb} takes no arguments" in line and "on stdin" in line
    assert "unknown verb" not in line
    assert configured.counts() == {}


@pytest.mark.parametrize("args", [["frobnicate"], ["get", "extra"], ["login", "--frob"]])
def test_unknown_people_command_is_a_usage_error(args: list[str], configured: FakeAws) -> None:
    """People's commands keep argparse's convention: exit 2, usage on stderr."""
    result = _bounded([XECR, *args], b"")
    assert result.returncode == 2
    assert result.stdout == b""
    assert "Traceback" not in result.err
    assert result.err.splitlines()[-1].startswith("xecr")
    assert configured.counts() == {}


# -- crafted Kubernetes service-account tokens (issue 20, item 9) --------------------------


def _kubelet_token(payload: bytes) -> str:
    body = base64.urlsafe_b64encode(payload).rstrip(b"=").decode()
    return f"eyJhbGciOiJSUzI1NiJ9.{body}.c2ln"


def _claims_with(exp: str) -> bytes:
    text = json.dumps(k8s_tokens.claims("team-a", "builder"))
    return re.sub(r'"exp": \d+', f'"exp": {exp}', text).encode()


CRAFTED_TOKENS = {
    "claims nested 5000 deep": _kubelet_token(
        b'{"sub": "system:serviceaccount:a:b", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    ),
    "exp NaN": _kubelet_token(_claims_with("NaN")),
    "exp 10**400": _kubelet_token(_claims_with(str(10**400))),
}


@pytest.mark.parametrize("case", list(CRAFTED_TOKENS))
def test_a_crafted_service_account_token_is_one_line_before_any_aws_call(
    case: str, configured: FakeAws, tmp_path: Path
) -> None:
    tok = CRAFTED_TOKENS[case]
    request = k8s_tokens.request(
        f"{CENTRAL_HOST}/team-a/app:1", tok, {k8s_tokens.ROLE_ANNOTATION: PULL_ROLE}
    )
    result = _bounded([HELPER, "kubelet"], request)
    line = assert_one_line_failure(result, "serviceAccountToken", stream="stderr")
    assert "internal error" not in line
    assert configured.counts() == {}, "a crafted token reached AWS"
    assert tok.split(".")[1][:16] not in result.err
    scan(configured, tmp_path, [result])
