"""One registry's worker in the daemon: keeps that registry's token fresh.

It fetches at start, then refreshes at the time :mod:`ecr_helper.daemon.schedule`
gives, re-reading the cache first (a ``get`` or ``xecr login`` may have
refreshed it already). AWS errors never stop a worker: it logs one line and
retries with backoff. Workers are daemon threads so that a stop is never held
up by a fetch in flight (writes are atomic).

The clock, the random source and the wait are parameters, so the schedule's
tests run on a fake clock: ``wait(stop, seconds)`` sleeps until ``stop`` is
set or the time has passed and says whether ``stop`` is set.
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
from ecr_helper.errors import XecrError
from ecr_helper.token import Token

Fetch = Callable[[RegistrySettings, bool], Token]
Wait = Callable[[threading.Event, float], bool]


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
    ) -> None:
        self.target = target
        self._store = store
        self._fetch = fetch
        self._clock = clock
        self._rand = rand
        self._publish = publish
        self._stop = threading.Event()
        self._wait: Wait = wait or _event_wait
        self.failures = 0
        self.thread = threading.Thread(target=self._run, name=f"xecr-{target.host}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()

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
            if now < due:
                self._wait(self._stop, schedule.sleep_for(due, now))
                continue
            started = True
            token, reason = self._attempt()
            if token is None:
                self.failures += 1
                now = self._clock()
                due = schedule.retry_at(now, self.failures, lifetime, self._rand)
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
            self._recovered(
                f"after {self.failures} failed attempt" + ("s" if self.failures > 1 else "")
            )
            log.info(
                f"refreshed {self.target.host} ({self.target.settings.subject})"
                f": valid {token.lifetime:.0f}s, next refresh in "
                f"{max(0.0, due - self._clock()):.0f}s"
            )
            self._publish(self.target, token)

    def _attempt(self) -> tuple[Token | None, str]:
        """A new token, or None and the one-line reason it could not be had."""
        try:
            return refresh.renew(
                self.target.settings, self._store, self.target.key, self._fetch
            ), ""
        except XecrError as exc:
            return None, str(exc)
        except Exception as exc:  # nothing may stop the daemon
            logging.getLogger(log.LOGGER).debug(f"refresh of {self.target.host}", exc_info=True)
            return None, f"unexpected {type(exc).__name__} (details at DEBUG in the log)"

    def _recovered(self, how: str) -> None:
        if self.failures:
            log.info(f"{self.target.host}: token fresh again {how}")
            self.failures = 0
