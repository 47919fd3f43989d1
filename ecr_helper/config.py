"""The configuration contract: which file is read, what it may say, and how a
registry address resolves to the settings used to fetch its token.

The file is TOML (see README "Configuration"). Parsing TOML costs more than a
cached ``get`` may spend, so a validated copy is kept as JSON in a
:class:`CopyStore` the caller passes (the file cache's folder), keyed by the
file's path, inode, size and change times; a changed file is parsed again.

A mistake inside one ``[registries."HOST"]`` section (an unknown key, a wrong
type, a malformed ARN) breaks that registry alone: the section is kept as
*broken* with its error, resolving that host raises it, and every other
registry keeps working. Text that is not TOML, and mistakes outside the
registry sections (``[defaults]``, unknown top-level keys), still fail the
whole file, since every registry depends on them.
"""

from __future__ import annotations

import os
import re

from ecr_helper import _cjson, paths
from ecr_helper._frozen import Frozen
from ecr_helper.errors import ConfigError, InputError, NotOurRegistry
from ecr_helper.registry import (
    is_host,
    is_region,
    is_registry_id,
    normalize,
    parse_ecr_host,
    region_partition,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, Protocol

    class CopyStore(Protocol):
        """Where the parsed copy of a config file is kept (the file cache's folder)."""

        def load_copy(self, source: str) -> bytes | None: ...

        def save_copy(self, source: str, data: bytes) -> None: ...


# Patterns are compiled on first use (validation only): the cached `get`
# reads the validated copy and never needs them.
_ROLE_ARN = (
    r"arn:aws(?:-cn|-us-gov|-iso|-iso-b|-iso-e|-iso-f)?:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}"
)
_EXTERNAL_ID = r"[\w+=,.@:/-]{2,1224}"
_SESSION_NAME = r"[\w+=,.@-]{2,64}"


def _matches(pattern: str, value: str) -> bool:
    return re.fullmatch(pattern, value, re.ASCII) is not None


CACHE_BACKENDS = ("file", "keyring", "none")
MAX_CONFIG = 1 << 20
_COPY_VERSION = 2

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


class RegistrySettings(Frozen):
    """Everything needed to fetch and cache the token of one registry host."""

    __slots__ = (
        "host",
        "registry_id",
        "region",
        "partition",
        "role_arns",
        "external_id",
        "role_session_name",
        "source_profile",
        "duration_seconds",
        "configured",
    )
    host: str
    registry_id: str
    region: str
    partition: str
    role_arns: tuple[str, ...]
    external_id: str | None
    role_session_name: str | None
    source_profile: str | None
    duration_seconds: int | None
    configured: bool

    def __init__(
        self,
        host: str,
        registry_id: str,
        region: str,
        partition: str,
        role_arns: tuple[str, ...] = (),
        external_id: str | None = None,
        role_session_name: str | None = None,
        source_profile: str | None = None,
        duration_seconds: int | None = None,
        configured: bool = False,
    ) -> None:
        self._set(
            host=host,
            registry_id=registry_id,
            region=region,
            partition=partition,
            role_arns=role_arns,
            external_id=external_id,
            role_session_name=role_session_name,
            source_profile=source_profile,
            duration_seconds=duration_seconds,
            configured=configured,
        )

    @property
    def role_arn(self) -> str | None:
        """The last (cross-account) role of the chain, if any."""
        return self.role_arns[-1] if self.role_arns else None


class Config(Frozen):
    """A validated configuration. ``path`` is None when no file exists.

    ``broken`` maps a registry section's host (its name as written when that is
    not a host) to ``(key, problem)``: the section's first error, raised as a
    :class:`ConfigError` whenever that host is resolved.
    """

    __slots__ = ("path", "system", "defaults", "registries", "broken")
    path: str | None
    system: bool
    defaults: dict[str, Any]
    registries: dict[str, dict[str, Any]]
    broken: dict[str, tuple[str, str]]

    def __init__(
        self,
        path: str | None = None,
        system: bool = False,
        defaults: dict[str, Any] | None = None,
        registries: dict[str, dict[str, Any]] | None = None,
        broken: dict[str, tuple[str, str]] | None = None,
    ) -> None:
        self._set(
            path=path,
            system=system,
            defaults=defaults or {},
            registries=registries or {},
            broken=broken or {},
        )

    @property
    def cache_backend(self) -> str:
        return str(self.defaults.get("cache", "file"))

    def hosts(self) -> list[str]:
        """The registry hosts named in the file: the valid ones in file order, then the
        broken ones (resolving those raises their error)."""
        return [*self.registries, *(host for host in self.broken if host not in self.registries)]

    def error_for(self, host: str) -> ConfigError | None:
        """The error of a broken section, as raised when its host is resolved."""
        found = self.broken.get(host)
        if found is None:
            return None
        key, problem = found
        return ConfigError(self.path or "", key, problem)

    def resolve(self, address: str) -> RegistrySettings:
        """The settings for a client's registry address.

        Raises :class:`NotOurRegistry` for a host that is neither ECR nor a
        configured alias, so no AWS call is ever made for it.
        """
        # A section whose name is not a host can only be asked for by that name.
        error = self.error_for(address.strip()) if self.broken else None
        if error is not None:
            raise error
        host = normalize(address)
        # A broken section never falls back to [defaults]: that could assume
        # another role than the one the person meant to set.
        error = self.error_for(host) if self.broken else None
        if error is not None:
            raise error
        table = self.registries.get(host)
        ecr = parse_ecr_host(host)
        if table is None and ecr is None:
            raise NotOurRegistry(address)
        table = table or {}

        def pick(key: str) -> Any:
            return table[key] if key in table else self.defaults.get(key)

        registry_id = table.get("registry_id") or (ecr.registry_id if ecr else "")
        region = (ecr.region if ecr else None) or table.get("region") or self.defaults["region"]
        roles = pick("role_arn")
        if isinstance(roles, str):
            roles = [roles]
        return RegistrySettings(
            host=host,
            registry_id=registry_id,
            region=region,
            partition=ecr.partition if ecr else region_partition(region),
            role_arns=tuple(roles or ()),
            external_id=pick("external_id"),
            role_session_name=pick("role_session_name"),
            source_profile=pick("source_profile"),
            duration_seconds=pick("duration_seconds"),
            configured=host in self.registries,
        )


def config_source(env: Mapping[str, str]) -> tuple[str | None, bool]:
    """Which file is in force: (path or None, whether it is the machine-wide one).

    ``XECR_CONFIG`` names the one file; else the user's file when it exists,
    used alone; else the machine-wide file when it exists.
    """
    explicit = env.get("XECR_CONFIG")
    if explicit:
        return explicit, False
    user = paths.user_config_file(env)
    if os.path.exists(user):
        return user, False
    system = paths.system_config_file(env)
    if os.path.exists(system):
        return system, True
    return None, False


def load(
    env: Mapping[str, str],
    copies: CopyStore | None = None,
    source: tuple[str | None, bool] | None = None,
) -> Config:
    """The configuration in force, from the parsed copy in ``copies`` when it is current.

    ``source`` is :func:`config_source`'s answer when the caller already has it
    (it picks the cache folder that holds the copy from it).
    """
    path, system = config_source(env) if source is None else source
    if path is None:
        return Config()
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise ConfigError(path, "", "file not found (check XECR_CONFIG)") from None
    except OSError as exc:
        raise ConfigError(path, "", f"cannot read it: {exc.strerror}") from None
    if system and (info.st_uid != 0 or info.st_mode & 0o022):
        # Root's daemon acts on this file: a user who could edit it could
        # point root at any role or cache folder.
        raise ConfigError(
            path, "", "the machine-wide config must be owned by root and writable by root only"
        )
    stamp = [info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns]
    raw = copies.load_copy(path) if copies is not None else None
    if raw is not None:
        try:
            copy = _cjson.loads(raw)
            if copy["v"] == _COPY_VERSION and copy["path"] == path and copy["stat"] == stamp:
                broken = {host: (key, why) for host, (key, why) in copy["broken"].items()}
                return Config(path, system, copy["defaults"], copy["registries"], broken)
        except (ValueError, KeyError, TypeError):
            pass  # a damaged copy is only a miss
    config = parse_file(path, system)
    if copies is not None:
        body = {
            "v": _COPY_VERSION,
            "path": path,
            "stat": stamp,
            "defaults": config.defaults,
            "registries": config.registries,
            "broken": config.broken,
        }
        copies.save_copy(path, _cjson.dumps(body).encode())
    return config


def parse_file(path: str, system: bool = False) -> Config:
    """Read and validate one TOML file. Errors name the file and the key."""
    import tomllib

    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_CONFIG + 1)
    except OSError as exc:
        raise ConfigError(path, "", f"cannot read it: {exc.strerror}") from None
    if len(data) > MAX_CONFIG:
        raise ConfigError(path, "", f"larger than {MAX_CONFIG // 1024} KiB; is it the right file?")
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(path, "", f"not UTF-8 text (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, "", f"not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(path, "", "not valid TOML: values nested too deeply") from None
    defaults, registries, broken = check(raw, path)
    return Config(path, system, defaults, registries, broken)


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
        label = host if host and is_host(host) else name
        try:
            if label in seen:
                # Two sections for one host: neither can be trusted to be the one meant.
                registries.pop(label, None)
                raise ConfigError(
                    path, f'registries."{name}"', f"names the same host as another entry ({host})"
                )
            seen.add(label)
            registries[label] = _section(name, body, host, defaults, path)
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
    if ecr is not None:
        for key, value in (("registry_id", ecr.registry_id), ("region", ecr.region)):
            if key in table and table[key] != value:
                raise ConfigError(path, f"{where}.{key}", f"contradicts the host ({value})")
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
