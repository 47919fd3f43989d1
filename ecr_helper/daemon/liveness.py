"""Whether the refresh loops are alive: what gates systemd's watchdog ping.

Each loop (the daemon's command loop, one worker per registry) promises to
come back by a deadline before it waits or calls AWS: a sleep promises its
own length plus a margin, a refresh its bound (lock wait plus the fetch's
deadline). The ping goes out only while no promise is broken, so a loop stuck
in a fetch, a lock or a deadlock stops the pings and systemd restarts the
daemon, whereas a side thread pinging on a timer would keep a hung daemon
"healthy" for ever.

Times are monotonic: the watchdog measures elapsed time, and a wall-clock
step must neither fake a hang nor hide one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Liveness:
    """The deadlines by which each named loop has promised to show progress."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._deadlines: dict[str, float] = {}
        self._lock = threading.Lock()

    def promise(self, name: str, within: float) -> None:
        """``name`` will be back within ``within`` seconds (replacing its last promise)."""
        deadline = self._clock() + max(0.0, within)
        with self._lock:
            self._deadlines[name] = deadline

    def forget(self, name: str) -> None:
        """``name`` has ended on purpose (a registry removed by a reload)."""
        with self._lock:
            self._deadlines.pop(name, None)

    def overdue(self) -> list[str]:
        """The loops whose promise has passed, in name order."""
        now = self._clock()
        with self._lock:
            return sorted(name for name, deadline in self._deadlines.items() if now > deadline)


class WatchdogPinger:
    """Decides when the command loop sends ``WATCHDOG=1``: every ``interval``
    seconds, and only while :class:`Liveness` finds no loop overdue."""

    def __init__(
        self,
        interval: float | None,
        liveness: Liveness,
        ping: Callable[[], object],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = interval
        self._liveness = liveness
        self._ping = ping
        self._clock = clock
        self._last: float | None = None
        self.withheld: list[str] = []

    def tick(self) -> bool:
        """Ping if one is due and every loop is alive; True when it pinged."""
        if self.interval is None:
            return False
        now = self._clock()
        if self._last is not None and now - self._last < self.interval:
            return False
        self.withheld = self._liveness.overdue()
        if self.withheld:
            return False
        self._ping()
        self._last = now
        return True
