"""Constants and helpers shared by the test modules (nothing imports ``conftest``).

Running ``docker-credential-xecr``/``xecr`` as subprocesses in the isolated
environment (:func:`run`, :func:`get`), finding the installed executables
(:func:`installed`), the one-line failure check, and the secret scan
(:func:`known_secrets`, :func:`assert_no_secrets`) that every hardening test
runs after its scenario.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import re
import shutil
import stat
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ecr_helper.config import RegistrySettings
from ecr_helper.daemon import loop
from ecr_helper.token import Token
from tests.fakeaws import FakeAws

CENTRAL = "111111111111"
CENTRAL_HOST = f"{CENTRAL}.dkr.ecr.us-east-1.amazonaws.com"
PULL_ACCOUNT = "222222222222"
PULL_ROLE = f"arn:aws:iam::{PULL_ACCOUNT}:role/ecr-pull"


def make_token(
    secret: str = "secret-0123456789",
    now: float | None = None,
    ttl: float = 43200.0,
    role: str | None = PULL_ROLE,
    *,
    host: str = CENTRAL_HOST,
    registry_id: str = CENTRAL,
    region: str = "us-east-1",
) -> Token:
    """A token for the central registry (by default), issued ``now``, living ``ttl`` seconds."""
    issued = time.time() if now is None else now
    return Token("AWS", secret, issued, issued + ttl, host, registry_id, region, role)


def token_of(settings: RegistrySettings, secret: str, issued: float, ttl: float) -> Token:
    """The token a fetch for ``settings`` would return: what the test fetch fakes answer."""
    return Token(
        "AWS",
        secret,
        issued,
        issued + ttl,
        settings.host,
        settings.registry_id,
        settings.region,
        settings.role_arn,
    )


def wait_for(predicate: Callable[[], object], timeout: float = 3.0, what: str = "it") -> None:
    """Poll ``predicate`` until it holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def serve_daemon(d: loop.Daemon) -> tuple[queue.SimpleQueue[str], threading.Thread]:
    """Open ``d`` and serve it on a thread; :func:`stop_daemon` ends it."""
    commands: queue.SimpleQueue[str] = queue.SimpleQueue()
    d.open()
    thread = threading.Thread(target=d.serve, args=(commands,), daemon=True)
    thread.start()
    return commands, thread


def stop_daemon(commands: queue.SimpleQueue[str], thread: threading.Thread) -> None:
    """Send STOP and require the daemon's thread to end within 10 s."""
    commands.put(loop.STOP)
    thread.join(timeout=10)
    assert not thread.is_alive(), "the daemon did not stop within 10 s"


def installed(name: str) -> str:
    """The path of an installed executable: beside this interpreter (the venv), else on PATH.

    Fails the test (never skips) when it is missing: the tests drive what a user installs.
    """
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    assert found, f"{name} is not installed (pip install -e .)"
    return found


HELPER = "docker-credential-xecr"
XECR = "xecr"
CONFIG = textwrap.dedent(f"""\
    [defaults]
    region = "us-east-1"

    [registries."{CENTRAL_HOST}"]
    role_arn = "{PULL_ROLE}"
""")
# The fake answers ECR's way: the caller's token (PULL_ROLE's account), whichever
# registry it is for.
PASSWORD = f"{PULL_ACCOUNT}-auth-token"
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
    args = list(args)
    if args and args[0] in (HELPER, XECR):
        args[0] = installed(args[0])
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
    no traceback anywhere. Returns the line.

    A failed ``get`` for a registry xecr serves also says the line on stderr,
    prefixed ``xecr: `` (what pulls show); that echo, and only it, is allowed."""
    text, other = (result.out, result.stderr) if stream == "stdout" else (result.err, result.stdout)
    assert result.returncode == 1, (result.returncode, result.out, result.err)
    assert "Traceback" not in result.out and "Traceback" not in result.err
    assert text.endswith("\n") and text.count("\n") == 1, repr(text)
    line = text.rstrip("\n")
    assert line.strip(), "the failure line is empty"
    if stream == "stdout" and result.args[-1:] == ("get",) and other:
        echo = result.err
        assert echo.startswith("xecr: ") and echo.count("\n") == 1, repr(echo)
        assert line.removeprefix("xecr get: ") in echo, (line, echo)
    else:
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
    key, each registry password the fake issued (ECR Public's too, and each one's
    base64 form), and every AssumeRole secret key and session token."""
    environ = os.environ if env is None else env
    passwords = {PASSWORD}
    if fake is not None:
        from moto.iam.models import get_account_id_from

        for request in fake.requests("GetAuthorizationToken"):
            # The fake's tokens are the caller's, as ECR's are (ECR Public's too).
            account = get_account_id_from(request.access_key_id or "")
            if request.service == "ecr-public":
                passwords.add(f"ecr-public-{account}-auth-token")
            else:
                passwords.add(f"{account}-auth-token")
    secrets = {environ["AWS_SECRET_ACCESS_KEY"], SHAPED_SECRET_KEY}
    for password in passwords:
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


def current_key(host: str = CENTRAL_HOST) -> str:
    """The cache key a ``get`` for ``host`` uses in this test's environment."""
    from ecr_helper import cache, config

    return cache.cache_key(config.load(os.environ).resolve(host), os.environ)


def warm_entry(home: Path) -> tuple[Path, list[Result]]:
    """A whole cache entry for CONFIG's registry, as a real ``get`` wrote it, and
    a ``get`` that served it. The first call fetches; later calls copy that
    entry under this test's key (which holds the per-test HOME), saving a boto3
    start-up per test."""
    folder = cache_folder(home)
    if not _WARM:
        first = get()
        assert_answers(first)
        [entry] = token_entries(folder)
        _WARM["entry"] = entry.read_bytes()
        return entry, [first]
    data = _WARM["entry"]
    folder.mkdir(parents=True, mode=0o700, exist_ok=True)
    entry = folder / f"token-{current_key()}.json"
    entry.write_bytes(data)
    entry.chmod(0o600)
    served = get()
    assert_answers(served)
    return entry, [served]


# ---------------------------------------------------------------------------
# The tests of this module
# ---------------------------------------------------------------------------


def passing_probes(now: float, lifetime: float = 43200.0) -> Any:
    """doctor's live checks, all passing: for tests about doctor's other lines."""
    from ecr_helper.setup import doctor

    def identity(region: str, profile: str | None) -> str:
        return "arn:aws:iam::123456789012:user/dev"

    def assume(settings: RegistrySettings) -> None:
        return None

    def token(settings: RegistrySettings) -> Token:
        return Token("AWS", "pw", now, now + lifetime, settings.host, settings.registry_id)

    return doctor.Probes(identity, assume, token)


def stop_gracefully(proc: subprocess.Popen[Any], timeout: float = 15.0) -> int:
    """SIGTERM, then the exit status; SIGKILL (and a failing status) past TIMEOUT."""
    import signal

    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
        return -9
