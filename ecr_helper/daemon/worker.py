"""One token in the daemon: when it is due, and one refresh of it.

A token is shared by every configured registry whose settings give the same
cache key (one identity, one region: :func:`ecr_helper.cache.cache_key`), so
a worker keeps one token fresh for all of them (:class:`Target` lists them).

A :class:`Worker` owns no thread: the daemon's scheduler
(:mod:`ecr_helper.daemon.pool`) asks :meth:`Worker.is_due` and runs
:meth:`Worker.step` on one of a few fetch threads. A step re-reads the cache
first (a ``get`` or ``xecr login`` may have refreshed it already), else
fetches, and plans the next refresh at the time
:mod:`ecr_helper.daemon.schedule` gives. AWS errors never stop a worker: it
logs one line and retries with backoff (full jitter when AWS throttled or
failed on its side, :func:`ecr_helper.daemon.schedule.backoff`).

Times. A token's times are wall-clock times, so the plan is made on the wall
clock; each plan is also kept on the monotonic clock, which no NTP step or VM
restore moves. A registry is due when either time has come (a wall clock
stepped forward brings the refresh forward), and at once when the wall clock
says its token is no longer served, as after a step back that puts the
token's issue time in the future: then ``get`` would refuse it, so the
daemon replaces it whatever the plan says.

During a refresh the worker promises :class:`Liveness` to be back within the
refresh bound (the watchdog ping depends on it), and after each refresh it
reports the result (metrics, systemd status).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ecr_helper import human, log, refresh
from ecr_helper.cache.base import TokenCache
from ecr_helper.config import RegistrySettings
from ecr_helper.daemon import schedule
from ecr_helper.daemon.liveness import Liveness
from ecr_helper.errors import AwsError, XecrError
from ecr_helper.token import Token

Fetch = Callable[[RegistrySettings, bool], Token]
Wait = Callable[[threading.Event, float], bool]
Report = Callable[[str, bool], None]
Clock = Callable[[], float]

# The longest a refresh may take before the worker counts as hung: renew waits
# up to refresh.LOCK_WAIT for the cache lock, then fetches, and a fetch's own
# timeouts end it well within a minute.
REFRESH_BOUND = refresh.LOCK_WAIT + 60.0
# A wait may overrun a little (a loaded machine, the scan after it).
WAIT_MARGIN = 10.0


@dataclass(frozen=True)
class Target:
    """One token: its cache key, the settings it is fetched with (its first
    registry's) and every configured registry that shares it, in file order."""

    settings: RegistrySettings
    key: str
    hosts: tuple[str, ...] = ()

    @property
    def host(self) -> str:
        return self.settings.host

    @property
    def registries(self) -> tuple[str, ...]:
        return self.hosts or (self.settings.host,)

    @property
    def label(self) -> str:
        """The registries that share the token, ``a,b,c``: how logs, liveness,
        systemd and the metrics name it."""
        return ",".join(self.registries)


def shared(found: Mapping[str, Target]) -> dict[str, Target]:
    """The distinct tokens of ``found``'s registries, by cache key: each fetched with
    its first registry's settings, and naming every registry that shares it."""
    hosts: dict[str, list[Target]] = {}
    for target in found.values():
        hosts.setdefault(target.key, []).append(target)
    return {
        key: Target(group[0].settings, key, tuple(t.host for t in group))
        for key, group in hosts.items()
    }


@dataclass(frozen=True)
class Clocks:
    """The wall clock (token times) and the monotonic clock (waits) of the daemon."""

    wall: Clock
    monotonic: Clock


class Worker:
    """Keeps one registry's token fresh, one :meth:`step` at a time, until stopped."""

    def __init__(
        self,
        target: Target,
        store: TokenCache,
        fetch: Fetch,
        clocks: Clocks,
        rand: Callable[[], float],
        publish: Callable[[Target, Token], None],
        *,
        liveness: Liveness | None = None,
        report: Report | None = None,
        refresh_bound: float = REFRESH_BOUND,
    ) -> None:
        self.target = target
        self._store = store
        self._fetch = fetch
        self._clocks = clocks
        self._rand = rand
        self._publish = publish
        self._liveness = liveness
        self._report = report
        self._refresh_bound = refresh_bound
        self._stopping = threading.Lock()
        self.stopped = False
        self.failures = 0
        # The next refresh or retry, on both clocks: fetch every registry at once on start.
        self.due: float = clocks.wall()
        self._due_mono = clocks.monotonic()
        self._planned: Token | None = None  # the token the plan was made from
        self._lifetime: float | None = None
        self._started = False

    def stop(self) -> None:
        with self._stopping:
            self.stopped = True
            if self._liveness is not None:
                # A stopped worker may still be inside a fetch: it no longer counts.
                self._liveness.forget(self.target.label)

    def is_due(self, wall: float, mono: float) -> bool:
        """Whether to refresh now: the plan's time has come on either clock, or the
        wall clock says the token it was made from is no longer served."""
        if mono >= self._due_mono or wall >= self.due:
            return True
        # Only a plan from a token: a retry keeps its backoff, whatever the clock says.
        planned = self._planned if self.failures == 0 else None
        return planned is not None and refresh.state(planned, wall) == refresh.EXPIRED

    def remaining(self, wall: float, mono: float) -> float:
        """Seconds until the plan's time on the sooner of the two clocks."""
        return max(0.0, min(self._due_mono - mono, self.due - wall))

    def _plan(self, due: float, token: Token | None) -> None:
        wall, mono = self._clocks.wall(), self._clocks.monotonic()
        self.due, self._due_mono = due, mono + (due - wall)
        if token is not None:
            self._planned, self._lifetime = token, token.lifetime

    def _promise(self, within: float) -> None:
        with self._stopping:
            if self._liveness is not None and not self.stopped:
                self._liveness.promise(self.target.label, within)

    def _done(self) -> None:
        if self._liveness is not None:
            self._liveness.forget(self.target.label)

    def _ended(self, ok: bool) -> None:
        if self._report is not None and not self.stopped:
            try:
                self._report(self.target.label, ok)
            except Exception:  # an observer's bug must not stop the refreshes
                log.exception_debug(f"reporting the refresh of {self.target.label} failed")

    def _read(self) -> Token | None:
        try:
            return self._store.read(self.target.key)
        except XecrError:
            return None

    def step(self) -> None:
        """The refresh that is due: adopt a token someone else refreshed, else fetch one."""
        cached = self._read()
        if cached is not None and self._refreshed_elsewhere(cached):
            # Plan from their token, fetch nothing.
            self._plan(schedule.next_refresh(cached, self._rand), cached)
            self._recovered("another process refreshed it")
            if not self.stopped:
                self._publish(self.target, cached)
            return
        self._started = True
        self._promise(self._refresh_bound)
        try:
            token, reason, overloaded = self._attempt()
        finally:
            self._done()
        if token is None:
            self._failed(reason, overloaded)
            return
        self._plan(schedule.next_refresh(token, self._rand), token)
        self._recovered(f"after {human.count(self.failures, 'failed attempt')}")
        self._ended(True)
        log.info(
            f"refreshed {_name(self.target)}"
            f": valid {human.duration(token.lifetime)}, next refresh in "
            f"{human.duration(max(0.0, self.due - self._clocks.wall()))}"
        )
        if not self.stopped:
            self._publish(self.target, token)

    def _refreshed_elsewhere(self, cached: Token) -> bool:
        """Whether ``cached`` is a fresh token someone else (a ``get``, ``xecr login``)
        stored after the one the plan was made from."""
        self._lifetime = self._lifetime or cached.lifetime
        basis = self._planned.issued_at if self._planned is not None else None
        return (
            self._started
            and cached.issued_at != basis
            and refresh.state(cached, self._clocks.wall()) == refresh.FRESH
        )

    def _failed(self, reason: str, overloaded: bool) -> None:
        self.failures += 1
        now = self._clocks.wall()
        lifetime = self._lifetime
        self._plan(
            schedule.retry_at(now, self.failures, lifetime, self._rand, overloaded=overloaded), None
        )
        self._ended(False)
        log.warning(
            f"refresh of {_name(self.target)} "
            f"failed (attempt {self.failures}, next try in {human.duration(self.due - now)}): "
            f"{reason}"
        )

    def _attempt(self) -> tuple[Token | None, str, bool]:
        """A new token, or None, the one-line reason it could not be had and
        whether AWS was overloaded (throttling, 5xx)."""
        try:
            return (
                refresh.renew(
                    self.target.settings,
                    self._store,
                    self.target.key,
                    self._fetch,
                    clock=self._clocks.wall,
                ),
                "",
                False,
            )
        except XecrError as exc:
            return None, str(exc), isinstance(exc, AwsError) and exc.overloaded
        except Exception as exc:  # nothing may stop the daemon
            logging.getLogger(log.LOGGER).debug(f"refresh of {self.target.label}", exc_info=True)
            return None, f"unexpected {type(exc).__name__} (details at DEBUG in the log)", False

    def _recovered(self, how: str) -> None:
        if self.failures:
            log.info(f"{self.target.label}: token fresh again {how}")
            self.failures = 0


def _name(target: Target) -> str:
    """``HOST (registry ID)``, and the registries sharing its token when there are more."""
    name = f"{target.host} ({target.settings.subject})"
    others = [host for host in target.registries if host != target.host]
    if others:
        name += f", the token shared with {', '.join(others)}"
    return name
