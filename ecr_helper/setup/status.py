"""``xecr status``: which registries xecr serves, what is cached for each, and the daemon.

One row per registry host: every configured host, then every host with a
cached token (the ones Docker asked for without configuration). A row's token
is the one ``get`` would serve in this environment (same cache key), and its
state comes from :func:`ecr_helper.refresh.state`, so status never disagrees
with what a pull will do. Registries served one token (one identity and region:
:func:`ecr_helper.cache.cache_key`) say which others share it (``shares``; the
table ends with a line per shared token), and the tokens the
kubelet mode fetched as pods' roles follow their registry's row, one per
service account (``service_account``; never the token itself).

A row also carries the last failed fetch of its token (when, and the one-line
reason ``get``, ``login`` or the daemon met), from the note the cache keeps for
processes queued behind a fetch (:meth:`~ecr_helper.cache.base.TokenCache.last_failure`),
until a fetch succeeds: a token issued after the note hides it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from ecr_helper import config, human, refresh
from ecr_helper.cache import is_pod_key
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
    shares: tuple[str, ...] = ()  # the other registries served the same token
    service_account: str | None = None  # a pod-role token's namespace/name (kubelet mode)

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
            "shares_token_with": list(self.shares),
            "service_account": self.service_account,
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
    )


def _broken_row(host: str, error: ConfigError) -> Row:
    return Row(host, "", "", None, None, CONFIG_ERROR, True, error=str(error))


def rows(opened: Service, now: float) -> list[Row]:
    """Configured registries in file order (broken sections last), then cached-only
    ones by host; each followed by its pod-role tokens."""
    out: list[Row] = []
    keys: dict[str, str] = {}  # host -> the cache key of its token
    entries = opened.store.entries()
    for host in opened.config.hosts():
        error = opened.config.error_for(host)
        if error is not None:
            out.append(_broken_row(host, error))
            keys[host] = ""
            continue
        settings = opened.settings(host)
        keys[settings.host] = key = opened.key(settings)
        out.append(_row(settings, settings.host, entries.get(key), now, True))
    cached: dict[str, list[tuple[str, Token]]] = {}
    for key, token in entries.items():
        if token.registry not in keys:  # a pod-role entry alone still shows its host
            cached.setdefault(token.registry, []).append((key, token))
    for host in sorted(cached):
        try:
            settings = opened.settings(host)
        except (NotOurRegistry, InputError):
            # An alias since removed from the config: `get` would refuse it, so
            # show what is on disk as it is.
            own = [item for item in cached[host] if not item[1].account]
            if own:
                _, token = max(own, key=lambda item: item[1].expires_at)
                out.append(_row(None, host, token, now, False))
            keys[host] = ""
            continue
        key = opened.key(settings)
        # Entries under other keys belong to other identities (another profile or
        # access key): `get` here would not serve them.
        keys[settings.host] = key
        out.append(_row(settings, settings.host, entries.get(key), now, False))
    found = _with_failures(_with_shares(out, keys), keys, entries, opened)
    return _with_pods(found, keys, entries, opened, now)


def _failure(opened: Service, key: str, token: Token | None) -> tuple[float, str] | None:
    """The last failed fetch of ``key``'s token, unless one has succeeded since."""
    note = opened.store.last_failure(key)
    if note is None or (token is not None and token.issued_at >= note[0]):
        return None
    return note


def _with_failures(
    found: list[Row], keys: dict[str, str], entries: Mapping[str, Token], opened: Service
) -> list[Row]:
    """Each registry's row with the last failed fetch of its token, if none succeeded since."""
    out = []
    for row in found:
        key = keys.get(row.registry, "")
        note = _failure(opened, key, entries.get(key)) if key else None
        out.append(replace(row, failed_at=note[0], failure=note[1]) if note else row)
    return out


def _with_shares(found: list[Row], keys: dict[str, str]) -> list[Row]:
    """Each row with the other registries its token is shared with."""
    groups: dict[str, list[str]] = {}
    for host, key in keys.items():
        if key:
            groups.setdefault(key, []).append(host)
    return [
        replace(
            row,
            shares=tuple(
                h for h in groups.get(keys.get(row.registry, ""), []) if h != row.registry
            ),
        )
        for row in found
    ]


def _with_pods(
    found: list[Row],
    keys: dict[str, str],
    entries: Mapping[str, Token],
    opened: Service,
    now: float,
) -> list[Row]:
    """Insert, after each registry's row, the tokens fetched as pods' roles for it
    (kubelet mode): their keys start with half of the registry's own key."""
    pods: dict[str, list[Row]] = {}
    for key, token in sorted(entries.items(), key=lambda item: item[1].account):
        own = keys.get(token.registry)
        if not token.account or not own or not is_pod_key(key, own):
            continue  # not a pod-role entry of this identity's token
        row = _row(opened.settings(token.registry), token.registry, token, now, False)
        roles = (token.role_arn,) if token.role_arn else ()
        pods.setdefault(token.registry, []).append(
            replace(row, role_arn=token.role_arn, role_arns=roles, service_account=token.account)
        )
    out: list[Row] = []
    for row in found:
        out.append(row)
        if row.service_account is None:
            out.extend(pods.pop(row.registry, []))
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
        registry = _printable(row.registry)
        if row.service_account is not None:
            registry = f"  {registry} as pod {_printable(row.service_account)}"
        cells.append(
            (
                registry,
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
    lines.extend(_shared_lines(found))
    return "\n".join(lines) + "\n" + daemon.line() + "\n"


def _shared_lines(found: list[Row]) -> list[str]:
    """One line per token that several registries share, naming them."""
    seen: set[str] = set()
    lines = []
    for row in found:
        if row.shares and row.service_account is None and row.registry not in seen:
            group = (row.registry, *row.shares)
            seen.update(group)
            names = ", ".join(_printable(host) for host in group)
            lines.append(f"one token (one identity and region) serves {names}")
    return lines


def _printable(text: str) -> str:
    # A broken section's name is whatever the file says, newlines included.
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")
