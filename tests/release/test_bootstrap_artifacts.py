"""packaging/ec2/bootstrap.sh with the real artifacts, building an image root
(``--root DIR``): what it installs works once DIR is the machine's /, checked
by running it inside DIR with chroot (its own /proc, nothing of the host's)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import CENTRAL, CENTRAL_HOST, PULL_ROLE
from tests.release.conftest import REPO, artifact, version

pytestmark = pytest.mark.slow

BOOTSTRAP = REPO / "packaging" / "ec2" / "bootstrap.sh"
ARGS = ["--role-arn", PULL_ROLE, "--registry-id", CENTRAL, "--region", "us-east-1", "--no-enable"]


def bootstrap(root: Path, source: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XECR_BOOTSTRAP")}
    return subprocess.run(
        ["bash", str(BOOTSTRAP), *ARGS, "--root", str(root), "--source", str(source), *extra],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def in_chroot(root: Path, *argv: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """ARGV run with ROOT as /, a fresh /proc, and an environment naming nothing outside."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare for a chroot with its own /proc")
    (root / "proc").mkdir(exist_ok=True)
    (root / "tmp").mkdir(exist_ok=True)
    mount, chroot = shutil.which("mount"), shutil.which("chroot")
    script = f'{mount} -t proc proc "{root}/proc" && exec {chroot} "{root}" "$@"'
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": "/root",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
    }
    return subprocess.run(
        ["unshare", "--mount", "--fork", "sh", "-c", script, "chroot", *argv],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def assert_works_inside(root: Path, helper: str) -> None:
    shown = in_chroot(root, helper, "version")
    assert shown.returncode == 0 and version() in shown.stdout, shown.stderr
    # The machine-wide config bootstrap wrote is the one the helper reads there:
    # the registry is known (AWS is out of reach, so the get fails naming it).
    got = in_chroot(root, helper, "get", stdin=CENTRAL_HOST)
    assert got.returncode == 1
    assert got.stdout != "credentials not found in native keychain\n"
    assert f"xecr: {CENTRAL_HOST}:" in got.stderr


def test_bundle_into_an_image_root(dist: Path, tmp_path: Path) -> None:
    tarball = artifact(dist, "xecr-{version}-linux-*.tar.gz")
    digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
    root = tmp_path / "image"
    done = bootstrap(root, tarball, "--sha256", digest)
    assert done.returncode == 0, done.stderr
    assert (root / "etc/xecr/config.toml").is_file()
    assert_works_inside(root, "/usr/local/bin/docker-credential-xecr")
    again = bootstrap(root, tarball, "--sha256", digest)
    assert again.returncode == 0 and "unchanged" in again.stdout


@pytest.mark.parametrize("pattern", ["xecr_{version}-1_*.deb", "xecr-{version}-1.*.rpm"])
def test_system_package_into_an_image_root(dist: Path, tmp_path: Path, pattern: str) -> None:
    if pattern.endswith(".rpm") and not (shutil.which("rpm2cpio") and shutil.which("cpio")):
        pytest.fail("rpm2cpio and cpio are needed (tests/e2e/apt-packages.txt)")
    root = tmp_path / "image"
    done = bootstrap(root, artifact(dist, pattern))
    assert done.returncode == 0, done.stderr
    unit = (root / "etc/systemd/system/xecr.service").read_text()
    assert "ExecStart=/usr/bin/xecr daemon" in unit
    assert_works_inside(root, "/usr/bin/docker-credential-xecr")
