"""One connection to the daemon's listener (:mod:`ecr_helper.daemon.http`) on a
non-blocking socket: the request head read within its byte and field limits,
the answer, then a short linger so that the client reads the answer before
the close (closing with unread input would reset the connection and lose it).

Nothing here waits or keeps more than the limits allow: the listener's
selector says when the socket can be read or written, and the listener
closes the exchange at its deadline. One request per connection
(``Connection: close``); a request body is never read, only drained while
lingering. Only ``GET`` and ``HEAD`` are served.
"""

from __future__ import annotations

import selectors
import socket
from collections.abc import Callable, Mapping
from http import HTTPStatus

from ecr_helper import log

# (status, content type, body)
Page = tuple[int, str, bytes]
Route = Callable[[], Page]

READING, WRITING, LINGERING, DONE = "reading", "writing", "lingering", "done"
TEXT = "text/plain; charset=utf-8"
# How long an answered client may keep sending before the close: enough for
# it to read the answer, not enough to hold a connection.
LINGER = 2.0
_CHUNK = 4096
_METHOD_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ")


# (method, path): the target without its query
Request = tuple[str, str]


def parse_head(head: bytes, max_fields: int) -> Request | int:
    """The request in a complete head (without its blank line), or the status refusing it."""
    line, *rest = head.split(b"\n")
    fields = [field.rstrip(b"\r") for field in rest]
    if len(fields) > max_fields:
        return 431
    parts = line.rstrip(b"\r").split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
        return 400
    method, target, _ = parts
    if not method or not set(method) <= _METHOD_CHARS or not _is_target(target):
        return 400
    # A field needs a name; a line starting with white space folds into the last (obsolete).
    if any(b":" not in field or field[:1] in (b" ", b"\t") for field in fields):
        return 400
    return method.decode(), target.decode().partition("?")[0]


def _is_target(target: bytes) -> bool:
    return target.startswith(b"/") and all(0x21 <= byte <= 0x7E for byte in target)


def _end_of_head(buffer: bytearray) -> int | None:
    """Where the head's blank line starts (the line end before it excluded), if it came."""
    ends = [at for at in (buffer.find(b"\n\r\n"), buffer.find(b"\n\n")) if at >= 0]
    return min(ends) if ends else None


def render(page: Page, head_only: bool = False, extra: tuple[str, ...] = ()) -> bytes:
    status, content_type, body = page
    lines = [
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
        "Server: xecr",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
        "Cache-Control: no-store",
        "Connection: close",
        *extra,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if head_only else body)


def _refusal(status: int) -> Page:
    return status, TEXT, f"{status} {HTTPStatus(status).phrase}\n".encode()


class Exchange:
    """One accepted connection: :meth:`on_read` and :meth:`on_write` as the selector
    says, until :attr:`state` is ``DONE`` (then the listener closes :attr:`sock`)."""

    def __init__(
        self,
        sock: socket.socket,
        peer: str,
        routes: Mapping[str, Route],
        deadline: float,
        head_bytes: int,
        max_fields: int,
    ) -> None:
        self.sock = sock
        self.peer = peer
        self.deadline = deadline
        self.state = READING
        self._routes = routes
        self._head_bytes = head_bytes
        self._max_fields = max_fields
        self._buffer = bytearray()
        self._out = b""

    @property
    def events(self) -> int:
        return selectors.EVENT_WRITE if self.state == WRITING else selectors.EVENT_READ

    def on_read(self, now: float) -> None:
        try:
            data = self.sock.recv(_CHUNK if self.state == READING else 65536)
        except BlockingIOError:
            return
        except OSError:
            self.state = DONE
            return
        if not data:
            self.state = DONE
        elif self.state == READING:
            self._buffer += data
            self._advance(now)
        # LINGERING: what a client still sends is dropped unread.

    def on_write(self, now: float) -> None:
        try:
            sent = self.sock.send(self._out)
        except BlockingIOError:
            return
        except OSError:
            self.state = DONE
            return
        self._out = self._out[sent:]
        if not self._out:
            self._linger(now)

    def _advance(self, now: float) -> None:
        buffer = self._buffer
        end = _end_of_head(buffer)
        if end is not None and end <= self._head_bytes:
            self._answer(parse_head(bytes(buffer[:end]), self._max_fields), now)
        elif end is not None or len(buffer) > self._head_bytes:
            line_end = buffer.find(b"\n")
            self._answer(414 if not 0 <= line_end <= self._head_bytes else 431, now)

    def _answer(self, parsed: Request | int, now: float) -> None:
        self._buffer = bytearray()
        if isinstance(parsed, int):
            log.debug(f"listener: {self.peer} refused ({parsed})")
            self._reply(render(_refusal(parsed)), now)
            return
        method, path = parsed
        extra: tuple[str, ...] = ()
        if method not in ("GET", "HEAD"):
            page, extra = _refusal(405), ("Allow: GET, HEAD",)
        else:
            page = self._page(path)
        log.debug(f"listener: {self.peer} {method} {path} {page[0]}")
        self._reply(render(page, method == "HEAD", extra), now)

    def _page(self, path: str) -> Page:
        route = self._routes.get(path)
        if route is None:
            return 404, TEXT, b"not found: try /metrics or /healthz\n"
        try:
            return route()
        except Exception as exc:  # a bad page must not stop the listener
            log.exception_debug(f"{path} failed: {type(exc).__name__}")
            return 500, TEXT, b"internal error (details at DEBUG in the log)\n"

    def _reply(self, data: bytes, now: float) -> None:
        self._out = data
        self.state = WRITING
        self.on_write(now)  # a small answer usually fits the socket's buffer at once

    def _linger(self, now: float) -> None:
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self.state = DONE
            return
        self.state = LINGERING
        self.deadline = min(self.deadline, now + LINGER)
