"""The kubelet mode with service-account tokens (KEP-4412), against the fake AWS:
each pod pulls as its service account's role, then the configured central role."""

from __future__ import annotations

import io
import json
import os
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ecr_helper.errors import AwsError, InputError, WebIdentityDenied
from ecr_helper.frontends import kubelet
from tests import k8s_tokens
from tests.fakeaws import FakeAws
from tests.helpers import (
    CENTRAL,
    CENTRAL_HOST,
    HELPER,
    PASSWORD,
    assert_no_secrets,
    assert_one_line_failure,
    installed,
    known_secrets,
    run,
)

TEAM_ROLE = "arn:aws:iam::222222222222:role/team-a-ecr"
CENTRAL_ROLE = f"arn:aws:iam::{CENTRAL}:role/xecr-central-pull"
EXTERNAL_ID = "cluster-b-fleet"
IMAGE = f"{CENTRAL_HOST}/team-a/app:1.4"
CHAIN_CONFIG = textwrap.dedent(f"""\
    [defaults]
    region = "us-east-1"

    [registries."{CENTRAL_HOST}"]
    role_arn = "{CENTRAL_ROLE}"
    external_id = "{EXTERNAL_ID}"
""")
NO_ROLE_CONFIG = textwrap.dedent(f"""\
    [defaults]
    region = "us-east-1"

    [registries."{CENTRAL_HOST}"]
""")
ANNOTATED = {k8s_tokens.ROLE_ANNOTATION: TEAM_ROLE}
TEAM_A_UID = "0f6c9a57-3b0e-4d2a-9c61-5e8f1a2b3c4d"
# The fake answers ECR's way, the caller's token: CENTRAL_ROLE's (the chain's last hop).
CENTRAL_PASSWORD = f"{CENTRAL}-auth-token"


def _answer(raw: bytes, env: dict[str, str] | None = None) -> dict[str, Any]:
    out = kubelet.run(io.BytesIO(raw), dict(os.environ if env is None else env))
    answer: dict[str, Any] = json.loads(out)
    return answer


def _issued_key(role_arn: str) -> str:
    """The access key id moto handed out for ``role_arn`` (the last time it was assumed)."""
    from moto.sts.models import sts_backends

    found = [
        role.access_key_id
        for per_account in list(dict.values(sts_backends))
        for backend in list(dict.values(per_account))
        for role in list(backend.assumed_roles)
        if role.role_arn == role_arn
    ]
    assert found, f"{role_arn} was never assumed"
    return str(found[-1])


def _scan_for_pod_tokens(tokens: list[str], roots: list[Path], outputs: list[bytes]) -> int:
    """No token (nor any of its parts) in any file under ``roots``, cache entries
    included, nor in ``outputs``. Returns how many files were read."""
    needles = sorted({p.encode() for t in tokens for p in k8s_tokens.pieces(t)})
    for output in outputs:
        for needle in needles:
            assert needle not in output
    seen = 0
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file() and not path.is_symlink():
                data = path.read_bytes()
                seen += 1
                for needle in needles:
                    assert needle not in data, f"a pod token ({needle[:8]!r}...) is in {path}"
    return seen


@pytest.fixture
def debug_log(log_file: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XECR_LOG_LEVEL", "DEBUG")
    return log_file


def test_team_a_pulls_through_its_role_and_the_central_role(
    fake_aws: FakeAws, write_config: Callable[[str], Path], debug_log: Path
) -> None:
    write_config(CHAIN_CONFIG)
    tok = k8s_tokens.token("team-a", "builder")

    answer = _answer(k8s_tokens.request(IMAGE, tok, ANNOTATED))

    assert answer["auth"] == {CENTRAL_HOST: {"username": "AWS", "password": CENTRAL_PASSWORD}}
    assert answer["cacheKeyType"] == "Registry"
    [web] = fake_aws.requests("AssumeRoleWithWebIdentity")
    assert web.params["RoleArn"] == TEAM_ROLE
    assert web.params["RoleSessionName"] == "builder@team-a"
    assert web.params["WebIdentityToken"] == tok
    assert web.access_key_id is None  # unsigned: the node's credentials are not used
    [hop] = fake_aws.requests("AssumeRole")
    assert hop.params["RoleArn"] == CENTRAL_ROLE
    assert hop.params["ExternalId"] == EXTERNAL_ID
    assert hop.params["RoleSessionName"] == "builder@team-a"
    assert hop.access_key_id == _issued_key(TEAM_ROLE)  # the pod's role is the source
    [ecr] = fake_aws.requests("GetAuthorizationToken")
    assert ecr.access_key_id == _issued_key(CENTRAL_ROLE)
    assert ecr.params == {}  # registryIds is deprecated: the token is the caller's


def test_no_configured_role_means_the_pod_role_asks_ecr(
    fake_aws: FakeAws, write_config: Callable[[str], Path]
) -> None:
    write_config(NO_ROLE_CONFIG)
    tok = k8s_tokens.token("team-a", "builder")

    answer = _answer(k8s_tokens.request(IMAGE, tok, ANNOTATED))

    assert answer["auth"][CENTRAL_HOST]["password"] == PASSWORD
    assert fake_aws.calls("AssumeRole") == 0
    [ecr] = fake_aws.requests("GetAuthorizationToken")
    assert ecr.access_key_id == _issued_key(TEAM_ROLE)


def test_a_chain_that_starts_at_the_pod_role_does_not_assume_it_again(
    fake_aws: FakeAws, write_config: Callable[[str], Path]
) -> None:
    write_config(CHAIN_CONFIG.replace(f'"{CENTRAL_ROLE}"', f'["{TEAM_ROLE}", "{CENTRAL_ROLE}"]'))
    tok = k8s_tokens.token("team-a", "builder")
    answer = _answer(k8s_tokens.request(IMAGE, tok, ANNOTATED))
    assert answer["auth"][CENTRAL_HOST]["password"] == CENTRAL_PASSWORD
    assert [r.params["RoleArn"] for r in fake_aws.requests("AssumeRole")] == [CENTRAL_ROLE]
    # A pod of another role goes through the whole chain.
    other = {k8s_tokens.ROLE_ANNOTATION: "arn:aws:iam::222222222222:role/team-c-ecr"}
    _answer(k8s_tokens.request(IMAGE, k8s_tokens.token("team-c", "app"), other))
    hops = [r.params["RoleArn"] for r in fake_aws.requests("AssumeRole")]
    assert hops == [CENTRAL_ROLE, TEAM_ROLE, CENTRAL_ROLE]


def test_two_service_accounts_with_one_annotation_never_share_a_token(
    fake_aws: FakeAws, write_config: Callable[[str], Path], debug_log: Path, isolated_env: Path
) -> None:
    write_config(CHAIN_CONFIG)
    team_a = k8s_tokens.token("team-a", "builder", uid=TEAM_A_UID)
    team_b = k8s_tokens.token("team-b", "builder")
    fake_aws.fail("AssumeRoleWithWebIdentity", "access_denied", match={"WebIdentityToken": team_b})

    first = _answer(k8s_tokens.request(IMAGE, team_a, ANNOTATED))
    assert first["auth"][CENTRAL_HOST]["password"] == CENTRAL_PASSWORD
    fake_aws.reset()

    # Team B's annotation names team A's role; team A's token is in the cache.
    with pytest.raises(WebIdentityDenied) as caught:
        _answer(k8s_tokens.request(IMAGE, team_b, ANNOTATED))
    line = str(caught.value)
    assert TEAM_ROLE in line and "team-b/builder" in line and "\n" not in line
    assert "system:serviceaccount:team-b:builder" in line
    assert fake_aws.calls("AssumeRoleWithWebIdentity") == 1  # asked STS, not the cache
    assert fake_aws.calls("GetAuthorizationToken") == 0

    # Another pod of team A (a new token) is served from the cache.
    fake_aws.reset()
    other_pod = k8s_tokens.token("team-a", "builder", uid=TEAM_A_UID)
    again = _answer(k8s_tokens.request(IMAGE, other_pod, ANNOTATED))
    assert again["auth"] == first["auth"]
    assert fake_aws.counts() == {}

    # Still refused the second time: a failure is never cached as a success.
    with pytest.raises(WebIdentityDenied):
        _answer(k8s_tokens.request(IMAGE, team_b, ANNOTATED))

    roots = [isolated_env, debug_log.parent]
    assert "team-a/builder" in debug_log.read_text()  # the debug log was written
    assert _scan_for_pod_tokens([team_a, team_b, other_pod], roots, [line.encode()]) >= 2
    assert_no_secrets(known_secrets(fake_aws), roots, [line.encode()])


def test_an_unannotated_service_account_pulls_as_the_node(
    fake_aws: FakeAws, write_config: Callable[[str], Path], debug_log: Path, isolated_env: Path
) -> None:
    write_config(CHAIN_CONFIG)
    tok = k8s_tokens.token("team-c", "default")

    answer = _answer(k8s_tokens.request(IMAGE, tok, {}))

    assert answer["auth"][CENTRAL_HOST]["password"] == CENTRAL_PASSWORD
    assert fake_aws.calls("AssumeRoleWithWebIdentity") == 0
    [hop] = fake_aws.requests("AssumeRole")
    assert hop.params["RoleArn"] == CENTRAL_ROLE
    assert hop.access_key_id == os.environ["AWS_ACCESS_KEY_ID"]  # the node's own
    _scan_for_pod_tokens([tok], [isolated_env, debug_log.parent], [])


def test_the_node_entry_is_never_served_to_an_annotated_service_account(
    fake_aws: FakeAws, write_config: Callable[[str], Path]
) -> None:
    write_config(CHAIN_CONFIG)
    node = _answer(k8s_tokens.request(IMAGE))  # no token at all: the node's identity
    assert node["auth"][CENTRAL_HOST]["password"] == CENTRAL_PASSWORD
    team_b = k8s_tokens.token("team-b", "builder")
    fake_aws.fail("AssumeRoleWithWebIdentity", "access_denied", match={"WebIdentityToken": team_b})
    with pytest.raises(WebIdentityDenied):
        _answer(k8s_tokens.request(IMAGE, team_b, ANNOTATED))


def test_refuse_instead_of_the_node_identity(
    fake_aws: FakeAws, write_config: Callable[[str], Path]
) -> None:
    write_config(CHAIN_CONFIG)
    env = {**os.environ, "XECR_KUBELET_UNANNOTATED": "refuse"}
    tok = k8s_tokens.token("team-c", "default")
    with pytest.raises(InputError, match=r"team-c/default has no eks\.amazonaws\.com/ecr-role-arn"):
        _answer(k8s_tokens.request(IMAGE, tok, {}), env)
    with pytest.raises(InputError, match="no service account token"):
        _answer(k8s_tokens.request(IMAGE), env)
    assert fake_aws.counts() == {}
    # An annotated one is still served.
    answer = _answer(k8s_tokens.request(IMAGE, k8s_tokens.token("team-a", "b"), ANNOTATED), env)
    assert answer["auth"][CENTRAL_HOST]["password"] == CENTRAL_PASSWORD


def _seconds(duration: str) -> int:
    total, number = 0, ""
    for char in duration:
        if char.isdigit():
            number += char
        else:
            total += int(number) * {"h": 3600, "m": 60, "s": 1}[char]
            number = ""
    return total


@pytest.mark.parametrize(("cache_type", "capped"), [("ServiceAccount", False), ("Token", True)])
def test_cache_duration_follows_the_kubelets_cache_type(
    fake_aws: FakeAws, write_config: Callable[[str], Path], cache_type: str, capped: bool
) -> None:
    write_config(CHAIN_CONFIG)
    env = {**os.environ, "XECR_KUBELET_CACHE_TYPE": cache_type}
    tok = k8s_tokens.token("team-a", "builder", lifetime=600)  # the pod's token: 10 min
    answer = _answer(k8s_tokens.request(IMAGE, tok, ANNOTATED), env)
    seconds = _seconds(answer["cacheDuration"])
    if capped:
        assert 0 < seconds <= 600  # never past the token the kubelet keys it by
    else:
        assert 600 < seconds <= 6 * 3600  # to the ECR token's refresh point
    # An unannotated service account's answer (the node's token) is capped alike.
    node = _answer(k8s_tokens.request(IMAGE, k8s_tokens.token("t", "d", lifetime=600), {}), env)
    assert (_seconds(node["cacheDuration"]) <= 600) is capped


def test_an_annotation_without_a_token_is_refused(
    fake_aws: FakeAws, write_config: Callable[[str], Path]
) -> None:
    write_config(CHAIN_CONFIG)
    with pytest.raises(InputError, match="carries no serviceAccountToken"):
        _answer(k8s_tokens.request(IMAGE, "", ANNOTATED))
    assert fake_aws.counts() == {}


def test_an_image_that_is_not_ours_makes_no_aws_call_with_a_token(
    fake_aws: FakeAws, write_config: Callable[[str], Path]
) -> None:
    write_config(CHAIN_CONFIG)
    tok = k8s_tokens.token("team-a", "builder")
    response = _answer(k8s_tokens.request("quay.io/org/app:1", tok, ANNOTATED))
    assert "auth" not in response and response["cacheKeyType"] == "Registry"
    assert fake_aws.counts() == {}


def test_a_rejected_identity_token_names_the_role_and_service_account(
    fake_aws: FakeAws, write_config: Callable[[str], Path]
) -> None:
    write_config(CHAIN_CONFIG)
    fake_aws.fail("AssumeRoleWithWebIdentity", "invalid_identity_token")
    tok = k8s_tokens.token("team-a", "builder")
    with pytest.raises(WebIdentityDenied, match="InvalidIdentityToken") as caught:
        _answer(k8s_tokens.request(IMAGE, tok, ANNOTATED))
    assert TEAM_ROLE in str(caught.value) and "team-a/builder" in str(caught.value)


def test_a_refused_central_hop_names_the_service_account(
    fake_aws: FakeAws, write_config: Callable[[str], Path]
) -> None:
    write_config(CHAIN_CONFIG)
    fake_aws.fail("AssumeRole", "access_denied")
    tok = k8s_tokens.token("team-a", "builder")
    with pytest.raises(AwsError) as caught:
        _answer(k8s_tokens.request(IMAGE, tok, ANNOTATED))
    line = str(caught.value)
    assert CENTRAL_ROLE in line and "team-a/builder" in line and TEAM_ROLE in line
    assert tok not in line


# ---------------------------------------------------------------------------
# Through the installed executable, as the kubelet runs it
# ---------------------------------------------------------------------------


@pytest.mark.slow
def test_the_kubelet_plugin_end_to_end(
    fake_aws: FakeAws, write_config: Callable[[str], Path], isolated_env: Path, tmp_path: Path
) -> None:
    config = write_config(CHAIN_CONFIG)
    env = {
        "XECR_CONFIG": str(config),
        "XECR_CACHE_DIR": str(tmp_path / "kubelet-cache"),
        "XECR_LOG_DIR": str(tmp_path / "kubelet-log"),
        "XECR_LOG_LEVEL": "DEBUG",
    }
    team_a = k8s_tokens.token("team-a", "builder")
    team_b = k8s_tokens.token("team-b", "builder")
    team_c = k8s_tokens.token("team-c", "default")
    fake_aws.fail("AssumeRoleWithWebIdentity", "access_denied", match={"WebIdentityToken": team_b})
    helper = [HELPER, "kubelet"]

    a = run(helper, k8s_tokens.request(IMAGE, team_a, ANNOTATED), extra_env=env)
    b = run(helper, k8s_tokens.request(IMAGE, team_b, ANNOTATED), extra_env=env)
    c = run(helper, k8s_tokens.request(IMAGE, team_c, {}), extra_env=env)

    assert a.returncode == 0, a.err
    answer = json.loads(a.out)
    assert answer["auth"] == {CENTRAL_HOST: {"username": "AWS", "password": CENTRAL_PASSWORD}}
    assert answer["apiVersion"] == k8s_tokens.V1 and a.stderr == b""
    line = assert_one_line_failure(b, TEAM_ROLE, "team-b/builder", stream="stderr")
    # The kubelet logs this line with the pull: it names the registry (issue 21, item 5).
    assert line.startswith(f"xecr kubelet: {CENTRAL_HOST}: AssumeRoleWithWebIdentity denied")
    assert c.returncode == 0, c.err
    assert json.loads(c.out)["auth"][CENTRAL_HOST]["password"] == CENTRAL_PASSWORD
    web = fake_aws.requests("AssumeRoleWithWebIdentity")
    assert [r.params["RoleSessionName"] for r in web] == ["builder@team-a", "builder@team-b"]

    roots = [isolated_env, tmp_path / "kubelet-cache", tmp_path / "kubelet-log"]
    outputs = [a.stderr, b.stdout, b.stderr, c.stderr]
    assert "team-b/builder" in (tmp_path / "kubelet-log" / "xecr.log").read_text()
    assert _scan_for_pod_tokens([team_a, team_b, team_c], roots, [*outputs, a.stdout, c.stdout])
    entries = assert_no_secrets(known_secrets(fake_aws), roots, outputs)
    assert len(entries) == 2  # team A's (pod role) and the node's; none for team B


@pytest.mark.slow
def test_a_burst_of_pods_makes_one_fetch_per_service_account(
    fake_aws: FakeAws, write_config: Callable[[str], Path], tmp_path: Path
) -> None:
    import subprocess

    config = write_config(CHAIN_CONFIG)
    env = {
        **os.environ,
        "XECR_CONFIG": str(config),
        "XECR_CACHE_DIR": str(tmp_path / "kubelet-cache"),
        "XECR_LOG_DIR": str(tmp_path / "kubelet-log"),
    }
    team_b_uid = "7a1d4e0b-2c3f-4b5a-8d9e-0f1a2b3c4d5e"
    requests = [
        k8s_tokens.request(IMAGE, k8s_tokens.token("team-a", "builder", uid=TEAM_A_UID), ANNOTATED)
        for _ in range(4)
    ] + [
        k8s_tokens.request(IMAGE, k8s_tokens.token("team-b", "ci", uid=team_b_uid), ANNOTATED)
        for _ in range(2)
    ]
    procs = [
        subprocess.Popen(
            [installed(HELPER), "kubelet"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        for _ in requests
    ]
    for proc, raw in zip(procs, requests, strict=True):
        assert proc.stdin is not None
        proc.stdin.write(raw)
        proc.stdin.close()
    for proc in procs:
        assert proc.wait(timeout=120) == 0
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stderr.read() == b""
        assert json.loads(proc.stdout.read())["auth"][CENTRAL_HOST]["password"] == CENTRAL_PASSWORD
        proc.stdout.close()
        proc.stderr.close()
    names = sorted(
        r.params["RoleSessionName"] for r in fake_aws.requests("AssumeRoleWithWebIdentity")
    )
    assert names == ["builder@team-a", "ci@team-b"]
    assert fake_aws.calls("GetAuthorizationToken") == 2
