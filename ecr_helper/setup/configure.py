"""``xecr configure``: one registry's section of the TOML config, and Docker's route to xecr.

The TOML file is edited with tomlkit so the person's comments, key order and
formatting survive; only the keys named on the command line are set, and
only when their value differs, so running the same command twice writes
nothing. The edited document is checked with :func:`ecr_helper.config_schema.check`
before it replaces the file (atomically, through a symlink into its target,
keeping its mode and owner; never larger than :data:`ecr_helper.config.MAX_CONFIG`,
which ``get`` would refuse). Docker's ``config.json`` gets
``credHelpers[HOST] = "xecr"`` through :mod:`ecr_helper.setup.dockerconfig`,
which keeps every other key; it is read first, so a file there that cannot be
edited stops the command before anything is written.
"""

from __future__ import annotations

import os
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit
import tomlkit.exceptions

from ecr_helper import config_schema, paths, securefile
from ecr_helper.config import MAX_CONFIG
from ecr_helper.errors import ConfigError, InputError, UsageError
from ecr_helper.registry import (
    PUBLIC_REGION,
    canonical_host,
    is_host,
    is_public_host,
    is_region,
    is_registry_id,
    misnumbered_id,
    normalize,
    parse_ecr_host,
)
from ecr_helper.setup import dockerconfig, userfiles

# Keys in the order a new section lists them.
_ORDER = ("registry_id", "region", "role_arn", "external_id", "role_session_name", "source_profile")


@dataclass(frozen=True)
class Request:
    """What ``xecr configure`` was asked to do. Unset options leave the file's values alone."""

    registry: str
    role_arns: tuple[str, ...] = ()
    external_id: str | None = None
    registry_id: str | None = None
    region: str | None = None
    source_profile: str | None = None
    role_session_name: str | None = None
    system: bool = False
    docker: bool = True


@dataclass(frozen=True)
class Result:
    """What changed. ``config_action`` is "added", "updated" or None (unchanged)."""

    host: str
    config_path: str
    config_action: str | None
    changed_keys: tuple[str, ...]
    docker_path: str | None
    docker_changed: bool
    docker_previous: str | None
    shadowed_system: str | None

    def lines(self) -> list[str]:
        """The report printed to the person, one change per line."""
        out: list[str] = []
        section = f'[registries."{canonical_host(self.host)}"]'
        if self.config_action == "added":
            out.append(f"config: added {section} to {self.config_path}")
        elif self.config_action == "updated":
            out.append(
                f"config: updated {section} in {self.config_path} ({', '.join(self.changed_keys)})"
            )
        if self.docker_changed:
            was = f' (was "{self.docker_previous}")' if self.docker_previous else ""
            out.append(
                f'docker: credHelpers["{self.host}"] = "{dockerconfig.HELPER_NAME}" '
                f"in {self.docker_path}{was}"
            )
        if not out:
            out.append("nothing to change")
        if self.shadowed_system and self.config_action == "added":
            out.append(
                f"note: {self.config_path} is now read instead of the machine-wide "
                f"{self.shadowed_system}; copy any registries you use from it"
            )
        return out


def target_file(env: Mapping[str, str], system: bool) -> str:
    """The file ``configure`` edits: the one ``XECR_CONFIG`` names, else the user's file
    (the machine-wide file with ``--system``)."""
    if system:
        return paths.system_config_file(env)
    return env.get("XECR_CONFIG") or paths.user_config_file(env)


def wanted(request: Request) -> tuple[str, dict[str, Any]]:
    """The normalized host and the keys its section must hold. Raises UsageError."""
    try:
        host = normalize(request.registry)
    except InputError as exc:
        raise UsageError(str(exc)) from None
    if not is_host(host):
        raise UsageError(f"{request.registry!r} is not a registry host name (host or host:port)")
    if request.registry_id is not None and not is_registry_id(request.registry_id):
        raise UsageError(f"--registry-id {request.registry_id!r}: expected a 12-digit account id")
    if request.region is not None and not is_region(request.region):
        raise UsageError(f"--region {request.region!r}: expected an AWS region like us-east-1")
    keys = _where_keys(request, host)
    if request.role_arns:
        keys["role_arn"] = (
            request.role_arns[0] if len(request.role_arns) == 1 else list(request.role_arns)
        )
    for key in ("external_id", "role_session_name", "source_profile"):
        value = getattr(request, key)
        if value is not None:
            keys[key] = value
    return host, keys


def _where_keys(request: Request, host: str) -> dict[str, Any]:
    """registry_id and region for host's section: none for ECR and ECR Public hosts
    (which carry their own, so a different value is refused), those given for an alias."""
    ecr = parse_ecr_host(host)
    if is_public_host(host):
        if request.registry_id is not None:
            raise UsageError("--registry-id: ECR Public has no registry id")
        if request.region not in (None, PUBLIC_REGION):
            raise UsageError(
                f"--region {request.region}: ECR Public's tokens come from {PUBLIC_REGION} only"
            )
        return {}
    if ecr is not None:
        for option, given, actual in (
            ("--registry-id", request.registry_id, ecr.registry_id),
            ("--region", request.region, ecr.region),
        ):
            if given is not None and given != actual:
                raise UsageError(f"{option} {given} contradicts the ECR host {host} ({actual})")
        return {}
    misnumbered = misnumbered_id(host)
    if misnumbered is not None and request.registry_id is None:
        # A typo in an ECR host, not an alias to be told --registry-id and --region.
        raise UsageError(f"{host} is not an ECR host: {misnumbered}")
    keys: dict[str, Any] = {}
    if request.registry_id is not None:
        keys["registry_id"] = request.registry_id
    if request.region is not None:
        keys["region"] = request.region
    return keys


def _parse(path: str, text: str) -> tomlkit.TOMLDocument:
    try:
        return tomlkit.parse(text)
    except tomlkit.exceptions.ParseError as exc:
        raise ConfigError(path, "", f"not valid TOML: {exc}") from None


def _plain(document: tomlkit.TOMLDocument | dict[str, Any]) -> dict[str, Any]:
    # What tomllib makes of the text is what `xecr` will read, so validate that.
    return tomllib.loads(tomlkit.dumps(document))


def _find(registries: Any, host: str) -> str | None:
    """The key of the section that names ``host`` in any spelling (case, scheme, :443)."""
    for name in registries:
        try:
            if canonical_host(normalize(str(name))) == canonical_host(host):
                return str(name)
        except InputError:
            continue
    return None


def _unwrap(value: Any) -> Any:
    return value.unwrap() if hasattr(value, "unwrap") else value


def edit(
    text: str, path: str, host: str, keys: Mapping[str, Any], need_alias_keys: bool
) -> tuple[str, str | None, tuple[str, ...]]:
    """Apply ``keys`` to host's section of the TOML ``text``.

    Returns (new text, "added"/"updated"/None, the keys that changed). The file
    must be valid before the edit (ConfigError otherwise); an edit that would
    make it invalid is the command line's fault (UsageError).
    """
    document = _parse(path, text)
    # Other registries' broken sections are theirs to fix: only a mistake that
    # breaks the whole file (or, after the edit, this host's section) stops us.
    defaults, _, _ = config_schema.check(_plain(document), path)
    registries = document.get("registries")
    if registries is None:
        registries = tomlkit.table(is_super_table=True)
        document["registries"] = registries
    name = _find(registries, host)
    if name is None:
        _require_alias_keys(host, keys, defaults, need_alias_keys)
        changed = _add_section(registries, host, keys)
        action: str | None = "added"
    else:
        changed = _update_section(registries, name, keys, path)
        action = "updated" if changed else None
    if action is None:
        return text, None, ()
    _check_edited(document, path, host)
    return tomlkit.dumps(document), action, tuple(changed)


def _require_alias_keys(
    host: str, keys: Mapping[str, Any], defaults: Mapping[str, Any], need: bool
) -> None:
    missing = [
        option
        for option, key in (("--registry-id", "registry_id"), ("--region", "region"))
        if need and key not in keys and not (key == "region" and key in defaults)
    ]
    if missing:
        what = {
            "--registry-id": "the central registry's account id",
            "--region": "its region; or set [defaults] region",
        }
        raise UsageError(
            f"{host} is not an ECR host name: give "
            + " and ".join(f"{option} ({what[option]})" for option in missing)
        )


def _add_section(registries: Any, host: str, keys: Mapping[str, Any]) -> list[str]:
    section = tomlkit.table()
    changed = []
    for key in _ORDER:
        if key in keys:
            section[key] = keys[key]
            changed.append(key)
    registries[canonical_host(host)] = section
    return changed


def _update_section(registries: Any, name: str, keys: Mapping[str, Any], path: str) -> list[str]:
    section = registries[name]
    if not isinstance(section, dict):
        raise ConfigError(path, f'registries."{name}"', "must be a table")
    changed = []
    for key in _ORDER:
        if key in keys and (key not in section or _unwrap(section[key]) != keys[key]):
            section[key] = keys[key]
            changed.append(key)
    return changed


def _check_edited(document: tomlkit.TOMLDocument, path: str, host: str) -> None:
    """Refuse an edit that leaves the file, or host's section, invalid."""
    try:
        _, _, broken = config_schema.check(_plain(document), path)
    except ConfigError as exc:
        raise UsageError(
            f"the change would make the config invalid: {exc.key}: {exc.problem}"
        ) from None
    if host in broken:
        key, problem = broken[host]
        raise UsageError(f"the change would leave {key} invalid: {problem}")


def _check_target(path: str) -> None:
    """Refuse to edit a file (or follow a symlink) that another user controls."""
    try:
        info = os.lstat(path)
        if stat.S_ISLNK(info.st_mode):
            if info.st_uid not in (os.geteuid(), 0):
                raise ConfigError(
                    path, "", f"refused: a symlink owned by uid {info.st_uid}, not by you or root"
                )
            info = os.stat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ConfigError(path, "", f"cannot read it: {exc.strerror}") from None
    securefile.check_config_file(path, info)


def _read(path: str) -> str:
    _check_target(path)
    # Bounded like `get`'s read, and never opening a FIFO put there meanwhile.
    found = userfiles.read_regular(str(Path(path).resolve()), MAX_CONFIG, shown=path)
    if found is None:
        return ""
    try:
        return found[0].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(path, "", f"not UTF-8 text (byte {exc.start})") from None


def _folder(path: str, system: bool) -> Path:
    """The folder of the file ``path`` really is (a symlink is followed), created if missing."""
    # Follow a symlink (dotfile managers link config files) so the link is kept.
    real = Path(path).resolve()
    try:
        userfiles.make_dirs(str(real.parent), 0o755 if system else 0o700)
    except OSError as exc:
        raise ConfigError(path, "", f"cannot create its folder: {exc.strerror}") from None
    return real.parent


def _write(path: str, text: str, system: bool) -> None:
    data = text.encode("utf-8")
    if len(data) > MAX_CONFIG:
        # `get` would refuse the file: every registry would fail.
        raise ConfigError(
            path,
            "",
            f"the change would make it larger than {MAX_CONFIG // 1024} KiB, more than "
            "xecr reads; nothing was written",
        )
    real = Path(path).resolve()
    try:
        info: os.stat_result | None = real.stat()
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise ConfigError(path, "", f"cannot update it: {exc.strerror}") from None
    try:
        uid, gid = userfiles.owner_for(info, real.parent.stat())
    except OSError as exc:
        raise ConfigError(path, "", f"cannot update it: {exc.strerror}") from None
    # No secrets live here; the machine-wide file must be readable by every user.
    mode = stat.S_IMODE(info.st_mode) if info is not None else (0o644 if system else 0o600)
    securefile.write_atomic(str(real), data, mode, gid, uid=uid)


def configure(request: Request, env: Mapping[str, str]) -> Result:
    """Create or update the registry's section, then route it to xecr in Docker's config."""
    host, keys = wanted(request)
    path = target_file(env, request.system)
    docker_path = dockerconfig.config_path(env) if request.docker else None
    # Read Docker's file first: one that cannot be edited stops us before any write.
    previous = (
        dockerconfig.helper_for(dockerconfig.load(docker_path), host) if docker_path else None
    )
    # Parallel runs (bootstrap and config-management tools) take turns, so each
    # edits what the one before it wrote and no section is lost.
    with securefile.folder_lock(str(_folder(path, request.system))):
        existed = Path(path).exists()
        text = _read(path)
        alias = parse_ecr_host(host) is None and not is_public_host(host)
        new_text, action, changed = edit(text, path, host, keys, alias)
        if action is not None:
            _write(path, new_text, request.system)
    shadowed = None
    if not existed and not request.system and not env.get("XECR_CONFIG"):
        system_file = paths.system_config_file(env)
        shadowed = system_file if Path(system_file).exists() else None
    docker_changed = False
    if docker_path is not None:
        docker_changed = dockerconfig.update(docker_path, dockerconfig.set_helper(host))
    return Result(
        host=host,
        config_path=path,
        config_action=action,
        changed_keys=changed,
        docker_path=docker_path,
        docker_changed=docker_changed,
        docker_previous=previous if previous != dockerconfig.HELPER_NAME else None,
        shadowed_system=shadowed,
    )
