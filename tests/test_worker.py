"""ecr_helper.daemon.worker on a fake clock: the wait is injected, so hours of the
schedule run in milliseconds and every fetch time is exact."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from ecr_helper.cache import FileCache
from ecr_helper.config import RegistrySettings
from ecr_helper.daemon import schedule
from ecr_helper.daemon.worker import Target, Worker
from ecr_helper.errors import EndpointError
from ecr_helper.token import Token
from tests.helpers import CENTRAL, CENTRAL_HOST, PULL_ROLE, token_of

T0 = 1_800_000_000.0
SETTINGS = RegistrySettings(CENTRAL_HOST, CENTRAL, "us-east-1", "aws", (PULL_ROLE,))


class FakeTime:
    """The clock and the wait of one worker: waiting moves the clock, never sleeps."""

    def __init__(self, now: float) -> None:
        self.now = now
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now

    def wait(self, stop: threading.Event, seconds: float) -> bool:
        self.waits.append(seconds)
        self.now += seconds
        return stop.is_set()


class ScriptedFetch:
    """Fails where the script says so, else issues tokens of ``lifetime``; stops the
    worker after ``stop_after`` calls."""

    def __init__(self, time: FakeTime, lifetime: float, script: list[bool], stop_after: int):
        self.time = time
        self.lifetime = lifetime
        self.script = script
        self.stop_after = stop_after
        self.at: list[float] = []
        self.worker: Worker | None = None

    def __call__(self, settings: RegistrySettings, quick: bool) -> Token:
        self.at.append(self.time.now)
        if len(self.at) >= self.stop_after and self.worker is not None:
            self.worker.stop()
        if self.script and not self.script.pop(0):
            raise EndpointError("cannot reach AWS STS in us-east-1")
        return token_of(settings, f"secret-{len(self.at)}", self.time.now, self.lifetime)


def run_worker(
    tmp_path: Path, fetch: ScriptedFetch, time: FakeTime, rand: float = 0.0
) -> list[Token]:
    published: list[Token] = []
    worker = Worker(
        Target(SETTINGS, "k" * 32),
        FileCache(str(tmp_path / "cache")),
        fetch,
        time.clock,
        lambda: rand,
        lambda target, token: published.append(token),
        time.wait,
    )
    fetch.worker = worker
    worker.start()
    worker.thread.join(10)
    assert not worker.thread.is_alive(), "the worker did not stop on the fake clock"
    return published


@pytest.mark.parametrize("lifetime", [43200.0, 100.0])
def test_refreshes_fall_at_half_life_on_the_injected_clock(tmp_path: Path, lifetime: float) -> None:
    time = FakeTime(T0)
    fetch = ScriptedFetch(time, lifetime, [], stop_after=4)
    published = run_worker(tmp_path, fetch, time)
    assert fetch.at == [T0 + n * lifetime / 2 for n in range(4)]
    assert [t.secret for t in published] == ["secret-1", "secret-2", "secret-3", "secret-4"]
    # 12 hours of schedule, slept in bounded slices, none of them real.
    assert max(time.waits) <= schedule.MAX_SLEEP


def test_jitter_moves_each_refresh_within_its_tenth_of_the_lifetime(tmp_path: Path) -> None:
    time = FakeTime(T0)
    fetch = ScriptedFetch(time, 100.0, [], stop_after=3)
    run_worker(tmp_path, fetch, time, rand=0.5)
    assert fetch.at == [T0, T0 + 55.0, T0 + 110.0]  # half-life plus 5 % of 100 s


def test_failures_back_off_then_the_schedule_resumes(tmp_path: Path) -> None:
    time = FakeTime(T0)
    fetch = ScriptedFetch(time, 100.0, [False, False, True], stop_after=4)
    run_worker(tmp_path, fetch, time)
    first, second = schedule.backoff(1, None, lambda: 0.0), schedule.backoff(2, None, lambda: 0.0)
    assert fetch.at == [T0, T0 + first, T0 + first + second, T0 + first + second + 50.0]
