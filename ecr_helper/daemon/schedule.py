"""The daemon's timing: when to refresh a token, how long to back off after a
failure, and how long to sleep before looking again.

Pure functions of a token's own times, the current time and a random source,
so every timing scales with the token's lifetime (the same rules are right for
ECR's 12-hour tokens and for the few-second tokens of tests) and the tests
drive them with an injected clock and random numbers:

* refresh at half-life (:func:`ecr_helper.refresh.refresh_at`) plus a jitter
  of at most 10 % of the lifetime, so a fleet booted at once does not refresh
  in lockstep; that is still well before the token stops being served (90 %);
* after a failure, exponential backoff starting at 1 s or less and capped at
  ``min(5 min, 10 % of the lifetime)``: at least three retries fit between
  the refresh time and the end of the token's use. The jitter is equal
  (``[ceiling / 2, ceiling]``) for most failures, full (``[0, ceiling]``)
  when AWS throttled or failed on its side: then every node of a fleet is
  retrying, and full jitter spreads their retries over the whole window
  instead of bunching them in its upper half (the schedule that
  ``benchmarks/fleet.py`` measures against ECR's quota).
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from ecr_helper.refresh import refresh_at

if TYPE_CHECKING:
    from collections.abc import Callable

    from ecr_helper.token import Token

    Random = Callable[[], float]

JITTER_FRACTION = 0.10
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 300.0
BACKOFF_FRACTION = 0.10
# Before any token was seen there is no lifetime to scale with. A machine that
# boots before its network or its role is ready must get its first token soon,
# so the cap is lower than the 5 minutes a 12-hour token would allow.
UNKNOWN_LIFETIME_CAP = 60.0
# A token's times are wall-clock times, waits are monotonic: the scheduler
# looks at the wall clock at least this often, so a step of it (NTP, a VM
# restored) or a laptop resuming from suspend is noticed within seconds.
MAX_SLEEP = 5.0
MIN_DELAY = 0.01


def jitter(lifetime: float, rand: Random = random.random) -> float:
    """A delay in ``[0, 10 % of lifetime)`` added to the refresh time."""
    return max(0.0, lifetime) * JITTER_FRACTION * _unit(rand)


def next_refresh(token: Token, rand: Random = random.random) -> float:
    """When the daemon refreshes ``token``: half-life plus jitter (epoch seconds)."""
    return refresh_at(token) + jitter(token.lifetime, rand)


def backoff_cap(lifetime: float | None) -> float:
    """The longest wait between retries: ``min(300 s, 10 % of the lifetime)``."""
    if lifetime is None or lifetime <= 0:
        return UNKNOWN_LIFETIME_CAP
    return max(MIN_DELAY, min(BACKOFF_MAX, BACKOFF_FRACTION * lifetime))


def backoff(
    failures: int,
    lifetime: float | None,
    rand: Random = random.random,
    *,
    overloaded: bool = False,
) -> float:
    """The wait after the ``failures``-th failure in a row (1 for the first).

    The ceiling doubles from ``min(1 s, cap)`` up to the cap. Equal jitter
    picks a wait in ``[ceiling / 2, ceiling]``, so retries are spread out yet
    never come back to back; when AWS is ``overloaded`` (throttling, 5xx)
    full jitter picks it in ``[0, ceiling]``.
    """
    cap = backoff_cap(lifetime)
    first = min(BACKOFF_FIRST, cap)
    # 2**64 s is past any cap; the bound keeps the float finite.
    ceiling = min(cap, first * 2.0 ** min(max(failures, 1) - 1, 64))
    if overloaded:
        return max(MIN_DELAY, ceiling * _unit(rand))
    return max(MIN_DELAY, ceiling / 2 + ceiling / 2 * _unit(rand))


def retry_at(
    now: float,
    failures: int,
    lifetime: float | None,
    rand: Random = random.random,
    *,
    overloaded: bool = False,
) -> float:
    """When to try again after the ``failures``-th failure in a row."""
    return now + backoff(failures, lifetime, rand, overloaded=overloaded)


def sleep_for(remaining: float) -> float:
    """How long to sleep before looking again, ``remaining`` seconds before the
    next refresh: until then, in slices of at most :data:`MAX_SLEEP`."""
    return min(MAX_SLEEP, max(0.0, remaining))


def _unit(rand: Random) -> float:
    """``rand()`` held to ``[0, 1]``, so a bad source cannot break the bounds."""
    return min(1.0, max(0.0, float(rand())))
