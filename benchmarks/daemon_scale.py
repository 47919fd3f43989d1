"""``xecr daemon`` with many registries: time to every token fresh, memory, threads (issue 20).

For each count in ``--registries`` (default 10, 100, 1000) it writes a config
with that many registries (ids 100000000000 and up, all through one role, so
they share one source identity as a fleet node's do), starts the installed
``xecr daemon`` against the loopback fake AWS, and samples the daemon's
``/proc/PID/status`` every 0.2 s until every registry has a token in the
cache (or ``--timeout``), then ``--settle`` seconds more. It prints, per count:
seconds until every token was cached, the peak and settled RSS (VmHWM, VmRSS),
the most threads seen, the fake's AssumeRole and GetAuthorizationToken calls,
and hits on the trap for any other traffic; and at the end the cost of each
registry beyond the smallest count (settled RSS and peak RSS).

Run from the repository, with the test dependencies installed (moto)::

    python benchmarks/daemon_scale.py --registries 10 100 1000

It reaches nothing but 127.0.0.1: the fake and the trap (see README.md). The
fake serves at most two calls per registry per count. Exits 1 when a count
did not get every token within ``--timeout``, or anything reached the trap.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from _env import REGION, BenchError, FakeAwsProcess, Trap, Venv, cache_dir, isolated_env

ROLE = "arn:aws:iam::222222222222:role/ecr-pull"


def config(count: int) -> str:
    lines = [f'[defaults]\nregion = "{REGION}"\n']
    for n in range(count):
        lines.append(
            f'[registries."{100000000000 + n}.dkr.ecr.{REGION}.amazonaws.com"]\n'
            f'role_arn = "{ROLE}"\n'
        )
    return "\n".join(lines)


def status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (kB) and Threads of ``pid``, from /proc."""
    found: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as text:
        for line in text:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM", "Threads"):
                found[name] = int(value.split()[0])
    return found


@dataclass(frozen=True)
class Result:
    count: int
    fresh_after: float | None  # seconds from start until every token was cached
    peak_kb: int
    settled_kb: int
    threads: int
    assume_role: int
    get_token: int
    trap_hits: int

    def line(self) -> str:
        fresh = f"{self.fresh_after:6.1f} s" if self.fresh_after is not None else "  NEVER "
        return (
            f"{self.count:5d} registries: all fresh after {fresh}, "
            f"RSS peak {self.peak_kb / 1024:6.1f} MB, settled {self.settled_kb / 1024:6.1f} MB, "
            f"threads max {self.threads:3d}, AWS calls {self.assume_role} AssumeRole + "
            f"{self.get_token} GetAuthorizationToken, trap hits {self.trap_hits}"
        )


def measure(count: int, xecr: Path, venv: Venv, args: argparse.Namespace) -> Result:
    base = Path(tempfile.mkdtemp(prefix=f"xecr-daemon-scale-{count}-"))
    trap = Trap()
    fake = FakeAwsProcess(base / "fakeaws.log")
    daemon: subprocess.Popen[bytes] | None = None
    try:
        env = isolated_env(base, venv, fake.url, trap)
        (Path(env["XDG_CONFIG_HOME"]) / "xecr" / "config.toml").write_text(config(count))
        tokens = cache_dir(env)
        with (base / "daemon.err").open("wb") as err:
            daemon = subprocess.Popen(
                [str(xecr), "daemon"], env=env, stdin=subprocess.DEVNULL, stdout=err, stderr=err
            )
        start = time.monotonic()
        fresh_after: float | None = None
        peak_threads, last = 0, status(daemon.pid)
        end = start + args.timeout
        while time.monotonic() < end and daemon.poll() is None:
            last = status(daemon.pid)
            peak_threads = max(peak_threads, last["Threads"])
            if fresh_after is None and len(list(tokens.glob("token-*.json"))) >= count:
                fresh_after = time.monotonic() - start
                end = time.monotonic() + args.settle
            time.sleep(0.2)
        if daemon.poll() is not None:
            raise BenchError(f"the daemon ended early (see {base / 'daemon.err'})")
        calls = fake.calls()
        return Result(
            count,
            fresh_after,
            last["VmHWM"],
            last["VmRSS"],
            peak_threads,
            calls.get("AssumeRole", 0),
            calls.get("GetAuthorizationToken", 0),
            trap.hits,
        )
    finally:
        if daemon is not None and daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(timeout=15)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
        fake.stop()
        trap.close()
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--registries", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--timeout", type=float, default=300.0, help="per count (s)")
    parser.add_argument("--settle", type=float, default=5.0, help="sampled after fresh (s)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folders")
    args = parser.parse_args(argv)
    bin_dir = Path(sysconfig.get_path("scripts"))
    xecr = bin_dir / "xecr"
    if not xecr.exists():
        print(f"{xecr} is missing: pip install -e '.[test]'", file=sys.stderr)
        return 1
    venv = Venv(bin_dir.parent, Path(sys.executable), Path(sysconfig.get_path("purelib")))
    results = []
    try:
        for count in sorted(args.registries):
            results.append(measure(count, xecr, venv, args))
            print(results[-1].line(), flush=True)
    except BenchError as exc:
        print(f"daemon_scale: {exc}", file=sys.stderr)
        return 1
    if len(results) > 1:
        first = results[0]
        for result in results[1:]:
            more = result.count - first.count
            print(
                f"per registry, {first.count} -> {result.count}: "
                f"settled {(result.settled_kb - first.settled_kb) / more:.1f} kB, "
                f"peak {(result.peak_kb - first.peak_kb) / more:.1f} kB"
            )
    failed = [r for r in results if r.fresh_after is None or r.trap_hits]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
