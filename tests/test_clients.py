"""ecr_helper.daemon.clients against the loopback fake: the daemon's fetches share
one AWS session per source identity, and a failure or age brings a new one."""

from __future__ import annotations

from ecr_helper.config import RegistrySettings
from ecr_helper.daemon.clients import SharedSessions
from ecr_helper.errors import AwsError
from tests.fakeaws import FakeAws
from tests.helpers import PULL_ROLE

HOSTS = [f"{100000000000 + n}.dkr.ecr.us-east-1.amazonaws.com" for n in range(3)]


def settings(host: str) -> RegistrySettings:
    return RegistrySettings(host, host.split(".")[0], "us-east-1", "aws", (PULL_ROLE,))


def test_fetches_share_one_session_per_source_identity(fake_aws: FakeAws) -> None:
    shared = SharedSessions()
    tokens = [shared.fetch(settings(host), False) for host in HOSTS]
    assert [t.secret for t in tokens] == [f"{h.split('.')[0]}-auth-token" for h in HOSTS]
    assert shared.made == 1
    assert fake_aws.calls("AssumeRole") == 3
    assert fake_aws.calls("GetAuthorizationToken") == 3


def test_a_failed_fetch_or_an_old_session_brings_a_new_one(fake_aws: FakeAws) -> None:
    now = [0.0]
    shared = SharedSessions(clock=lambda: now[0], max_age=900.0)
    shared.fetch(settings(HOSTS[0]), False)
    fake_aws.fail("AssumeRole", "access_denied", times=1)
    try:
        shared.fetch(settings(HOSTS[1]), False)
    except AwsError:
        pass
    else:
        raise AssertionError("the injected AccessDenied did not fail the fetch")
    shared.fetch(settings(HOSTS[1]), False)
    assert shared.made == 2  # the files are read again after a failure
    now[0] += 899.0
    shared.fetch(settings(HOSTS[2]), False)
    assert shared.made == 2
    now[0] += 2.0
    shared.fetch(settings(HOSTS[2]), False)
    assert shared.made == 3  # and after SESSION_MAX_AGE
