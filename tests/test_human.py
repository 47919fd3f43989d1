"""ecr_helper.human: counts agree with their number and durations read as people read
them (``6h16m``, not ``22562s``), in the daemon's log lines, its systemd status and
``xecr status`` (issue 21, item 9)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecr_helper import human
from ecr_helper.daemon import health
from ecr_helper.setup import status
from tests.helpers import CENTRAL_HOST, make_token
from tests.test_worker import FakeClocks, ScriptedFetch, make_worker


@pytest.mark.parametrize(
    ("n", "word", "text"),
    [
        (0, "registry", "0 registries"),
        (1, "registry", "1 registry"),
        (2, "registry", "2 registries"),
        (1, "failed attempt", "1 failed attempt"),
        (7, "failed attempt", "7 failed attempts"),
    ],
)
def test_count(n: int, word: str, text: str) -> None:
    assert human.count(n, word) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (22562, "6h16m"),
        (43200, "12h0m"),
        (3599, "59m59s"),
        (250, "4m10s"),
        (45, "45s"),
        (0, "0s"),
        (2.46, "2.5s"),
        (0.4, "0.4s"),
        (-125, "-2m5s"),
    ],
)
def test_duration(seconds: float, text: str) -> None:
    assert human.duration(seconds) == text


def test_status_counts_down_with_the_same_words() -> None:
    assert status.countdown is human.duration


def test_the_systemd_status_line_agrees_with_its_number() -> None:
    now = 1_800_000_000.0
    one = [health.RegistryView(CENTRAL_HOST, make_token(now=now))]
    assert health.summary(one, now).startswith("1 of 1 registry served")


def test_the_refresh_log_line_says_hours_and_minutes(tmp_path: Path, log_file: Path) -> None:
    time = FakeClocks()
    fetch = ScriptedFetch(time, 43200.0, [False, True])
    worker, _ = make_worker(tmp_path, fetch, time)
    worker.step()  # fails: the retry comes in a few seconds
    time.sleep(worker.due - time.wall)
    worker.step()
    text = log_file.read_text()
    assert "next try in 22562s" not in text
    assert "(attempt 1, next try in " in text
    refreshed = next(line for line in text.splitlines() if "refreshed " in line)
    # rand 0: the next refresh is due at half of the 12 h life
    assert refreshed.endswith(": valid 12h0m, next refresh in 6h0m"), refreshed
    assert "after 1 failed attempt" in text and "attempts" not in text
