"""ecr_helper.daemon.clients against the loopback fake: the daemon's fetches share
one AWS session per source identity, a failure or age brings a new one, and
fetches abandoned at their deadline bound how many more may start."""

from __future__ import annotations

import pytest

from ecr_helper import deadline
from ecr_helper.config import RegistrySettings
from ecr_helper.daemon import clients
from ecr_helper.daemon.clients import SharedSessions
from ecr_helper.errors import AwsError, EndpointError
from tests.fakeaws import FakeAws
from tests.helpers import PASSWORD, PULL_ROLE, wait_for

HOSTS = [f"{100000000000 + n}.dkr.ecr.us-east-1.amazonaws.com" for n in range(3)]


def settings(host: str) -> RegistrySettings:
    return RegistrySettings(host, host.split(".")[0], "us-east-1", "aws", (PULL_ROLE,))


def test_fetches_share_one_session_per_source_identity(fake_aws: FakeAws) -> None:
    shared = SharedSessions()
    tokens = [shared.fetch(settings(host), False) for host in HOSTS]
    assert [t.secret for t in tokens] == [PASSWORD] * 3  # the caller's token, as ECR answers
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


def test_fetches_wait_for_abandoned_ones_so_threads_stay_bounded(
    fake_aws: FakeAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An endpoint that never answers: each fetch is abandoned at its deadline and
    # its thread lives on until botocore gives up. Past MAX_LIVE, fetches fail
    # fast with one line instead of starting yet another thread.
    base = deadline.live()
    monkeypatch.setattr(clients, "MAX_LIVE", base + 2)
    monkeypatch.setattr(clients, "LIVE_WAIT", 0.5)
    monkeypatch.setattr(deadline, "FETCH_DEADLINE", 0.3)
    fake_aws.fail("AssumeRole", "hang")
    shared = SharedSessions()
    errors = []
    for host in HOSTS * 2:
        with pytest.raises(EndpointError) as caught:
            shared.fetch(settings(host), False)
        errors.append(str(caught.value))
        assert deadline.live() <= base + 2
    assert fake_aws.calls("AssumeRole") == 2
    assert "did not finish within" in errors[0]
    assert errors[-1].startswith(f"{base + 2} earlier AWS calls have not ended")
    assert all("\n" not in line for line in errors)
    fake_aws.clear_faults()
    wait_for(lambda: deadline.live() == base, 20, "the abandoned fetches to end")
    assert shared.fetch(settings(HOSTS[0]), False).secret == PASSWORD
