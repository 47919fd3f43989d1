"""``xecr status``: which registries xecr serves, what is cached for each, and the daemon.

One row per registry host: every configured host, then every host with a
cached token (the ones Docker asked for without configuration). A row's token
is the one ``get`` would serve in this environment (same cache key), and its
state comes from :func:`ecr_helper.refresh.state`, so status never disagrees
with what a pull will do.

A row also carries the last failed fetch of its token (when, and the one-line
reason ``get``, ``login`` or the daemon met), from the note the cache keeps for
processes queued behind a fetch (:meth:`~ecr_helper.cache.base.TokenCache.last_failure`),
until a fetch succeeds: a token issued after the note hides it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ecr_helper import config, human, refresh
from ecr_helper.errors import ConfigError, InputError, NotOurRegistry
from ecr_helper.service import Service
from ecr_helper.token import Token


@dataclass(frozen=True)
class Row:
    """One registry as status shows it. ``expires_at`` is None when nothing is cached;
    ``error`` is set (and the rest empty) when the registry's config section is broken;
    ``failed_at`` and ``failure`` say when and why the last fetch failed, if none has
    succeeded since."""

    registry: str
    registry_id: str
    region: str
    role_arn: str | None
    expires_at: float | None
    state: str
    configured: bool
    role_arns: tuple[str, ...] = ()
    external_id: bool = False
    error: str | None = None
    failed_at: float | None = None
    failure: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "registry": self.registry,
            "registry_id": self.registry_id,
            "region": self.region,
            "role_arn": self.role_arn,
            "role_arns": list(self.role_arns),
            "external_id_set": self.external_id,
            "expires_at": iso(self.expires_at),
            "state": self.state,
            "configured": self.configured,
            "error": self.error,
            "last_failure": None
            if self.failure is None
            else {"at": iso(self.failed_at), "error": self.failure},
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


# A short countdown such as ``11h59m``, ``4m10s`` or ``-2m5s`` (already past).
countdown = human.duration


CONFIG_ERROR = "config error"


def _row(
    settings: config.RegistrySettings | None,
    host: str,
    token: Token | None,
    now: float,
    configured: bool,
    failure: tuple[float, str] | None = None,
) -> Row:
    if settings is None:  # what is on disk, for a host the config no longer names
        assert token is not None
        roles: tuple[str, ...] = (token.role_arn,) if token.role_arn else ()
        registry_id, region, external = token.registry_id, token.region, False
    else:
        roles, registry_id, region = settings.role_arns, settings.registry_id, settings.region
        external = settings.external_id is not None
    return Row(
        registry=host,
        registry_id=registry_id,
        region=region,
        role_arn=roles[-1] if roles else None,
        expires_at=token.expires_at if token is not None else None,
        state=refresh.state(token, now),
        configured=configured,
        role_arns=roles,
        external_id=external,
        failed_at=failure[0] if failure else None,
        failure=failure[1] if failure else None,
    )


def _failure(opened: Service, key: str, token: Token | None) -> tuple[float, str] | None:
    """The last failed fetch of ``key``'s token, unless one has succeeded since."""
    note = opened.store.last_failure(key)
    if note is None or (token is not None and token.issued_at >= note[0]):
        return None
    return note


def _broken_row(host: str, error: ConfigError) -> Row:
    return Row(host, "", "", None, None, CONFIG_ERROR, True, error=str(error))


def rows(opened: Service, now: float) -> list[Row]:
    """Configured registries in file order (broken sections last), then cached-only
    ones by host."""
    out: list[Row] = []
    seen: set[str] = set()
    for host in opened.config.hosts():
        error = opened.config.error_for(host)
        if error is not None:
            out.append(_broken_row(host, error))
            seen.add(host)
            continue
        settings = opened.settings(host)
        key = opened.key(settings)
        token = opened.store.read(key)
        out.append(_row(settings, settings.host, token, now, True, _failure(opened, key, token)))
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
            key, token = max(cached[host], key=lambda item: item[1].expires_at)
            out.append(_row(None, host, token, now, False, _failure(opened, key, token)))
            continue
        key = opened.key(settings)
        # Entries under other keys belong to other identities (another profile or
        # access key): `get` here would not serve them.
        token = next((t for k, t in cached[host] if k == key), None)
        out.append(_row(settings, settings.host, token, now, False, _failure(opened, key, token)))
    return out


def collect(
    env: Mapping[str, str], clock: Callable[[], float] = time.time
) -> tuple[list[Row], DaemonState]:
    """The rows and the daemon's state for the configuration in force."""
    opened = Service.open(env, clock=clock)
    return rows(opened, clock()), DaemonState(opened.daemon_pid())


HEADERS = ("REGISTRY", "REGISTRY ID", "REGION", "ROLE", "EXTERNAL ID", "EXPIRES", "STATE")


def expires_text(row: Row, now: float) -> str:
    """``in 11h59m`` or ``2m5s ago``: never a bare countdown beside an "expired" state."""
    if row.expires_at is None:
        return "-"
    left = row.expires_at - now
    return f"in {countdown(left)}" if left > 0 else f"{countdown(-left)} ago"


def state_text(row: Row, now: float) -> str:
    if row.state == refresh.EXPIRED and row.expires_at is not None and row.expires_at > now:
        # Still valid for a little while, but too close to its end to be served.
        return "past its serve window"
    return row.state


def failure_text(row: Row, now: float) -> str:
    """``HOST: last fetch failed 3m5s ago (2026-...): REASON``, one line."""
    assert row.failed_at is not None and row.failure is not None
    ago = countdown(max(0.0, now - row.failed_at))
    reason = " ".join(row.failure.split())
    return (
        f"{_printable(row.registry)}: last fetch failed {ago} ago ({iso(row.failed_at)}): "
        f"{_printable(reason)}"
    )


def table(found: list[Row], daemon: DaemonState, now: float) -> str:
    """The text table, a line per broken config section, then the daemon line."""
    if not found:
        body = "no registries configured or cached (add one with `xecr configure REGISTRY`)\n"
        return body + daemon.line() + "\n"
    cells = [HEADERS]
    for row in found:
        cells.append(
            (
                _printable(row.registry),
                # ECR Public has no registry id.
                row.registry_id or ("-" if row.error else "(public)"),
                row.region or "-",
                " -> ".join(row.role_arns) or "-",
                "set" if row.external_id else "-",
                expires_text(row, now),
                state_text(row, now),
            )
        )
    widths = [max(len(line[i]) for line in cells) for i in range(len(HEADERS))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in cells
    ]
    lines.extend(f"{_printable(row.registry)}: {row.error}" for row in found if row.error)
    lines.extend(failure_text(row, now) for row in found if row.failure)
    return "\n".join(lines) + "\n" + daemon.line() + "\n"


def _printable(text: str) -> str:
    # A broken section's name is whatever the file says, newlines included.
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")
