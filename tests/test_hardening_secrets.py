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

import base64
import json
import os
import re
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import CENTRAL, CENTRAL_HOST, PULL_ROLE
from tests.fakeaws import FakeAws

HELPER = "docker-credential-xecr"
XECR = "xecr"
CONFIG = textwrap.dedent(f"""\
    [defaults]
    region = "us-east-1"

    [registries."{CENTRAL_HOST}"]
    role_arn = "{PULL_ROLE}"
""")
PASSWORD = f"{CENTRAL}-auth-token"
ANSWER = {"ServerURL": CENTRAL_HOST, "Username": "AWS", "Secret": PASSWORD}
# Shaped like a real secret access key (40 base64 characters), so the log
# filter's shape rule is exercised as well as the registered-secret rule.
SHAPED_SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKY"
_ENTRY = re.compile(r"(?:token-[0-9a-f]{32}\.json|\.token-[0-9a-f]{32}\.json\.\d+\.[0-9a-f]+\.tmp)")


@dataclass(frozen=True)
class Result:
    """One finished subprocess."""

    args: tuple[str, ...]
    returncode: int
    stdout: bytes
    stderr: bytes
    elapsed: float

    @property
    def out(self) -> str:
        return self.stdout.decode("utf-8", "replace")

    @property
    def err(self) -> str:
        return self.stderr.decode("utf-8", "replace")

    def answer(self) -> object:
        return json.loads(self.stdout)


def run(
    args: Sequence[str],
    stdin: bytes | int | None = b"",
    *,
    timeout: float = 30.0,
    env: Mapping[str, str] | None = None,
    extra_env: Mapping[str, str] | None = None,
    preexec_fn: Callable[[], None] | None = None,
) -> Result:
    """Run an executable in the isolated environment (plus ``extra_env``).

    ``stdin`` is bytes to send, or a file descriptor to read from.
    """
    environ = dict(os.environ if env is None else env)
    environ.update(extra_env or {})
    start = time.monotonic()
    if isinstance(stdin, bytes):
        proc = subprocess.run(
            list(args),
            input=stdin,
            capture_output=True,
            env=environ,
            timeout=timeout,
            preexec_fn=preexec_fn,
            check=False,
        )
    else:
        proc = subprocess.run(
            list(args),
            stdin=stdin,
            capture_output=True,
            env=environ,
            timeout=timeout,
            preexec_fn=preexec_fn,
            check=False,
        )
    return Result(tuple(args), proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start)


def get(host: str = CENTRAL_HOST, **kwargs: object) -> Result:
    """``docker-credential-xecr get`` for ``host``, as Docker sends it."""
    return run([HELPER, "get"], host.encode() + b"\n", **kwargs)  # type: ignore[arg-type]


def assert_answers(result: Result, answer: Mapping[str, str] = ANSWER) -> None:
    """A successful ``get``: exit 0, exactly the JSON answer, nothing on stderr."""
    assert result.returncode == 0, (result.out, result.err)
    assert result.answer() == answer
    assert result.out.count("\n") == 1
    assert result.stderr == b""


def assert_one_line_failure(result: Result, *needles: str, stream: str = "stdout") -> str:
    """Exit 1, exactly one non-empty line on ``stream``, the other stream empty,
    no traceback anywhere. Returns the line."""
    text, other = (result.out, result.stderr) if stream == "stdout" else (result.err, result.stdout)
    assert result.returncode == 1, (result.returncode, result.out, result.err)
    assert "Traceback" not in result.out and "Traceback" not in result.err
    assert text.endswith("\n") and text.count("\n") == 1, repr(text)
    line = text.rstrip("\n")
    assert line.strip(), "the failure line is empty"
    assert other == b"", other
    for needle in needles:
        assert needle in line, (needle, line)
    return line


def moto_session_secrets() -> set[str]:
    """Secret keys and session tokens of every role the fake (moto) has handed out."""
    from moto.sts.models import sts_backends

    found: set[str] = set()
    for per_account in list(dict.values(sts_backends)):
        for backend in list(dict.values(per_account)):
            for role in list(backend.assumed_roles):
                found.update((role.secret_access_key, role.session_token))
    return found


def known_secrets(fake: FakeAws | None = None, env: Mapping[str, str] | None = None) -> set[str]:
    """Every secret a scenario may have put in reach of xecr: the source secret
    key, each registry password the fake issued (and its base64 form), and
    every AssumeRole secret key and session token."""
    environ = os.environ if env is None else env
    ids = {CENTRAL}
    if fake is not None:
        for request in fake.requests("GetAuthorizationToken"):
            ids.update(str(i) for i in request.params.get("registryIds") or [])
    secrets = {environ["AWS_SECRET_ACCESS_KEY"], SHAPED_SECRET_KEY}
    for registry_id in ids:
        password = f"{registry_id}-auth-token"
        secrets.add(password)
        secrets.add(base64.b64encode(f"AWS:{password}".encode()).decode())
    secrets.update(moto_session_secrets())
    return {s for s in secrets if s}


def _is_cache_entry(path: Path) -> bool:
    return _ENTRY.fullmatch(path.name) is not None


def assert_private_entry(path: Path) -> None:
    """A token cache entry: a regular 0600 file in a 0700 folder, both ours."""
    info = path.lstat()
    assert stat.S_ISREG(info.st_mode), f"{path} is not a regular file"
    assert stat.S_IMODE(info.st_mode) == 0o600, f"{path} has mode {stat.S_IMODE(info.st_mode):o}"
    assert info.st_uid == os.geteuid()
    folder = path.parent.lstat()
    assert stat.S_ISDIR(folder.st_mode)
    assert stat.S_IMODE(folder.st_mode) == 0o700, (
        f"{path.parent} has mode {stat.S_IMODE(folder.st_mode):o}"
    )


def assert_no_secrets(
    secrets: Iterable[str],
    roots: Iterable[Path] = (),
    outputs: Iterable[bytes] = (),
) -> list[Path]:
    """No secret in any output, nor in any file under ``roots`` except the cache
    entries, which must be private. Returns the cache entries seen."""
    needles = sorted({s.encode() for s in secrets if s})
    assert needles
    for index, output in enumerate(outputs):
        for needle in needles:
            assert needle not in output, f"a secret ({needle[:6]!r}...) is in output #{index}"
    entries: list[Path] = []
    for root in roots:
        for folder, dirs, files in os.walk(root):
            for name in files:
                path = Path(folder, name)
                info = path.lstat()
                if not stat.S_ISREG(info.st_mode):
                    continue
                if _is_cache_entry(path):
                    assert_private_entry(path)
                    entries.append(path)
                    continue
                data = path.read_bytes()
                for needle in needles:
                    assert needle not in data, f"a secret ({needle[:6]!r}...) is in {path}"
            dirs.sort()
    return entries


def scan(
    fake: FakeAws | None, root: Path, results: Iterable[Result], answered: Iterable[Result] = ()
) -> list[Path]:
    """The usual post-scenario check: stderr of every run, stdout of every run
    that did not answer with a token (``answered``), every file under ``root``."""
    answered_ids = {id(r) for r in answered}
    outputs: list[bytes] = []
    for result in results:
        outputs.append(result.stderr)
        if id(result) not in answered_ids:
            outputs.append(result.stdout)
    return assert_no_secrets(known_secrets(fake), [root], outputs)


def log_text(home: Path) -> str:
    """Every xecr log file under ``home`` (the current one and its rotations)."""
    logs = sorted((home / ".local" / "state" / "xecr" / "log").glob("xecr.log*"))
    return "".join(p.read_text(errors="replace") for p in logs)


def cache_folder(home: Path) -> Path:
    return home / ".cache" / "xecr"


def token_entries(folder: Path) -> list[Path]:
    return sorted(folder.glob("token-*.json"))


_WARM: dict[str, bytes] = {}


def warm_entry(home: Path) -> tuple[Path, list[Result]]:
    """A whole cache entry for CONFIG's registry, as a real ``get`` wrote it, and
    a ``get`` that served it. The first call fetches; later calls copy that
    entry (its key holds no per-test path), saving a boto3 start-up per test."""
    folder = cache_folder(home)
    if not _WARM:
        first = get()
        assert_answers(first)
        [entry] = token_entries(folder)
        _WARM[entry.name] = entry.read_bytes()
        return entry, [first]
    [(name, data)] = _WARM.items()
    folder.mkdir(parents=True, mode=0o700, exist_ok=True)
    entry = folder / name
    entry.write_bytes(data)
    entry.chmod(0o600)
    served = get()
    assert_answers(served)
    return entry, [served]


# ---------------------------------------------------------------------------
# The tests of this module
# ---------------------------------------------------------------------------


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
