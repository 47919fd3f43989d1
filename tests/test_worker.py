"""ecr_helper.daemon.worker on fake clocks: the test moves the wall and the
monotonic clock itself, so hours of the schedule run in milliseconds, every
fetch time is exact, and either clock can be stepped as NTP or a VM restore
steps the wall clock."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from ecr_helper.cache import FileCache
from ecr_helper.config import RegistrySettings
from ecr_helper.daemon import schedule
from ecr_helper.daemon.worker import Clocks, Target, Worker
from ecr_helper.errors import EndpointError
from ecr_helper.token import Token
from tests.helpers import CENTRAL, CENTRAL_HOST, PULL_ROLE, token_of

T0 = 1_800_000_000.0
M0 = 5_000.0  # the monotonic clock counts from an arbitrary origin (boot)
SETTINGS = RegistrySettings(CENTRAL_HOST, CENTRAL, "us-east-1", "aws", (PULL_ROLE,))


class FakeClocks:
    """A wall and a monotonic clock that move only when the test moves them."""

    def __init__(self) -> None:
        self.wall = T0
        self.mono = M0

    def clocks(self) -> Clocks:
        return Clocks(lambda: self.wall, lambda: self.mono)

    def sleep(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


class ScriptedFetch:
    """Fails where the script says so, else issues tokens of ``lifetime`` (stamped
    with the fake wall clock, as ECR's answer is stamped with the local clock)."""

    def __init__(self, time: FakeClocks, lifetime: float, script: list[bool] | None = None):
        self.time = time
        self.lifetime = lifetime
        self.script = list(script or [])
        self.at: list[float] = []  # monotonic time of each fetch

    def __call__(self, settings: RegistrySettings, quick: bool) -> Token:
        self.at.append(self.time.mono)
        if self.script and not self.script.pop(0):
            raise EndpointError("cannot reach AWS STS in us-east-1")
        return token_of(settings, f"secret-{len(self.at)}", self.time.wall, self.lifetime)


def make_worker(
    tmp_path: Path, fetch: ScriptedFetch, time: FakeClocks, rand: float = 0.0
) -> tuple[Worker, list[Token]]:
    published: list[Token] = []
    worker = Worker(
        Target(SETTINGS, "k" * 32),
        FileCache(str(tmp_path / "cache")),
        fetch,
        time.clocks(),
        lambda: rand,
        lambda target, token: published.append(token),
    )
    return worker, published


def run(worker: Worker, time: FakeClocks, fetch: ScriptedFetch, calls: int) -> list[float]:
    """What the scheduler does for one registry, until ``calls`` fetches were made:
    sleep until it is due (in slices of at most MAX_SLEEP), then step."""
    for _ in range(100_000):
        if len(fetch.at) >= calls:
            return fetch.at
        if worker.is_due(time.wall, time.mono):
            worker.step()
        else:
            time.sleep(schedule.sleep_for(worker.remaining(time.wall, time.mono)))
    raise AssertionError("the worker never made the fetches")


@pytest.mark.parametrize("lifetime", [43200.0, 100.0])
def test_refreshes_fall_at_half_life(tmp_path: Path, lifetime: float) -> None:
    time = FakeClocks()
    fetch = ScriptedFetch(time, lifetime)
    worker, published = make_worker(tmp_path, fetch, time)
    assert run(worker, time, fetch, 4) == [M0 + n * lifetime / 2 for n in range(4)]
    assert [t.secret for t in published] == ["secret-1", "secret-2", "secret-3", "secret-4"]


def test_jitter_moves_each_refresh_within_its_tenth_of_the_lifetime(tmp_path: Path) -> None:
    time = FakeClocks()
    fetch = ScriptedFetch(time, 100.0)
    worker, _ = make_worker(tmp_path, fetch, time, rand=0.5)
    assert run(worker, time, fetch, 3) == [M0, M0 + 55.0, M0 + 110.0]  # half-life + 5 %


def test_failures_back_off_then_the_schedule_resumes(tmp_path: Path) -> None:
    time = FakeClocks()
    fetch = ScriptedFetch(time, 100.0, [False, False, True])
    worker, _ = make_worker(tmp_path, fetch, time)
    first, second = schedule.backoff(1, None, lambda: 0.0), schedule.backoff(2, None, lambda: 0.0)
    assert run(worker, time, fetch, 4) == [
        M0,
        M0 + first,
        M0 + first + second,
        M0 + first + second + 50.0,
    ]


@pytest.mark.parametrize("step", [600.0, 3600.0])
def test_a_wall_clock_stepped_back_refreshes_at_once(tmp_path: Path, step: float) -> None:
    # NTP or a VM restore sets the wall clock back: the cached token now looks
    # issued in the future, `get` refuses it, so the daemon must replace it now,
    # not when the wall clock catches up with the old plan.
    time = FakeClocks()
    fetch = ScriptedFetch(time, 43200.0)
    worker, published = make_worker(tmp_path, fetch, time)
    run(worker, time, fetch, 1)
    time.sleep(60.0)
    assert not worker.is_due(time.wall, time.mono)
    time.wall -= step
    assert worker.is_due(time.wall, time.mono)
    worker.step()
    assert len(fetch.at) == 2
    assert published[-1].issued_at == time.wall
    # Planned from the new token, on both clocks: half-life from now.
    assert run(worker, time, fetch, 3)[2] == time.mono
    assert fetch.at[2] - fetch.at[1] == 21600.0


def test_a_small_step_back_keeps_the_plan_on_the_monotonic_clock(tmp_path: Path) -> None:
    # A step too small to make the token look bad: the refresh still comes at
    # half-life of real elapsed time, not 2 minutes later.
    time = FakeClocks()
    fetch = ScriptedFetch(time, 100.0)
    worker, _ = make_worker(tmp_path, fetch, time)
    run(worker, time, fetch, 1)
    time.wall -= 20.0
    assert run(worker, time, fetch, 2) == [M0, M0 + 50.0]


def test_a_wall_clock_stepped_forward_past_the_plan_refreshes_at_once(tmp_path: Path) -> None:
    time = FakeClocks()
    fetch = ScriptedFetch(time, 43200.0)
    worker, _ = make_worker(tmp_path, fetch, time)
    run(worker, time, fetch, 1)
    time.wall += 8 * 3600.0  # past half-life plus the largest jitter
    assert worker.is_due(time.wall, time.mono)
    worker.step()
    assert fetch.at == [M0, M0]


def test_retries_keep_their_backoff_when_the_token_has_expired(tmp_path: Path) -> None:
    # AWS down and the old token past its use: retry on the backoff, never in a loop.
    time = FakeClocks()
    fetch = ScriptedFetch(time, 100.0, [True] + [False] * 6)
    worker, _ = make_worker(tmp_path, fetch, time)
    run(worker, time, fetch, 1)
    time.sleep(95.0)
    at = run(worker, time, fetch, 6)
    gaps = [b - a for a, b in itertools.pairwise(at[1:])]
    assert all(gap >= schedule.backoff(1, 100.0, lambda: 0.0) for gap in gaps), gaps
    assert worker.failures == 5
