"""Shared by the bootstrap tests: how to run packaging/ec2/bootstrap.sh
against a scratch root (never systemd, never the network), and what a root holds."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

from tests.helpers import CENTRAL, PULL_ROLE

REPO = Path(__file__).resolve().parent.parent
PACKAGING = REPO / "packaging"
BOOTSTRAP = PACKAGING / "ec2" / "bootstrap.sh"
SYSTEM_UNIT = PACKAGING / "systemd" / "xecr.service"
USER_UNIT = PACKAGING / "systemd" / "xecr-user.service"
PLIST = PACKAGING / "launchd" / "com.xecr.daemon.plist"
XECR = str(Path(sys.executable).parent / "xecr")

BASE_ARGS = ["--role-arn", PULL_ROLE, "--registry-id", CENTRAL, "--region", "us-east-1"]
OTHER_DOCKER_CONFIG = {
    "auths": {"registry.example.com": {"auth": "dXNlcjpwYXNz"}},
    "credsStore": "desktop",
    "credHelpers": {"gcr.io": "gcloud"},
    "proxies": {"default": {"httpProxy": "http://127.0.0.1:3128"}},
}


def bootstrap(root: Path | None, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "XECR_BOOTSTRAP_SKIP_INSTALL": "1", **env}
    command = ["bash", str(BOOTSTRAP), *args]
    if root is not None:
        command += ["--root", str(root)]
    return subprocess.run(command, capture_output=True, text=True, env=environ, timeout=60)


def listing(root: Path) -> list[tuple[object, ...]]:
    """What a checksum listing shows: every path's kind, mode, link target, bytes and mtime."""
    rows: list[tuple[object, ...]] = []
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        rel = str(path.relative_to(root))
        mode = oct(stat.S_IMODE(info.st_mode))
        if stat.S_ISLNK(info.st_mode):
            rows.append((rel, "link", os.readlink(path)))
        elif stat.S_ISDIR(info.st_mode):
            rows.append((rel, "dir", mode, info.st_uid, info.st_gid))
        else:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            rows.append((rel, "file", mode, info.st_uid, info.st_gid, digest, info.st_mtime_ns))
    return rows


def make_scratch(tmp_path: Path) -> Path:
    """A scratch root with a Docker config for root that has other things in it."""
    root = tmp_path / "root"
    docker = root / "root" / ".docker"
    docker.mkdir(parents=True, mode=0o700)
    (docker / "config.json").write_text(json.dumps(OTHER_DOCKER_CONFIG, indent=2))
    (docker / "config.json").chmod(0o640)
    return root


def image_python(root: Path) -> Path:
    """Put this Python's interpreter at its own path inside ROOT, as an image would have it."""
    base = Path(getattr(sys, "_base_executable", sys.executable))
    inside = root / base.relative_to("/")
    inside.parent.mkdir(parents=True, exist_ok=True)
    if not inside.exists():
        shutil.copy2(base.resolve(), inside)
    return inside
