"""The wheel and sdist: what PyPI would take, installed the way users do
(a fresh venv, by file), answering as the console scripts."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.release.conftest import artifact, version

pytestmark = pytest.mark.slow


def test_wheel_installs_into_a_clean_venv_and_answers(dist: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    wheel = artifact(dist, "xecr-{version}-py3-none-any.whl")
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", str(wheel)],
        check=True,
        timeout=600,
    )
    shown = subprocess.run(
        [str(venv / "bin" / "xecr"), "--version"], capture_output=True, text=True, timeout=60
    )
    assert shown.stdout.strip() == f"xecr {version()}"
    not_ours = subprocess.run(
        [str(venv / "bin" / "docker-credential-xecr"), "get"],
        input="registry.example.com\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert not_ours.returncode == 1
    assert not_ours.stdout == "credentials not found in native keychain\n"


def test_wheel_metadata_is_complete_and_names_no_placeholder(dist: Path) -> None:
    wheel = artifact(dist, "xecr-{version}-py3-none-any.whl")
    with zipfile.ZipFile(wheel) as archive:
        [meta] = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        text = archive.read(meta).decode()
        names = archive.namelist()
    for field in ("Name: xecr", f"Version: {version()}", "Requires-Python: >=3.11",
                  "License-Expression: Apache-2.0", "Requires-Dist: boto3",
                  "Description-Content-Type: text/markdown"):  # fmt: skip
        assert field in text
    assert "example.com/" not in text.split("\n\n", 1)[0]
    assert "ecr_helper/py.typed" in names
    assert not [n for n in names if n.startswith("tests/")]


def test_sdist_carries_what_a_packager_needs(dist: Path) -> None:
    with tarfile.open(artifact(dist, "xecr-{version}.tar.gz")) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    for needed in ("pyproject.toml", "LICENSE", "README.md", "ecr_helper/cli/__init__.py",
                   "tests/conftest.py", "release/launcher.c", "scripts/release.sh"):  # fmt: skip
        assert needed in names
    assert not [n for n in names if n.startswith((".git/", ".venv/", "dist/", "build/"))]


def test_sha256sums_lists_every_artifact(dist: Path) -> None:
    import hashlib

    listed = {}
    for line in (dist / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split("  ")
        listed[name] = digest
    present = {p.name for p in dist.iterdir() if p.name != "SHA256SUMS"}
    assert set(listed) == present
    for name, digest in listed.items():
        assert hashlib.sha256((dist / name).read_bytes()).hexdigest() == digest
    assert len(present) == 6
