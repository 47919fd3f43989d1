"""scripts/demo.sh, the README's shorter tour: it runs from a checkout whose venv is
already set up (no network) and leaves nothing behind in the temporary folder, whether
it ends normally or is interrupted (issue 21, item 10)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import wait_for

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A checkout of the demo whose .venv is the one running these tests."""
    venv = Path(sys.prefix)
    if sys.prefix == sys.base_prefix or not (venv / "bin" / "xecr").exists():
        pytest.skip("the tests do not run from a venv with xecr installed")
    tree = tmp_path / "checkout"
    (tree / "scripts").mkdir(parents=True)
    for name in ("demo.sh", "demo.py"):
        shutil.copy2(ROOT / "scripts" / name, tree / "scripts" / name)
    (tree / "tests").symlink_to(ROOT / "tests")
    (tree / ".venv").symlink_to(venv)
    return tree


def _env(tmp: Path) -> dict[str, str]:
    tmp.mkdir()
    return {**os.environ, "TMPDIR": str(tmp)}


def test_the_demo_runs_and_removes_its_files(checkout: Path, tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    done = subprocess.run(
        ["bash", str(checkout / "scripts" / "demo.sh")],
        env=_env(tmp),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "cached get" in done.stdout
    assert list(tmp.glob("xecr-demo-*")) == []


def test_an_interrupted_demo_removes_its_files(checkout: Path, tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    proc = subprocess.Popen(
        ["bash", str(checkout / "scripts" / "demo.sh")],
        env=_env(tmp),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(lambda: list(tmp.glob("xecr-demo-*/home")), timeout=120, what="the demo's home")
        time.sleep(0.5)
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the whole foreground group
        assert proc.wait(timeout=60) != 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    assert list(tmp.glob("xecr-demo-*")) == []
