"""Run the property targets of ``tests/strategies.py`` far longer than the test suite does.

    python fuzz/run.py --examples 100000            # every target, 100 000 examples each
    python fuzz/run.py --target config_validate --examples 500000 --seed 7
    python fuzz/run.py --list

The targets and their strategies are the very ones the tests use, so whatever this finds
reproduces in ``pytest`` with the printed falsifying example (or the ``@reproduce_failure``
blob). Failures found are kept in ``.hypothesis/`` (git-ignored) and replayed first next time.
Exit status: 0 when every target held, 1 when any failed, 2 for a bad command line.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hypothesis import HealthCheck, Verbosity, given, seed, settings
from hypothesis.database import DirectoryBasedExampleDatabase

from tests.strategies import TARGETS, Target


def run_target(
    target: Target, examples: int, fixed_seed: int | None, database: Path, verbose: bool
) -> bool:
    test = given(target.strategy)(target.check)
    test = settings(
        max_examples=examples,
        deadline=None,
        database=DirectoryBasedExampleDatabase(str(database)),
        suppress_health_check=list(HealthCheck),
        print_blob=True,
        verbosity=Verbosity.verbose if verbose else Verbosity.normal,
    )(test)
    if fixed_seed is not None:
        test = seed(fixed_seed)(test)
    try:
        test()
    except Exception:
        traceback.print_exc()
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--examples", type=int, default=10_000, help="examples per target (default 10000)"
    )
    parser.add_argument(
        "--target",
        action="append",
        choices=sorted(TARGETS),
        help="run only this target (repeatable; default: all)",
    )
    parser.add_argument("--seed", type=int, help="a fixed seed, for a repeatable run")
    parser.add_argument(
        "--database",
        type=Path,
        default=Path(__file__).resolve().parent.parent / ".hypothesis" / "fuzz",
        help="where failing examples are kept and replayed from",
    )
    parser.add_argument("--verbose", action="store_true", help="print every example")
    parser.add_argument("--list", action="store_true", help="list the targets and exit")
    opts = parser.parse_args(argv)
    if opts.list:
        for name, target in TARGETS.items():
            summary = " ".join((target.check.__doc__ or "").strip().split("\n\n")[0].split())
            print(f"{name:20} {summary}")
        return 0
    if opts.examples < 1:
        parser.error("--examples must be at least 1")
    failed: list[str] = []
    for name in opts.target or list(TARGETS):
        started = time.monotonic()
        print(f"{name}: {opts.examples} examples...", flush=True)
        ok = run_target(TARGETS[name], opts.examples, opts.seed, opts.database, opts.verbose)
        elapsed = time.monotonic() - started
        print(f"{name}: {'ok' if ok else 'FAILED'} in {elapsed:.1f}s", flush=True)
        if not ok:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    print("every target held")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
