"""The installed ``xecr daemon`` under a wall clock stepped back (NTP, a VM
restore), with libfaketime: its control file moves the daemon's and the
``get``'s wall clock while it runs, and leaves the monotonic clock alone,
as a real step does. Within seconds the daemon replaces the token the step
made look issued in the future, and a ``get`` on the stepped clock is
served it with AWS unreachable."""

from __future__ import annotations

import glob
import json
import os
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ecr_helper.daemon import schedule
from tests.fakeaws import FakeAws
from tests.helpers import CENTRAL_HOST, CONFIG, PASSWORD, installed, stop_gracefully, wait_for

LIBFAKETIME = sorted(
    glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1")
    + glob.glob("/usr/lib/faketime/libfaketimeMT.so.1")
)


def closed_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.mark.slow
@pytest.mark.skipif(not LIBFAKETIME, reason="libfaketime is not installed (Debian: faketime)")
@pytest.mark.parametrize("step", ["-600", "-3600"], ids=["-10min", "-1h"])
def test_a_clock_stepped_back_under_the_daemon_is_refreshed_within_seconds(
    fake_aws: FakeAws, write_config: Callable[[str], Path], tmp_path: Path, step: str
) -> None:
    write_config(CONFIG)
    control = tmp_path / "faketime"
    control.write_text("+0\n")
    env = dict(
        os.environ,
        LD_PRELOAD=LIBFAKETIME[0],
        FAKETIME_TIMESTAMP_FILE=str(control),
        FAKETIME_NO_CACHE="1",
        FAKETIME_DONT_FAKE_MONOTONIC="1",
    )
    err = tmp_path / "daemon.err"
    with err.open("wb") as out:
        proc = subprocess.Popen(
            [installed("xecr"), "daemon"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=out,
            env=env,
        )
    try:
        wait_for(lambda: fake_aws.calls("GetAuthorizationToken") == 1, 20, "the first token")
        time.sleep(1.0)
        control.write_text(f"{step}\n")
        wait_for(
            lambda: fake_aws.calls("GetAuthorizationToken") == 2,
            schedule.MAX_SLEEP + 15,
            "a refresh after the clock was stepped back",
        )
        # The pull after the step, on the stepped clock, with AWS unreachable.
        time.sleep(1.0)
        pulled = subprocess.run(
            [installed("docker-credential-xecr"), "get"],
            input=CENTRAL_HOST,
            capture_output=True,
            text=True,
            env=dict(env, AWS_ENDPOINT_URL=closed_url()),
            timeout=30,
        )
        assert pulled.returncode == 0, pulled.stderr
        assert json.loads(pulled.stdout)["Secret"] == PASSWORD
        assert proc.poll() is None, err.read_text()[-2000:]
    finally:
        stopped = stop_gracefully(proc)
    assert stopped == 0 and "Traceback" not in err.read_text()
