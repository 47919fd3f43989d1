"""ecr_helper.aws against the loopback fake AWS: what AssumeRole and GetAuthorizationToken
are asked, how a role chain is signed, and the one clear line each failure becomes
(within bounded time, and never with a secret in it)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ecr_helper import aws, ecr
from ecr_helper.config import RegistrySettings
from ecr_helper.errors import (
    AssumeRoleDenied,
    AwsError,
    EndpointError,
    NoCredentialsError,
    TokenDenied,
)
from ecr_helper.token import Token
from tests.fakeaws import FakeAws
from tests.helpers import CENTRAL, CENTRAL_HOST, PASSWORD, PULL_ROLE

HOP = "arn:aws:iam::333333333333:role/hop"
BASE_KEY = "AKIAFAKEFAKEFAKE0001"
BASE_SECRET = "fake-secret-key-for-tests-only"


def settings(roles: tuple[str, ...] = (PULL_ROLE,), **extra: Any) -> RegistrySettings:
    return RegistrySettings(
        host=CENTRAL_HOST,
        registry_id=CENTRAL,
        region="us-east-1",
        partition="aws",
        role_arns=roles,
        **extra,
    )


class Spy:
    """Every set of credentials aws.client was handed (the chain's hops, in order)."""

    def __init__(self) -> None:
        self.creds: list[dict[str, Any]] = []

    def secrets(self) -> list[str]:
        return [BASE_SECRET] + [
            value for c in self.creds for value in (c["SecretAccessKey"], c["SessionToken"])
        ]


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> Spy:
    record = Spy()
    real = aws.client

    def client(
        sess: Any, service: str, region: str, timeouts: aws.Timeouts, creds: dict[str, Any] | None
    ) -> Any:
        if creds is not None:
            record.creds.append(creds)
        return real(sess, service, region, timeouts, creds)

    monkeypatch.setattr(aws, "client", client)
    return record


def failure(fetch: Callable[[], object], spy: Spy) -> AwsError:
    """The AwsError ``fetch`` raises, checked to be one line without any secret."""
    with pytest.raises(AwsError) as caught:
        fetch()
    text = str(caught.value)
    assert text and "\n" not in text and "Traceback" not in text
    for secret in spy.secrets():
        assert secret not in text
    # no chained botocore exception (whose text may hold more) rides along
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None or caught.value.__suppress_context__
    return caught.value


# -- what is asked -------------------------------------------------------------------------


def test_assume_role_request(fake_aws: FakeAws, spy: Spy) -> None:
    ecr.fetch_token(
        settings(external_id="ext-1234", role_session_name="xecr-ci", duration_seconds=3600)
    )
    [request] = fake_aws.requests("AssumeRole")
    assert request.params["RoleArn"] == PULL_ROLE
    assert request.params["ExternalId"] == "ext-1234"
    assert request.params["RoleSessionName"] == "xecr-ci"
    assert request.params["DurationSeconds"] == "3600"
    assert request.access_key_id == BASE_KEY
    assert (request.service, request.region) == ("sts", "us-east-1")


def test_default_session_name_and_duration(
    fake_aws: FakeAws, spy: Spy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("USER", "alice smith/ops")
    ecr.fetch_token(settings())
    [request] = fake_aws.requests("AssumeRole")
    assert request.params["RoleSessionName"] == "xecr-alice-smith-ops"
    assert request.params["DurationSeconds"] == str(aws.DEFAULT_DURATION)
    assert "ExternalId" not in request.params


def test_a_two_role_chain(fake_aws: FakeAws, spy: Spy) -> None:
    token = ecr.fetch_token(
        settings((HOP, PULL_ROLE), external_id="ext-1234", role_session_name="xecr-ci")
    )
    first, second = fake_aws.requests("AssumeRole")
    assert (first.params["RoleArn"], second.params["RoleArn"]) == (HOP, PULL_ROLE)
    assert "ExternalId" not in first.params and second.params["ExternalId"] == "ext-1234"
    assert first.params["RoleSessionName"] != "xecr-ci"  # the name goes with the last hop
    assert second.params["RoleSessionName"] == "xecr-ci"
    hop_creds, last_creds = spy.creds[0], spy.creds[-1]
    assert first.access_key_id == BASE_KEY
    assert second.access_key_id == hop_creds["AccessKeyId"] != BASE_KEY  # signed by hop 1
    [token_call] = fake_aws.requests("GetAuthorizationToken")
    assert token_call.access_key_id == last_creds["AccessKeyId"] != hop_creds["AccessKeyId"]
    assert token.role_arn == PULL_ROLE


def test_chained_hops_ask_at_most_an_hour(fake_aws: FakeAws, spy: Spy) -> None:
    ecr.fetch_token(settings((HOP, PULL_ROLE), duration_seconds=7200))
    _, second = fake_aws.requests("AssumeRole")
    assert int(second.params["DurationSeconds"]) <= 3600


def test_get_authorization_token(fake_aws: FakeAws, spy: Spy) -> None:
    now = time.time()
    token = ecr.fetch_token(settings(), clock=lambda: now)
    [request] = fake_aws.requests("GetAuthorizationToken")
    # No registryIds: deprecated, and the caller's token is the same whatever it names.
    assert request.params == {}
    assert request.service == "ecr" and request.region == "us-east-1"
    assert (token.username, token.secret) == ("AWS", PASSWORD)
    assert token.issued_at == now
    assert token.expires_at == pytest.approx(now + 43200, abs=30)
    assert (token.registry, token.registry_id, token.region) == (CENTRAL_HOST, CENTRAL, "us-east-1")


def test_no_role_means_no_assume_role(fake_aws: FakeAws, spy: Spy) -> None:
    token = ecr.fetch_token(settings(()))
    assert fake_aws.calls("AssumeRole") == 0
    [request] = fake_aws.requests("GetAuthorizationToken")
    assert request.access_key_id == BASE_KEY
    assert token.role_arn is None and spy.creds == []


def test_a_source_profile_signs_the_first_call(
    fake_aws: FakeAws, spy: Spy, isolated_env: Path
) -> None:
    credentials = isolated_env / ".aws" / "credentials"
    credentials.parent.mkdir(parents=True, exist_ok=True)
    credentials.write_text(
        "[central]\naws_access_key_id = AKIACENTRALPROFILE01\n"
        "aws_secret_access_key = central-profile-secret\n"
    )
    ecr.fetch_token(settings(source_profile="central"))
    [request] = fake_aws.requests("AssumeRole")
    assert request.access_key_id == "AKIACENTRALPROFILE01"


def test_an_already_expired_token_is_refused(fake_aws: FakeAws, spy: Spy) -> None:
    fake_aws.token_ttl = -60.0
    error = failure(lambda: ecr.fetch_token(settings()), spy)
    assert CENTRAL in str(error) and "clock" in str(error)


def test_caller_identity_and_make_client(fake_aws: FakeAws, spy: Spy) -> None:
    assert aws.caller_identity("us-east-1").startswith("arn:aws:")
    client = aws.make_client("ecr", "us-east-1", role_arns=(PULL_ROLE,))
    aws.call(client.describe_repositories, "ecr", "us-east-1", "DescribeRepositories")
    [request] = fake_aws.requests("DescribeRepositories")
    assert request.access_key_id == spy.creds[-1]["AccessKeyId"]


def test_call_maps_client_errors(fake_aws: FakeAws, spy: Spy) -> None:
    client = aws.make_client("ecr", "us-east-1")
    fake_aws.fail("DescribeRepositories", "access_denied")
    error = failure(
        lambda: aws.call(client.describe_repositories, "ecr", "us-east-1", "listing repositories"),
        spy,
    )
    assert str(error).startswith("listing repositories failed (AccessDeniedException)")
    assert error.code == "AccessDeniedException"


# -- failures ------------------------------------------------------------------------------


def test_assume_role_denied_names_the_role_and_trust_policy(fake_aws: FakeAws, spy: Spy) -> None:
    fake_aws.fail("AssumeRole", "access_denied")
    error = failure(lambda: ecr.fetch_token(settings()), spy)
    assert isinstance(error, AssumeRoleDenied) and error.role_arn == PULL_ROLE
    assert PULL_ROLE in str(error) and "trust policy" in str(error)
    assert fake_aws.calls("GetAuthorizationToken") == 0


def test_the_denied_hop_of_a_chain_is_named(fake_aws: FakeAws, spy: Spy) -> None:
    fake_aws.fail("AssumeRole", "access_denied")  # the first hop
    error = failure(lambda: ecr.fetch_token(settings((HOP, PULL_ROLE))), spy)
    assert isinstance(error, AssumeRoleDenied) and error.role_arn == HOP


def test_token_denied_names_the_registry_and_the_permission(fake_aws: FakeAws, spy: Spy) -> None:
    fake_aws.fail("GetAuthorizationToken", "access_denied")
    error = failure(lambda: ecr.fetch_token(settings()), spy)
    assert isinstance(error, TokenDenied)
    assert CENTRAL in str(error) and "ecr:GetAuthorizationToken" in str(error)
    assert PULL_ROLE in str(error)  # as whom it was asked


@pytest.mark.parametrize(
    ("action", "kind", "code"),
    [
        ("AssumeRole", "expired_token", "ExpiredToken"),
        ("GetAuthorizationToken", "expired_token", "ExpiredTokenException"),
        ("AssumeRole", "invalid_client_token", "InvalidClientTokenId"),
    ],
)
def test_rejected_credentials(
    fake_aws: FakeAws, spy: Spy, action: str, kind: str, code: str
) -> None:
    fake_aws.fail(action, kind)
    error = failure(lambda: ecr.fetch_token(settings()), spy)
    assert error.code == code and code in str(error)
    assert "refresh the source credentials" in str(error)
    assert fake_aws.calls(action) == 1  # not retried: it cannot get better


@pytest.mark.slow
def test_throttling_twice_then_success(fake_aws: FakeAws, spy: Spy) -> None:
    fake_aws.fail("GetAuthorizationToken", "throttle", times=2)
    token = ecr.fetch_token(settings())
    assert token.secret == PASSWORD
    assert fake_aws.calls("GetAuthorizationToken") == 3


def test_throttling_past_the_attempts_is_one_line(fake_aws: FakeAws, spy: Spy) -> None:
    fake_aws.fail("AssumeRole", "throttle")
    error = failure(lambda: ecr.fetch_token(settings()), spy)
    assert "throttled" in str(error) and PULL_ROLE in str(error)
    assert fake_aws.calls("AssumeRole") == aws.NORMAL.attempts


@pytest.mark.parametrize("kind", ["server_error", "unavailable"])
def test_server_errors_are_retried(fake_aws: FakeAws, spy: Spy, kind: str) -> None:
    fake_aws.fail("AssumeRole", kind, times=1)
    ecr.fetch_token(settings())
    assert fake_aws.calls("AssumeRole") == 2


def test_a_quick_fetch_makes_one_attempt(fake_aws: FakeAws, spy: Spy) -> None:
    fake_aws.fail("GetAuthorizationToken", "server_error")
    error = failure(lambda: ecr.fetch_token(settings(), quick=True), spy)
    assert error.code == "ServerException"
    assert fake_aws.calls("GetAuthorizationToken") == 1


def test_connection_refused_is_an_endpoint_error_quickly(fake_aws: FakeAws, spy: Spy) -> None:
    fake_aws.go_down()
    started = time.monotonic()
    error = failure(lambda: ecr.fetch_token(settings()), spy)
    assert time.monotonic() - started < 10
    assert isinstance(error, EndpointError) and "AWS_ENDPOINT_URL" in str(error)


def _bounded(fetch: Callable[[], Token], fake: FakeAws, limit: float) -> tuple[float, object]:
    """Run ``fetch`` in a thread; (elapsed, outcome). Releases the fake if it overstays."""
    outcome: list[object] = []

    def target() -> None:
        try:
            outcome.append(fetch())
        except Exception as exc:  # the outcome is asserted by the caller
            outcome.append(exc)

    started = time.monotonic()
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(limit + 10)
    elapsed = time.monotonic() - started
    if thread.is_alive():
        fake.clear_faults()  # answer the hung request so the thread can end
        thread.join(10)
        pytest.fail(f"fetch still running after {elapsed:.0f}s")
    return elapsed, outcome[0]


@pytest.mark.slow
def test_a_hung_endpoint_ends_within_20_seconds(fake_aws: FakeAws, spy: Spy) -> None:
    fake_aws.fail("AssumeRole", "hang")
    elapsed, outcome = _bounded(lambda: ecr.fetch_token(settings()), fake_aws, 20)
    assert elapsed < 20
    assert isinstance(outcome, EndpointError) and "did not answer in time" in str(outcome)


@pytest.mark.slow
def test_a_hung_endpoint_on_a_quick_fetch_ends_sooner(fake_aws: FakeAws, spy: Spy) -> None:
    fake_aws.fail("GetAuthorizationToken", "hang")
    elapsed, outcome = _bounded(lambda: ecr.fetch_token(settings(()), quick=True), fake_aws, 5)
    assert elapsed < 5
    assert isinstance(outcome, EndpointError)


def test_no_credentials_at_all(
    fake_aws: FakeAws, spy: Spy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    started = time.monotonic()
    error = failure(lambda: ecr.fetch_token(settings()), spy)
    assert time.monotonic() - started < 10
    assert isinstance(error, NoCredentialsError) and "no AWS credentials" in str(error)
    assert fake_aws.counts() == {}


def test_a_missing_source_profile_is_named(fake_aws: FakeAws, spy: Spy) -> None:
    error = failure(lambda: ecr.fetch_token(settings(source_profile="no-such-profile")), spy)
    assert isinstance(error, NoCredentialsError)
    assert "'no-such-profile'" in str(error) and "source_profile" in str(error)
    assert fake_aws.counts() == {}
