"""The daemon's timing rules, with an injected clock and random numbers."""

from __future__ import annotations

import itertools
import random

import pytest

from ecr_helper import refresh
from ecr_helper.daemon import schedule
from ecr_helper.token import Token

NOW = 1_700_000_000.0
HOUR = 3600.0


def token(lifetime: float, issued_at: float = NOW) -> Token:
    return Token("AWS", "secret-value", issued_at, issued_at + lifetime)


def const(value: float) -> schedule.Random:
    return lambda: value


@pytest.mark.parametrize("lifetime", [6.0, 20.0, 900.0, 12 * HOUR])
def test_refresh_is_at_half_life_plus_at_most_ten_percent(lifetime: float) -> None:
    t = token(lifetime)
    assert schedule.next_refresh(t, const(0.0)) == pytest.approx(NOW + lifetime / 2)
    assert schedule.next_refresh(t, const(1.0)) == pytest.approx(NOW + 0.6 * lifetime)
    rng = random.Random(7)
    times = [schedule.next_refresh(t, rng.random) for _ in range(500)]
    assert all(NOW + 0.5 * lifetime <= x <= NOW + 0.6 * lifetime for x in times)
    # Spread over the window, so a fleet booted at once does not refresh in lockstep.
    assert max(times) - min(times) > 0.08 * lifetime
    # Always refreshed while the cached token is still served.
    assert max(times) < refresh.usable_until(t)
    assert refresh.state(t, max(times)) == refresh.REFRESH_DUE


def test_jitter_bounds_hold_for_a_misbehaving_random_source() -> None:
    assert schedule.jitter(20.0, const(5.0)) == pytest.approx(2.0)
    assert schedule.jitter(20.0, const(-1.0)) == 0.0
    assert schedule.jitter(-3.0, const(0.5)) == 0.0


def test_backoff_starts_at_one_second_or_less_and_doubles() -> None:
    ceilings = [schedule.backoff(n, 12 * HOUR, const(1.0)) for n in range(1, 12)]
    assert ceilings[:9] == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0]
    assert ceilings[9:] == [300.0, 300.0]
    # Equal jitter: never less than half the ceiling, never more than it.
    assert schedule.backoff(1, 12 * HOUR, const(0.0)) == 0.5
    assert schedule.backoff(4, 12 * HOUR, const(0.0)) == 4.0


@pytest.mark.parametrize(
    ("lifetime", "cap"),
    [(12 * HOUR, 300.0), (3000.0, 300.0), (900.0, 90.0), (20.0, 2.0), (6.0, 0.6), (None, 60.0)],
)
def test_backoff_is_capped_at_min_five_minutes_and_ten_percent(
    lifetime: float | None, cap: float
) -> None:
    assert schedule.backoff_cap(lifetime) == pytest.approx(cap)
    rng = random.Random(3)
    waits = [schedule.backoff(n, lifetime, rng.random) for n in range(1, 40) for _ in range(20)]
    assert max(waits) <= cap + 1e-9
    assert min(waits) > 0
    first = [schedule.backoff(1, lifetime, rng.random) for _ in range(200)]
    assert max(first) <= min(1.0, cap) + 1e-9


def test_an_overloaded_aws_gets_full_jitter_over_the_same_window() -> None:
    # Throttling or 5xx: anywhere in [0, ceiling], so a fleet's retries spread
    # over the whole window; the ceiling and the cap are those of equal jitter.
    assert schedule.backoff(4, 12 * HOUR, const(1.0), overloaded=True) == 8.0
    assert schedule.backoff(4, 12 * HOUR, const(0.25), overloaded=True) == 2.0
    assert schedule.backoff(4, 12 * HOUR, const(0.0), overloaded=True) == schedule.MIN_DELAY
    assert schedule.backoff(40, None, const(1.0), overloaded=True) == 60.0
    rng = random.Random(5)
    waits = [schedule.backoff(8, 12 * HOUR, rng.random, overloaded=True) for _ in range(2000)]
    assert max(waits) <= 128.0
    assert sum(w < 64.0 for w in waits) > 800  # the lower half is used, unlike equal jitter
    assert schedule.retry_at(100.0, 1, None, const(0.5), overloaded=True) == 100.5


def test_backoff_survives_absurd_failure_counts() -> None:
    assert schedule.backoff(10**6, 20.0, const(1.0)) == pytest.approx(2.0)
    assert schedule.backoff(0, 20.0, const(1.0)) == pytest.approx(1.0)


def test_retries_fit_between_the_refresh_and_the_end_of_use() -> None:
    """With the latest refresh and the longest waits, at least three retries fit."""
    for lifetime in (6.0, 20.0, 12 * HOUR):
        t = token(lifetime)
        clock = schedule.next_refresh(t, const(1.0))
        tries = 0
        for failures in itertools.count(1):
            clock = schedule.retry_at(clock, failures, lifetime, const(1.0))
            if clock >= refresh.usable_until(t):
                break
            tries += 1
        assert tries >= 3, lifetime


def test_sleep_is_sliced_so_clock_jumps_are_noticed() -> None:
    assert schedule.sleep_for(6 * HOUR) == schedule.MAX_SLEEP == 5.0
    assert schedule.sleep_for(2.5) == 2.5
    assert schedule.sleep_for(-10) == 0.0


def test_a_simulated_day_of_twelve_hour_tokens_with_an_outage() -> None:
    """Drive the rules with a fake clock: refreshes never leave a gap in service."""
    lifetime = 12 * HOUR
    rng = random.Random(11)
    clock = NOW
    current = token(lifetime, clock)
    outage = (NOW + 5.9 * HOUR, NOW + 6.8 * HOUR)  # AWS unreachable for 54 minutes
    failures = 0
    refreshes = 0
    due = schedule.next_refresh(current, rng.random)
    while clock < NOW + 48 * HOUR:
        clock = due
        assert refresh.state(current, clock) != refresh.EXPIRED, "a pull would have waited"
        if outage[0] <= clock < outage[1]:
            failures += 1
            due = schedule.retry_at(clock, failures, current.lifetime, rng.random)
            continue
        failures = 0
        refreshes += 1
        current = token(lifetime, clock)
        due = schedule.next_refresh(current, rng.random)
    assert 6 <= refreshes <= 8
