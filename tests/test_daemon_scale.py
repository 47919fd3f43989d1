"""The installed ``xecr daemon`` with a hundred registries, against the loopback
fake: every token fresh within a minute, in bounded threads and memory (the
figures for 10 to 1,000 registries are ``benchmarks/daemon_scale.py``'s)."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ecr_helper import cache, config, paths, refresh
from tests.fakeaws import FakeAws
from tests.helpers import installed, stop_gracefully

COUNT = 100
FRESH_WITHIN = 60.0
MAX_THREADS = 20
MAX_RSS_MB = 300


def status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (kB) and Threads of ``pid``."""
    found: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM", "Threads"):
            found[name] = int(value.split()[0])
    return found


@pytest.mark.slow
def test_a_hundred_registries_are_all_fresh_within_a_minute_in_bounded_threads_and_memory(
    fake_aws: FakeAws, write_config: Callable[[str], Path], tmp_path: Path
) -> None:
    hosts = [f"{100000000000 + n}.dkr.ecr.us-east-1.amazonaws.com" for n in range(COUNT)]
    write_config(
        '[defaults]\nregion = "us-east-1"\n'
        # A role in each registry's account: a token each (one identity each).
        + "".join(
            f'[registries."{h}"]\nrole_arn = "arn:aws:iam::{h.split(".")[0]}:role/pull"\n'
            for h in hosts
        )
    )
    loaded = config.load(os.environ)
    store = cache.FileCache(paths.cache_dir(os.environ, loaded.system))
    keys = [cache.cache_key(loaded.resolve(h), os.environ) for h in hosts]

    def fresh() -> int:
        now = time.time()
        return sum(refresh.state(store.read(key), now) == refresh.FRESH for key in keys)

    err = tmp_path / "daemon.err"
    with err.open("wb") as out:
        proc = subprocess.Popen(
            [installed("xecr"), "daemon"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=out,
            env=dict(os.environ),
        )
    threads, rss_kb, done = 0, 0, 0
    try:
        deadline = time.monotonic() + FRESH_WITHIN
        while time.monotonic() < deadline and proc.poll() is None:
            seen = status(proc.pid)
            threads, rss_kb = max(threads, seen["Threads"]), max(rss_kb, seen["VmHWM"])
            done = fresh()
            if done == COUNT or threads >= MAX_THREADS or rss_kb >= MAX_RSS_MB * 1024:
                break
            time.sleep(0.25)
        assert proc.poll() is None, err.read_text()[-2000:]
        assert threads < MAX_THREADS, f"{threads} threads ({done} of {COUNT} fresh)"
        assert rss_kb < MAX_RSS_MB * 1024, f"{rss_kb // 1024} MB ({done} of {COUNT} fresh)"
        assert done == COUNT, f"{done} of {COUNT} tokens fresh after {FRESH_WITHIN:.0f} s"
        # One fetch per registry: none thrown away and fetched again.
        assert fake_aws.calls("GetAuthorizationToken") == COUNT
    finally:
        stopped = stop_gracefully(proc)
    assert stopped == 0 and "Traceback" not in err.read_text()
