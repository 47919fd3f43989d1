"""``xecr status``: which registries xecr serves, what is cached for each, and the daemon.

One row per registry host: every configured host, then every host with a
cached token (the ones Docker asked for without configuration). A row's token
is the one ``get`` would serve in this environment (same cache key), and its
state comes from :func:`ecr_helper.refresh.state`, so status never disagrees
with what a pull will do.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ecr_helper import refresh
from ecr_helper.config import RegistrySettings
from ecr_helper.errors import InputError, NotOurRegistry
from ecr_helper.service import Service
from ecr_helper.token import Token


@dataclass(frozen=True)
class Row:
    """One registry as status shows it. ``expires_at`` is None when nothing is cached."""

    registry: str
    registry_id: str
    region: str
    role_arn: str | None
    expires_at: float | None
    state: str
    configured: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "registry": self.registry,
            "registry_id": self.registry_id,
            "region": self.region,
            "role_arn": self.role_arn,
            "expires_at": iso(self.expires_at),
            "state": self.state,
            "configured": self.configured,
        }


@dataclass(frozen=True)
class DaemonState:
    """Whether the login daemon runs, and its pid."""

    pid: int | None

    def line(self) -> str:
        if not self.pid:
            return "daemon: not running"
        # -1: a daemon holds the lock but has not written its pid yet.
        return f"daemon: running (pid {self.pid if self.pid > 0 else 'unknown'})"


def iso(when: float | None) -> str | None:
    """ISO 8601 in UTC with its offset, to the second."""
    if when is None:
        return None
    return datetime.fromtimestamp(when, UTC).isoformat(timespec="seconds")


def countdown(seconds: float) -> str:
    """A short countdown such as ``11h59m``, ``4m10s`` or ``-2m5s`` (already past)."""
    if seconds < 0:
        return "-" + countdown(-seconds)
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def _row(
    host: str,
    registry_id: str,
    region: str,
    role: str | None,
    token: Token | None,
    now: float,
    configured: bool,
) -> Row:
    return Row(
        registry=host,
        registry_id=registry_id,
        region=region,
        role_arn=role,
        expires_at=token.expires_at if token is not None else None,
        state=refresh.state(token, now),
        configured=configured,
    )


def _settings_row(
    settings: RegistrySettings, token: Token | None, now: float, configured: bool
) -> Row:
    return _row(
        settings.host,
        settings.registry_id,
        settings.region,
        settings.role_arn,
        token,
        now,
        configured,
    )


def rows(opened: Service, now: float) -> list[Row]:
    """Configured registries in file order, then cached-only ones by host."""
    out: list[Row] = []
    seen: set[str] = set()
    for host in opened.config.hosts():
        settings = opened.settings(host)
        token = opened.cached(settings)
        out.append(_settings_row(settings, token, now, True))
        seen.add(settings.host)
    cached: dict[str, list[tuple[str, Token]]] = {}
    for key, token in opened.store.entries().items():
        if token.registry not in seen:
            cached.setdefault(token.registry, []).append((key, token))
    for host in sorted(cached):
        try:
            settings = opened.settings(host)
        except (NotOurRegistry, InputError):
            # An alias since removed from the config: `get` would refuse it, so
            # show what is on disk as it is.
            _, token = max(cached[host], key=lambda item: item[1].expires_at)
            out.append(
                _row(host, token.registry_id, token.region, token.role_arn, token, now, False)
            )
            continue
        key = opened.key(settings)
        # Entries under other keys belong to other identities (another profile or
        # access key): `get` here would not serve them.
        token = next((t for k, t in cached[host] if k == key), None)
        out.append(_settings_row(settings, token, now, False))
    return out


def collect(
    env: Mapping[str, str], clock: Callable[[], float] = time.time
) -> tuple[list[Row], DaemonState]:
    """The rows and the daemon's state for the configuration in force."""
    opened = Service.open(env, clock=clock)
    return rows(opened, clock()), DaemonState(opened.daemon_pid())


HEADERS = ("REGISTRY", "REGISTRY ID", "REGION", "ROLE", "EXPIRES IN", "STATE")


def table(found: list[Row], daemon: DaemonState, now: float) -> str:
    """The text table, then the daemon line."""
    if not found:
        body = "no registries configured or cached (add one with `xecr configure REGISTRY`)\n"
        return body + daemon.line() + "\n"
    cells = [HEADERS]
    for row in found:
        left = "-" if row.expires_at is None else countdown(row.expires_at - now)
        # ECR Public has no registry id.
        registry_id = row.registry_id or "(public)"
        cells.append((row.registry, registry_id, row.region, row.role_arn or "-", left, row.state))
    widths = [max(len(line[i]) for line in cells) for i in range(len(HEADERS))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in cells
    ]
    return "\n".join(lines) + "\n" + daemon.line() + "\n"
