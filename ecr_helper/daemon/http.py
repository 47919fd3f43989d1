"""The daemon's HTTP listener (``xecr daemon --listen HOST:PORT``): ``GET /metrics``
and ``GET /healthz``, on loopback unless the address names another interface.

One thread and a selector serve every connection, each one request
(:class:`~ecr_helper.daemon.http_exchange.Exchange`), within :class:`Limits`
that no client can stretch: a wall-clock deadline from accept (a client
trickling its request a byte at a time is cut all the same), a bounded
request head, and a bounded number of connections, so that the listener
never holds more than a small, fixed share of the process's descriptors:
the refreshes need theirs for AWS connections and cache files. Past the
limit the oldest connection still sending its request is closed for the new
one: a flood of slow clients churns among itself while a scraper, which
sends its request at once, is answered. :func:`routes` maps the two paths to
their pages (``/healthz`` is :func:`ecr_helper.daemon.health.healthz`).
Requests are logged at debug level, never at info (a scrape every 15 s would
bury the refresh lines); limits being hit, at most once a minute as a warning.
"""

from __future__ import annotations

import errno
import ipaddress
import selectors
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from ecr_helper import log
from ecr_helper.daemon import health
from ecr_helper.daemon.health import RegistryView
from ecr_helper.daemon.http_exchange import DONE, READING, TEXT, Exchange, Page, Route
from ecr_helper.errors import UsageError, XecrError

__all__ = ["DEFAULT_PORT", "LOOPBACK", "Limits", "Listener", "Page", "Route", "parse_listen"]

LOOPBACK = "127.0.0.1"
DEFAULT_PORT = 9464  # only the example in messages and docs; --listen has no default
# Pending connections wait in the kernel, not in our descriptors: a burst of
# clients must not push a scraper's connection out of the queue.
_BACKLOG = 1024
# Accepted per turn of the loop, so that a connection just accepted has its request
# read before a burst of newer ones could push it out to make room.
_ACCEPT_BATCH = 4
# Out of descriptors (the process's or the system's): stop accepting for a moment.
_NO_DESCRIPTORS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
_PAUSE = 0.5
_WARN_EVERY = 60.0


@dataclass(frozen=True)
class Limits:
    """What clients may take of the listener (documented in packaging/README.md)."""

    connections: int = 64  # in flight at once, never more than half of RLIMIT_NOFILE
    seconds: float = 10.0  # from accept to close, whatever the client sends
    head_bytes: int = 8192  # request line and header fields together
    fields: int = 64  # header fields


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
        return status, TEXT, body.encode()

    return {"/metrics": metrics, "/healthz": healthz}


class Listener:
    """The listener, bound on construction (so a taken port fails at start-up);
    :meth:`start` serves, :meth:`close` stops."""

    def __init__(
        self,
        host: str,
        port: int,
        routes: Mapping[str, Route],
        limits: Limits | None = None,
    ) -> None:
        self._sock = _bind(host, port)
        bound = self._sock.getsockname()
        self.host, self.port = str(bound[0]), int(bound[1])
        self.limits = limits or Limits()
        self._routes = dict(routes)
        self._wake, self._waker = socket.socketpair()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="xecr-listen", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{_hostport(self.host, self.port)}"

    def start(self) -> Listener:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            try:
                self._waker.send(b"x")
            except OSError:
                pass
            self._thread.join(timeout=5)
        for sock in (self._sock, self._wake, self._waker):
            sock.close()

    def _serve(self) -> None:
        loop = _Loop(self._sock, self._wake, self._routes, self.limits)
        try:
            while not self._stopping.is_set():
                try:
                    loop.step()
                except Exception as exc:  # never seen: keep serving, never spin
                    log.exception_debug(f"listener: {type(exc).__name__}")
                    loop.warn("error", "listener: unexpected error (details at DEBUG in the log)")
                    self._stopping.wait(0.1)
        finally:
            loop.close()


class _Loop:
    """The listener's connections and the selector that drives them (one thread)."""

    def __init__(
        self,
        sock: socket.socket,
        wake: socket.socket,
        routes: Mapping[str, Route],
        limits: Limits,
    ) -> None:
        self._listening = sock
        self._routes = routes
        self._limits = limits
        self._most = _connection_cap(limits.connections)
        self._selector = selectors.DefaultSelector()
        self._selector.register(sock, selectors.EVENT_READ)
        self._selector.register(wake, selectors.EVENT_READ)
        self._wake = wake
        # In accept order, so the first is the oldest.
        self._open: dict[socket.socket, Exchange] = {}
        self._paused_until: float | None = None
        self._warned: dict[str, tuple[float, int]] = {}

    def close(self) -> None:
        for exchange in list(self._open.values()):
            self._drop(exchange)
        self._selector.close()

    def step(self) -> None:
        """Wait for the next event or deadline, and handle what is ready."""
        now = time.monotonic()
        deadlines = [exchange.deadline for exchange in self._open.values()]
        if self._paused_until is not None:
            deadlines.append(self._paused_until)
        timeout = max(0.0, min(deadlines, default=now + 1.0) - now)
        for key, mask in self._selector.select(timeout):
            if key.fileobj is self._listening:
                self._accept()
            elif key.fileobj is self._wake:
                self._wake.recv(64)
            else:
                self._handle(key.data, mask)
        self._expire(time.monotonic())

    def _accept(self) -> None:
        for _ in range(_ACCEPT_BATCH):
            try:
                sock, address = self._listening.accept()
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno in _NO_DESCRIPTORS:
                    self._pause(exc)
                    return
                continue  # that client gave up (ECONNABORTED and the like)
            if len(self._open) >= self._most:
                self._make_room()
            sock.setblocking(False)
            now = time.monotonic()
            exchange = Exchange(
                sock,
                _peer(address),
                self._routes,
                now + self._limits.seconds,
                self._limits.head_bytes,
                self._limits.fields,
            )
            self._open[sock] = exchange
            self._selector.register(sock, exchange.events, exchange)

    def _make_room(self) -> None:
        reading = (e for e in self._open.values() if e.state == READING)
        victim = next(reading, None) or next(iter(self._open.values()))
        log.debug(f"listener: {victim.peer} closed to make room ({victim.state})")
        self.warn(
            "full",
            f"listener: more than {self._most} connections at once; closing the oldest "
            "unfinished ones to make room",
        )
        self._drop(victim)

    def _pause(self, exc: OSError) -> None:
        self.warn(
            "descriptors",
            f"listener: cannot accept ({exc.strerror or exc}); pausing new connections "
            "so the refreshes keep their descriptors",
        )
        self._selector.unregister(self._listening)
        self._paused_until = time.monotonic() + _PAUSE

    def _handle(self, exchange: Exchange, mask: int) -> None:
        now = time.monotonic()
        try:
            if mask & selectors.EVENT_READ:
                exchange.on_read(now)
            elif mask & selectors.EVENT_WRITE:
                exchange.on_write(now)
        except Exception as exc:  # one connection's bug must not stop the others
            log.exception_debug(f"listener: {exchange.peer} failed: {type(exc).__name__}")
            exchange.state = DONE
        if exchange.state == DONE:
            self._drop(exchange)
        elif self._selector.get_key(exchange.sock).events != exchange.events:
            self._selector.modify(exchange.sock, exchange.events, exchange)

    def _expire(self, now: float) -> None:
        for exchange in [e for e in self._open.values() if e.deadline <= now]:
            if exchange.state == READING:
                log.debug(f"listener: {exchange.peer} cut: no complete request in time")
            self._drop(exchange)
        if self._paused_until is not None and now >= self._paused_until:
            self._paused_until = None
            self._selector.register(self._listening, selectors.EVENT_READ)

    def _drop(self, exchange: Exchange) -> None:
        self._open.pop(exchange.sock, None)
        try:
            self._selector.unregister(exchange.sock)
        except (KeyError, ValueError):
            pass
        exchange.sock.close()

    def warn(self, kind: str, message: str) -> None:
        """``message`` at most once a minute per kind, with how often it happened since."""
        now = time.monotonic()
        last, count = self._warned.get(kind, (float("-inf"), 0))
        if now - last < _WARN_EVERY:
            self._warned[kind] = (last, count + 1)
            return
        more = f" ({count} more times in the last minute)" if count else ""
        log.warning(message + more)
        self._warned[kind] = (now, 0)


def _connection_cap(wanted: int) -> int:
    """``wanted``, but never more than half the descriptors this process may open."""
    try:
        import resource
    except ImportError:  # not on Windows
        return max(1, wanted)
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft <= 0:
        return max(1, wanted)
    return max(1, min(wanted, soft // 2))


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if _is_v6(host) else socket.AF_INET)
    try:
        # A restarted daemon must get its port back at once, not after TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(_BACKLOG)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise XecrError(
            f"cannot listen on {_hostport(host, port)}: {exc.strerror or exc} "
            "(check --listen: another process may hold the port)"
        ) from None
    return sock


def _peer(address: object) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        return _hostport(str(address[0]), int(address[1]))
    return str(address)


def _is_v6(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).version == 6
    except ValueError:
        return False


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if _is_v6(host) else f"{host}:{port}"
