"""ecr_helper.daemon.pool through the daemon, in process with an injected fetch:
many registries are refreshed by a bounded set of threads, and a wall clock
stepped under the daemon (NTP, a VM restore) brings a refresh within seconds."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ecr_helper import refresh
from ecr_helper.config import RegistrySettings
from ecr_helper.daemon import health, loop, pool, schedule
from ecr_helper.token import Token
from tests.helpers import PULL_ROLE, serve_daemon, stop_daemon, token_of, wait_for


def hosts(count: int) -> list[str]:
    return [f"{100000000000 + n}.dkr.ecr.us-east-1.amazonaws.com" for n in range(count)]


def registries(names: list[str], shared: bool = False) -> str:
    """Each registry behind its own role (a token each), or all behind PULL_ROLE
    (``shared``: one token for all, one identity and region)."""
    return "".join(
        f'[registries."{h}"]\nrole_arn = "{PULL_ROLE if shared else role(h)}"\n' for h in names
    )


def role(host: str) -> str:
    return f"arn:aws:iam::{host.split('.')[0]}:role/ecr-pull"


class Fetch:
    """Tokens of ``lifetime`` stamped with ``clock``; records each call's thread."""

    def __init__(self, clock: Callable[[], float], lifetime: float = 43200.0, pause: float = 0.0):
        self.clock = clock
        self.lifetime = lifetime
        self.pause = pause
        self.lock = threading.Lock()
        self.calls: list[tuple[str, str]] = []
        self.busy = 0
        self.most_busy = 0

    def __call__(self, settings: RegistrySettings, quick: bool) -> Token:
        with self.lock:
            self.calls.append((settings.host, threading.current_thread().name))
            self.busy += 1
            self.most_busy = max(self.most_busy, self.busy)
        time.sleep(self.pause)  # a fetch takes a while: many are in flight at once
        with self.lock:
            self.busy -= 1
        return token_of(settings, f"secret-{len(self.calls)}", self.clock(), self.lifetime)

    def count(self) -> int:
        with self.lock:
            return len(self.calls)


def test_sixty_registries_are_fetched_by_a_bounded_set_of_threads(
    write_config: Callable[[str], Path],
) -> None:
    names = hosts(60)
    write_config(registries(names))
    fetch = Fetch(time.time, pause=0.02)
    before = threading.active_count()
    most = [0]
    d = loop.Daemon(dict(os.environ), fetch=fetch)
    commands, thread = serve_daemon(d)
    try:

        def all_fetched() -> bool:
            most[0] = max(most[0], threading.active_count() - before)
            return fetch.count() >= 60

        wait_for(all_fetched, 30, "every registry's first fetch")
        wait_for(lambda: health.healthz(d.views(), time.time()) == (200, "ok\n"), 5, "/healthz 200")
    finally:
        stop_daemon(commands, thread)
    assert sorted(h for h, _ in fetch.calls) == sorted(names)  # each once
    assert len({name for _, name in fetch.calls}) <= pool.FETCH_THREADS
    assert fetch.most_busy <= pool.FETCH_THREADS
    # The daemon's own thread, the scheduler and the fetch threads.
    assert most[0] <= pool.FETCH_THREADS + 2, most[0]


def test_registries_sharing_a_token_are_refreshed_once_per_cycle(
    write_config: Callable[[str], Path],
) -> None:
    """Issue 22: one identity and region, one token: one fetch per cycle for all."""
    names = hosts(3)
    write_config(registries(names, shared=True) + registries(hosts(5)[3:]))
    fetch = Fetch(time.time, lifetime=8.0)
    d = loop.Daemon(dict(os.environ), fetch=fetch)
    commands, thread = serve_daemon(d)
    try:
        wait_for(lambda: fetch.count() >= 3, 10, "the first tokens")
        wait_for(lambda: health.healthz(d.views(), time.time()) == (200, "ok\n"), 5, "200")
        tokens = {v.host: v.token for v in d.views()}
        assert tokens[names[0]] == tokens[names[1]] == tokens[names[2]]
        # Refreshed at half-life plus jitter (4-4.8 s): a second cycle for everyone.
        wait_for(lambda: fetch.count() >= 6, 10, "a second refresh of each token")
        time.sleep(0.2)
    finally:
        stop_daemon(commands, thread)
    fetched = [host for host, _ in fetch.calls]
    # The shared token is fetched with its first registry's settings, once per cycle.
    assert fetched.count(names[0]) == 2, fetched
    assert not {names[1], names[2]} & set(fetched)
    assert fetched.count(hosts(5)[3]) == fetched.count(hosts(5)[4]) == 2


class SteppedClock:
    """The wall clock of a machine whose clock is stepped: real time plus an offset."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.mark.parametrize("step", [-600.0, -3600.0, 8 * 3600.0], ids=["-10min", "-1h", "+8h"])
def test_a_stepped_wall_clock_brings_a_refresh_within_seconds(
    write_config: Callable[[str], Path], step: float
) -> None:
    names = hosts(3)
    write_config(registries(names))
    wall = SteppedClock()
    fetch = Fetch(wall)
    d = loop.Daemon(dict(os.environ), fetch=fetch, clock=wall)
    commands, thread = serve_daemon(d)
    try:
        wait_for(lambda: fetch.count() == 3, 10, "the first tokens")
        time.sleep(0.2)
        assert fetch.count() == 3
        before = [v.token for v in d.views()]
        wall.offset = step
        # On the stepped clock these tokens are no longer fresh: a step back makes
        # them look issued in the future (`get` refuses them), 8 h on is past half-life.
        assert all(refresh.state(token, wall()) != refresh.FRESH for token in before)
        wait_for(lambda: fetch.count() == 6, schedule.MAX_SLEEP + 5, "a refresh after the step")
        wait_for(
            lambda: health.healthz(d.views(), wall()) == (200, "ok\n"), 5, "/healthz to be 200"
        )
        assert all(refresh.state(v.token, wall()) == refresh.FRESH for v in d.views())
    finally:
        stop_daemon(commands, thread)
