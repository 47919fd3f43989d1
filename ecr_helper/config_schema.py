"""What a config file may say: the keys of ``[defaults]`` and of each
``[registries."HOST"]`` section, their types and value patterns, and which
mistakes fail the whole file and which only the section they are in (see
:mod:`ecr_helper.config`). Imported only when a file is parsed: the cached
``get`` reads the validated copy and never needs it.
"""

from __future__ import annotations

import re

from ecr_helper.errors import ConfigError, InputError
from ecr_helper.registry import (
    PUBLIC_HOST,
    PUBLIC_REGION,
    canonical_host,
    is_host,
    is_region,
    is_registry_id,
    normalize,
    parse_ecr_host,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

# Patterns are compiled on first use (validation only): the cached `get`
# reads the validated copy and never needs them.
_ROLE_ARN = (
    r"arn:aws(?:-cn|-us-gov|-iso|-iso-b|-iso-e|-iso-f|-eusc)?"
    r":iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}"
)
_EXTERNAL_ID = r"[\w+=,.@:/-]{2,1224}"
_SESSION_NAME = r"[\w+=,.@-]{2,64}"


def _matches(pattern: str, value: str) -> bool:
    return re.fullmatch(pattern, value, re.ASCII) is not None


def is_role_arn(value: str) -> bool:
    return _matches(_ROLE_ARN, value)


CACHE_BACKENDS = ("file", "keyring", "none")
_COMMON_KEYS = (
    "region",
    "role_arn",
    "external_id",
    "role_session_name",
    "source_profile",
    "duration_seconds",
)
DEFAULT_KEYS = (*_COMMON_KEYS, "cache")
REGISTRY_KEYS = ("registry_id", *_COMMON_KEYS)


def validate(raw: Mapping[str, Any], path: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Check a parsed document against the contract; return (defaults, registries).

    Strict: the first error anywhere, a registry section's included, is raised.
    """
    defaults, registries, broken = check(raw, path)
    for key, problem in broken.values():
        raise ConfigError(path, key, problem)
    return defaults, registries


def check(
    raw: Mapping[str, Any], path: str
) -> tuple[dict[str, Any], dict[str, dict[str, Any]], dict[str, tuple[str, str]]]:
    """Check a parsed document: (defaults, valid registries, broken sections).

    Raises :class:`ConfigError` for a mistake outside the registry sections; a
    mistake inside one is recorded in the third value (see :class:`Config`).
    """
    for key in raw:
        if key not in ("defaults", "registries"):
            raise ConfigError(path, key, 'unknown key (expected [defaults] or [registries."HOST"])')
    defaults = _table(raw.get("defaults", {}), path, "defaults", DEFAULT_KEYS)
    tables = raw.get("registries", {})
    if not isinstance(tables, dict):
        raise ConfigError(path, "registries", "must be a table of registry hosts")
    registries: dict[str, dict[str, Any]] = {}
    broken: dict[str, tuple[str, str]] = {}
    seen: set[str] = set()
    for name, body in tables.items():
        try:
            host = normalize(name) if name.strip() else ""
        except InputError:
            host = ""
        label = canonical_host(host) if host and is_host(host) else name
        try:
            if label in seen:
                # Two sections for one host: neither can be trusted to be the one meant.
                registries.pop(label, None)
                raise ConfigError(
                    path, f'registries."{name}"', f"names the same host as another entry ({label})"
                )
            seen.add(label)
            registries[label] = _section(name, body, label, defaults, path)
        except ConfigError as exc:
            broken[label] = (exc.raw_key, exc.problem)
    return defaults, registries, broken


def _section(
    name: str, body: Any, host: str, defaults: Mapping[str, Any], path: str
) -> dict[str, Any]:
    where = f'registries."{name}"'
    if not isinstance(body, dict):
        raise ConfigError(path, where, "must be a table")
    if not host or not is_host(host):
        raise ConfigError(path, where, "not a registry host name (host or host:port)")
    table = _table(body, path, where, REGISTRY_KEYS)
    ecr = parse_ecr_host(host)
    # The host says these (ECR Public: no registry id, tokens from us-east-1 only).
    says = (ecr.registry_id, ecr.region) if ecr else ("", PUBLIC_REGION)
    if ecr is not None or host == PUBLIC_HOST:
        for key, value in zip(("registry_id", "region"), says, strict=True):
            if key in table and table[key] != value:
                told = value or "ECR Public has none"
                raise ConfigError(path, f"{where}.{key}", f"contradicts the host ({told})")
    else:
        if "registry_id" not in table:
            raise ConfigError(
                path,
                f"{where}.registry_id",
                "required for a host that is not an ECR host name (an alias)",
            )
        if "region" not in table and "region" not in defaults:
            raise ConfigError(
                path, f"{where}.region", "required for an alias (or set [defaults] region)"
            )
    return table


def _table(body: Any, path: str, where: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ConfigError(path, where, "must be a table")
    out: dict[str, Any] = {}
    for key, value in body.items():
        name = f"{where}.{key}"
        if key not in allowed:
            raise ConfigError(path, name, f"unknown key (allowed: {', '.join(allowed)})")
        out[key] = _check(path, name, key, value)
    return out


def _check(path: str, name: str, key: str, value: Any) -> Any:
    def fail(problem: str) -> ConfigError:
        return ConfigError(path, name, problem)

    if key == "duration_seconds":
        if type(value) is not int or not 900 <= value <= 43200:
            raise fail("must be a whole number of seconds from 900 to 43200")
        return value
    if key == "role_arn":
        roles = [value] if isinstance(value, str) else value
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise fail("must be a role ARN or a list of role ARNs (a chain, in order)")
        for role in roles:
            if not _matches(_ROLE_ARN, role):
                raise fail(f"{role!r} is not an IAM role ARN (arn:aws:iam::<12 digits>:role/NAME)")
        return value
    if not isinstance(value, str):
        raise fail(f"must be a string, not {type(value).__name__}")
    checks = {
        "region": (is_region, "not an AWS region name (like us-east-1)"),
        "registry_id": (is_registry_id, "must be a 12-digit AWS account id"),
        "external_id": (
            lambda v: _matches(_EXTERNAL_ID, v),
            "must be 2-1224 of A-Z a-z 0-9 +=,.@:/-_",
        ),
        "role_session_name": (
            lambda v: _matches(_SESSION_NAME, v),
            "must be 2-64 of A-Z a-z 0-9 +=,.@-_",
        ),
        "source_profile": (lambda v: bool(v.strip()), "must not be empty"),
        "cache": (lambda v: v in CACHE_BACKENDS, f"must be one of {', '.join(CACHE_BACKENDS)}"),
    }
    test, problem = checks[key]
    if not test(value):
        raise fail(f"{value!r}: {problem}" if key != "external_id" else problem)
    return value
