"""What the daemon can say about itself: for each configured registry, the
token ``get`` would be served and how its refreshes go, and from that the
``/healthz`` answer and the one-line summary systemd shows as the status.

Pure functions of a snapshot and the time. The snapshot holds the cached
token for the registry's *host*; nothing here ever renders the token itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from ecr_helper import human, refresh
from ecr_helper.token import Token


@dataclass(frozen=True)
class RegistryView:
    """One configured registry as the daemon sees it now."""

    host: str
    token: Token | None  # the cached token, as `get` would read it
    failures: int = 0  # failed refreshes in a row
    next_attempt: float | None = None  # epoch seconds of the next refresh or retry


def servable(view: RegistryView, now: float) -> bool:
    """Whether ``get`` would be served this registry's cached token now."""
    return refresh.state(view.token, now) in (refresh.FRESH, refresh.REFRESH_DUE)


def served_until(token: Token) -> float:
    """The Unix time the token stops being served (it is refreshed well before)."""
    return refresh.usable_until(token)


def healthz(views: Sequence[RegistryView], now: float) -> tuple[int, str]:
    """The ``/healthz`` status and body: 200 ``ok``, or 503 naming what is not served."""
    if not views:
        # Nothing to serve is not health: a fleet must notice an empty config.
        return 503, "no registries configured\n"
    missing = [view.host for view in views if not servable(view, now)]
    if missing:
        return 503, f"no servable token for {', '.join(missing)}\n"
    return 200, "ok\n"


def summary(views: Sequence[RegistryView], now: float) -> str:
    """One line for systemd's ``STATUS=``, e.g. ``2 of 3 registries served ...``."""
    if not views:
        return "no registries configured; waiting for a reload (SIGHUP)"
    served = [view for view in views if servable(view, now)]
    failing = [view.host for view in views if view.failures]
    line = f"{len(served)} of {human.count(len(views), 'registry')} served"
    if served:
        soonest = min(served_until(view.token) for view in served if view.token is not None)
        line += f", first expiry {_stamp(soonest)}"
    if failing:
        line += f"; retrying {', '.join(failing)}"
    return line


def _stamp(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
