"""The process's streams at their worst, through the installed executables: stdin that
never delivers (or never closes), stdout closed or full, stdin closed, a log on a full
disk, deeply nested JSON to the kubelet mode, and XECR_CONFIG naming a FIFO. Each ends
within its bound with at most one line on stderr and no traceback."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import unavailable
from tests.fakeaws import FakeAws
from tests.helpers import (
    ANSWER,
    CENTRAL_HOST,
    HELPER,
    XECR,
    assert_answers,
    assert_one_line_failure,
    get,
    installed,
    run,
)

pytestmark = pytest.mark.slow

# stdin.FIRST_BYTE_WAIT and EOF_WAIT are 10 s; start-up on a loaded machine is extra.
STDIN_BOUND = 20.0
KUBELET_REQUEST = {
    "apiVersion": "credentialprovider.kubelet.k8s.io/v1",
    "kind": "CredentialProviderRequest",
    "image": f"{CENTRAL_HOST}/app:1",
}


def open_stdin(args: list[str], data: bytes) -> tuple[int, bytes, bytes, float]:
    """Run ``args`` with ``data`` written to a stdin that is never closed (``sleep 100 |``)."""
    read_end, write_end = os.pipe()
    started = time.monotonic()
    try:
        if data:
            os.write(write_end, data)
        proc = subprocess.run(args, stdin=read_end, capture_output=True, timeout=60, check=False)
    finally:
        os.close(read_end)
        os.close(write_end)
    return proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started


def test_a_get_whose_stdin_never_delivers_ends_with_one_line(configured: FakeAws) -> None:
    code, out, err, elapsed = open_stdin([installed(HELPER), "get"], b"")
    assert elapsed < STDIN_BOUND
    assert code == 1 and err == b""
    assert out.decode().count("\n") == 1 and b"nothing arrived on stdin" in out
    assert configured.counts() == {}


def test_the_kubelet_mode_answers_a_whole_request_while_stdin_stays_open(
    configured: FakeAws,
) -> None:
    code, out, err, elapsed = open_stdin(
        [installed(HELPER), "kubelet"], json.dumps(KUBELET_REQUEST).encode()
    )
    assert code == 0, err
    answer = json.loads(out)
    assert answer["auth"][CENTRAL_HOST]["password"] == ANSWER["Secret"]
    # It answered at once: not after an EOF wait (10 s) it had no reason to take.
    assert elapsed < STDIN_BOUND


def test_deeply_nested_json_to_the_kubelet_mode_is_an_input_error(configured: FakeAws) -> None:
    result = run([installed(HELPER), "kubelet"], b"[" * 30000 + b"]" * 30000, timeout=60)
    line = assert_one_line_failure(result, "nested too deeply", stream="stderr")
    assert "internal error" not in line
    assert configured.counts() == {}


def test_xecr_config_naming_a_fifo_is_refused(configured: FakeAws, tmp_path: Path) -> None:
    fifo = tmp_path / "config.fifo"
    os.mkfifo(fifo)
    result = get(extra_env={"XECR_CONFIG": str(fifo)}, timeout=60)
    assert_one_line_failure(result, str(fifo), "not a regular file")
    done = run([installed(XECR), "status"], extra_env={"XECR_CONFIG": str(fifo)}, timeout=60)
    assert_one_line_failure(done, "not a regular file", stream="stderr")
    assert configured.counts() == {}


# -- stdout closed or full, stdin closed -------------------------------------------------------


def with_streams(
    args: list[str], data: bytes, *, stdout: str, stdin_closed: bool = False
) -> tuple[int, bytes, bytes]:
    """Run ``args`` with stdout "closed" (no fd 1), "full" (/dev/full) or "pipe"."""

    def prepare() -> None:
        if stdout == "closed":
            os.close(1)
        if stdin_closed:
            os.close(0)

    target: int | None = subprocess.PIPE
    full = None
    if stdout == "full":
        full = open("/dev/full", "wb")  # noqa: SIM115 (closed below)
        target = full.fileno()
    try:
        proc = subprocess.run(
            args,
            input=None if stdin_closed else data,
            stdin=subprocess.DEVNULL if stdin_closed else None,
            stdout=target,
            stderr=subprocess.PIPE,
            preexec_fn=prepare,
            timeout=60,
            check=False,
        )
    finally:
        if full is not None:
            full.close()
    return proc.returncode, proc.stdout or b"", proc.stderr


@pytest.mark.parametrize("stdout", ["closed", "full"])
@pytest.mark.parametrize(
    "args, data",
    [
        ([HELPER, "get"], CENTRAL_HOST.encode() + b"\n"),
        ([HELPER, "version"], b""),
        ([XECR, "status"], b""),
        ([XECR, "--version"], b""),
    ],
)
def test_a_closed_or_full_stdout_is_one_line_on_stderr(
    configured: FakeAws, stdout: str, args: list[str], data: bytes
) -> None:
    code, _, err = with_streams([installed(args[0]), *args[1:]], data, stdout=stdout)
    assert b"Traceback" not in err and b"Exception ignored" not in err, err
    assert err.count(b"\n") <= 1, err
    if args[-1] != "--version":  # argparse's exit code stays its own
        assert code == 1 and b"cannot write the output" in err, (code, err)


@pytest.mark.parametrize(
    "verb, expected", [("version", b"docker-credential-xecr "), ("list", b"{")]
)
def test_version_and_list_work_with_stdin_closed(
    configured: FakeAws, verb: str, expected: bytes
) -> None:
    code, out, err = with_streams([installed(HELPER), verb], b"", stdout="pipe", stdin_closed=True)
    assert code == 0, (out, err)
    assert out.startswith(expected) and err == b""


# -- a log on a full disk --------------------------------------------------------------------


@pytest.fixture
def full_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A tiny tmpfs (root's, 0700) filled to the last byte, with an empty xecr.log in it."""
    point = tmp_path / "full"
    point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "xecr-full", str(point)],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    if mounted.returncode != 0:
        unavailable(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        log = point / "xecr.log"
        log.touch(mode=0o600)
        with open(point / "filler", "wb", buffering=0) as filler:
            try:
                while True:
                    filler.write(b"\0" * 4096)
            except OSError:
                pass
        yield point
    finally:
        subprocess.run(["umount", "-l", str(point)], capture_output=True, timeout=10, check=False)


def test_a_log_on_a_full_disk_costs_one_warning_line(configured: FakeAws, full_tmpfs: Path) -> None:
    env = {"XECR_LOG_DIR": str(full_tmpfs), "XECR_LOG_LEVEL": "DEBUG"}
    result = get(extra_env=env, timeout=60)  # a cold get: it logs several records
    assert result.returncode == 0, result.out
    assert result.answer() == ANSWER
    assert "Logging error" not in result.err and "Traceback" not in result.err
    assert result.err.count("\n") == 1, result.err
    assert "cannot write the log" in result.err and "No space left" in result.err
    assert_answers(get(extra_env={**env, "XECR_LOG_LEVEL": "INFO"}, timeout=60))
