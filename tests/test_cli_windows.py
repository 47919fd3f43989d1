"""``ecr_helper.cli.run`` on Windows: xecr needs POSIX, so both console scripts answer one
line on stderr and exit 1, never a traceback. Each case runs ``run()`` in a child
interpreter that believes it is on Windows (``sys.platform`` is ``"win32"`` before xecr
is imported) and where the POSIX-only modules cannot be imported."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.helpers import CENTRAL_HOST

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent

PROLOGUE = textwrap.dedent(f"""\
    import sys
    sys.path.insert(0, {str(REPO)!r})
    sys.platform = "win32"
    for name in ("fcntl", "grp", "pwd", "termios", "resource"):
        sys.modules[name] = None  # what Windows has of them: an import raises ImportError
    """)


@pytest.mark.parametrize(
    ("argv0", "args", "stdin"),
    [
        ("xecr", ["--version"], b""),
        ("xecr", ["status"], b""),
        ("docker-credential-xecr", ["get"], CENTRAL_HOST.encode()),
        ("docker-credential-xecr", ["list"], b""),
    ],
    ids=["xecr-version", "xecr-status", "helper-get", "helper-list"],
)
def test_windows_gets_one_line_and_exit_1(argv0: str, args: list[str], stdin: bytes) -> None:
    code = f"{PROLOGUE}sys.argv = [{argv0!r}, *{args!r}]\nfrom ecr_helper.cli import run\nrun()\n"
    done = subprocess.run(
        [sys.executable, "-c", code], input=stdin, capture_output=True, timeout=60, check=False
    )
    err = done.stderr.decode()
    assert done.returncode == 1, (done.stdout, err)
    assert "Traceback" not in err
    [line] = err.splitlines()
    assert "Windows is not supported" in line and "WSL2" in line
    assert done.stdout == b""
