"""The systemd notify protocol as a receiver sees it (a Unix datagram socket
bound by the test, as systemd binds one), and the liveness that gates the
watchdog pings. systemd itself is not PID 1 here, so the protocol is tested
directly."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ecr_helper import log
from ecr_helper.daemon import notify
from ecr_helper.daemon.liveness import Liveness, WatchdogPinger
from tests.fakeaws import FakeAws
from tests.helpers import CENTRAL_HOST, PULL_ROLE, XECR, installed, wait_for


class Receiver:
    """A bound datagram socket: what systemd's end of NOTIFY_SOCKET sees."""

    def __init__(self, sock: socket.socket, address: str) -> None:
        self.sock = sock
        self.address = address

    def messages(self, timeout: float = 2.0) -> list[dict[str, str]]:
        """Every datagram waiting (the first waited for up to ``timeout``)."""
        found: list[dict[str, str]] = []
        self.sock.settimeout(timeout)
        while True:
            try:
                data = self.sock.recv(4096)
            except (TimeoutError, BlockingIOError):
                return found
            found.append(parse(data))
            self.sock.settimeout(0.05)


def parse(data: bytes) -> dict[str, str]:
    fields = {}
    for line in data.decode().split("\n"):
        key, sep, value = line.partition("=")
        assert sep, f"not KEY=value: {line!r}"
        fields[key] = value
    return fields


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        yield Receiver(sock, path)


def test_ready_status_watchdog_and_stopping_arrive_as_single_datagrams(
    receiver: Receiver,
) -> None:
    sender = notify.Notifier.from_env({"NOTIFY_SOCKET": receiver.address})
    assert sender.enabled
    assert sender.ready("2 of 2 registries served")
    assert sender.watchdog()
    assert sender.status("1 of 2 registries served; retrying a.example")
    assert sender.stopping()
    got = receiver.messages()
    assert got == [
        {"READY": "1", "STATUS": "2 of 2 registries served"},
        {"WATCHDOG": "1"},
        {"STATUS": "1 of 2 registries served; retrying a.example"},
        {"STOPPING": "1", "STATUS": "stopping"},
    ]


@pytest.mark.skipif(os.uname().sysname != "Linux", reason="abstract sockets are Linux's")
def test_an_abstract_socket_name_starts_with_an_at_sign() -> None:
    name = f"xecr-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(b"\0" + name.encode())
        assert notify.Notifier(f"@{name}").ready("ok")
        sock.settimeout(2)
        assert parse(sock.recv(4096)) == {"READY": "1", "STATUS": "ok"}


def test_without_notify_socket_every_call_is_a_no_op() -> None:
    sender = notify.Notifier.from_env({})
    assert not sender.enabled
    assert not sender.ready("x")
    assert not sender.watchdog()
    assert not sender.stopping()


def test_a_socket_nobody_listens_on_is_not_an_error(tmp_path: Path) -> None:
    sender = notify.Notifier(str(tmp_path / "nobody.sock"))
    assert sender.enabled
    assert not sender.watchdog()  # logged at debug, never raised
    assert not sender.watchdog()


def test_status_is_one_bounded_line_so_it_cannot_inject_fields(receiver: Receiver) -> None:
    notify.Notifier(receiver.address).status("a\nREADY=1\n" + "x" * 500)
    (got,) = receiver.messages()
    assert set(got) == {"STATUS"}
    assert got["STATUS"].startswith("a READY=1 x")
    assert len(got["STATUS"]) <= 200


def fill(sock: socket.socket, address: str) -> int:
    """Send to ``address`` until its queue is full; the number of datagrams it took."""
    sock.setblocking(False)
    sent = 0
    while True:
        try:
            sock.sendto(b"WATCHDOG=1", address)
        except BlockingIOError:
            return sent
        sent += 1


@pytest.mark.timeout(10)  # before the fix the send waited for ever
def test_a_full_queue_drops_the_message_at_once_and_says_so_once_at_debug(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as other:
        assert fill(other, receiver.address) > 0  # nobody reads: the queue is full
    sender = notify.Notifier(receiver.address)
    caplog.set_level(logging.DEBUG, logger=log.LOGGER)
    started = time.monotonic()
    assert not sender.watchdog()  # dropped, not waited on
    assert not sender.status("still here")
    assert time.monotonic() - started < 1.0
    full = [r for r in caplog.records if "queue is full" in r.getMessage()]
    assert len(full) == 1 and full[0].levelno == logging.DEBUG
    receiver.messages()  # systemd reads again
    assert sender.watchdog()


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_a_notify_socket_nobody_reads_never_blocks_reload_or_stop(
    fake_aws: FakeAws, write_config: Callable[[str], Path], tmp_path: Path
) -> None:
    write_config(f'[registries."{CENTRAL_HOST}"]\nrole_arn = "{PULL_ROLE}"\n')
    address = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as never_read:
        never_read.bind(address)
        # A ping every 0.1 s fills the socket's queue (10 datagrams) within a second.
        env = dict(os.environ, NOTIFY_SOCKET=address, WATCHDOG_USEC="200000")
        err_path = tmp_path / "daemon.err"
        with err_path.open("wb") as err:
            proc = subprocess.Popen(
                [installed(XECR), "daemon"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                env=env,
            )
        try:
            wait_for(lambda: "started (pid" in err_path.read_text(), 30, "the daemon to start")
            time.sleep(2.0)  # well past 10 queued messages
            assert proc.poll() is None, err_path.read_text()
            write_config("")
            proc.send_signal(signal.SIGHUP)
            wait_for(lambda: "reloaded" in err_path.read_text(), 5, "the reload to take effect")
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=5) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    text = err_path.read_text()
    assert "reloaded" in text and "0 registries" in text
    assert "Traceback" not in text


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"WATCHDOG_USEC": "60000000"}, 30.0),
        ({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "4242"}, 0.5),
        ({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "4243"}, None),  # another process's
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "-5"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
    ],
)
def test_watchdog_interval_is_half_the_timeout_and_only_for_this_process(
    env: dict[str, str], expected: float | None
) -> None:
    assert notify.watchdog_interval(env, pid=4242) == expected


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_pings_every_interval_while_every_promise_holds() -> None:
    clock = FakeClock()
    live = Liveness(clock)
    pings: list[float] = []
    pinger = WatchdogPinger(5.0, live, lambda: pings.append(clock.now), clock)
    live.promise("worker", 12.0)
    for _ in range(10):  # 10 s in 1-s ticks
        pinger.tick()
        clock.now += 1.0
    assert pings == [1000.0, 1005.0]


def test_a_broken_promise_withholds_the_ping_until_the_loop_is_back() -> None:
    clock = FakeClock()
    live = Liveness(clock)
    pings: list[float] = []
    pinger = WatchdogPinger(1.0, live, lambda: pings.append(clock.now), clock)
    live.promise("a.example", 3.0)
    live.promise("b.example", 100.0)
    for _ in range(6):
        pinger.tick()
        clock.now += 1.0
    assert pings == [1000.0, 1001.0, 1002.0, 1003.0]  # a.example overdue after 1003
    assert pinger.withheld == ["a.example"]
    live.promise("a.example", 3.0)  # it came back
    assert pinger.tick()
    assert pinger.withheld == []


def test_a_loop_that_ended_on_purpose_no_longer_counts() -> None:
    clock = FakeClock()
    live = Liveness(clock)
    live.promise("gone.example", 1.0)
    clock.now += 2
    assert live.overdue() == ["gone.example"]
    live.forget("gone.example")
    assert live.overdue() == []


def test_no_watchdog_means_no_pings() -> None:
    pings: list[int] = []
    assert not WatchdogPinger(None, Liveness(), lambda: pings.append(1)).tick()
    assert pings == []
