"""Issue 7 point 4, through the installed executables: no token, secret key or
session token ever reaches stdout (except a successful ``get``'s answer, or
``get-login-password``, whose job it is), stderr, the log, or any file but the
0600 cache entries in their 0700 folder; and the log filter redacts them.

This module also owns the helpers the other hardening tests share: running
``docker-credential-xecr``/``xecr`` as subprocesses in the isolated environment
(:func:`run`, :func:`get`), the one-line failure check, and the secret scan
(:func:`known_secrets`, :func:`assert_no_secrets`) that every hardening test
runs after its scenario.
"""

from __future__ import annotations

import json
import stat
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fakeaws import FakeAws
from tests.helpers import (
    CENTRAL_HOST,
    CONFIG,
    HELPER,
    PASSWORD,
    SHAPED_SECRET_KEY,
    XECR,
    Result,
    assert_answers,
    assert_no_secrets,
    assert_one_line_failure,
    cache_folder,
    get,
    known_secrets,
    log_text,
    run,
    scan,
    token_entries,
)

# Every test here starts the installed executables (or a shell script).
pytestmark = pytest.mark.slow


@pytest.fixture
def debug_env(monkeypatch: pytest.MonkeyPatch, fake_aws: FakeAws) -> FakeAws:
    """DEBUG logging and a secret key shaped like a real one."""
    monkeypatch.setenv("XECR_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SHAPED_SECRET_KEY)
    return fake_aws


def _age(entry: Path, *, served_for: float, left: float) -> None:
    """Rewrite a cache entry as if issued ``served_for`` seconds ago with ``left`` to go."""
    body = json.loads(entry.read_bytes())
    now = time.time()
    body["issued_at"], body["expires_at"] = now - served_for, now + left
    tmp = entry.with_name(entry.name + ".test")
    tmp.write_text(json.dumps(body))
    tmp.chmod(0o600)
    tmp.replace(entry)


def test_debug_log_and_every_output_hold_no_secret(
    debug_env: FakeAws, write_config: Callable[[str], Path], isolated_env: Path, tmp_path: Path
) -> None:
    fake = debug_env
    write_config(CONFIG)
    results: list[Result] = []
    answered: list[Result] = []

    def step(result: Result, ok: bool) -> Result:
        results.append(result)
        if ok:
            assert_answers(result)
            answered.append(result)
        return result

    step(get(), ok=True)  # cold: AssumeRole + GetAuthorizationToken at DEBUG
    step(get(), ok=True)  # warm
    entry = token_entries(cache_folder(isolated_env))[0]
    # Past half-life, every refresh failure is logged (at DEBUG, with botocore's text).
    for action, kind in (
        ("AssumeRole", "access_denied"),
        ("GetAuthorizationToken", "access_denied"),
        ("AssumeRole", "expired_token"),
        ("GetAuthorizationToken", "invalid_client_token"),
        ("GetAuthorizationToken", "server_error"),
    ):
        _age(entry, served_for=3600, left=3000)
        fake.fail(action, kind)
        step(get(), ok=True)
        fake.clear_faults()
    # Cold-cache failures, whose tracebacks go to the log at DEBUG.
    step(run([HELPER, "erase"], CENTRAL_HOST.encode()), ok=False)
    for action, kind in (
        ("AssumeRole", "access_denied"),
        ("GetAuthorizationToken", "expired_token"),
    ):
        fake.fail(action, kind)
        assert_one_line_failure(step(get(), ok=False))
        fake.clear_faults()
    fake.go_down()
    assert_one_line_failure(step(get(), ok=False), "cannot reach AWS STS")
    fake.come_up()
    # People's commands.
    login = step(run([XECR, "login"]), ok=False)
    assert login.returncode == 0, login.err
    password = run([XECR, "get-login-password", CENTRAL_HOST])
    assert password.returncode == 0 and password.out == PASSWORD + "\n"
    results.append(password)
    answered.append(password)  # printing the password is that command's job
    assert step(run([HELPER, "list"]), ok=False).returncode == 0
    assert step(run([XECR, "logout"]), ok=False).returncode == 0
    log = log_text(isolated_env)
    assert "DEBUG" in log and "assumed" in log  # the scan below did read a debug log
    assert "early refresh" in log
    scan(fake, tmp_path, results, answered)


def test_cache_log_and_config_copy_are_private(
    fake_aws: FakeAws, write_config: Callable[[str], Path], isolated_env: Path, tmp_path: Path
) -> None:
    write_config(CONFIG)
    first = get()
    assert_answers(first)
    folder = cache_folder(isolated_env)
    entries = scan(fake_aws, tmp_path, [first], [first])
    assert entries == token_entries(folder) and len(entries) == 1
    assert PASSWORD.encode() in entries[0].read_bytes()  # the one place it may be
    for path in folder.iterdir():  # lock files and the parsed config copy too
        assert stat.S_IMODE(path.lstat().st_mode) == 0o600, path
    log = isolated_env / ".local" / "state" / "xecr" / "log"
    assert stat.S_IMODE(log.lstat().st_mode) == 0o700
    assert stat.S_IMODE((log / "xecr.log").lstat().st_mode) == 0o600


def test_secret_scan_can_fail(tmp_path: Path) -> None:
    """The scan this whole suite relies on does catch a leak, and a loose entry."""
    (tmp_path / "leak.txt").write_text(f"oops {PASSWORD}")
    with pytest.raises(AssertionError, match=r"leak\.txt"):
        assert_no_secrets(known_secrets(), [tmp_path])
    (tmp_path / "leak.txt").unlink()
    with pytest.raises(AssertionError, match="output #1"):
        assert_no_secrets(known_secrets(), [], [b"fine", PASSWORD.encode()])
    folder = tmp_path / "cache"
    folder.mkdir(mode=0o700)
    loose = folder / f"token-{'a' * 32}.json"
    loose.write_text(PASSWORD)
    loose.chmod(0o644)
    with pytest.raises(AssertionError, match="mode 644"):
        assert_no_secrets(known_secrets(), [tmp_path])
    loose.chmod(0o600)
    assert assert_no_secrets(known_secrets(), [tmp_path]) == [loose]


_REDACTION_SCRIPT = textwrap.dedent("""\
    import os, sys
    from ecr_helper import log
    registered, shaped_key, shaped_token = sys.argv[1:4]
    log.register_secret(registered)
    log.info(f"registered secret in a message: {registered} (end)")
    log.warning(f"an access key pair: AKIAFAKEFAKEFAKE0001 / {shaped_key}")
    log.info(f"sts answered {shaped_token} (end)")
    log.info("a config line: password = hunter2hunter2")
    try:
        raise RuntimeError(f"failure carrying {registered}")
    except RuntimeError:
        log.error("unexpected error", exc_info=True)
    log.debug(f"debug detail {registered}")
    print("done")
""")


def test_log_filter_redacts_secrets_end_to_end(tmp_path: Path, isolated_env: Path) -> None:
    """The real file handler in a real process: registered secrets, secret-key
    and session-token shapes, ``password = ...`` and tracebacks are redacted."""
    registered = "registered-secret-value-1234"
    shaped_token = "IQoJb3JpZ2luX2VjE" + "Ab1+/" * 40
    result = run(
        [sys.executable, "-c", _REDACTION_SCRIPT, registered, SHAPED_SECRET_KEY, shaped_token],
        extra_env={"XECR_LOG_LEVEL": "DEBUG"},
    )
    assert result.returncode == 0 and result.out == "done\n", result.err
    log = log_text(isolated_env)
    for secret in (registered, SHAPED_SECRET_KEY, shaped_token, "hunter2hunter2"):
        assert secret not in log
    # Redacted, not dropped: every record is there, with the marker in place.
    assert log.count("***") >= 6
    for kept in (
        "registered secret in a message",
        "AKIAFAKEFAKEFAKE0001",
        "sts answered",
        "RuntimeError",
        "Traceback",
        "debug detail",
    ):
        assert kept in log
    assert_no_secrets({registered, shaped_token}, [tmp_path], [result.stdout, result.stderr])
