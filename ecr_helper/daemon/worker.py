"""One registry's worker in the daemon: keeps that registry's token fresh.

It fetches at start, then refreshes at the time :mod:`ecr_helper.daemon.schedule`
gives, re-reading the cache first (a ``get`` or ``xecr login`` may have
refreshed it already). AWS errors never stop a worker: it logs one line and
retries with backoff. Workers are daemon threads so that a stop is never held
up by a fetch in flight (writes are atomic).

The clock, the random source and the wait are parameters, so the schedule's
tests run on a fake clock: ``wait(stop, seconds)`` sleeps until ``stop`` is
set or the time has passed and says whether ``stop`` is set.

Before each wait and each refresh the worker promises :class:`Liveness` when
it will be back (the watchdog ping depends on it), and after each refresh it
reports the result (metrics, systemd status). A throttled or 5xx refresh is
retried with full jitter (:func:`ecr_helper.daemon.schedule.backoff`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from ecr_helper import log, refresh
from ecr_helper.cache.base import TokenCache
from ecr_helper.config import RegistrySettings
from ecr_helper.daemon import schedule
from ecr_helper.daemon.liveness import Liveness
from ecr_helper.errors import AwsError, XecrError
from ecr_helper.token import Token

Fetch = Callable[[RegistrySettings, bool], Token]
Wait = Callable[[threading.Event, float], bool]
Report = Callable[[str, bool], None]

# The longest a refresh may take before the worker counts as hung: renew waits
# up to refresh.LOCK_WAIT for the cache lock, then fetches, and a fetch's own
# timeouts end it well within a minute.
REFRESH_BOUND = refresh.LOCK_WAIT + 60.0
# A wait may overrun a little (a loaded machine, the cache read after it).
WAIT_MARGIN = 10.0


@dataclass(frozen=True)
class Target:
    """One configured registry: its settings and its cache key."""

    settings: RegistrySettings
    key: str

    @property
    def host(self) -> str:
        return self.settings.host


def _event_wait(stop: threading.Event, seconds: float) -> bool:
    return stop.wait(seconds)


class Worker:
    """Keeps one registry's token fresh until stopped."""

    def __init__(
        self,
        target: Target,
        store: TokenCache,
        fetch: Fetch,
        clock: Callable[[], float],
        rand: Callable[[], float],
        publish: Callable[[Target, Token], None],
        wait: Wait | None = None,
        *,
        liveness: Liveness | None = None,
        report: Report | None = None,
        refresh_bound: float = REFRESH_BOUND,
    ) -> None:
        self.target = target
        self._store = store
        self._fetch = fetch
        self._clock = clock
        self._rand = rand
        self._publish = publish
        self._stop = threading.Event()
        self._wait: Wait = wait or _event_wait
        self._liveness = liveness
        self._report = report
        self._refresh_bound = refresh_bound
        self._stopping = threading.Lock()
        self.failures = 0
        self.due: float | None = None  # when the next refresh or retry is planned
        self.thread = threading.Thread(target=self._run, name=f"xecr-{target.host}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        with self._stopping:
            self._stop.set()
            if self._liveness is not None:
                # A stopped worker may still be inside a fetch: it no longer counts.
                self._liveness.forget(self.target.host)

    def _promise(self, within: float) -> None:
        with self._stopping:
            if self._liveness is not None and not self._stop.is_set():
                self._liveness.promise(self.target.host, within)

    def _ended(self, ok: bool) -> None:
        if self._report is not None:
            try:
                self._report(self.target.host, ok)
            except Exception:  # an observer's bug must not stop the refreshes
                log.exception_debug(f"reporting the refresh of {self.target.host} failed")

    def _read(self) -> Token | None:
        try:
            return self._store.read(self.target.key)
        except XecrError:
            return None

    def _run(self) -> None:
        due = self._clock()  # fetch every registry at once on start
        basis: float | None = None  # issued_at of the token `due` was planned from
        lifetime: float | None = None
        started = False
        while not self._stop.is_set():
            now = self._clock()
            cached = self._read()
            if cached is not None:
                lifetime = lifetime or cached.lifetime
                if (
                    started
                    and cached.issued_at != basis
                    and refresh.state(cached, now) == refresh.FRESH
                ):
                    # Someone else refreshed it: plan from their token, fetch nothing.
                    due, basis, lifetime = (
                        schedule.next_refresh(cached, self._rand),
                        cached.issued_at,
                        cached.lifetime,
                    )
                    self._recovered("another process refreshed it")
                    self._publish(self.target, cached)
            self.due = due
            if now < due:
                pause = schedule.sleep_for(due, now)
                self._promise(pause + WAIT_MARGIN)
                self._wait(self._stop, pause)
                continue
            started = True
            self._promise(self._refresh_bound)
            token, reason, overloaded = self._attempt()
            if token is None:
                self.failures += 1
                now = self._clock()
                due = schedule.retry_at(
                    now, self.failures, lifetime, self._rand, overloaded=overloaded
                )
                self.due = due
                self._ended(False)
                settings = self.target.settings
                log.warning(
                    f"refresh of {settings.host} ({settings.subject}) "
                    f"failed (attempt {self.failures}, next try in {due - now:.1f}s): "
                    f"{reason}"
                )
                continue
            due, basis, lifetime = (
                schedule.next_refresh(token, self._rand),
                token.issued_at,
                token.lifetime,
            )
            self.due = due
            self._recovered(
                f"after {self.failures} failed attempt" + ("s" if self.failures > 1 else "")
            )
            self._ended(True)
            log.info(
                f"refreshed {self.target.host} ({self.target.settings.subject})"
                f": valid {token.lifetime:.0f}s, next refresh in "
                f"{max(0.0, due - self._clock()):.0f}s"
            )
            self._publish(self.target, token)

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
                    clock=self._clock,
                ),
                "",
                False,
            )
        except XecrError as exc:
            return None, str(exc), isinstance(exc, AwsError) and exc.overloaded
        except Exception as exc:  # nothing may stop the daemon
            logging.getLogger(log.LOGGER).debug(f"refresh of {self.target.host}", exc_info=True)
            return None, f"unexpected {type(exc).__name__} (details at DEBUG in the log)", False

    def _recovered(self, how: str) -> None:
        if self.failures:
            log.info(f"{self.target.host}: token fresh again {how}")
            self.failures = 0
