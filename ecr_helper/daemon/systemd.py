"""What the daemon tells its supervisor, and when (the protocol is
:mod:`ecr_helper.daemon.notify`):

* ``READY=1`` once every registry configured at start has had its first
  refresh, fetched or failed: units ordered after xecr start with tokens in
  the cache, and a daemon that cannot get any still comes up (and retries);
* ``STATUS=`` with :func:`ecr_helper.daemon.health.summary` whenever a
  refresh ends;
* ``WATCHDOG=1`` from the command loop's tick, gated by
  :class:`ecr_helper.daemon.liveness.Liveness`: a worker that broke its
  promise stops the pings;
* ``STOPPING=1`` when a stop begins.

Everything is sent from the command loop (:meth:`SystemdReporter.tick`),
never while holding the lock: workers only record what happened, under it.
A send never waits (:class:`~ecr_helper.daemon.notify.Notifier` drops what a
full queue cannot take), so a supervisor that stops reading can delay
neither a reload nor a stop; a dropped ``READY=1`` is sent again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence

from ecr_helper import log
from ecr_helper.daemon import health
from ecr_helper.daemon.health import RegistryView
from ecr_helper.daemon.liveness import Liveness, WatchdogPinger
from ecr_helper.daemon.notify import Notifier, watchdog_interval

# The command loop must tick several times per ping so that a ping is never late.
_TICKS_PER_PING = 4


class SystemdReporter:
    """Readiness, status and watchdog for one daemon; a no-op without ``NOTIFY_SOCKET``."""

    def __init__(
        self,
        env: Mapping[str, str],
        liveness: Liveness,
        views: Callable[[], Sequence[RegistryView]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._notifier = Notifier.from_env(env)
        interval = watchdog_interval(env) if self._notifier.enabled else None
        self._pinger = WatchdogPinger(interval, liveness, self._notifier.watchdog)
        self._views = views
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: set[str] | None = None  # hosts whose first refresh has not ended
        self._ready = False
        self._changed = False
        self._withheld: list[str] = []

    @property
    def poll(self) -> float:
        """How often the command loop should tick at most (seconds)."""
        if self._pinger.interval is None:
            return 0.5
        return min(0.5, self._pinger.interval / _TICKS_PER_PING)

    @property
    def ready(self) -> bool:
        return self._ready

    # -- observer: called by the daemon (any thread) ------------------------------------

    def track(self, hosts: Iterable[str]) -> None:
        wanted = set(hosts)
        with self._lock:
            # The first call names the round READY waits for; a reload before
            # it ends only drops registries that are gone.
            self._pending = wanted if self._pending is None else self._pending & wanted
            self._changed = True

    def refreshed(self, host: str, ok: bool) -> None:
        with self._lock:
            if self._pending is not None:
                self._pending.discard(host)
            self._changed = True

    # -- the command loop -----------------------------------------------------------------

    def tick(self) -> None:
        """Send what is due: READY and STATUS after changes, the watchdog ping."""
        with self._lock:
            changed, self._changed = self._changed, False
            round_done = self._pending is not None and not self._pending
        if self._notifier.enabled:
            self._report(changed, round_done)
        self._pinger.tick()
        if self._pinger.withheld != self._withheld:
            self._withheld = list(self._pinger.withheld)
            if self._withheld:
                log.warning(
                    f"no progress from the refresh of {', '.join(self._withheld)} within its "
                    "bound: withholding the systemd watchdog ping (systemd restarts the daemon)"
                )
            else:
                log.info("every refresh loop is making progress again")

    def _report(self, changed: bool, round_done: bool) -> None:
        owed = not self._ready and round_done
        if not (changed or owed):
            return
        line = health.summary(self._views(), self._clock())
        if owed:
            # systemd waits for READY=1: one dropped on a full queue goes again next tick.
            self._ready = self._notifier.ready(line) or not self._notifier.congested
        else:
            self._notifier.status(line)

    def stopping(self) -> None:
        self._notifier.stopping()
