"""Time bounds against a slow-drip endpoint (one byte every 3 s, never a read timeout),
through the installed executables: a cold ``get`` ends within 20 s, an early refresh
serves the cached token, and ``login``, ``get-login-password``, ``doctor``, the kubelet
mode and the daemon's refresh all end with one line. Bounds are correctness (a hang),
never speed: without the deadline a cold ``get`` ran for over 90 s."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ecr_helper.token import Token
from tests.fakeaws import FakeAws
from tests.helpers import (
    ANSWER,
    CENTRAL,
    CENTRAL_HOST,
    CONFIG,
    HELPER,
    PASSWORD,
    PULL_ROLE,
    XECR,
    assert_answers,
    assert_one_line_failure,
    cache_folder,
    current_key,
    get,
    installed,
)
from tests.trickle import Trickle

pytestmark = pytest.mark.slow

# README and SECURITY.md: a `get` that must fetch ends within 20 s; a refresh of a
# still-valid token within 5 s. The second is checked with room for a loaded machine
# (Python's start-up alone took over a second here): without the deadline it took 25 s.
COLD_BOUND = 20.0
EARLY_BOUND = 8.0


@pytest.fixture
def trickle(monkeypatch: pytest.MonkeyPatch) -> Iterator[Trickle]:
    with Trickle(3.0) as server:
        monkeypatch.setenv("AWS_ENDPOINT_URL", server.url)
        yield server


@pytest.fixture
def configured(write_config: Callable[[str], Path]) -> Path:
    return write_config(CONFIG)


def test_a_cold_get_against_a_slow_drip_ends_within_20_s(
    configured: Path, trickle: Trickle
) -> None:
    result = get(timeout=60)
    assert result.elapsed < COLD_BOUND, result.elapsed
    assert_one_line_failure(result, "did not finish within", "AWS_ENDPOINT_URL")
    assert trickle.connections >= 1  # it did reach the drip


def test_an_early_refresh_against_a_slow_drip_serves_the_cached_token(
    configured: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One byte every 1.5 s: under the refresh's 2 s read timeout, so only the
    # deadline on the whole refresh ends it.
    trickle = Trickle(1.5).__enter__()
    monkeypatch.setenv("AWS_ENDPOINT_URL", trickle.url)
    try:
        _early_refresh_is_bounded(trickle)
    finally:
        trickle.__exit__(None, None, None)


def _early_refresh_is_bounded(trickle: Trickle) -> None:
    now = time.time()
    past_half_life = Token(
        "AWS", PASSWORD, now - 7 * 3600, now + 5 * 3600, CENTRAL_HOST, CENTRAL, "us-east-1",
        PULL_ROLE,
    )  # fmt: skip
    folder = cache_folder(Path(os.environ["HOME"]))
    folder.mkdir(parents=True, mode=0o700)
    entry = folder / f"token-{current_key()}.json"
    entry.write_text(json.dumps(past_half_life.to_json()))
    entry.chmod(0o600)
    result = get(timeout=60)
    assert_answers(result)
    assert result.elapsed < EARLY_BOUND, result.elapsed
    assert trickle.connections >= 1  # it did try to refresh


def test_every_front_door_ends_within_its_bound(
    configured: Path, trickle: Trickle, tmp_path: Path
) -> None:
    request = json.dumps(
        {
            "apiVersion": "credentialprovider.kubelet.k8s.io/v1",
            "kind": "CredentialProviderRequest",
            "image": f"{CENTRAL_HOST}/app:1",
        }
    ).encode()
    doors: dict[str, tuple[list[str], bytes, str]] = {
        "login": ([installed(XECR), "login"], b"", "stderr"),
        "get-login-password": (
            [installed(XECR), "get-login-password", CENTRAL_HOST],
            b"",
            "stderr",
        ),
        "kubelet": ([installed(HELPER), "kubelet"], request, "stderr"),
        "daemon --once": ([installed(XECR), "daemon", "--once"], b"", "stderr"),
        "doctor": ([installed(XECR), "doctor", "--no-docker"], b"", "stdout"),
    }
    started = time.monotonic()
    procs = {
        name: subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for name, (args, _, _) in doors.items()
    }
    outcomes: dict[str, tuple[int, bytes, bytes, float]] = {}
    try:
        for name, proc in procs.items():
            out, err = proc.communicate(doors[name][1], timeout=90)
            outcomes[name] = (proc.returncode, out, err, time.monotonic() - started)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for name, (code, out, err, elapsed) in outcomes.items():
        assert code == 1, (name, out, err)
        assert b"Traceback" not in out + err, name
        # Five started at once on a loaded machine: the bound is per process, plus start-up.
        assert elapsed < COLD_BOUND + 10, (name, elapsed)
        if doors[name][2] == "stderr":
            assert err.count(b"\n") == 1 and b"within" in err, (name, err)
        else:
            assert b"FAIL credentials" in out and b"within" in out, (name, out)
        assert PASSWORD.encode() not in out + err


# -- the daemon's worker ------------------------------------------------------------------


def test_the_daemon_worker_gives_up_on_a_slow_drip_and_retries(
    configured: Path, trickle: Trickle, fake_aws: FakeAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # fake_aws is asked for only to be overridden: the worker talks to the drip.
    monkeypatch.setenv("AWS_ENDPOINT_URL", trickle.url)
    from ecr_helper.daemon.loop import run_once

    started = time.monotonic()
    result = run_once(os.environ)
    assert time.monotonic() - started < COLD_BOUND
    [outcome] = result.outcomes
    assert outcome.token is None and outcome.error is not None
    assert "did not finish within" in outcome.error
    assert fake_aws.counts() == {}
    assert ANSWER["Secret"] not in outcome.error
