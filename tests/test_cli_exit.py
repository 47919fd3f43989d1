"""How the console scripts end (``ecr_helper.cli.run``): after a protocol verb has
answered, without the interpreter's teardown, unless something still needs it (an
``atexit`` hook, another thread); after a people's command, the normal way. Each case
runs ``run()`` in a child interpreter that owns an object whose finalizer says on
stderr whether the teardown happened."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.fakeaws import FakeAws
from tests.helpers import ANSWER, CENTRAL_HOST, installed

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
FINALIZED = "teardown ran"

PROLOGUE = textwrap.dedent(f"""\
    import sys
    sys.path.insert(0, {str(REPO)!r})

    class Witness:
        def __del__(self):
            sys.stderr.write({FINALIZED!r} + "\\n")

    witness = Witness()
    """)


def run_program(
    argv0: str, args: list[str], stdin: bytes, setup: str = "", stdout: int | None = None
) -> subprocess.CompletedProcess[bytes]:
    code = (
        f"{PROLOGUE}{setup}\nsys.argv = [{argv0!r}, *{args!r}]\n"
        "from ecr_helper.cli import run\nrun()\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        input=stdin,
        stdout=stdout if stdout is not None else subprocess.PIPE,
        stderr=subprocess.PIPE,
        timeout=60,
        check=False,
    )


def test_a_cached_get_answers_then_ends_without_the_teardown(configured: FakeAws) -> None:
    # The first get fetches: boto3 imports logging, whose atexit hook keeps the normal exit.
    first = run_program("docker-credential-xecr", ["get"], CENTRAL_HOST.encode())
    assert first.returncode == 0, first.stderr
    assert FINALIZED in first.stderr.decode()
    done = run_program("docker-credential-xecr", ["get"], CENTRAL_HOST.encode())
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == ANSWER
    assert done.stdout.count(b"\n") == 1
    assert FINALIZED not in done.stderr.decode()
    assert configured.calls("GetAuthorizationToken") == 1


def test_a_protocol_failure_keeps_its_exit_code_and_line(configured: FakeAws) -> None:
    done = run_program("docker-credential-xecr", ["get"], b"registry.example.com\n")
    assert done.returncode == 1
    assert done.stdout == b"credentials not found in native keychain\n"
    assert FINALIZED not in done.stderr.decode()


def test_an_atexit_hook_keeps_the_normal_exit(configured: FakeAws) -> None:
    setup = "import atexit\natexit.register(lambda: sys.stderr.write('hook ran\\n'))"
    done = run_program("docker-credential-xecr", ["get"], CENTRAL_HOST.encode(), setup)
    assert done.returncode == 0, done.stderr
    assert "hook ran" in done.stderr.decode()
    assert FINALIZED in done.stderr.decode()


def test_another_live_thread_keeps_the_normal_exit(configured: FakeAws) -> None:
    setup = textwrap.dedent("""\
        import threading, time
        def late():
            time.sleep(0.5)
            sys.stderr.write("thread ended\\n")
        threading.Thread(target=late).start()
        """)
    done = run_program("docker-credential-xecr", ["get"], CENTRAL_HOST.encode(), setup)
    assert done.returncode == 0, done.stderr
    assert "thread ended" in done.stderr.decode()


def test_a_peoples_command_ends_the_normal_way(configured: FakeAws) -> None:
    done = run_program("xecr", ["version"], b"")
    assert done.returncode == 0, done.stderr
    assert FINALIZED in done.stderr.decode()


def test_a_full_stdout_still_fails_the_fast_exit(configured: FakeAws) -> None:
    with open("/dev/full", "wb") as full:
        done = run_program("docker-credential-xecr", ["version"], b"", stdout=full.fileno())
    assert done.returncode == 1
    lines = done.stderr.decode().splitlines()
    assert [line for line in lines if "cannot write the output" in line], lines
    assert FINALIZED not in done.stderr.decode()


def test_the_installed_scripts_enter_through_run() -> None:
    for name in ("docker-credential-xecr", "xecr"):
        script = Path(installed(name)).read_text()
        assert "import run" in script, f"{name} does not call ecr_helper.cli:run"
