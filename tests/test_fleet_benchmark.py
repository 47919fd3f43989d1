"""benchmarks/fleet.py on a small fleet: it enforces ECR's bucket, it runs
the daemon's own schedule (not a copy), and its last line has the promised
shape. Figures belong to benchmarks/README.md, not here."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from ecr_helper.daemon import schedule

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "fleet.py"


@pytest.fixture(scope="module")
def fleet() -> Iterator[ModuleType]:
    spec = importlib.util.spec_from_file_location("fleet", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["fleet"] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules["fleet"]


def storm(fleet: ModuleType, nodes: int, **extra: Any) -> Any:
    settings: dict[str, Any] = {
        "nodes": nodes,
        "design": fleet.Design("role", 1),
        "hours": 1.0,
        "starts": [0.0] * nodes,
        "rate": 20.0,
        "burst": 200.0,
        "ttl": 43200.0,
        "sdk_attempts": 3,
        "seed": 1,
    }
    settings.update(extra)
    return fleet.simulate(**settings)


def test_the_bucket_bounds_how_fast_a_cold_fleet_is_served(fleet: ModuleType) -> None:
    result = storm(fleet, 1000)
    assert result.served_in is not None  # every node served within the hour
    assert result.served_in >= (1000 - 200) / 20.0  # no faster than the quota allows
    assert result.throttled > 0 and result.failed_refreshes > 0
    assert result.peak > 20  # what the nodes offered, not what was admitted
    small = storm(fleet, 150)  # inside the burst: nothing throttled
    assert small.throttled == 0 and small.served_in == 0.0


def test_it_runs_the_daemons_own_schedule(
    fleet: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[bool] = []
    real = schedule.retry_at

    def spy(*args: Any, overloaded: bool = False) -> float:
        seen.append(overloaded)
        return real(*args, overloaded=overloaded)

    monkeypatch.setattr(schedule, "retry_at", spy)
    storm(fleet, 600)
    assert seen and all(seen)  # every throttled refresh backs off as the worker does


def test_one_token_per_identity_boots_ten_thousand_nodes_within_ten_minutes(
    fleet: ModuleType,
) -> None:
    """Issue 22: 10,000 nodes x 3 registries of one region, one role: one token per
    node, so the storm fits the registry account's bucket (before: 1531 s)."""
    import random

    rng = random.Random(15)
    starts = [rng.random() * 600.0 for _ in range(10000)]
    shared = storm(fleet, 10000, design=fleet.Design("role", 3), starts=starts)
    assert shared.served_in is not None and shared.served_in <= 600.0
    assert shared.requests < 10000 * 1.1  # about one fetch per node
    before = storm(fleet, 10000, design=fleet.Design("role", 3, per_registry=True), starts=starts)
    assert before.served_in is None or before.served_in > 600.0


def test_each_account_spends_its_own_bucket(fleet: ModuleType) -> None:
    """A consumer granted by repository policy spends its own account's bucket; a role
    in the registry account spends that account's."""
    grant = storm(fleet, 1000, design=fleet.Design("grant", 3, consumer_accounts=5))
    assert grant.throttled == 0 and grant.served_in == 0.0  # 200 nodes per bucket
    role = storm(fleet, 1000, design=fleet.Design("role", 3))
    assert role.throttled > 0
    # Three registry accounts behind three roles: three tokens per node, a bucket each.
    spread = storm(fleet, 150, design=fleet.Design("role", 3, registry_accounts=3))
    assert spread.requests == 450 and spread.throttled == 0
    assert fleet.Design("role", 3, registry_accounts=3).tokens == 3
    assert fleet.Design("grant", 3, consumer_accounts=5).tokens == 1


@pytest.mark.slow
def test_the_last_line_has_the_promised_shape() -> None:
    done = subprocess.run(
        [sys.executable, "-S", str(SCRIPT), "--nodes", "300", "--registries", "2", "--hours", "7"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    last = done.stdout.strip().splitlines()[-1]
    shape = (
        r"steady peak \d+/s \(p99 [\d.]+/s\), "
        r"boot storm: every node served in \d+ s, \d+ throttled"
    )
    assert re.fullmatch(shape, last), last
