"""Many ``docker-credential-xecr get`` at once on a warm cache (issue 7, point 6).

One real ``get`` fills the cache; then ``--count`` gets run, ``--parallel`` at a
time, each a process fed the registry host on stdin as Docker feeds it. Every
answer is checked (exit 0, exactly the expected JSON, nothing on stderr), and
neither the loopback fake AWS nor the trap for other traffic may see a single
call after the warm-up. The report gives each process's wall time from spawn
to exit: p50, p90, p99 and max, and the wall time and rate of the whole batch.
Exits 1 if any get failed, answered wrongly or reached the network.

Run from the repository, with the test dependencies installed (moto)::

    python benchmarks/load.py --count 200 --parallel 200

By default it runs the ``docker-credential-xecr`` installed next to this Python
(``pip install -e .``); ``--venv`` first builds a real install in a throwaway
venv, exactly as ``bench_get.py`` does (see benchmarks/README.md for the setup
it shares: isolated home, fake AWS in its own process, the trap).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from _env import (
    CENTRAL_HOST,
    EXPECTED_SECRET,
    BenchError,
    FakeAwsProcess,
    Trap,
    Venv,
    build_venv,
    isolated_env,
)

STDIN = CENTRAL_HOST.encode()  # Docker writes the bare host, no newline
ANSWER = {"ServerURL": CENTRAL_HOST, "Username": "AWS", "Secret": EXPECTED_SECRET}


@dataclass(frozen=True)
class Sample:
    """One ``get``: its wall time and what it said."""

    seconds: float
    returncode: int
    stdout: bytes
    stderr: bytes

    def problem(self) -> str | None:
        """Why this answer is wrong, or None. Never quotes the secret."""
        if self.returncode != 0:
            return f"exit {self.returncode}: {self.stdout[:200]!r}"
        if self.stderr:
            return f"stderr: {self.stderr[:200]!r}"
        try:
            answer = json.loads(self.stdout)
        except ValueError:
            return "stdout is not JSON"
        return None if answer == ANSWER else "a wrong answer"


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (p99 of 200 values is the 198th smallest)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100.0 * len(ordered)))
    return ordered[rank - 1]


def one_get(command: str, env: dict[str, str], timeout: float) -> Sample:
    start = time.perf_counter()
    try:
        done = subprocess.run(
            [command, "get"],
            input=STDIN,
            capture_output=True,
            env=env,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return Sample(time.perf_counter() - start, -1, b"timed out", b"")
    return Sample(time.perf_counter() - start, done.returncode, done.stdout, done.stderr)


def run_gets(
    command: str, env: dict[str, str], count: int, parallel: int, timeout: float
) -> tuple[list[Sample], float]:
    """``count`` gets, ``parallel`` at a time, released together. Returns the
    samples and the wall time of the whole batch."""
    gate = threading.Barrier(min(parallel, count))

    def job(index: int) -> Sample:
        if index < gate.parties:
            gate.wait(timeout=timeout)  # the first wave starts at once
        return one_get(command, env, timeout)

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        samples = list(pool.map(job, range(count)))
    return samples, time.perf_counter() - start


def report(samples: list[Sample], wall: float, parallel: int) -> list[str]:
    ms = [s.seconds * 1000.0 for s in samples]
    failed = [p for p in (s.problem() for s in samples) if p]
    lines = [
        f"{len(samples)} cached gets, {parallel} at a time: "
        f"{len(samples) - len(failed)} answered correctly, {len(failed)} failed",
        f"latency ms: p50 {percentile(ms, 50):.1f}  p90 {percentile(ms, 90):.1f}  "
        f"p99 {percentile(ms, 99):.1f}  max {max(ms):.1f}",
        f"batch: {wall:.2f} s wall, {len(samples) / wall:.0f} gets/s",
    ]
    lines += [f"  failure: {p}" for p in sorted(set(failed))[:10]]
    return lines


def _installed() -> Venv:
    """The running Python's own install, in the shape ``isolated_env`` wants."""
    root = Path(sys.prefix)
    if not (root / "bin" / "docker-credential-xecr").exists():
        raise BenchError(
            f"no docker-credential-xecr in {root / 'bin'}: pip install -e . first, or pass --venv"
        )
    return Venv(root, Path(sys.executable), Path(sysconfig.get_path("purelib")))


def bench(args: argparse.Namespace, tmp: Path) -> int:
    venv = build_venv(tmp) if args.venv else _installed()
    command = str(venv.script("docker-credential-xecr"))
    trap = Trap()
    fake: FakeAwsProcess | None = None
    try:
        fake = FakeAwsProcess(tmp / "fakeaws.log")
        env = isolated_env(tmp, venv, fake.url, trap)
        warm = one_get(command, env, args.timeout)
        if warm.problem():
            raise BenchError(f"the warm-up get failed: {warm.problem()}")
        fake.reset()
        hits = trap.hits
        samples, wall = run_gets(command, env, args.count, args.parallel, args.timeout)
        calls = fake.calls()
        lines = report(samples, wall, args.parallel)
        if calls or trap.hits != hits:
            lines.append(
                f"  failure: the warm gets reached the network: AWS calls {calls}, "
                f"trap hits {trap.hits - hits}"
            )
        print("\n".join(lines))
        return 1 if any("failure:" in line for line in lines) else 0
    finally:
        if fake is not None:
            fake.stop()
        trap.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200, help="gets in all (default 200)")
    parser.add_argument(
        "--parallel", type=int, default=200, help="gets running at once (default 200)"
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds any one get may take (default 60)"
    )
    parser.add_argument(
        "--venv", action="store_true", help="measure a real pip install in a throwaway venv"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    if args.count < 1 or args.parallel < 1:
        parser.error("--count and --parallel must be at least 1")
    tmp = Path(tempfile.mkdtemp(prefix="xecr-load-"))
    try:
        return bench(args, tmp)
    except BenchError as exc:
        print(f"load: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
