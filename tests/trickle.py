"""A loopback listener that answers every request one byte at a time, slowly.

Each byte of an endless HTTP response arrives ``interval`` seconds after the
one before, so no single read ever waits long enough to trip botocore's read
timeout, yet no call ever finishes: the slow-drip endpoint that only a
wall-clock deadline on the whole fetch can bound. Bound to 127.0.0.1 only.
"""

from __future__ import annotations

import socket
import threading
from types import TracebackType

_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 1000000\r\n\r\n<"


class Trickle:
    """``with Trickle(3.0) as t: ... t.url``: connections seen in ``t.connections``."""

    def __init__(self, interval: float = 3.0) -> None:
        self.interval = interval
        self.connections = 0
        self._stop = threading.Event()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self._sock.settimeout(0.2)
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def __enter__(self) -> Trickle:
        accept = threading.Thread(target=self._accept, daemon=True)
        accept.start()
        self._threads.append(accept)
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._sock.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            thread = threading.Thread(target=self._drip, args=(conn,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _drip(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(0.5)
            try:
                conn.recv(65536)  # the request (headers, maybe body): enough to answer
            except OSError:
                pass
            body = _RESPONSE
            sent = 0
            while not self._stop.wait(self.interval if sent else 0.0):
                byte = body[sent : sent + 1] if sent < len(body) else b" "
                try:
                    conn.sendall(byte)
                except OSError:
                    return
                sent += 1
