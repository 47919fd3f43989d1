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

from ecr_helper import _cjson, paths, securefile
from ecr_helper._frozen import Frozen
from ecr_helper.errors import ConfigError, NotOurRegistry
from ecr_helper.registry import (
    PUBLIC_HOST,
    PUBLIC_REGION,
    canonical_host,
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


MAX_CONFIG = 1 << 20
# 2: ECR Public sections are keyed by its canonical host; 3: broken sections kept.
_COPY_VERSION = 3
ECR_PUBLIC = "ecr-public"


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
        "service",
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
    service: str

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
        service: str = "ecr",
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
            service=service,
        )

    @property
    def role_arn(self) -> str | None:
        """The last (cross-account) role of the chain, if any."""
        return self.role_arns[-1] if self.role_arns else None

    @property
    def public(self) -> bool:
        """ECR Public: one token per identity, from us-east-1, for no registry id."""
        return self.service == ECR_PUBLIC

    @property
    def subject(self) -> str:
        """What messages call it: ``registry 111111111111`` or ``ECR Public``."""
        return "ECR Public" if self.public else f"registry {self.registry_id}"


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
        if not address.isascii():  # before case folding: "d\u212ar" lowers to "dkr"
            raise NotOurRegistry(address)
        # A section whose name is not a host can only be asked for by that name.
        error = self.error_for(address.strip()) if self.broken else None
        if error is not None:
            raise error
        # Both of ECR Public's names share one section and one token.
        host = canonical_host(normalize(address))
        # A broken section never falls back to [defaults]: that could assume
        # another role than the one the person meant to set.
        error = self.error_for(host) if self.broken else None
        if error is not None:
            raise error
        public = host == PUBLIC_HOST
        table = self.registries.get(host)
        ecr = parse_ecr_host(host)
        if table is None and ecr is None and not public:
            raise NotOurRegistry(address)
        table = table or {}

        def pick(key: str) -> Any:
            return table[key] if key in table else self.defaults.get(key)

        registry_id = table.get("registry_id") or (ecr.registry_id if ecr else "")
        if public:
            region = PUBLIC_REGION
        else:
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
            service=ECR_PUBLIC if public else "ecr",
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
    securefile.check_config_file(path, info, system)
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
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # a FIFO must not hang
        with os.fdopen(fd, "rb") as handle:
            securefile.check_config_file(path, os.fstat(handle.fileno()))
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
    from ecr_helper.config_schema import check

    defaults, registries, broken = check(raw, path)
    return Config(path, system, defaults, registries, broken)
