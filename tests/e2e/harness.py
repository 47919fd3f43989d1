"""Real-components harness: a private dockerd, an htpasswd docker-registry,
the docker CLI and skopeo, all on this machine and on loopback only.

Nothing here touches the machine's own Docker: every dockerd gets its own
data root, exec root (with its own containerd), socket, pid file and daemon
config (so ``/etc/docker/daemon.json`` is ignored), and no bridge, iptables
rules or IP forwarding. Registries listen on ``127.0.0.1`` only. Every
subprocess has a timeout, and every process started here is stopped by id.

``require_tool`` decides what a missing tool means: a skip on a developer's
machine, a failure when ``CI`` is set.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, NoReturn

import pytest

DEFAULT_TIMEOUT = 60.0
DOCKERD_START_TIMEOUT = 60.0
DOCKERD_STOP_TIMEOUT = 20.0
REGISTRY_START_TIMEOUT = 20.0
PROCESS_STOP_TIMEOUT = 10.0

REPO_ROOT = Path(__file__).resolve().parents[2]

# Places a tool may be found even when PATH lacks the sbin directories.
_EXTRA_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")

# Variables that would send the docker CLI or skopeo somewhere else.
_CLIENT_VARS_REMOVED = (
    "DOCKER_HOST",
    "DOCKER_CONTEXT",
    "DOCKER_TLS",
    "DOCKER_TLS_VERIFY",
    "DOCKER_CERT_PATH",
    "DOCKER_API_VERSION",
    "DOCKER_DEFAULT_PLATFORM",
    "DOCKER_CONTENT_TRUST",
    "DOCKER_CONTENT_TRUST_SERVER",
    "REGISTRY_AUTH_FILE",
    "CONTAINERS_REGISTRIES_CONF",
    "CONTAINERS_CONF",
    "CONTAINERS_POLICY_JSON",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
)

# --------------------------------------------------------------------------
# Tools: skip on a developer's machine, fail in CI.


def in_ci() -> bool:
    """True when ``CI`` is set to anything but an empty or false value."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no", "off")


def unavailable(reason: str) -> NoReturn:
    """Skip the test, or fail it when running in CI."""
    if in_ci():
        pytest.fail(f"e2e prerequisite missing in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def find_tool(name: str) -> str | None:
    """Full path of ``name`` on PATH or in the usual bin/sbin folders."""
    search = os.pathsep.join([os.environ.get("PATH", ""), *_EXTRA_PATH])
    return shutil.which(name, path=search)


def require_tool(name: str) -> str:
    """Full path of ``name``; skip (or fail in CI) when it is not installed."""
    found = find_tool(name)
    if found is None:
        unavailable(f"{name!r} is not installed (see tests/e2e/apt-packages.txt)")
    return found


def require_root() -> None:
    """dockerd needs root; skip (or fail in CI) without it."""
    if os.geteuid() != 0:
        unavailable("dockerd needs root to run")


# --------------------------------------------------------------------------
# Running commands.


class CommandFailed(AssertionError):
    """A command exited non-zero or timed out; the message holds its output."""

    def __init__(self, argv: Sequence[str], returncode: int | None, stdout: str, stderr: str):
        self.argv = list(argv)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        status = "timed out" if returncode is None else f"exited {returncode}"
        super().__init__(
            f"{' '.join(self.argv)} {status}\n"
            f"--- stdout (tail) ---\n{_tail(stdout)}\n--- stderr (tail) ---\n{_tail(stderr)}"
        )


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


def _text(data: str | bytes | None) -> str:
    if data is None:
        return ""
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return data


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    check: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command with a timeout; raise :class:`CommandFailed` if ``check``.

    A timeout always raises, whatever ``check`` says (the child is killed)."""
    try:
        done = subprocess.run(
            list(argv),
            env=dict(env) if env is not None else None,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=cwd,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise CommandFailed(argv, None, _text(exc.stdout), _text(exc.stderr)) from exc
    if check and done.returncode != 0:
        raise CommandFailed(argv, done.returncode, done.stdout, done.stderr)
    return done


def client_env(
    *,
    path_prepend: Sequence[Path] = (),
    extra: Mapping[str, str] | None = None,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """An environment for the docker CLI or skopeo: ``base`` (default: this
    process's environment) without variables that point elsewhere, with
    ``path_prepend`` first on PATH and ``extra`` on top."""
    env = dict(os.environ if base is None else base)
    for var in _CLIENT_VARS_REMOVED:
        env.pop(var, None)
    for var in list(env):
        if var.startswith("OTEL_"):
            del env[var]
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["DOCKER_CLI_HINTS"] = "false"
    path = [str(p) for p in path_prepend] + [env.get("PATH", os.defpath)]
    env["PATH"] = os.pathsep.join(path)
    if extra:
        env.update(extra)
    return env


# --------------------------------------------------------------------------
# Process control (only processes started here, by id).


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); treat it as gone.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return not _alive(pid)


def _stop_popen(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM, wait, then SIGKILL the process group the child leads."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            # start_new_session=True made the child a group leader, so its
            # group id is its own pid: kill that group, still unreaped.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=PROCESS_STOP_TIMEOUT)


def _mounts_under(*roots: Path) -> list[str]:
    """Mount points at or below any of ``roots``, deepest first."""
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    prefixes = [str(r.resolve()) for r in roots]
    found: list[str] = []
    for line in lines:
        parts = line.split()
        if len(parts) < 5:
            continue
        point = parts[4].encode().decode("unicode_escape")
        if any(point == p or point.startswith(p + "/") for p in prefixes):
            found.append(point)
    return sorted(set(found), key=len, reverse=True)


def _unmount_under(*roots: Path) -> None:
    umount = find_tool("umount")
    if umount is None:
        return
    for point in _mounts_under(*roots):
        with contextlib.suppress(CommandFailed):
            run([umount, "--lazy", point], check=False, timeout=10)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def short_tmpdir(prefix: str = "xe-") -> Path:
    """A fresh private folder with a short path (``/tmp/xe-XXXXXXXX``) for
    unix sockets, whose paths are limited to about 108 bytes."""
    base = "/tmp" if Path("/tmp").is_dir() else None
    return Path(tempfile.mkdtemp(prefix=prefix, dir=base))


# --------------------------------------------------------------------------
# dockerd


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, sock_path: Path, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._sock_path = str(sock_path)

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self._sock_path)
        self.sock = s


def _docker_ping(sock: Path, timeout: float = 2.0) -> bool:
    """True when the Engine API on ``sock`` answers ``GET /_ping`` with 200."""
    conn = _UnixHTTPConnection(sock, timeout)
    try:
        conn.request("GET", "/_ping")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def docker_cli_candidates() -> list[str]:
    """Docker CLIs to try, best first: ``$XECR_E2E_DOCKER_CLI``, ``docker`` on
    PATH, then Debian's ``/usr/bin/docker`` (which matches Debian's dockerd)."""
    out: list[str] = []
    for cand in (
        os.environ.get("XECR_E2E_DOCKER_CLI"),
        find_tool("docker"),
        "/usr/bin/docker",
    ):
        if (
            cand
            and os.access(cand, os.X_OK)
            and os.path.realpath(cand) not in {os.path.realpath(c) for c in out}
        ):
            out.append(cand)
    return out


@dataclass
class Dockerd:
    """A private dockerd (and the containerd it spawned)."""

    process: subprocess.Popen[bytes]
    argv: list[str]
    sock: Path
    short_dir: Path
    data_root: Path
    exec_root: Path
    workdir: Path
    log_path: Path
    cli: str = ""
    _log_file: IO[bytes] | None = field(default=None, repr=False)
    _stopped: bool = field(default=False, repr=False)

    @property
    def host(self) -> str:
        """The value for ``docker -H`` / ``DOCKER_HOST``."""
        return f"unix://{self.sock}"

    def log_tail(self, lines: int = 60) -> str:
        try:
            return _tail(self.log_path.read_text(errors="replace"), lines)
        except OSError:
            return "(no dockerd log)"

    def client(
        self,
        config_dir: Path,
        *,
        path_prepend: Sequence[Path] = (),
        extra_env: Mapping[str, str] | None = None,
    ) -> DockerClient:
        """A docker CLI bound to this daemon and to a private config folder."""
        config_dir.mkdir(parents=True, exist_ok=True)
        env = client_env(
            path_prepend=path_prepend,
            extra={"DOCKER_HOST": self.host, "DOCKER_CONFIG": str(config_dir), **(extra_env or {})},
        )
        return DockerClient(binary=self.cli, host=self.host, config_dir=config_dir, env=env)

    def _containerd_pid(self) -> int | None:
        pid_file = self.exec_root / "containerd" / "containerd.pid"
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        # Only a containerd that is ours: its command line names our exec root.
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            return None
        return pid if str(self.exec_root) in cmdline else None

    def stop(self, timeout: float = DOCKERD_STOP_TIMEOUT) -> None:
        """SIGTERM, wait, SIGKILL; then containerd, mounts and folders."""
        if self._stopped:
            return
        self._stopped = True
        containerd = self._containerd_pid()
        try:
            _stop_popen(self.process, timeout)
            if containerd is not None and _alive(containerd):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(containerd, signal.SIGTERM)
                if not _wait_gone(containerd, PROCESS_STOP_TIMEOUT):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(containerd, signal.SIGKILL)
                    _wait_gone(containerd, PROCESS_STOP_TIMEOUT)
        finally:
            if self._log_file is not None:
                self._log_file.close()
            _unmount_under(self.data_root, self.exec_root)
            shutil.rmtree(self.short_dir, ignore_errors=True)
            shutil.rmtree(self.data_root, ignore_errors=True)


def start_dockerd(
    workdir: Path,
    *,
    insecure_registries: Sequence[str] = (),
    timeout: float = DOCKERD_START_TIMEOUT,
) -> Dockerd:
    """Start a private dockerd and wait until a docker CLI talks to it.

    ``workdir`` holds the data root (vfs) and ``dockerd.log``; the socket,
    pid file, daemon config and exec root (containerd's sockets) go to a
    short ``/tmp/xe-*`` folder. 127.0.0.0/8 is an insecure (plain HTTP)
    registry range by default; ``insecure_registries`` adds more."""
    dockerd_bin = require_tool("dockerd")
    require_tool("containerd")
    require_root()
    workdir.mkdir(parents=True, exist_ok=True)
    short = short_tmpdir()
    data_root = workdir / "data-root"
    exec_root = short / "x"
    sock = short / "d.sock"
    daemon_json = short / "daemon.json"
    # Keeps the trust key out of /etc/docker/key.json (dockerd 20.10 writes it).
    daemon_json.write_text(json.dumps({"deprecated-key-path": str(short / "key.json")}))
    log_path = workdir / "dockerd.log"
    argv = [
        dockerd_bin,
        "--config-file", str(daemon_json),
        "--data-root", str(data_root),
        "--exec-root", str(exec_root),
        "--pidfile", str(short / "d.pid"),
        "--host", f"unix://{sock}",
        "--storage-driver=vfs",
        "--iptables=false",
        "--ip6tables=false",
        "--ip-forward=false",
        "--ip-masq=false",
        "--bridge=none",
        "--userland-proxy=false",
    ]  # fmt: skip
    for reg in insecure_registries:
        argv += ["--insecure-registry", reg]
    env = {
        "PATH": os.pathsep.join([os.environ.get("PATH", os.defpath), *_EXTRA_PATH]),
        "HOME": str(workdir),
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    log_file = log_path.open("wb")
    try:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    except BaseException:
        log_file.close()
        shutil.rmtree(short, ignore_errors=True)
        raise
    daemon = Dockerd(
        process=process,
        argv=argv,
        sock=sock,
        short_dir=short,
        data_root=data_root,
        exec_root=exec_root,
        workdir=workdir,
        log_path=log_path,
        _log_file=log_file,
    )
    try:
        daemon.cli = _wait_for_dockerd(daemon, timeout)
    except BaseException:
        daemon.stop()
        raise
    return daemon


def _wait_for_dockerd(daemon: Dockerd, timeout: float) -> str:
    """Wait for the API, then return the first docker CLI that answers."""
    deadline = time.monotonic() + timeout
    while not _docker_ping(daemon.sock):
        if daemon.process.poll() is not None:
            raise RuntimeError(
                f"dockerd exited with {daemon.process.returncode}\n"
                f"{' '.join(daemon.argv)}\n--- dockerd log ---\n{daemon.log_tail()}"
            )
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"dockerd did not answer within {timeout:.0f}s\n--- dockerd log ---\n"
                f"{daemon.log_tail()}"
            )
        time.sleep(0.1)
    errors: list[str] = []
    for cli in docker_cli_candidates():
        remaining = max(5.0, deadline - time.monotonic())
        try:
            run(
                [cli, "--host", daemon.host, "version", "--format", "{{.Server.Version}}"],
                env=client_env(),
                timeout=min(remaining, 30.0),
            )
        except CommandFailed as exc:
            errors.append(str(exc))
            continue
        return cli
    if not errors:
        unavailable("no docker CLI is installed (package docker.io or docker-cli)")
    raise RuntimeError("no docker CLI could talk to dockerd:\n" + "\n".join(errors))


@dataclass
class DockerClient:
    """The docker CLI bound to one daemon and one private ``DOCKER_CONFIG``."""

    binary: str
    host: str
    config_dir: Path
    env: dict[str, str]

    @property
    def config_path(self) -> Path:
        return self.config_dir / "config.json"

    def run(
        self,
        *args: str,
        check: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return run([self.binary, *args], env=self.env, input=input, check=check, timeout=timeout)

    def write_config(
        self,
        *,
        cred_helpers: Mapping[str, str] | None = None,
        creds_store: str | None = None,
        auths: Mapping[str, Mapping[str, str]] | None = None,
    ) -> Path:
        """Write ``config.json``; ``cred_helpers`` maps a registry host to
        the helper suffix (``{"127.0.0.1:5000": "xecr"}`` runs
        ``docker-credential-xecr`` from the CLI's PATH)."""
        return write_docker_config(
            self.config_dir, cred_helpers=cred_helpers, creds_store=creds_store, auths=auths
        )

    def read_config(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.config_path.read_text())
        return data

    def image_exists(self, ref: str) -> bool:
        return self.run("image", "inspect", ref, check=False, timeout=30).returncode == 0


def write_docker_config(
    config_dir: Path,
    *,
    cred_helpers: Mapping[str, str] | None = None,
    creds_store: str | None = None,
    auths: Mapping[str, Mapping[str, str]] | None = None,
) -> Path:
    """Write a docker ``config.json`` into ``config_dir`` and return its path."""
    config_dir.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {"auths": dict(auths or {})}
    if cred_helpers:
        data["credHelpers"] = dict(cred_helpers)
    if creds_store:
        data["credsStore"] = creds_store
    path = config_dir / "config.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    path.chmod(0o600)
    return path


def tiny_tarball(content: bytes = b"hello from xecr e2e\n", name: str = "hello.txt") -> bytes:
    """An uncompressed tar holding one small file (a root filesystem)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(name)
        info.size = len(content)
        info.mode = 0o644
        info.mtime = 0
        tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def make_tiny_image(
    docker: DockerClient, ref: str, *, content: bytes = b"hello from xecr e2e\n"
) -> str:
    """``docker import`` a one-file image tagged ``ref``; return its image id.
    Different ``content`` gives a different layer digest."""
    with tempfile.TemporaryDirectory(prefix="xe-img-") as tmp:
        tar_path = Path(tmp) / "rootfs.tar"
        tar_path.write_bytes(tiny_tarball(content))
        done = docker.run("import", str(tar_path), ref, timeout=DEFAULT_TIMEOUT)
    return done.stdout.strip()


# --------------------------------------------------------------------------
# docker-registry with htpasswd


@dataclass
class Registry:
    """A docker-registry (distribution v2) on 127.0.0.1 with basic auth."""

    process: subprocess.Popen[bytes]
    port: int
    username: str
    password: str
    root: Path
    config_path: Path
    log_path: Path
    _log_file: IO[bytes] | None = field(default=None, repr=False)
    _stopped: bool = field(default=False, repr=False)

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``: the registry part of an image reference."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def ref(self, repo: str, tag: str = "latest") -> str:
        return f"{self.host}/{repo}:{tag}"

    def log_tail(self, lines: int = 40) -> str:
        try:
            return _tail(self.log_path.read_text(errors="replace"), lines)
        except OSError:
            return "(no registry log)"

    def get(self, path: str, *, auth: tuple[str, str] | None = None) -> int:
        """Status code of ``GET path`` (optionally with basic auth)."""
        return _http_status(self.port, path, auth=auth)

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        try:
            _stop_popen(self.process, PROCESS_STOP_TIMEOUT)
        finally:
            if self._log_file is not None:
                self._log_file.close()


def _http_status(
    port: int, path: str, *, auth: tuple[str, str] | None = None, timeout: float = 2.0
) -> int:
    import base64

    headers = {}
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def _registry_config(root: Path, port: int, htpasswd: Path) -> str:
    # JSON is YAML: no YAML library needed, and paths need no quoting rules.
    config = {
        "version": 0.1,
        "log": {"level": "info", "formatter": "text"},
        "storage": {
            "filesystem": {"rootdirectory": str(root / "storage")},
            "delete": {"enabled": True},
            "maintenance": {"uploadpurging": {"enabled": False}},
        },
        "http": {
            "addr": f"127.0.0.1:{port}",
            "secret": secrets.token_hex(16),
            "headers": {"X-Content-Type-Options": ["nosniff"]},
        },
        "auth": {"htpasswd": {"realm": "xecr-e2e", "path": str(htpasswd)}},
        "health": {"storagedriver": {"enabled": False}},
    }
    return json.dumps(config, indent=2) + "\n"


def start_registry(
    workdir: Path,
    username: str,
    password: str,
    *,
    timeout: float = REGISTRY_START_TIMEOUT,
) -> Registry:
    """Start docker-registry on a free 127.0.0.1 port with one htpasswd user;
    return once ``GET /v2/`` answers 401."""
    registry_bin = require_tool("docker-registry")
    htpasswd_bin = require_tool("htpasswd")
    workdir.mkdir(parents=True, exist_ok=True)
    htpasswd = workdir / "htpasswd"
    done = run([htpasswd_bin, "-Bbn", username, password], timeout=30)
    htpasswd.write_text(done.stdout.strip() + "\n")
    last_error = ""
    for attempt in range(3):
        port = free_port()
        config_path = workdir / "config.yml"
        config_path.write_text(_registry_config(workdir, port, htpasswd))
        log_path = workdir / f"registry-{attempt}.log"
        log_file = log_path.open("wb")
        try:
            process = subprocess.Popen(
                [registry_bin, "serve", str(config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env={"PATH": os.environ.get("PATH", os.defpath), "HOME": str(workdir)},
                cwd=workdir,
                start_new_session=True,
            )
        except BaseException:
            log_file.close()
            raise
        reg = Registry(
            process=process,
            port=port,
            username=username,
            password=password,
            root=workdir,
            config_path=config_path,
            log_path=log_path,
            _log_file=log_file,
        )
        try:
            if _wait_for_registry(reg, timeout):
                return reg
        except BaseException:
            reg.stop()
            raise
        reg.stop()
        last_error = reg.log_tail()
        if "address already in use" not in last_error:
            break
    raise RuntimeError(f"docker-registry did not start\n--- registry log ---\n{last_error}")


def _wait_for_registry(reg: Registry, timeout: float) -> bool:
    """True once /v2/ answers 401; False if the process exited first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if reg.process.poll() is not None:
            return False
        try:
            status = reg.get("/v2/")
        except OSError:
            time.sleep(0.05)
            continue
        if status == 401:
            return True
        raise RuntimeError(f"registry /v2/ answered {status}, expected 401\n{reg.log_tail()}")
    raise RuntimeError(f"docker-registry did not answer within {timeout:.0f}s\n{reg.log_tail()}")


# --------------------------------------------------------------------------
# skopeo


def write_containers_auth(
    path: Path,
    *,
    cred_helpers: Mapping[str, str] | None = None,
    auths: Mapping[str, Mapping[str, str]] | None = None,
) -> Path:
    """Write a containers-auth.json(5) file (``--authfile`` /
    ``REGISTRY_AUTH_FILE``); ``credHelpers`` has the same meaning as in
    docker's config.json."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {"auths": dict(auths or {})}
    if cred_helpers:
        data["credHelpers"] = dict(cred_helpers)
    path.write_text(json.dumps(data, indent=2) + "\n")
    path.chmod(0o600)
    return path


@dataclass
class SkopeoClient:
    """skopeo with a private auth file and registries.conf."""

    binary: str
    authfile: Path
    env: dict[str, str]

    def run(
        self, *args: str, check: bool = True, timeout: float = DEFAULT_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        return run([self.binary, *args], env=self.env, check=check, timeout=timeout)

    def write_auth(
        self,
        *,
        cred_helpers: Mapping[str, str] | None = None,
        auths: Mapping[str, Mapping[str, str]] | None = None,
    ) -> Path:
        return write_containers_auth(self.authfile, cred_helpers=cred_helpers, auths=auths)

    def inspect(
        self, ref: str, *, use_env: bool = False, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """``skopeo inspect --tls-verify=false docker://ref``, with the auth
        file given by ``--authfile`` or, if ``use_env``, ``REGISTRY_AUTH_FILE``."""
        argv = [self.binary, "inspect", "--tls-verify=false"]
        env = dict(self.env)
        if use_env:
            env["REGISTRY_AUTH_FILE"] = str(self.authfile)
        else:
            argv += ["--authfile", str(self.authfile)]
        return run([*argv, f"docker://{ref}"], env=env, check=check, timeout=DEFAULT_TIMEOUT)


def make_skopeo(
    workdir: Path,
    *,
    path_prepend: Sequence[Path] = (),
    extra_env: Mapping[str, str] | None = None,
) -> SkopeoClient:
    """A skopeo whose registries.conf is private (no system mirrors or
    credential-helper settings) and whose auth file is ``workdir/auth.json``."""
    binary = require_tool("skopeo")
    workdir.mkdir(parents=True, exist_ok=True)
    registries_conf = workdir / "registries.conf"
    registries_conf.write_text('unqualified-search-registries = []\nshort-name-mode = "disabled"\n')
    env = client_env(
        path_prepend=path_prepend,
        extra={"CONTAINERS_REGISTRIES_CONF": str(registries_conf), **(extra_env or {})},
    )
    return SkopeoClient(binary=binary, authfile=workdir / "auth.json", env=env)


# --------------------------------------------------------------------------
# A stand-in credential helper


@dataclass(frozen=True)
class HelperCall:
    action: str
    stdin: str


@dataclass(frozen=True)
class StubHelper:
    """``docker-credential-NAME``: answers ``get`` with fixed credentials and
    records every call (action and exact stdin) in ``log_path``."""

    name: str
    path: Path
    log_path: Path

    def calls(self) -> list[HelperCall]:
        if not self.log_path.exists():
            return []
        out = []
        for line in self.log_path.read_text().splitlines():
            rec = json.loads(line)
            out.append(HelperCall(action=rec["action"], stdin=rec["stdin"]))
        return out

    def get_calls(self) -> list[str]:
        """The stdin of every ``get``."""
        return [c.stdin for c in self.calls() if c.action == "get"]


_STUB_TEMPLATE = '''#!{python}
"""Stand-in docker credential helper written by tests/e2e/harness.py."""
import json
import sys

USERNAME = {username!r}
PASSWORD = {password!r}
LOG = {log!r}


def main() -> int:
    action = sys.argv[1] if len(sys.argv) > 1 else ""
    data = sys.stdin.read()
    with open(LOG, "a", encoding="utf-8") as log:
        log.write(json.dumps({{"action": action, "stdin": data}}) + "\\n")
    if action == "get":
        if PASSWORD is None:
            sys.stdout.write("credentials not found in native keychain\\n")
            return 1
        json.dump({{"ServerURL": data.strip(), "Username": USERNAME, "Secret": PASSWORD}},
                  sys.stdout)
        return 0
    if action == "list":
        json.dump({{}}, sys.stdout)
        return 0
    if action in ("store", "erase"):
        return 0
    if action == "version":
        sys.stdout.write("stub 0\\n")
        return 0
    sys.stdout.write("unknown action\\n")
    return 1


sys.exit(main())
'''


def make_stub_helper(
    bin_dir: Path,
    *,
    name: str = "stub",
    username: str,
    password: str | None,
    log_path: Path | None = None,
) -> StubHelper:
    """Write ``bin_dir/docker-credential-NAME``. ``password=None`` makes
    ``get`` answer "credentials not found" (exit 1), like a real helper."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    path = bin_dir / f"docker-credential-{name}"
    log = log_path or bin_dir / f"docker-credential-{name}.calls.jsonl"
    path.write_text(
        _STUB_TEMPLATE.format(
            python=sys.executable, username=username, password=password, log=str(log)
        )
    )
    path.chmod(0o755)
    return StubHelper(name=name, path=path, log_path=log)


_XECR_SHIM = """#!{python}
# docker-credential-xecr from this checkout, run by the tests' interpreter.
import sys

sys.path.insert(0, {root!r})
from ecr_helper.cli import run

run()
"""


def make_xecr_helper(bin_dir: Path, *, name: str = "docker-credential-xecr") -> Path:
    """Write ``bin_dir/docker-credential-xecr`` running this checkout's
    ``ecr_helper.cli:run`` with the interpreter running the tests (which has
    the dependencies), whatever ``python3`` on PATH is. Put ``bin_dir`` first
    on the docker CLI's PATH and map hosts to ``"xecr"`` in ``credHelpers``."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    path = bin_dir / name
    path.write_text(_XECR_SHIM.format(python=sys.executable, root=str(REPO_ROOT)))
    path.chmod(0o755)
    return path
