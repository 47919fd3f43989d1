"""The login daemon: in process with an injected fetch, and as the installed
``xecr daemon`` against the loopback fake AWS with tokens living seconds.

``get`` is always run with ``AWS_ENDPOINT_URL`` on a closed loopback port, so
it succeeds only when the daemon's cache serves it.
"""

from __future__ import annotations

import base64
import grp
import itertools
import json
import logging
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ecr_helper import cache, config, log, paths, refresh
from ecr_helper.config import RegistrySettings
from ecr_helper.daemon import lock
from ecr_helper.daemon import loop as daemon
from ecr_helper.errors import AlreadyRunning, AwsError, XecrError
from ecr_helper.service import Service
from ecr_helper.token import Token
from tests.fakeaws import FakeAws
from tests.helpers import (
    CENTRAL,
    CENTRAL_HOST,
    PASSWORD,
    PULL_ROLE,
    installed,
    serve_daemon,
    stop_daemon,
    token_of,
    wait_for,
)

OTHER = "333333333333"
OTHER_HOST = f"{OTHER}.dkr.ecr.us-east-1.amazonaws.com"


XECR = installed("xecr")
HELPER = installed("docker-credential-xecr")


def registries(*hosts: str, extra: str = "", shared: bool = False) -> str:
    """Each registry behind a role in its own account (a token each, ``ID-auth-token``),
    or all behind PULL_ROLE (``shared``: one identity and region, one token)."""
    return "".join(
        f'[registries."{h}"]\nrole_arn = "{PULL_ROLE if shared else role_of(h)}"\n{extra}\n'
        for h in hosts
    )


def role_of(host: str) -> str:
    return f"arn:aws:iam::{host.split('.')[0]}:role/ecr-pull"


def folder() -> str:
    return paths.cache_dir(os.environ, config.load(os.environ).system)


def cached(host: str) -> Token | None:
    loaded = config.load(os.environ)
    settings = loaded.resolve(host)
    store = cache.file_cache(os.environ, loaded.system)
    return store.read(cache.cache_key(settings, os.environ, store.machine))


def closed_url() -> str:
    """A loopback URL nothing listens on: AWS unreachable, refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def get(host: str, endpoint: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, AWS_ENDPOINT_URL=endpoint)
    return subprocess.run(
        [HELPER, "get"], input=host, capture_output=True, text=True, env=env, timeout=30
    )


def served(result: subprocess.CompletedProcess[str], registry_id: str = CENTRAL) -> bool:
    if result.returncode != 0:
        return False
    return bool(json.loads(result.stdout)["Secret"] == f"{registry_id}-auth-token")


class Proc:
    """One ``xecr daemon`` process, its stderr kept in a file."""

    def __init__(self, args: list[str], err_path: Path) -> None:
        self.err_path = err_path
        with err_path.open("wb") as err:
            self.popen = subprocess.Popen(
                [XECR, "daemon", *args],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                env=dict(os.environ),
            )
        self.pid = self.popen.pid

    def stderr(self) -> str:
        return self.err_path.read_text()

    def ready(self, timeout: float = 20.0) -> Proc:
        wait_for(
            lambda: lock.is_running(folder()) == self.pid or self.popen.poll() is not None,
            timeout,
            "the daemon to take its lock",
        )
        assert self.popen.poll() is None, self.stderr()
        return self

    def signal_and_wait(self, signum: int, timeout: float = 5.0) -> tuple[int, float]:
        start = time.monotonic()
        self.popen.send_signal(signum)
        code = self.popen.wait(timeout=timeout)
        return code, time.monotonic() - start


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., Proc]]:
    started: list[Proc] = []

    def start(*args: str) -> Proc:
        proc = Proc(list(args), tmp_path / f"daemon-{len(started)}.err")
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.popen.poll() is None:
            proc.popen.kill()
            proc.popen.wait(timeout=10)


@pytest.fixture
def records() -> Iterator[list[logging.LogRecord]]:
    """The xecr log's records, as the daemon's stderr would show them."""
    log.setup(os.environ)
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    handler = Keep()
    handler.addFilter(log.RedactingFilter())
    logger = logging.getLogger(log.LOGGER)
    logger.addHandler(handler)
    yield seen
    logger.removeHandler(handler)


# -- in process, with an injected fetch -----------------------------------------------------


class Fetcher:
    """A fetch that follows a script of outcomes, then issues tokens of ``lifetime`` seconds."""

    def __init__(self, lifetime: float, script: list[BaseException | None] | None = None) -> None:
        self.lifetime = lifetime
        self.script = list(script or [])
        self.calls: list[tuple[str, float]] = []
        self.lock = threading.Lock()

    def __call__(self, settings: RegistrySettings, quick: bool) -> Token:
        with self.lock:
            now = time.time()
            self.calls.append((settings.host, now))
            step = self.script.pop(0) if self.script else None
        if step is not None:
            raise step
        return token_of(
            settings, f"{settings.registry_id}-secret-{len(self.calls)}", now, self.lifetime
        )

    def count(self, host: str = CENTRAL_HOST) -> int:
        with self.lock:
            return sum(1 for h, _ in self.calls if h == host)


def test_aws_errors_never_stop_it_one_log_line_each(
    write_config: Callable[[str], Path], records: list[logging.LogRecord]
) -> None:
    write_config(registries(CENTRAL_HOST))
    secret = "do-not-print-this-secret-value-0123456789"
    log.register_secret(secret)
    script: list[BaseException | None] = [
        AwsError(f"AssumeRole {PULL_ROLE} failed (Throttling) {secret}"),
        RuntimeError(f"a bug {secret}"),
        AwsError("ECR GetAuthorizationToken failed (ServiceUnavailable)"),
    ]
    # A cached token past half-life gives the lifetime (2 s) the backoff scales with:
    # retries <= 0.2 s apart. (A fresh one would be planned from instead: no hurry.)
    now = time.time() - 1.1
    loaded = config.load(os.environ)
    store = cache.open_cache(loaded, os.environ)
    key = cache.cache_key(loaded.resolve(CENTRAL_HOST), os.environ)
    store.write(key, Token("AWS", "old-secret", now, now + 2.0, CENTRAL_HOST, CENTRAL))
    fetch = Fetcher(2.0, script)
    commands, thread = serve_daemon(daemon.Daemon(dict(os.environ), fetch=fetch))
    try:
        wait_for(lambda: fetch.count() >= 4, 5, "three failures and a success")
        wait_for(lambda: any("fresh again" in r.getMessage() for r in records), 2, "recovery")
    finally:
        stop_daemon(commands, thread)
    failures = [r.getMessage() for r in records if "failed (attempt" in r.getMessage()]
    assert len(failures) == 3, failures
    assert all("\n" not in line and secret not in line for line in failures)
    assert "Throttling" in failures[0] and "attempt 1" in failures[0]
    assert "unexpected RuntimeError" in failures[1]
    assert "ServiceUnavailable" in failures[2]
    gaps = [b - a for (_, a), (_, b) in itertools.pairwise(fetch.calls)][:3]
    assert all(gap <= 0.2 + 0.15 for gap in gaps), gaps
    token = store.read(key)
    assert token is not None and token.secret.startswith(f"{CENTRAL}-secret-")


@pytest.mark.slow
def test_it_rereads_the_cache_and_fetches_nothing_another_process_refreshed(
    write_config: Callable[[str], Path],
) -> None:
    write_config(registries(CENTRAL_HOST))
    fetch = Fetcher(2.0)
    d = daemon.Daemon(dict(os.environ), fetch=fetch, rand=lambda: 0.0)  # refresh at exactly 1 s
    commands, thread = serve_daemon(d)
    try:
        wait_for(lambda: fetch.count() == 1, 5, "the start-up fetch")
        started = fetch.calls[0][1]
        time.sleep(max(0.0, started + 0.5 - time.time()))
        now = time.time()  # another process (a `get`, `xecr login`) stores a newer token
        theirs = Token("AWS", "their-secret", now, now + 2.0, CENTRAL_HOST, CENTRAL)
        d.store.write(d.targets[CENTRAL_HOST].key, theirs)
        time.sleep(max(0.0, started + 1.3 - time.time()))
        assert fetch.count() == 1, "refreshed a token someone else had just refreshed"
        wait_for(lambda: fetch.count() == 2, 3, "the refresh planned from their token")
        assert fetch.calls[1][1] >= now + 1.0 - 0.05
    finally:
        stop_daemon(commands, thread)


def test_docker_config_sink_keeps_other_keys_and_follows_reloads(
    write_config: Callable[[str], Path], tmp_path: Path
) -> None:
    write_config(registries(CENTRAL_HOST, OTHER_HOST))
    sink = tmp_path / "sink"
    fetch = Fetcher(3600.0)
    d = daemon.Daemon(dict(os.environ), fetch=fetch, docker_config_dir=str(sink))
    commands, thread = serve_daemon(d)
    path = sink / "config.json"

    def auths() -> dict[str, str]:
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError):
            return {}
        return {h: base64.b64decode(v["auth"]).decode() for h, v in doc.get("auths", {}).items()}

    try:
        wait_for(lambda: len(auths()) == 2, 15, "both auths entries")
        assert auths()[CENTRAL_HOST].startswith(f"AWS:{CENTRAL}-secret-")
        assert auths()[OTHER_HOST].startswith(f"AWS:{OTHER}-secret-")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        doc = json.loads(path.read_text())
        doc["credsStore"] = "desktop"
        doc["auths"]["other.example.com"] = {"auth": "b3RoZXI6eA=="}
        path.write_text(json.dumps(doc))
        write_config(registries(OTHER_HOST))
        commands.put(daemon.RELOAD)
        wait_for(lambda: CENTRAL_HOST not in auths(), 15, "the removed registry's entry to go")
        doc = json.loads(path.read_text())
        assert doc["credsStore"] == "desktop"
        assert set(doc["auths"]) == {OTHER_HOST, "other.example.com"}
        assert list(d.targets) == [OTHER_HOST]
    finally:
        stop_daemon(commands, thread)


def test_a_bad_config_on_reload_keeps_the_previous_one(
    write_config: Callable[[str], Path], records: list[logging.LogRecord]
) -> None:
    path = write_config(registries(CENTRAL_HOST))
    d = daemon.Daemon(dict(os.environ), fetch=Fetcher(3600.0))
    commands, thread = serve_daemon(d)
    try:
        path.write_text("[registries\n")
        commands.put(daemon.RELOAD)
        wait_for(lambda: any("reload failed" in r.getMessage() for r in records), 5, "a warning")
        assert list(d.targets) == [CENTRAL_HOST]
    finally:
        stop_daemon(commands, thread)


def test_instance_lock_in_process(tmp_path: Path) -> None:
    where = str(tmp_path / "c")
    os.mkdir(where, 0o700)
    assert lock.is_running(where) is None
    held = lock.acquire_instance(where)
    try:
        assert lock.is_running(where) == os.getpid()
        with pytest.raises(AlreadyRunning) as info:
            lock.acquire_instance(where)
        assert str(info.value) == f"already running for cache folder {where} (pid {os.getpid()})"
    finally:
        held.release()
    assert lock.is_running(where) is None
    assert lock.is_running(str(tmp_path / "missing")) is None


def test_cache_none_leaves_the_daemon_nowhere_to_keep_tokens(
    write_config: Callable[[str], Path],
) -> None:
    path = write_config('[defaults]\ncache = "none"\n' + registries(CENTRAL_HOST))
    with pytest.raises(XecrError, match=r'cache = "none"') as info:
        daemon.Daemon(dict(os.environ)).open()
    assert str(path) in str(info.value)


def test_once_in_process_reports_each_registry(write_config: Callable[[str], Path]) -> None:
    write_config(registries(CENTRAL_HOST, OTHER_HOST))

    def fetch(settings: RegistrySettings, quick: bool) -> Token:
        if settings.registry_id == OTHER:
            raise KeyError("a bug")
        return Fetcher(3600.0)(settings, quick)

    result = daemon.run_once(dict(os.environ), fetch=fetch)
    assert not result.ok
    ok, bad = result.outcomes
    assert ok.host == CENTRAL_HOST and ok.token is not None and ok.error is None
    assert bad.host == OTHER_HOST and bad.token is None
    assert bad.error is not None and "unexpected KeyError" in bad.error


def test_a_broken_section_is_skipped_and_reported_the_others_refresh(
    write_config: Callable[[str], Path], log_file: Path
) -> None:
    path = write_config(registries(CENTRAL_HOST) + registries(OTHER_HOST, extra="regoin = 1\n"))
    assert list(daemon.targets(Service.open(dict(os.environ)))) == [CENTRAL_HOST]
    assert f"skipping {OTHER_HOST}: config error in {path}" in log_file.read_text()
    result = daemon.run_once(dict(os.environ), fetch=Fetcher(3600.0))
    assert not result.ok
    ok, bad = result.outcomes
    assert ok.host == CENTRAL_HOST and ok.token is not None
    assert bad.host == OTHER_HOST and bad.token is None
    assert bad.error is not None and f'registries."{OTHER_HOST}".regoin' in bad.error


# -- the installed `xecr daemon`, against the loopback fake ---------------------------------


@pytest.mark.slow
def test_tokens_stay_valid_across_several_lifetimes_with_aws_unreachable_for_get(
    fake_aws: FakeAws, write_config: Callable[[str], Path], spawn: Callable[..., Proc]
) -> None:
    fake_aws.token_ttl = 6.0
    write_config(registries(CENTRAL_HOST))
    proc = spawn().ready()
    wait_for(lambda: cached(CENTRAL_HOST) is not None, 15, "the first token")
    endpoint = closed_url()
    results = []
    seen: set[float] = set()
    end = time.monotonic() + 13.0  # more than two lifetimes
    while time.monotonic() < end:
        results.append(get(CENTRAL_HOST, endpoint))
        token = cached(CENTRAL_HOST)
        assert token is not None
        seen.add(token.issued_at)
    assert results and all(served(r) for r in results), [r.stdout for r in results if not served(r)]
    assert len(seen) >= 3, "the daemon did not keep refreshing"
    times = [r.time for r in fake_aws.requests("GetAuthorizationToken")]
    assert len(times) >= 3
    # Each refresh came past half the previous token's life (3 s), within the
    # 10 % jitter (0.6 s) plus the time one fetch takes.
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(2.9 <= gap <= 3.6 + 1.5 for gap in gaps), gaps
    code, took = proc.signal_and_wait(signal.SIGTERM)
    assert code == 0 and took < 5
    assert "Traceback" not in proc.stderr()


@pytest.mark.slow
def test_a_second_instance_is_refused_and_sigterm_stops_it_cleanly(
    fake_aws: FakeAws, write_config: Callable[[str], Path], spawn: Callable[..., Proc]
) -> None:
    write_config(registries(CENTRAL_HOST))
    first = spawn().ready()
    start = time.monotonic()
    second = spawn()
    code = second.popen.wait(timeout=20)
    assert code == 1 and time.monotonic() - start < 10
    assert second.stderr().splitlines() == [
        f"xecr daemon: already running for cache folder {folder()} (pid {first.pid})"
    ]
    assert first.popen.poll() is None
    code, took = first.signal_and_wait(signal.SIGTERM)
    assert (code, took < 5) == (0, True)
    assert lock.is_running(folder()) is None


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_it_stops_within_seconds_even_while_a_fetch_hangs(
    fake_aws: FakeAws,
    write_config: Callable[[str], Path],
    spawn: Callable[..., Proc],
    signum: int,
) -> None:
    fake_aws.fail("AssumeRole", "hang")
    write_config(registries(CENTRAL_HOST))
    proc = spawn().ready()
    wait_for(lambda: fake_aws.calls("AssumeRole") >= 1, 15, "the fetch to be in flight")
    code, took = proc.signal_and_wait(signum)
    assert code == 0 and took < 5, proc.stderr()
    assert "Traceback" not in proc.stderr()


@pytest.mark.slow
def test_sighup_reload_adds_and_removes_registries(
    fake_aws: FakeAws,
    write_config: Callable[[str], Path],
    spawn: Callable[..., Proc],
    tmp_path: Path,
) -> None:
    write_config(registries(CENTRAL_HOST))
    sink = tmp_path / "docker"
    proc = spawn("--write-docker-config", str(sink)).ready()
    wait_for(lambda: cached(CENTRAL_HOST) is not None, 15, "the first registry's token")
    assert cached(OTHER_HOST) is None
    write_config(registries(CENTRAL_HOST, OTHER_HOST))
    proc.popen.send_signal(signal.SIGHUP)
    wait_for(lambda: cached(OTHER_HOST) is not None, 15, "the added registry's token")
    token = cached(OTHER_HOST)
    assert token is not None and token.secret == f"{OTHER}-auth-token"

    def auths() -> set[str]:
        try:
            return set(json.loads((sink / "config.json").read_text())["auths"])
        except (OSError, ValueError, KeyError):
            return set()

    wait_for(lambda: auths() == {CENTRAL_HOST, OTHER_HOST}, 10, "both sink entries")
    write_config(registries(OTHER_HOST))
    proc.popen.send_signal(signal.SIGHUP)
    wait_for(lambda: auths() == {OTHER_HOST}, 10, "the removed registry's sink entry to go")
    assert "removed " + CENTRAL_HOST in proc.stderr()
    assert proc.popen.poll() is None
    code, _ = proc.signal_and_wait(signal.SIGTERM)
    assert code == 0


@pytest.mark.slow
def test_once_refreshes_everything_and_exits_zero(
    fake_aws: FakeAws, write_config: Callable[[str], Path], tmp_path: Path
) -> None:
    write_config(registries(CENTRAL_HOST, OTHER_HOST))
    done = subprocess.run(
        [XECR, "daemon", "--once", "--write-docker-config", str(tmp_path)],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"refreshed {CENTRAL_HOST} (registry {CENTRAL})")
    assert fake_aws.calls("GetAuthorizationToken") == 2
    for host, registry_id in ((CENTRAL_HOST, CENTRAL), (OTHER_HOST, OTHER)):
        token = cached(host)
        assert token is not None and token.secret == f"{registry_id}-auth-token"
    auths = json.loads((tmp_path / "config.json").read_text())["auths"]
    assert base64.b64decode(auths[OTHER_HOST]["auth"]).decode() == f"AWS:{OTHER}-auth-token"


@pytest.mark.slow
def test_once_refreshes_a_shared_token_once_for_its_registries(
    fake_aws: FakeAws, write_config: Callable[[str], Path], tmp_path: Path
) -> None:
    """Issue 22: two registries of one identity and region, one fetch, both served."""
    write_config(registries(CENTRAL_HOST, OTHER_HOST, shared=True))
    done = subprocess.run(
        [XECR, "daemon", "--once", "--write-docker-config", str(tmp_path)],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 2
    assert (fake_aws.calls("AssumeRole"), fake_aws.calls("GetAuthorizationToken")) == (1, 1)
    first, second = cached(CENTRAL_HOST), cached(OTHER_HOST)
    assert first is not None and first == second and first.secret == PASSWORD
    auths = json.loads((tmp_path / "config.json").read_text())["auths"]
    assert auths[CENTRAL_HOST] == auths[OTHER_HOST]


@pytest.mark.slow
def test_once_exits_one_with_one_line_per_failure(
    fake_aws: FakeAws, write_config: Callable[[str], Path]
) -> None:
    write_config(registries(CENTRAL_HOST, OTHER_HOST))
    fake_aws.fail("GetAuthorizationToken", "access_denied")
    done = subprocess.run(
        [XECR, "daemon", "--once"], capture_output=True, text=True, env=dict(os.environ), timeout=60
    )
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 2, done.stderr
    for line, registry_id in zip(lines, (CENTRAL, OTHER), strict=True):
        assert line.startswith(f"xecr daemon: {registry_id}.dkr.ecr.us-east-1.amazonaws.com: ")
        role = role_of(f"{registry_id}.dkr")
        assert f"denied for registry {registry_id} as {role} (AccessDeniedException)" in line
    assert cached(CENTRAL_HOST) is None and cached(OTHER_HOST) is None


@pytest.mark.slow
def test_once_reports_only_the_registry_that_failed(
    fake_aws: FakeAws, write_config: Callable[[str], Path]
) -> None:
    write_config(
        registries(CENTRAL_HOST) + registries(OTHER_HOST, extra='source_profile = "missing"\n')
    )
    done = subprocess.run(
        [XECR, "daemon", "--once"], capture_output=True, text=True, env=dict(os.environ), timeout=60
    )
    assert done.returncode == 1
    assert done.stdout.startswith(f"refreshed {CENTRAL_HOST}")
    assert done.stderr.splitlines() == [
        f"xecr daemon: {OTHER_HOST}: AWS profile 'missing' not found: check source_profile "
        "in the xecr config, AWS_PROFILE, and ~/.aws/config"
    ]


# -- machine set-ups: the root daemon's tokens served to the docker group -------------------


def _docker_gid() -> int:
    try:
        return grp.getgrnam("docker").gr_gid
    except KeyError:
        pytest.skip("no docker group on this machine")


def _get_as(uid: int, groups: list[int], env: dict[str, str], timeout: float = 20.0) -> str:
    """Run ``get`` in a forked child with another identity; its answer or the error text."""

    def refuse(settings: RegistrySettings, quick: bool) -> Token:
        raise AwsError("AWS must not be called: the cache should have served this")

    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop to the other user, answer through the pipe, never return
        code = 1
        try:
            os.close(reader)
            os.setgroups(groups)
            os.setgid(uid)
            os.setuid(uid)
            try:
                _, token = Service.open(env, fetch=refuse).token_for(CENTRAL_HOST)
                answer, code = f"ok {token.secret}", 0
            except XecrError as exc:
                answer = f"error {exc}"
            os.write(writer, answer.encode())
        finally:
            os._exit(code)
    os.close(writer)
    deadline = time.monotonic() + timeout
    while os.waitpid(pid, os.WNOHANG) == (0, 0):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise AssertionError("the child get did not finish")
        time.sleep(0.02)
    with os.fdopen(reader, "rb") as pipe:
        return pipe.read().decode()


@pytest.mark.skipif(
    os.geteuid() != 0,
    reason="needs root: the daemon runs as root and the reader is forked as another user",
)
@pytest.mark.slow
def test_machine_setup_root_daemon_serves_the_docker_group(
    fake_aws: FakeAws, spawn: Callable[..., Proc], monkeypatch: pytest.MonkeyPatch
) -> None:
    gid = _docker_gid()
    # A world-traversable place: pytest's own tmp folders are closed to other users.
    base = Path(tempfile.mkdtemp(prefix="xecr-machine-"))
    try:
        base.chmod(0o755)
        etc = base / "etc"
        etc.mkdir(mode=0o755)
        (etc / "config.toml").write_text(registries(CENTRAL_HOST))
        (etc / "config.toml").chmod(0o644)
        var = base / "cache"
        var.mkdir(mode=0o700)  # as the unit's ExecStartPre makes it: root's alone
        monkeypatch.setenv("XECR_SYSTEM_CONFIG", str(etc / "config.toml"))
        monkeypatch.setenv("XECR_SYSTEM_CACHE_DIR", str(var))
        proc = spawn().ready()
        assert folder() == str(var)
        wait_for(lambda: cached(CENTRAL_HOST) is not None, 15, "the root daemon's token")
        info = var.stat()
        assert (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid) == (0o750, 0, gid)
        entries = [p for p in var.iterdir() if p.name.startswith("token-") and p.suffix == ".json"]
        assert entries
        for entry in entries:
            info = entry.stat()
            assert (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid) == (0o640, 0, gid)
        env = dict(os.environ, AWS_ENDPOINT_URL=closed_url())
        nobody = 65534
        assert _get_as(nobody, [gid], env) == f"ok {CENTRAL}-auth-token"
        outsider = _get_as(nobody, [], env)
        assert outsider.startswith("error ") and "must not be called" in outsider
        code, _ = proc.signal_and_wait(signal.SIGTERM)
        assert code == 0
    finally:
        shutil.rmtree(base, ignore_errors=True)


# -- "done when": 30 s of gets with AWS unreachable for them, across an 8 s outage ----------


@pytest.mark.slow
def test_done_when_gets_are_served_for_30s_and_the_daemon_survives_an_8s_outage(
    fake_aws: FakeAws, write_config: Callable[[str], Path], spawn: Callable[..., Proc]
) -> None:
    fake_aws.token_ttl = 20.0
    write_config(registries(CENTRAL_HOST))
    proc = spawn().ready()
    wait_for(lambda: cached(CENTRAL_HOST) is not None, 15, "the first token")
    first = cached(CENTRAL_HOST)
    assert first is not None
    endpoint = closed_url()
    results: list[tuple[float, subprocess.CompletedProcess[str]]] = []
    stop = threading.Event()

    def pull_forever() -> None:
        while not stop.is_set():
            when = time.time()
            try:
                results.append((when, get(CENTRAL_HOST, endpoint)))
            except subprocess.TimeoutExpired as exc:
                results.append((when, subprocess.CompletedProcess(exc.cmd, -9, "", "timeout")))
            # Past half-life each `get` takes the token's lock for a quick refresh of its
            # own; back to back they could keep the daemon from it for the whole outage.
            stop.wait(0.25)

    puller = threading.Thread(target=pull_forever, daemon=True)
    began = time.monotonic()
    puller.start()
    try:
        # Wait for the first refresh, then go down 5.5 s into that token's life: the
        # daemon's next refresh (10-12 s) and its retries fall in the outage, which
        # ends 4.5 s before the token stops being served (18 s) to leave room for them.
        wait_for(
            lambda: (cached(CENTRAL_HOST) or first).issued_at > first.issued_at,
            20,
            "the first refresh",
        )
        second = cached(CENTRAL_HOST)
        assert second is not None and refresh.state(second, time.time()) == refresh.FRESH
        time.sleep(max(0.0, second.issued_at + 5.5 - time.time()))
        fake_aws.go_down()
        down_at = time.time()
        time.sleep(8.0)
        fake_aws.come_up()
        up_at = time.time()
        assert proc.popen.poll() is None, "the outage stopped the daemon"
        wait_for(
            lambda: (cached(CENTRAL_HOST) or second).issued_at > up_at,
            10,
            "a refresh after the outage, without a restart",
        )
        remaining = 30.0 - (time.monotonic() - began)
        if remaining > 0:
            time.sleep(remaining)
    finally:
        stop.set()
        puller.join(timeout=40)
    failed = [
        (round(when - down_at, 1), r.stdout + r.stderr) for when, r in results if not served(r)
    ]
    assert not failed, (failed, proc.stderr())
    assert len(results) >= 20 and results[-1][0] - results[0][0] >= 29.0
    assert any(down_at <= when <= up_at for when, _ in results), "no get during the outage"
    # Its refresh fell due in the outage (by 12 s into the token's life) and came
    # only once AWS was back: it kept trying through it. Whether a failure was
    # logged depends on botocore's own retries outlasting the outage's end.
    assert down_at < second.issued_at + 10.0 and second.issued_at + 12.0 < up_at
    third = cached(CENTRAL_HOST)
    assert third is not None and third.issued_at > up_at
    errors = [line for line in proc.stderr().splitlines() if "failed (attempt" in line]
    assert all("cannot reach" in line or "did not answer" in line for line in errors), errors
    assert lock.is_running(folder()) == proc.pid
    code, took = proc.signal_and_wait(signal.SIGTERM)
    assert code == 0 and took < 5
