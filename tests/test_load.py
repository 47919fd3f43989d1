"""Issue 7 point 6: 200 ``get``s in parallel on a warm cache all answer right,
without a single AWS call; and the load benchmark (benchmarks/load.py) runs.

Both are bounded: each ``get`` has :data:`GET_TIMEOUT`, the whole batch
:data:`BATCH_TIMEOUT` (on a 2-CPU machine 200 Python start-ups at once take
10-20 s).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.fakeaws import FakeAws
from tests.helpers import (
    CONFIG,
    Result,
    assert_answers,
    get,
    log_text,
    scan,
)

# Every test here starts the installed executables (or a shell script).
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
COUNT = 200
GET_TIMEOUT = 90.0
BATCH_TIMEOUT = 150.0


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(pct / 100.0 * len(ordered))) - 1]


def test_200_parallel_gets_on_a_warm_cache_all_succeed(
    write_config: Callable[[str], Path], fake_aws: FakeAws, isolated_env: Path, tmp_path: Path
) -> None:
    write_config(CONFIG)
    warm = get()
    assert_answers(warm)
    fake_aws.reset()
    gate = threading.Barrier(COUNT)

    def one(_: int) -> Result:
        gate.wait(timeout=GET_TIMEOUT)  # all 200 start together
        return get(timeout=GET_TIMEOUT)

    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=COUNT) as pool:
        results = list(pool.map(one, range(COUNT), timeout=BATCH_TIMEOUT))
    wall = time.monotonic() - start
    failures = [(r.returncode, r.out[:120], r.err[:120]) for r in results if r.returncode != 0]
    assert failures == []
    for result in results:
        assert_answers(result)
    assert fake_aws.counts() == {}, "a warm get called AWS"
    assert "WARNING" not in log_text(isolated_env)
    ms = [r.elapsed * 1000 for r in results]
    print(
        f"\n{COUNT} parallel cached gets: p50 {_percentile(ms, 50):.0f} ms, "
        f"p99 {_percentile(ms, 99):.0f} ms, max {max(ms):.0f} ms, batch {wall:.1f} s"
    )
    assert wall < BATCH_TIMEOUT
    scan(fake_aws, tmp_path, [warm, *results], [warm, *results])


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 201)]
    assert _percentile(values, 50) == 100.0
    assert _percentile(values, 99) == 198.0
    assert _percentile(values, 100) == 200.0
    assert _percentile([5.0], 99) == 5.0


def test_the_load_benchmark_runs_and_reports_p50_and_p99() -> None:
    env = dict(os.environ)
    env.pop("AWS_ENDPOINT_URL", None)
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "load.py"),
            "--count",
            "20",
            "--parallel",
            "10",
            "--timeout",
            "60",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=REPO,
        env=env,
        check=False,
    )
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert "20 answered correctly, 0 failed" in done.stdout
    assert "p50" in done.stdout and "p99" in done.stdout
    assert "auth-token" not in done.stdout + done.stderr  # the report never quotes a secret
