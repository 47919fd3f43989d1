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
    import select

    data = b""
    deadline = time.monotonic() + FIRST_BYTE_WAIT
    whole = False
    while len(data) <= limit:
        remaining = deadline - time.monotonic()
        try:
            ready, _, _ = select.select([fd], [], [], max(0.0, remaining))
        except (OSError, ValueError):
            ready = [fd]  # not selectable (a closed fd): let read() tell
        if not ready:
            if whole:
                break
            if not data:
                raise InputError(
                    f"nothing arrived on stdin within {FIRST_BYTE_WAIT:.0f} s; expected {what}"
                )
            raise InputError(f"stdin was not closed within {EOF_WAIT:.0f} s; expected {what}")
        try:
            chunk = os.read(fd, limit + 1 - len(data))
        except BlockingIOError:
            continue
        except OSError:
            break  # a closed or unreadable stdin ends the request
        if not chunk:
            break
        data += chunk
        whole = complete(data)
        deadline = time.monotonic() + (grace if whole else EOF_WAIT)
    return data
