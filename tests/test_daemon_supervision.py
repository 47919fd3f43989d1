"""The daemon as a supervisor and an operator see it: systemd's notify
messages on a datagram socket the test binds as ``NOTIFY_SOCKET`` (systemd
is not PID 1 on this machine, so the protocol is tested directly), the
watchdog withheld by a hung refresh, full-jitter retries when AWS throttles,
and ``xecr daemon --listen`` scraped by prometheus_client's own parser while
the loopback fake AWS first serves, then refuses, short-lived tokens."""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ecr_helper.config import RegistrySettings
from ecr_helper.daemon import loop, schedule
from ecr_helper.daemon.metrics import Metrics
from ecr_helper.errors import AwsError
from ecr_helper.token import Token
from tests.fakeaws import FakeAws
from tests.helpers import (
    CENTRAL,
    CENTRAL_HOST,
    PULL_ROLE,
    XECR,
    installed,
    known_secrets,
    run,
    serve_daemon,
    stop_daemon,
)


def registries(*hosts: str) -> str:
    return "".join(f'[registries."{h}"]\nrole_arn = "{PULL_ROLE}"\n' for h in hosts)


class Notifications:
    """The receiving end of NOTIFY_SOCKET: every datagram, timestamped, in a thread."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(path)
        self._sock.settimeout(0.1)
        self.got: list[tuple[float, dict[str, str]]] = []
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._done.is_set():
            try:
                data = self._sock.recv(4096)
            except TimeoutError:
                continue
            fields = dict(line.partition("=")[::2] for line in data.decode().split("\n"))
            with self._lock:
                self.got.append((time.monotonic(), fields))

    def close(self) -> None:
        self._done.set()
        self._thread.join(timeout=2)
        self._sock.close()

    def having(self, key: str) -> list[tuple[float, dict[str, str]]]:
        with self._lock:
            return [(at, fields) for at, fields in self.got if key in fields]

    def wait_for(self, key: str, count: int = 1, timeout: float = 20.0) -> list[float]:
        deadline = time.monotonic() + timeout
        while len(self.having(key)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{count} x {key} not received in {timeout}s: {self.got}")
            time.sleep(0.02)
        return [at for at, _ in self.having(key)]


@pytest.fixture
def notifications(tmp_path: Path) -> Iterator[Notifications]:
    receiver = Notifications(str(tmp_path / "notify.sock"))
    yield receiver
    receiver.close()


class Fetcher:
    """Tokens of ``lifetime`` seconds; the calls listed in ``hang_on`` block until released."""

    def __init__(self, lifetime: float, hang_on: tuple[int, ...] = ()) -> None:
        self.lifetime = lifetime
        self.hang_on = hang_on
        self.release = threading.Event()
        self.calls: list[float] = []
        self.lock = threading.Lock()

    def __call__(self, settings: RegistrySettings, quick: bool) -> Token:
        with self.lock:
            self.calls.append(time.monotonic())
            number = len(self.calls)
        if number in self.hang_on:
            self.release.wait(30)
        now = time.time()
        return Token("AWS", f"secret-{number}", now, now + self.lifetime, settings.host, CENTRAL)


def notify_env(socket_path: str, watchdog_seconds: float) -> dict[str, str]:
    return dict(
        os.environ, NOTIFY_SOCKET=socket_path, WATCHDOG_USEC=str(int(watchdog_seconds * 1e6))
    )


def test_ready_comes_after_the_first_round_then_pings_and_stopping(
    write_config: Callable[[str], Path], notifications: Notifications
) -> None:
    write_config(registries(CENTRAL_HOST))
    fetch = Fetcher(3600.0, hang_on=(1,))  # the first fetch waits for the test
    d = loop.Daemon(notify_env(notifications.path, 0.4), fetch=fetch)
    commands, thread = serve_daemon(d)
    try:
        notifications.wait_for("WATCHDOG", 2)  # alive while the first fetch is under way
        assert not notifications.having("READY"), "ready before the first refresh ended"
        fetch.release.set()
        (ready_at,) = notifications.wait_for("READY")
        assert ready_at >= fetch.calls[0]
        ((_, ready),) = notifications.having("READY")
        assert ready["STATUS"].startswith("1 of 1 registry served, first expiry ")
        pings = notifications.wait_for("WATCHDOG", len(notifications.having("WATCHDOG")) + 3)
        assert len(pings) >= 5
    finally:
        stop_daemon(commands, thread)
    ((_, stopping),) = notifications.having("STOPPING")
    assert stopping["STOPPING"] == "1"
    assert len(notifications.having("READY")) == 1


def test_ready_comes_even_when_every_first_refresh_fails(
    write_config: Callable[[str], Path], notifications: Notifications
) -> None:
    write_config(registries(CENTRAL_HOST))

    def refuse(settings: RegistrySettings, quick: bool) -> Token:
        raise AwsError(f"AssumeRole denied for {PULL_ROLE}")

    commands, thread = serve_daemon(loop.Daemon(notify_env(notifications.path, 10), fetch=refuse))
    try:
        notifications.wait_for("READY")
        ((_, ready),) = notifications.having("READY")
        assert ready["STATUS"] == f"0 of 1 registry served; retrying {CENTRAL_HOST}"
    finally:
        stop_daemon(commands, thread)


@pytest.mark.slow  # waits out the refresh bound in real time
def test_a_hung_refresh_stops_the_watchdog_pings_until_it_returns(
    write_config: Callable[[str], Path], notifications: Notifications
) -> None:
    write_config(registries(CENTRAL_HOST))
    # 2-s tokens: the second fetch (the refresh at about 1 s) hangs.
    fetch = Fetcher(2.0, hang_on=(2,))
    bound = 1.0
    d = loop.Daemon(notify_env(notifications.path, 0.2), fetch=fetch, refresh_bound=bound)
    commands, thread = serve_daemon(d)
    try:
        notifications.wait_for("READY")
        deadline = time.monotonic() + 10
        while len(fetch.calls) < 2:
            assert time.monotonic() < deadline, "the refresh never started"
            time.sleep(0.02)
        hung_at = fetch.calls[1]
        assert notifications.having("WATCHDOG")[-1][0] > hung_at - 0.5
        time.sleep(bound + 2.5)
        assert len(fetch.calls) == 2 and not fetch.release.is_set()  # still hung
        late = [at for at, _ in notifications.having("WATCHDOG") if at > hung_at + bound + 0.5]
        assert late == [], "pinged while a refresh was stuck past its bound"
        fetch.release.set()
        notifications.wait_for("WATCHDOG", len(notifications.having("WATCHDOG")) + 2, 5)
    finally:
        stop_daemon(commands, thread)


def test_throttled_refreshes_retry_with_full_jitter_and_are_counted(
    write_config: Callable[[str], Path],
) -> None:
    write_config(registries(CENTRAL_HOST))
    now = [1_800_000_000.0]
    waits: list[float] = []
    stop_after = threading.Event()

    def wait(stop: threading.Event, seconds: float) -> bool:
        if stop_after.is_set():
            return stop.wait(0.05)
        waits.append(seconds)
        now[0] += seconds
        return stop.is_set()

    calls: list[float] = []
    script: list[AwsError | None] = []
    for code, status in [("ThrottlingException", 400), ("ServiceUnavailable", 503), ("X", 400)]:
        error = AwsError(f"ECR GetAuthorizationToken failed ({code})")
        error.code, error.status = code, status
        script.append(error)

    def fetch(settings: RegistrySettings, quick: bool) -> Token:
        calls.append(now[0])
        if script:
            step = script.pop(0)
            if step is not None:
                raise step
        stop_after.set()
        return Token("AWS", "s", now[0], now[0] + 43200, settings.host, CENTRAL)

    d = loop.Daemon(
        dict(os.environ), fetch=fetch, clock=lambda: now[0], rand=lambda: 0.5, wait=wait
    )
    metrics = Metrics(d.views, clock=lambda: now[0])
    d.observe(metrics)
    commands, thread = serve_daemon(d)
    try:
        deadline = time.monotonic() + 10
        while not stop_after.is_set() or len(calls) < 4:
            assert time.monotonic() < deadline, calls
            time.sleep(0.02)
    finally:
        stop_daemon(commands, thread)
    gaps = [b - a for a, b in itertools.pairwise(calls)][:3]
    cap = schedule.UNKNOWN_LIFETIME_CAP  # no token seen yet
    assert cap >= 4.0
    # Ceilings 1, 2, 4 s; rand 0.5: full jitter half the ceiling for the throttle and
    # the 503, equal jitter three quarters of it for the other failure.
    assert gaps == pytest.approx([0.5, 1.0, 3.0])
    text = metrics.render().decode()
    found = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    labels = (("registry", CENTRAL_HOST), ("result", "failure"))
    assert found[("xecr_refresh_total", labels)] == 3
    assert found[("xecr_refresh_total", (labels[0], ("result", "success")))] == 1


# -- the installed daemon, as an operator runs it --------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scrape(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError:
        return 0, ""


def metric(text: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return None


def until(predicate: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


@pytest.mark.slow
def test_an_operator_scrapes_metrics_and_health_while_aws_serves_then_refuses(
    fake_aws: FakeAws,
    write_config: Callable[[str], Path],
    notifications: Notifications,
    tmp_path: Path,
) -> None:
    fake_aws.token_ttl = 8.0  # refreshed after 4 s, no longer served 0.8 s before the end
    write_config(registries(CENTRAL_HOST))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = notify_env(notifications.path, 2.0)
    with (tmp_path / "daemon.err").open("wb") as err:
        proc = subprocess.Popen(
            [installed(XECR), "daemon", "--listen", f"127.0.0.1:{port}"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=env,
        )
    try:
        notifications.wait_for("READY", timeout=30)
        status, text = scrape(f"{base}/metrics")
        assert status == 200, (tmp_path / "daemon.err").read_text()
        expiry = metric(text, "xecr_token_expiry_timestamp_seconds", registry=CENTRAL_HOST)
        assert expiry is not None and time.time() < expiry < time.time() + 8.0
        assert metric(text, "xecr_refresh_total", registry=CENTRAL_HOST, result="success") == 1
        assert metric(text, "xecr_refresh_total", registry=CENTRAL_HOST, result="failure") == 0
        for operation in ("AssumeRole", "GetAuthorizationToken"):
            count = metric(text, "xecr_aws_request_duration_seconds_count", operation=operation)
            assert count is not None and count >= 1
        leaked = [secret for secret in known_secrets(fake_aws) if secret in text]
        assert leaked == [], "a secret in /metrics"
        assert scrape(f"{base}/healthz") == (200, "ok\n")
        notifications.wait_for("WATCHDOG", 2)

        fake_aws.fail("GetAuthorizationToken", "throttle")  # AWS refuses from now on
        until(lambda: scrape(f"{base}/healthz")[0] == 503, 20, "/healthz to turn 503")
        assert scrape(f"{base}/healthz") == (503, f"no servable token for {CENTRAL_HOST}\n")
        _, text = scrape(f"{base}/metrics")
        assert metric(text, "xecr_token_servable", registry=CENTRAL_HOST) == 0
        failures = metric(text, "xecr_refresh_total", registry=CENTRAL_HOST, result="failure")
        assert failures is not None and failures >= 1
        throttled = metric(text, "xecr_throttled_total", operation="GetAuthorizationToken")
        assert throttled is not None and throttled >= 3  # each of botocore's attempts
        assert proc.poll() is None

        fake_aws.clear_faults()
        until(lambda: scrape(f"{base}/healthz") == (200, "ok\n"), 20, "/healthz to recover")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    notifications.wait_for("STOPPING", timeout=2)
    statuses = [fields["STATUS"] for _, fields in notifications.having("STATUS")]
    assert any(s.endswith(f"retrying {CENTRAL_HOST}") for s in statuses), statuses
    log = (tmp_path / "daemon.err").read_text()
    assert f"/metrics and /healthz on http://127.0.0.1:{port}" in log
    assert "Traceback" not in log


@pytest.mark.slow
def test_a_taken_port_or_a_bad_address_stops_the_start_with_one_line(
    write_config: Callable[[str], Path],
) -> None:
    write_config(registries(CENTRAL_HOST))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run([XECR, "daemon", "--listen", f"127.0.0.1:{port}"], timeout=30)
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.err
    assert "Traceback" not in result.err
    bad = run([XECR, "daemon", "--listen", "nowhere"], timeout=30)
    assert bad.returncode == 2
    assert "--listen" in bad.err and bad.err.count("\n") == 1
    once = run([XECR, "daemon", "--once", "--listen", "9464"], timeout=30)
    assert once.returncode == 2 and "--once" in once.err


# -- the shipped units ----------------------------------------------------------------------

UNITS = Path(__file__).resolve().parent.parent / "packaging" / "systemd"


def unit_settings(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith("#"):
            found[key.strip()] = value.strip()
    return found


@pytest.mark.parametrize("name", ["xecr.service", "xecr-user.service"])
def test_the_units_wait_for_ready_and_watch_the_loop_within_its_bounds(name: str) -> None:
    from ecr_helper.daemon import worker

    unit = unit_settings(UNITS / name)
    assert unit["Type"] == "notify"
    assert unit["Restart"] == "on-failure"  # a watchdog timeout counts as a failure
    # The start waits for READY=1, which comes after the first refresh: its bound must fit.
    assert float(unit["TimeoutStartSec"]) > worker.REFRESH_BOUND
    # systemd hands WATCHDOG_USEC to the daemon, which pings every half of it.
    assert float(unit["WatchdogSec"]) >= 10
    # Only the daemon itself may speak for the service (a credential_process child may not).
    assert unit.get("NotifyAccess", "main") == "main"


@pytest.mark.slow
def test_prometheus_client_is_imported_only_with_listen() -> None:
    code = (
        "import sys\n"
        "import ecr_helper.cli.daemon_cmd, ecr_helper.daemon.loop\n"
        "assert 'prometheus_client' not in sys.modules\n"
        "import ecr_helper.daemon.metrics\n"
        "assert 'prometheus_client' in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
