"""The daemon's HTTP listener (``xecr daemon --listen HOST:PORT``): ``GET /metrics``
and ``GET /healthz``, on loopback unless the address names another interface.

A standard-library threaded server on a daemon thread: each connection has
its own thread and a read timeout, so a slow or idle scraper can hold up
neither the other scrapers nor the refreshes. :func:`routes` maps the two
paths to their pages (the metrics are rendered elsewhere, ``/healthz`` is
:func:`ecr_helper.daemon.health.healthz`). Requests are logged at debug
level, never at info (a scrape every 15 s would bury the refresh lines).
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ecr_helper import log
from ecr_helper.daemon import health
from ecr_helper.daemon.health import RegistryView
from ecr_helper.errors import UsageError, XecrError

# (status, content type, body)
Page = tuple[int, str, bytes]
Route = Callable[[], Page]

LOOPBACK = "127.0.0.1"
DEFAULT_PORT = 9464  # only the example in messages and docs; --listen has no default
_READ_TIMEOUT = 10.0
_TEXT = "text/plain; charset=utf-8"


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT``, ``:PORT`` or ``PORT`` (loopback), ``[V6]:PORT`` -> (host, port)."""
    value = text.strip()
    if value.isdigit():
        host, port = "", value
    elif value.startswith("["):
        host, sep, port = value[1:].partition("]:")
        if not sep:
            raise UsageError(f"--listen {text!r}: write an IPv6 address as [ADDRESS]:PORT")
    else:
        host, sep, port = value.rpartition(":")
        if not sep or ":" in host:
            raise UsageError(
                f"--listen {text!r}: expected HOST:PORT (e.g. 127.0.0.1:{DEFAULT_PORT})"
            )
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(f"--listen {text!r}: the port must be a number from 0 to 65535")
    if any(c.isspace() or c in "/?#@" for c in host):
        raise UsageError(f"--listen {text!r}: {host!r} is not a host name or address")
    return host or LOOPBACK, int(port)


def routes(
    views: Callable[[], Sequence[RegistryView]],
    metrics: Route,
    clock: Callable[[], float] = time.time,
) -> dict[str, Route]:
    """The daemon's pages: ``/metrics`` as given, ``/healthz`` from the snapshot."""

    def healthz() -> Page:
        status, body = health.healthz(views(), clock())
        return status, _TEXT, body.encode()

    return {"/metrics": metrics, "/healthz": healthz}


class Listener:
    """The listener, bound on construction (so a taken port fails at start-up);
    :meth:`start` serves, :meth:`close` stops."""

    def __init__(self, host: str, port: int, routes: Mapping[str, Route]) -> None:
        server_class = _V6Server if _is_v6(host) else _Server
        try:
            self._server = server_class((host, port), _handler(dict(routes)))
        except OSError as exc:
            raise XecrError(
                f"cannot listen on {_hostport(host, port)}: {exc.strerror or exc} "
                "(check --listen: another process may hold the port)"
            ) from None
        bound = self._server.server_address
        self.host, self.port = str(bound[0]), int(bound[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="xecr-listen", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://{_hostport(self.host, self.port)}"

    def start(self) -> Listener:
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # A restarted daemon must get its port back at once, not after TIME_WAIT.
    allow_reuse_address = True


class _V6Server(_Server):
    address_family = socket.AF_INET6


def _handler(routes: dict[str, Route]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = _READ_TIMEOUT

        def version_string(self) -> str:
            return "xecr"

        def do_GET(self) -> None:
            route = routes.get(self.path.partition("?")[0])
            if route is None:
                self._send(404, _TEXT, b"not found: try /metrics or /healthz\n")
                return
            try:
                page = route()
            except Exception as exc:  # a bad page must not kill the listener
                log.exception_debug(f"{self.path} failed: {type(exc).__name__}")
                page = (500, _TEXT, b"internal error (details at DEBUG in the log)\n")
            self._send(*page)

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            log.debug(f"listener: {self.address_string()} {format % args}")

    return Handler


def _is_v6(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).version == 6
    except ValueError:
        return False


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if _is_v6(host) else f"{host}:{port}"
