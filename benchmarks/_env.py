"""Throwaway surroundings for the benchmarks: a real pip install of xecr in
its own venv, an isolated home and environment, a loopback fake AWS in its own
process, and a trap that catches any other network traffic.

Nothing here measures anything; ``bench_get.py`` (and any other benchmark)
builds on it. Every step is bounded by a timeout, and everything lives in one
temporary folder that the caller removes.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
CENTRAL = "111111111111"
CENTRAL_HOST = f"{CENTRAL}.dkr.ecr.{REGION}.amazonaws.com"
PULL_ROLE = "arn:aws:iam::222222222222:role/ecr-pull"
EXTERNAL_ID = "xecr-bench-external-id"
ACCESS_KEY = "AKIAFAKEFAKEFAKE0001"
SECRET_KEY = "fake-secret-key-for-benchmarks-only"
# What the fake's GetAuthorizationToken gives PULL_ROLE: the caller's token (its
# account's), valid for every registry of the region, as ECR answers.
EXPECTED_SECRET = "222222222222-auth-token"

CONFIG = f"""\
[defaults]
region = "{REGION}"

[registries."{CENTRAL_HOST}"]
role_arn = "{PULL_ROLE}"
external_id = "{EXTERNAL_ID}"
"""


class BenchError(Exception):
    """A step of the benchmark failed; the message says which and why."""


def _run(
    cmd: list[str], *, timeout: float, env: dict[str, str] | None = None, cwd: Path | None = None
) -> str:
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd, check=False
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"{' '.join(cmd[:4])} ... took more than {timeout:.0f}s") from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-15:]
        raise BenchError(f"{' '.join(cmd[:4])} ... failed ({done.returncode}):\n" + "\n".join(tail))
    return done.stdout


@dataclass(frozen=True)
class Venv:
    root: Path
    python: Path
    site_packages: Path

    def script(self, name: str) -> Path:
        return self.root / "bin" / name


def base_env() -> dict[str, str]:
    """The variables every measured process starts from: no PYTHON*, no AWS_*, no proxies."""
    keep = ("PATH", "LANG", "LC_ALL", "TERM", "TZ")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.setdefault("LANG", "C.UTF-8")
    return env


def build_venv(base: Path, *, system_pth: bool = False, timeout: float = 600.0) -> Venv:
    """A venv with xecr really installed (a wheel, not editable), byte-compiled.

    The venv is made with ``--system-site-packages`` so boto3 and the other
    dependencies come from this machine with ``--no-deps``. Unless
    ``system_pth``, it is then cut loose from the system site-packages' ``.pth``
    hooks (which on this machine import certifi and an editable-install finder
    at every start-up, costs no user's venv pays) and sees those packages as a
    plain path entry instead, after its own.
    """
    src = base / "src"
    src.mkdir()
    shutil.copy2(REPO / "pyproject.toml", src)
    shutil.copy2(REPO / "README.md", src)
    for extra in ("LICENSE", "LICENSE.txt", "NOTICE"):
        if (REPO / extra).exists():
            shutil.copy2(REPO / extra, src)
    # A copy, so pip's in-tree build leaves the work tree untouched.
    shutil.copytree(
        REPO / "ecr_helper",
        src / "ecr_helper",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    root = base / "venv"
    env = base_env()
    _run(
        [sys.executable, "-m", "venv", "--system-site-packages", str(root)],
        timeout=timeout,
        env=env,
    )
    python = root / "bin" / "python"
    _run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-cache-dir",
            "--disable-pip-version-check",
            str(src),
        ],
        timeout=timeout,
        env=env,
    )
    site = Path(
        _run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            timeout=60,
            env=env,
        ).strip()
    )
    # pip compiles on install, but PYTHONDONTWRITEBYTECODE may be set here: make sure.
    _run([str(python), "-m", "compileall", "-q", str(site / "ecr_helper")], timeout=120, env=env)
    if not system_pth:
        system_site = _run(
            [sys.executable, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            timeout=60,
            env=env,
        ).strip()
        cfg = root / "pyvenv.cfg"
        cfg.write_text(
            cfg.read_text().replace(
                "include-system-site-packages = true", "include-system-site-packages = false"
            )
        )
        (site / "_bench_system_site.pth").write_text(system_site + "\n")
    venv = Venv(root, python, site)
    where = _run(
        [str(python), "-c", "import ecr_helper, boto3; print(ecr_helper.__file__)"],
        timeout=120,
        env=env,
        cwd=base,
    ).strip()
    if not where.startswith(str(site)):
        raise BenchError(f"the venv imports ecr_helper from {where}, not from its own install")
    if not venv.script("docker-credential-xecr").exists():
        raise BenchError("pip did not create the docker-credential-xecr console script")
    return venv


def isolated_env(base: Path, venv: Venv, endpoint: str, trap: Trap) -> dict[str, str]:
    """A private home and fake identity; AWS at ``endpoint``; everything else into the trap.

    The proxies point at the trap, so any HTTP(S) that does not go straight to
    127.0.0.1 (instance metadata, a real AWS endpoint) lands there and is counted.
    """
    home = base / "home"
    for sub in (".config/xecr", ".cache", ".local/state", ".local/share", ".docker", ".aws"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    (home / ".config" / "xecr" / "config.toml").write_text(CONFIG)
    run_dir = base / "run"
    run_dir.mkdir(mode=0o700, exist_ok=True)
    env = base_env()
    env["PATH"] = f"{venv.root / 'bin'}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
    env.update(
        {
            "HOME": str(home),
            "USER": "bench",
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "XDG_STATE_HOME": str(home / ".local" / "state"),
            "XDG_DATA_HOME": str(home / ".local" / "share"),
            "XDG_RUNTIME_DIR": str(run_dir),
            "DOCKER_CONFIG": str(home / ".docker"),
            "AWS_CONFIG_FILE": str(home / ".aws" / "config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(home / ".aws" / "credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ENDPOINT_URL": endpoint,
            "XECR_SYSTEM_CONFIG": str(base / "etc" / "xecr" / "config.toml"),
            "XECR_SYSTEM_CACHE_DIR": str(base / "var" / "cache" / "xecr"),
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }
    )
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        env[var] = trap.url
    return env


def cache_dir(env: dict[str, str]) -> Path:
    """xecr's token cache folder for this environment (the XDG default)."""
    return Path(env["XDG_CACHE_HOME"]) / "xecr"


def clear_folder(folder: Path) -> None:
    """Delete what ``folder`` holds, keeping the folder (and its mode) itself."""
    if not folder.is_dir():
        return
    for entry in folder.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


class Trap:
    """A loopback listener that counts and drops every connection made to it."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self._sock.settimeout(0.2)
        self.port: int = self._sock.getsockname()[1]
        self._hits = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="trap", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def hits(self) -> int:
        with self._lock:
            return self._hits

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            with self._lock:
                self._hits += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._sock.close()


class FakeAwsProcess:
    """``python -m tests.fakeaws`` in its own process, so it does not share our CPU time slice."""

    def __init__(self, log_path: Path, ttl: float = 43200.0, start_timeout: float = 60.0) -> None:
        self._log = log_path.open("wb")
        cmd = [sys.executable, "-m", "tests.fakeaws", "--port", "0", "--ttl", str(ttl)]
        env = base_env()
        env["PYTHONPATH"] = str(REPO)
        self._proc = subprocess.Popen(
            cmd,
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=self._log,
            stdin=subprocess.DEVNULL,
        )
        self.url = self._first_line(start_timeout)
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _first_line(self, timeout: float) -> str:
        assert self._proc.stdout is not None
        deadline = time.monotonic() + timeout
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or self._proc.poll() is not None:
                self.stop()
                raise BenchError(
                    f"the fake AWS did not start within {timeout:.0f}s (see {self._log.name})"
                )
            ready, _, _ = select.select([self._proc.stdout], [], [], left)
            if ready:
                chunk = os.read(self._proc.stdout.fileno(), 1)
                if not chunk:
                    continue
                line += chunk
        url = line.decode().strip()
        if not url.startswith("http://127.0.0.1:"):
            self.stop()
            raise BenchError(f"the fake AWS printed {url!r}, not a loopback URL")
        return url

    def _control(self, method: str, path: str) -> Any:
        request = urllib.request.Request(
            self.url + path, method=method, data=b"{}" if method == "POST" else None
        )
        with self._opener.open(request, timeout=10) as answer:
            return json.loads(answer.read())

    def calls(self) -> dict[str, int]:
        return dict(self._control("GET", "/_fake/calls"))

    def requests(self) -> list[dict[str, Any]]:
        return list(self._control("GET", "/_fake/requests"))

    def reset(self) -> None:
        self._control("POST", "/_fake/reset")

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        with contextlib.suppress(OSError):
            self._log.close()
