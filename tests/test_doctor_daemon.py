"""ecr_helper.setup.doctor_daemon: a running daemon that fails to refresh, or whose tokens are
past their refresh point, is a warning naming the registry and the reason, never
``PASS daemon: running`` (issue 21, item 3)."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ecr_helper import cache, config
from ecr_helper.daemon import lock
from ecr_helper.setup import doctor, doctor_daemon
from ecr_helper.token import Token
from tests.fakeaws import FakeAws
from tests.helpers import (
    CENTRAL,
    CENTRAL_HOST,
    PULL_ROLE,
    XECR,
    installed,
    passing_probes,
    run,
    wait_for,
)

NOW = 1_800_000_000.0
LIFETIME = 43200.0
OTHER_HOST = "222222222222.dkr.ecr.us-east-1.amazonaws.com"


@pytest.fixture
def two_registries(write_config: Callable[[str], Path]) -> None:
    write_config(
        f'[registries."{CENTRAL_HOST}"]\nrole_arn = "{PULL_ROLE}"\n[registries."{OTHER_HOST}"]\n'
    )


@pytest.fixture
def running(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lock, "is_running", lambda folder: 4321)


def _store() -> tuple[cache.TokenCache, config.Config]:
    loaded = config.load(os.environ)
    return cache.open_cache(loaded, os.environ), loaded


def _key(loaded: config.Config, host: str) -> str:
    return cache.cache_key(loaded.resolve(host), os.environ)


def _write(host: str, issued: float) -> None:
    store, loaded = _store()
    settings = loaded.resolve(host)
    token = Token(
        "AWS", "pw-secret", issued, issued + LIFETIME, host, settings.registry_id, "us-east-1"
    )
    store.write(_key(loaded, host), token)


def _daemon(now: float = NOW, *registries: str) -> doctor.Check:
    checks = doctor.run(
        dict(os.environ), registries, passing_probes(NOW, LIFETIME), lambda: now, docker=False
    )
    [check] = [c for c in checks if c.name == "daemon"]
    return check


def test_a_daemon_keeping_fresh_tokens_passes(two_registries: None, running: None) -> None:
    _write(CENTRAL_HOST, NOW - 100)
    _write(OTHER_HOST, NOW - 100)
    assert _daemon().line() == "PASS daemon: running (pid 4321)"


def test_a_failed_last_refresh_is_a_warning_naming_registry_and_reason(
    two_registries: None, running: None
) -> None:
    _write(CENTRAL_HOST, NOW - 100)
    store, loaded = _store()
    reason = f"AssumeRole denied for {PULL_ROLE} (AccessDenied): check that role's trust policy"
    store.note_failure(_key(loaded, OTHER_HOST), reason, NOW - 30)
    check = _daemon()
    assert check.warning_only and not check.ok
    assert check.line().startswith(
        f"WARN daemon: running (pid 4321), but the last refresh of {OTHER_HOST} failed: {reason}"
    )
    assert CENTRAL_HOST not in check.detail
    assert "the checks above show which link fails" in check.hint and "HUP" not in check.hint
    # a warning: the run fails only on a failure
    assert doctor.passed(
        doctor.run(dict(os.environ), (), passing_probes(NOW, LIFETIME), lambda: NOW, docker=False)
    )


def test_a_failure_older_than_the_token_is_over(two_registries: None, running: None) -> None:
    store, loaded = _store()
    store.note_failure(_key(loaded, CENTRAL_HOST), "AssumeRole denied", NOW - 500)
    _write(CENTRAL_HOST, NOW - 100)  # then a refresh succeeded
    assert _daemon().ok


def test_a_token_past_its_refresh_point_is_a_warning(two_registries: None, running: None) -> None:
    # Refreshed at half-life plus at most 10 % of the lifetime: 60 % is its latest.
    _write(CENTRAL_HOST, NOW - 0.6 * LIFETIME + 60)
    assert _daemon().ok, "inside the jitter window and the grace"
    _write(CENTRAL_HOST, NOW - 0.6 * LIFETIME - 3600)
    check = _daemon()
    assert check.warning_only and not check.ok
    assert f"the token of {CENTRAL_HOST} is 1h0m past its refresh point" in check.detail
    assert "takes it on reload (kill -HUP 4321)" in check.hint
    _write(CENTRAL_HOST, NOW - LIFETIME - 60)
    assert "(expired: pulls ask AWS themselves)" in _daemon().detail


def test_only_the_registries_asked_about_are_looked_at(two_registries: None, running: None) -> None:
    store, loaded = _store()
    store.note_failure(_key(loaded, OTHER_HOST), "AccessDenied", NOW - 30)
    assert _daemon(NOW, CENTRAL_HOST).ok
    assert not _daemon(NOW, OTHER_HOST).ok


def test_the_refresh_deadline_is_half_life_plus_the_largest_jitter() -> None:
    token = Token("AWS", "pw", 1000.0, 1000.0 + LIFETIME, CENTRAL_HOST, CENTRAL)
    assert doctor_daemon.refresh_deadline(token) == 1000.0 + 0.6 * LIFETIME


# -- the installed daemon and doctor -----------------------------------------------------------


@pytest.fixture
def daemon_proc(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


@pytest.mark.slow
def test_the_installed_doctor_warns_about_a_daemon_that_fails(
    write_config: Callable[[str], Path],
    fake_aws: FakeAws,
    tmp_path: Path,
    daemon_proc: list[subprocess.Popen[bytes]],
) -> None:
    write_config(f'[registries."{CENTRAL_HOST}"]\nrole_arn = "{PULL_ROLE}"\n')
    fake_aws.fail("AssumeRole", "access_denied", match={"RoleArn": PULL_ROLE})
    with (tmp_path / "daemon.err").open("wb") as err:
        proc = subprocess.Popen(
            [installed(XECR), "daemon"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=dict(os.environ),
        )
    daemon_proc.append(proc)
    folder = cache.file_cache(os.environ, False).folder
    assert folder is not None
    note = Path(folder) / f"token-{_key(config.load(os.environ), CENTRAL_HOST)}.fail"
    wait_for(lambda: note.exists() or proc.poll() is not None, 30, "the daemon's first failure")
    assert proc.poll() is None, (tmp_path / "daemon.err").read_text()
    done = run([XECR, "doctor", "--no-docker"], timeout=60)
    [line] = [x for x in done.out.splitlines() if x.startswith(("PASS daemon", "WARN daemon"))]
    assert line.startswith(
        f"WARN daemon: running (pid {proc.pid}), but the last refresh of {CENTRAL_HOST} "
        f"failed: AssumeRole denied for {PULL_ROLE} (AccessDenied)"
    ), line
    # It recovers: once AWS lets the role be assumed, the warning goes.
    fake_aws.clear_faults()
    run([XECR, "login", CENTRAL_HOST], timeout=60)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done = run([XECR, "doctor", "--no-docker"], timeout=60)
        if f"PASS daemon: running (pid {proc.pid})" in done.out:
            break
    assert f"PASS daemon: running (pid {proc.pid})" in done.out, done.out
