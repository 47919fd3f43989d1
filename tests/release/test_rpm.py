"""The .rpm: its file list, no dependency on the host's Python or glibc, the
user's /etc/xecr/config.toml left alone, and its files working once unpacked."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path

import pytest

from tests.e2e import harness
from tests.release.conftest import artifact, version

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def rpm_file(dist: Path) -> Path:
    harness.require_tool("rpm")
    return artifact(dist, "xecr-{version}-1.*.rpm")


def query(rpm_file: Path, *what: str) -> list[str]:
    out = subprocess.run(
        ["rpm", "-qp", *what, str(rpm_file)], capture_output=True, text=True, timeout=60, check=True
    )
    return out.stdout.splitlines()


def test_file_list(rpm_file: Path) -> None:
    files = set(query(rpm_file, "-l"))
    for path in (
        "/usr/bin/xecr",
        "/usr/bin/docker-credential-xecr",
        "/usr/lib/systemd/system/xecr.service",
        "/usr/lib/systemd/user/xecr.service",
        "/usr/libexec/kubernetes/kubelet-plugins/credential-provider/exec/docker-credential-xecr",
        "/usr/lib/xecr/bin/xecr",
        "/usr/share/doc/xecr/README.md",
        "/usr/share/doc/xecr/examples/config.toml",
        "/etc/xecr",
    ):
        assert path in files
    assert "/etc/xecr/config.toml" not in files  # the user's: never removed by an erase
    assert query(rpm_file, "--qf", "%{ARCH} %{VERSION}-%{RELEASE}\\n") == [
        f"{platform.machine()} {version()}-1"
    ]


def test_requires_nothing_of_the_host(rpm_file: Path) -> None:
    required = [r for r in query(rpm_file, "-R") if not r.startswith("rpmlib(")]
    assert not [r for r in required if "python" in r or "libc.so" in r], required


def test_unpacked_files_run(rpm_file: Path, tmp_path: Path) -> None:
    harness.require_tool("rpm2cpio")
    harness.require_tool("cpio")
    subprocess.run(
        f"rpm2cpio '{rpm_file}' | cpio -idm --quiet",
        shell=True,
        cwd=tmp_path,
        check=True,
        timeout=120,
    )
    unit = (tmp_path / "usr/lib/systemd/system/xecr.service").read_text()
    assert "ExecStart=/usr/bin/xecr daemon" in unit
    shown = subprocess.run(
        [str(tmp_path / "usr/bin/xecr"), "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/nonexistent", "HOME": str(tmp_path)},
    )
    assert shown.stdout == f"xecr {version()}\n", shown.stderr
