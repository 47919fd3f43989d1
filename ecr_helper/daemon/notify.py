"""The systemd notify protocol (``sd_notify``), with no library: each message
is one datagram of ``KEY=value`` lines sent to the Unix socket named by
``$NOTIFY_SOCKET`` (a name starting with ``@`` is in the abstract namespace).

Without ``NOTIFY_SOCKET`` (a plain shell, launchd, ``Type=simple``) every
call is a no-op, so the daemon runs the same everywhere. A send never waits:
a supervisor that stops reading fills its socket's queue (ten datagrams by
default) and a blocking send would then hold the command loop, so reloads
and stops with it. A message that does not fit is dropped; a failed or
dropped send is logged once at debug level and never raised: a supervisor's
socket must not stop the refreshes it supervises.

``$WATCHDOG_USEC`` (and ``$WATCHDOG_PID`` when set) say whether systemd
expects ``WATCHDOG=1`` from this process and how often; :func:`watchdog_interval`
turns them into the ping period, half the timeout as ``sd_watchdog_enabled(3)``
advises. *When* to ping is the refresh loop's business
(:mod:`ecr_helper.daemon.liveness`), not this module's.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

from ecr_helper import log

# Well under the datagram limit of a Unix socket; STATUS= is a summary.
_STATUS_MAX = 200


class Notifier:
    """Sends notify messages to one socket; does nothing when there is none."""

    def __init__(self, address: str | None) -> None:
        self._address: str | bytes | None = _socket_address(address) if address else None
        self._warned = False
        self._dropped = 0  # messages dropped on a full queue since the last delivery

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Notifier:
        return cls(env.get("NOTIFY_SOCKET") or None)

    @property
    def enabled(self) -> bool:
        return self._address is not None

    @property
    def congested(self) -> bool:
        """The last message was dropped because the socket's queue was full."""
        return self._dropped > 0

    def send(self, *fields: str) -> bool:
        """Send ``fields`` as one message; True when it was delivered."""
        if self._address is None or not fields:
            return False
        data = "\n".join(fields).encode("utf-8", "replace")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.setblocking(False)  # MSG_DONTWAIT, portably
                sock.sendto(data, self._address)
        except BlockingIOError:
            if not self._dropped:
                log.debug(
                    "systemd notify socket's queue is full (the supervisor is not reading); "
                    "dropping notify messages until it reads again"
                )
            self._dropped += 1
            return False
        except OSError as exc:
            if not self._warned:
                self._warned = True
                log.debug(
                    f"systemd notify socket not usable ({exc.strerror or exc}); "
                    "readiness and watchdog messages are not delivered"
                )
            return False
        if self._dropped:
            log.debug(f"systemd notify socket reads again ({self._dropped} messages dropped)")
            self._dropped = 0
        return True

    def ready(self, status: str) -> bool:
        return self.send("READY=1", status_field(status))

    def status(self, status: str) -> bool:
        return self.send(status_field(status))

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def stopping(self, status: str = "stopping") -> bool:
        return self.send("STOPPING=1", status_field(status))


def status_field(text: str) -> str:
    """``STATUS=`` with ``text`` on one bounded line (a newline would start a new field)."""
    line = " ".join(text.split())
    if len(line) > _STATUS_MAX:
        line = line[: _STATUS_MAX - 3] + "..."
    return f"STATUS={line}"


def watchdog_interval(env: Mapping[str, str], pid: int | None = None) -> float | None:
    """Seconds between ``WATCHDOG=1`` pings, or None when no watchdog watches us.

    Half of ``$WATCHDOG_USEC``; None when it is unset, not a positive number,
    or ``$WATCHDOG_PID`` names another process (the variable was inherited).
    """
    usec = env.get("WATCHDOG_USEC", "").strip()
    if not usec.isdigit() or int(usec) <= 0:
        return None
    owner = env.get("WATCHDOG_PID", "").strip()
    if owner and owner != str(os.getpid() if pid is None else pid):
        return None
    return int(usec) / 2_000_000


def _socket_address(address: str) -> str | bytes:
    if address.startswith("@"):
        # Linux abstract namespace: the name is the bytes after a leading NUL.
        return b"\0" + address[1:].encode()
    return address
