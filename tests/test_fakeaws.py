"""Proves each feature of tests/fakeaws.py with real boto3 clients on the loopback fake."""

from __future__ import annotations

import base64
import functools
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
)

from tests.fakeaws import FakeAws
from tests.helpers import wait_for

REPO = Path(__file__).resolve().parent.parent
BASE_KEY = "AKIAFAKEFAKEFAKE0001"  # what the autouse conftest fixture puts in the environment
ROLE = "arn:aws:iam::111111111111:role/xecr-pull"
# botocore's "max_attempts" counts retries, not attempts: {"max_attempts": 1} still retries
# throttling and 5xx once. total_max_attempts=1 means exactly one attempt, so every fault
# reaches the test as-is.
CFG = Config(retries={"total_max_attempts": 1}, connect_timeout=1, read_timeout=2)


@pytest.fixture
def fake() -> Iterator[FakeAws]:
    FakeAws.reset_state()  # moto's backends are process-global: start each test empty
    with FakeAws() as f:
        yield f


def client(
    fake: FakeAws | str | None,
    service: str,
    region: str = "us-east-1",
    creds: dict[str, Any] | None = None,
) -> Any:
    """A boto3 client for ``fake`` (or a URL; None: AWS_ENDPOINT_URL decides) using the
    conftest's fake keys, or ``creds`` from AssumeRole."""
    if fake is None:  # a fresh session, so the environment is read now
        return boto3.session.Session(region_name=region).client(service, config=CFG)
    creds = creds or {"AccessKeyId": BASE_KEY, "SecretAccessKey": "x", "SessionToken": None}
    return _session().client(
        service,
        region_name=region,
        endpoint_url=fake.url if isinstance(fake, FakeAws) else fake,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        config=CFG,
    )


@functools.cache
def _session() -> boto3.session.Session:
    # One shared session: a new one per client costs ~0.1 s of model loading. Every client
    # gets explicit keys, so nothing leaks between tests through its credential cache.
    return boto3.session.Session()


def assume(fake: FakeAws, role: str = ROLE, creds: dict[str, Any] | None = None) -> Any:
    sts = client(fake, "sts", creds=creds)
    return sts.assume_role(RoleArn=role, RoleSessionName="xecr-test")["Credentials"]


def control(fake: FakeAws, path: str, doc: dict[str, Any] | None = None) -> Any:
    data = None if doc is None else json.dumps(doc).encode()
    method = "GET" if doc is None else "POST"
    req = urllib.request.Request(fake.url + path, data=data, method=method)
    with urllib.request.urlopen(req, timeout=2) as resp:
        return json.loads(resp.read())


def expected_token(registry_id: str) -> str:
    return base64.b64encode(f"AWS:{registry_id}-auth-token".encode()).decode()


# -- basics, tokens, routing ------------------------------------------------------------


@pytest.mark.slow
def test_binds_loopback_and_context_manager_stops(fake: FakeAws) -> None:
    assert fake.url == f"http://127.0.0.1:{fake.port}" and fake.port > 0
    with FakeAws() as other:
        url = other.url
        client(other, "sts").get_caller_identity()
    with pytest.raises(EndpointConnectionError):
        client(url, "sts").get_caller_identity()


def test_token_is_the_callers_with_real_expiry(fake: FakeAws) -> None:
    before = time.time()
    # Base keys are account 123456789012's: naming another registry changes nothing.
    data = client(fake, "ecr").get_authorization_token(registryIds=["111111111111"])
    (item,) = data["authorizationData"]
    assert item["authorizationToken"] == expected_token("123456789012")
    assert base64.b64decode(item["authorizationToken"]) == b"AWS:123456789012-auth-token"
    assert before + 43200 - 5 <= item["expiresAt"].timestamp() <= time.time() + 43200 + 5
    assert item["proxyEndpoint"] == "https://123456789012.dkr.ecr.us-east-1.amazonaws.com"


def test_one_token_per_caller_whatever_registry_ids_say(fake: FakeAws) -> None:
    """ECR's way: registryIds is deprecated and does not change the token's scope."""
    fake.token_ttl = 20
    ecr = client(fake, "ecr")
    answers = [
        ecr.get_authorization_token(registryIds=["111111111111", "222222222222"]),
        ecr.get_authorization_token(registryIds=["222222222222"]),
        ecr.get_authorization_token(),
    ]
    tokens = {d["authorizationToken"] for a in answers for d in a["authorizationData"]}
    assert tokens == {expected_token("123456789012")}
    assert all(len(a["authorizationData"]) == 1 for a in answers)
    for answer in answers:
        (item,) = answer["authorizationData"]
        assert abs(item["expiresAt"].timestamp() - (time.time() + 20)) < 5


def test_expires_at_is_epoch_seconds_on_the_wire(fake: FakeAws) -> None:
    req = urllib.request.Request(
        fake.url + "/",
        data=b'{"registryIds": ["111111111111"]}',
        headers={
            "X-Amz-Target": "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken",
            "Content-Type": "application/x-amz-json-1.1",
            "Authorization": "AWS4-HMAC-SHA256 Credential=AKIAFAKEFAKEFAKE0001/20250101/"
            "us-east-1/ecr/aws4_request, SignedHeaders=host, Signature=0",
        },
    )
    with urllib.request.urlopen(req, timeout=2) as resp:
        doc = json.loads(resp.read())
    expires = doc["authorizationData"][0]["expiresAt"]
    assert isinstance(expires, float) and abs(expires - time.time() - 43200) < 5


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1"])
def test_aws_endpoint_url_routes_sts_and_ecr(
    fake: FakeAws, region: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", fake.url)
    assert client(None, "sts", region).get_caller_identity()["Account"] == "123456789012"
    data = client(None, "ecr", region).get_authorization_token()["authorizationData"][0]
    assert data["proxyEndpoint"] == f"https://123456789012.dkr.ecr.{region}.amazonaws.com"
    assert [(r.service, r.region) for r in fake.requests()] == [("sts", region), ("ecr", region)]


# -- counting and records ---------------------------------------------------------------


def test_counts_and_records_assume_role_parameters(fake: FakeAws) -> None:
    sts = client(fake, "sts")
    sts.assume_role(
        RoleArn=ROLE, RoleSessionName="sess-1", ExternalId="ext-42", DurationSeconds=900
    )
    client(fake, "ecr").get_authorization_token(registryIds=["111111111111"])
    assert fake.calls("AssumeRole") == 1
    assert fake.calls("GetAuthorizationToken") == 1
    assert fake.calls("GetCallerIdentity") == 0
    (rec,) = fake.requests("AssumeRole")
    assert rec.params["RoleArn"] == ROLE
    assert rec.params["ExternalId"] == "ext-42"
    assert rec.params["RoleSessionName"] == "sess-1"
    assert rec.params["DurationSeconds"] == "900"  # form fields stay strings
    assert rec.access_key_id == BASE_KEY and rec.service == "sts"
    (ecr_rec,) = fake.requests("GetAuthorizationToken")
    assert ecr_rec.params == {"registryIds": ["111111111111"]} and ecr_rec.service == "ecr"
    assert rec.time <= ecr_rec.time
    with pytest.raises(AttributeError):
        rec.action = "x"  # type: ignore[misc]
    fake.reset()
    assert fake.calls("AssumeRole") == 0 and fake.requests() == [] and fake.counts() == {}


def test_assumed_credentials_act_in_the_role_account(fake: FakeAws) -> None:
    creds = assume(fake)
    assert creds["AccessKeyId"].startswith("ASIA")
    who = client(fake, "sts", creds=creds).get_caller_identity()
    assert who["Account"] == "111111111111"
    assert who["Arn"] == "arn:aws:sts::111111111111:assumed-role/xecr-pull/xecr-test"
    ecr = client(fake, "ecr", "eu-west-1", creds)
    repo = ecr.create_repository(repositoryName="app")["repository"]
    assert repo["registryId"] == "111111111111"
    policy = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "pull",
                    "Effect": "Allow",
                    "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                    "Action": ["ecr:BatchGetImage"],
                }
            ],
        }
    )
    ecr.set_repository_policy(repositoryName="app", policyText=policy)
    got = ecr.get_repository_policy(repositoryName="app")
    assert got["registryId"] == "111111111111" and json.loads(got["policyText"])
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    assert token == expected_token("111111111111")  # no registryIds: the caller's account
    assert fake.calls("SetRepositoryPolicy") == fake.calls("GetRepositoryPolicy") == 1
    assert {r.access_key_id for r in fake.requests("GetRepositoryPolicy")} == {creds["AccessKeyId"]}
    # moto never evaluates cross-account access: base credentials cannot see that repository,
    # even naming its registry, and other regions are separate.
    base = client(fake, "ecr", "eu-west-1")
    assert base.describe_repositories()["repositories"] == []
    with pytest.raises(ClientError) as err:
        base.get_repository_policy(repositoryName="app", registryId="111111111111")
    assert err.value.response["Error"]["Code"] == "RepositoryNotFoundException"
    assert client(fake, "ecr", "us-east-1", creds).describe_repositories()["repositories"] == []


def test_role_chain_reaches_the_last_account(fake: FakeAws) -> None:
    first = assume(fake)
    second = assume(fake, "arn:aws:iam::222222222222:role/next", creds=first)
    who = client(fake, "sts", creds=second).get_caller_identity()
    assert who["Account"] == "222222222222"
    keys = [r.access_key_id for r in fake.requests("AssumeRole")]
    assert keys == [BASE_KEY, first["AccessKeyId"]]


# -- faults -----------------------------------------------------------------------------

FAULTS = [
    # kind, STS code, STS status, ECR code, ECR status
    ("access_denied", "AccessDenied", 403, "AccessDeniedException", 400),
    ("expired_token", "ExpiredToken", 400, "ExpiredTokenException", 400),
    ("throttle", "Throttling", 400, "ThrottlingException", 400),
    ("server_error", "InternalFailure", 500, "ServerException", 500),
    ("unavailable", "ServiceUnavailable", 503, "ServiceUnavailableException", 503),
    ("invalid_client_token", "InvalidClientTokenId", 403, "UnrecognizedClientException", 400),
]


@pytest.mark.parametrize(("kind", "sts_code", "sts_status", "ecr_code", "ecr_status"), FAULTS)
def test_fault_kinds_parse_to_real_error_codes(
    fake: FakeAws, kind: str, sts_code: str, sts_status: int, ecr_code: str, ecr_status: int
) -> None:
    fake.fail("AssumeRole", kind, times=1)
    fake.fail("GetAuthorizationToken", kind, times=1)
    with pytest.raises(ClientError) as sts_err:
        assume(fake)
    with pytest.raises(ClientError) as ecr_err:
        client(fake, "ecr").get_authorization_token(registryIds=["111111111111"])
    for err, code, status in ((sts_err, sts_code, sts_status), (ecr_err, ecr_code, ecr_status)):
        assert err.value.response["Error"]["Code"] == code
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
        assert err.value.response["Error"]["Message"]
    assert fake.calls("AssumeRole") == fake.calls("GetAuthorizationToken") == 1
    assume(fake)  # both faults were used up
    client(fake, "ecr").get_authorization_token()


def test_fault_times_counts_down_per_action(fake: FakeAws) -> None:
    sts = client(fake, "sts")
    fake.fail("GetCallerIdentity", "throttle", times=2)
    for _ in range(2):
        with pytest.raises(ClientError, match="Throttling"):
            sts.get_caller_identity()
        assume(fake)  # another action is untouched
    assert sts.get_caller_identity()["Account"] == "123456789012"
    assert fake.calls("GetCallerIdentity") == 3 and fake.calls("AssumeRole") == 2


def test_fault_on_any_action_until_cleared(fake: FakeAws) -> None:
    fake.fail(None, "access_denied")
    for _ in range(3):
        with pytest.raises(ClientError, match="AccessDenied"):
            client(fake, "sts").get_caller_identity()
        with pytest.raises(ClientError, match="AccessDeniedException"):
            client(fake, "ecr").get_authorization_token()
    fake.clear_faults()
    client(fake, "sts").get_caller_identity()
    assert fake.calls("GetCallerIdentity") == 4 and fake.calls("GetAuthorizationToken") == 3


def test_fail_rejects_unknown_kind_and_bad_times(fake: FakeAws) -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        fake.fail(None, "explode")
    with pytest.raises(ValueError):
        fake.fail(None, "throttle", times=0)


def call_in_thread(fn: Any) -> queue.Queue[Any]:
    out: queue.Queue[Any] = queue.Queue()

    def run() -> None:
        try:
            out.put(fn())
        except Exception as exc:
            out.put(exc)

    threading.Thread(target=run, daemon=True).start()
    return out


def test_hang_is_answered_normally_once_cleared(fake: FakeAws) -> None:
    fake.fail("GetCallerIdentity", "hang")
    out = call_in_thread(client(fake, "sts").get_caller_identity)
    wait_for(lambda: fake.calls("GetCallerIdentity") == 1)
    time.sleep(0.3)
    assert out.empty()
    # The server is threaded: other calls proceed while one hangs.
    client(fake, "ecr").get_authorization_token()
    fake.clear_faults()
    assert out.get(timeout=2)["Account"] == "123456789012"


def test_hang_is_dropped_by_stop_quickly(fake: FakeAws) -> None:
    fake.fail(None, "hang")
    out = call_in_thread(client(fake, "sts").get_caller_identity)
    wait_for(lambda: fake.calls("GetCallerIdentity") == 1)
    started = time.monotonic()
    fake.stop()
    assert time.monotonic() - started < 1.0
    assert isinstance(out.get(timeout=1.5), ConnectionClosedError)


def test_go_down_refuses_and_come_up_reuses_the_port(fake: FakeAws) -> None:
    port, sts = fake.port, client(fake, "sts")
    for _ in range(3):
        sts.get_caller_identity()
        fake.go_down()
        with pytest.raises(EndpointConnectionError):
            sts.get_caller_identity()
        fake.come_up()
        assert fake.port == port
    assert sts.get_caller_identity()["Account"] == "123456789012"


def test_explicit_port(fake: FakeAws) -> None:
    port = fake.port
    fake.stop()
    with FakeAws(port=port) as again:
        assert again.url == f"http://127.0.0.1:{port}"
        client(again, "sts").get_caller_identity()


# -- HTTP control and the standalone process --------------------------------------------


def test_http_control_endpoints(fake: FakeAws) -> None:
    assert control(fake, "/_fake/fail", {"action": "AssumeRole", "kind": "throttle", "times": 1})
    with pytest.raises(ClientError, match="Throttling"):
        assume(fake)
    assume(fake)
    control(fake, "/_fake/ttl", {"ttl": 30})
    data = client(fake, "ecr").get_authorization_token()["authorizationData"][0]
    assert abs(data["expiresAt"].timestamp() - time.time() - 30) < 5
    assert control(fake, "/_fake/calls") == {"AssumeRole": 2, "GetAuthorizationToken": 1}
    records = control(fake, "/_fake/requests")
    assert records[0]["params"]["RoleArn"] == ROLE
    control(fake, "/_fake/fail", {"action": None, "kind": "access_denied"})
    with pytest.raises(ClientError, match="AccessDenied"):
        client(fake, "sts").get_caller_identity()
    control(fake, "/_fake/clear", {})
    client(fake, "sts").get_caller_identity()
    control(fake, "/_fake/reset", {})
    assert control(fake, "/_fake/calls") == {}
    for path, doc, status in (("/_fake/fail", {"kind": "nope"}, 400), ("/_fake/x", {}, 404)):
        with pytest.raises(urllib.error.HTTPError) as err:
            control(fake, path, doc)
        assert err.value.code == status


def read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    out: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    stdout = proc.stdout
    threading.Thread(target=lambda: out.put(stdout.readline()), daemon=True).start()
    return out.get(timeout=timeout)


@pytest.mark.slow
def test_main_prints_url_obeys_signals_and_exits_on_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakeaws", "--port", "0", "--ttl", "50"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    try:
        url = read_line(proc, timeout=15).strip()
        assert url.startswith("http://127.0.0.1:")
        ecr = client(url, "ecr")
        data = ecr.get_authorization_token()["authorizationData"][0]
        assert abs(data["expiresAt"].timestamp() - time.time() - 50) < 5
        proc.send_signal(signal.SIGUSR1)
        wait_for(lambda: _refused(ecr))
        proc.send_signal(signal.SIGUSR2)
        wait_for(lambda: not _refused(ecr))
        proc.send_signal(signal.SIGTERM)
        stdout, _ = proc.communicate(timeout=5)
        assert proc.returncode == 0
        assert stdout == ""  # the URL was the one and only line
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=5)


def _refused(ecr: Any) -> bool:
    try:
        ecr.get_authorization_token()
    except EndpointConnectionError:
        return True
    except ConnectionClosedError:  # a call that raced the listener closing: try again
        return False
    return False
