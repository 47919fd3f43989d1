"""Reading one request from stdin, bounded in size and in time.

Docker writes the registry address and closes stdin; the kubelet writes one
JSON object. Neither may hang xecr: a caller that writes nothing (``sleep 100
| docker-credential-xecr get``), or writes a request and keeps stdin open,
gets an answer or one error line within :data:`FIRST_BYTE_WAIT` or
:data:`EOF_WAIT`. A request counts as whole when ``complete(data)`` says so;
after that xecr waits ``grace`` seconds for more, then stops reading.
"""

from __future__ import annotations

import time

from ecr_helper.errors import InputError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import BinaryIO

FIRST_BYTE_WAIT = 10.0
EOF_WAIT = 10.0


def read(
    stdin: BinaryIO | None,
    limit: int,
    complete: Callable[[bytes], bool],
    grace: float,
    what: str,
) -> bytes:
    """At most ``limit + 1`` bytes from ``stdin`` (so the caller can tell it was too long).

    ``what`` names the expected request in the error lines ("a registry host").
    A closed or missing stdin reads as empty.
    """
    if stdin is None:
        return b""
    try:
        fd = stdin.fileno()
    except (OSError, ValueError):  # an in-memory stream, or a closed one
        try:
            return stdin.read(limit + 1)
        except (OSError, ValueError):
            return b""
    return _read_fd(fd, limit, complete, grace, what)


def _read_fd(
    fd: int, limit: int, complete: Callable[[bytes], bool], grace: float, what: str
) -> bytes:
    import os

    data = b""
    deadline = time.monotonic() + FIRST_BYTE_WAIT
    whole = False
    # Docker has usually written and closed stdin by the time xecr reads it:
    # read without waiting first, so `select` is imported only when a wait is due.
    try:
        blocking: bool | None = os.get_blocking(fd)
        os.set_blocking(fd, False)
    except OSError:
        blocking = None
    try:
        while len(data) <= limit:
            try:
                chunk = os.read(fd, limit + 1 - len(data))
            except BlockingIOError:
                if _wait_readable(fd, deadline - time.monotonic()):
                    continue
                if whole:
                    break
                if not data:
                    raise InputError(
                        f"nothing arrived on stdin within {FIRST_BYTE_WAIT:.0f} s; expected {what}"
                    ) from None
                raise InputError(
                    f"stdin was not closed within {EOF_WAIT:.0f} s; expected {what}"
                ) from None
            except OSError:
                break  # a closed or unreadable stdin ends the request
            if not chunk:
                break
            data += chunk
            whole = complete(data)
            deadline = time.monotonic() + (grace if whole else EOF_WAIT)
    finally:
        if blocking is not None:
            try:
                os.set_blocking(fd, blocking)  # stdin's file may be shared with our parent
            except OSError:
                pass
    return data


def _wait_readable(fd: int, seconds: float) -> bool:
    """Whether ``fd`` became readable within ``seconds``."""
    import select

    if seconds <= 0:
        return False
    try:
        ready, _, _ = select.select([fd], [], [], seconds)
    except (OSError, ValueError):
        # Not selectable: poll by reading again shortly, still within the deadline.
        time.sleep(min(0.05, seconds))
        return True
    return bool(ready)
