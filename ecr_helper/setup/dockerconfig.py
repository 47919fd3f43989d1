"""Docker's ``config.json``: finding it and changing it without losing anything.

Used by ``xecr configure`` (adds ``credHelpers`` entries), by ``doctor`` and
by the daemon's ``--write-docker-config`` sink
(:mod:`ecr_helper.daemon.docker_sink` keeps ``auths`` entries). Every change
reads the current file, changes only the keys it owns, and replaces the file
atomically, so other keys, other helpers and other registries' logins are kept.

A person's file (``configure``) is edited where it really is: a symlink (dotfile
managers link it) is followed and kept, the file keeps its mode and owner, and a
new one made by root in her folder (``sudo -E``) is hers. The sink's file holds
tokens: it is written 0600 into a folder that only its owner may change
(:func:`open_sink_folder`), never through a symlink. Either way nothing but a
regular file is read, at most :data:`ecr_helper.config.MAX_CONFIG` bytes, and
nothing larger is written.
"""

from __future__ import annotations

import json
import os
import stat
from typing import TYPE_CHECKING, Any

from ecr_helper import securefile
from ecr_helper.config import MAX_CONFIG
from ecr_helper.errors import CacheError, ConfigError
from ecr_helper.setup import userfiles

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

HELPER_NAME = "xecr"
FILE_NAME = "config.json"


def config_path(env: Mapping[str, str]) -> str:
    """``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``."""
    folder = env.get("DOCKER_CONFIG") or os.path.join(
        env.get("HOME") or os.path.expanduser("~"), ".docker"
    )
    return os.path.join(folder, FILE_NAME)


def load(path: str) -> dict[str, Any]:
    """The parsed file (through a symlink); an empty object when it does not exist."""
    found = userfiles.read_regular(_resolve(path), MAX_CONFIG, shown=path)
    return _parse(found[0], path) if found is not None else {}


def _parse(data: bytes, path: str) -> dict[str, Any]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            path, "", f"Docker's config is not UTF-8 text (byte {exc.start})"
        ) from None
    if not text.strip():
        return {}
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise ConfigError(path, "", f"Docker's config is not valid JSON ({exc})") from None
    except RecursionError:
        raise ConfigError(path, "", "Docker's config is nested too deeply") from None
    if not isinstance(document, dict):
        raise ConfigError(path, "", "Docker's config is not a JSON object")
    return document


def _resolve(path: str) -> str:
    """The file ``path`` names: a symlink's target, so the link is kept and the
    file it points at updated.

    A symlink someone else owns (root with her HOME) is followed only to a file
    of hers, or a new file in a folder of hers: her link never makes root edit
    a file that is not hers.
    """
    try:
        link = os.lstat(path)
    except FileNotFoundError:
        return path
    except OSError as exc:
        raise ConfigError(path, "", f"cannot read Docker's config: {exc.strerror}") from None
    if not stat.S_ISLNK(link.st_mode):
        return path
    real = os.path.realpath(path)
    if link.st_uid != os.geteuid():
        try:
            try:
                owner = os.stat(real).st_uid
            except FileNotFoundError:
                owner = os.stat(os.path.dirname(real)).st_uid
        except OSError as exc:
            raise ConfigError(path, "", f"cannot follow the symlink: {exc.strerror}") from None
        if owner != link.st_uid:
            raise ConfigError(
                path,
                "",
                f"refused: a symlink owned by uid {link.st_uid} to {real}, which uid {owner} owns",
            )
    return real


def open_sink_folder(folder: str) -> int:
    """A descriptor of the sink's folder, made 0700 if missing, once it is safe to
    put tokens in: not a symlink, yours (or root's), and writable by its owner
    only. Raises :class:`~ecr_helper.errors.CacheError` naming what is wrong."""
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
    except FileExistsError:
        pass  # a symlink or a file: open_dir says which
    except OSError as exc:
        raise CacheError(f"cannot create folder {folder}: {exc.strerror}") from None
    return securefile.open_dir(folder, forbidden=securefile.NO_WRITE_BY_OTHERS)


def check_sink(path: str) -> None:
    """Refuse now what :func:`update` with ``private`` would refuse at the first
    token: an unsafe folder, or a ``config.json`` that is not a regular file of
    JSON within the size xecr reads."""
    fd = open_sink_folder(os.path.dirname(path) or ".")
    try:
        found = userfiles.read_regular(os.path.basename(path), MAX_CONFIG, dir_fd=fd, shown=path)
        if found is not None:
            _parse(found[0], path)
    finally:
        os.close(fd)


def update(path: str, change: Callable[[dict[str, Any]], None], *, private: bool = False) -> bool:
    """Apply ``change`` to the document in ``path``; write only if it changed.

    Returns True when the file was written. ``private``: the sink's file (0600,
    in a folder :func:`open_sink_folder` accepts, never through a symlink);
    else a person's file, kept where, how and whose it is. Parallel updates
    (two ``xecr configure`` runs, the daemon's sink) take turns: each reads
    what the one before it wrote.
    """
    if private:
        folder, name = os.path.dirname(path) or ".", os.path.basename(path)
        fd = open_sink_folder(folder)
    else:
        real = _resolve(path)
        folder, name = os.path.dirname(real) or ".", os.path.basename(real)
        try:
            userfiles.make_dirs(folder)
            fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | os.O_CLOEXEC)
        except OSError as exc:
            raise ConfigError(path, "", f"cannot use its folder: {exc.strerror}") from None
    try:
        with securefile.folder_lock(folder, dir_fd=fd):
            return _update_at(fd, name, path, change, private)
    finally:
        os.close(fd)


def _update_at(
    fd: int, name: str, path: str, change: Callable[[dict[str, Any]], None], private: bool
) -> bool:
    found = userfiles.read_regular(name, MAX_CONFIG, dir_fd=fd, shown=path)
    document = _parse(found[0], path) if found is not None else {}
    before = _dump(document, path)
    change(document)
    data = _dump(document, path)
    if found is not None and data == before:
        return False
    if len(data) > MAX_CONFIG:
        raise ConfigError(
            path,
            "",
            f"the change would make Docker's config larger than {MAX_CONFIG // 1024} KiB, "
            "more than xecr reads; nothing was written",
        )
    if private:
        mode, uid, gid = 0o600, None, None
    else:
        existing = found[1] if found is not None else None
        mode = stat.S_IMODE(existing.st_mode) if existing is not None else 0o600
        uid, gid = userfiles.owner_for(existing, os.fstat(fd))
    securefile.write_atomic(name, data, mode, gid, uid=uid, dir_fd=fd)
    return True


def _dump(document: dict[str, Any], path: str) -> bytes:
    try:
        return (json.dumps(document, indent="\t") + "\n").encode()
    except (RecursionError, ValueError):
        raise ConfigError(path, "", "Docker's config is nested too deeply") from None


def helper_for(document: Mapping[str, Any], host: str) -> str | None:
    """The credential helper Docker's config names for ``host``, if any."""
    helpers = document.get("credHelpers")
    if isinstance(helpers, dict):
        value = helpers.get(host)
        return value if isinstance(value, str) else None
    return None


def set_helper(host: str, helper: str = HELPER_NAME) -> Callable[[dict[str, Any]], None]:
    """A change that routes ``host`` to ``helper`` in ``credHelpers``."""

    def change(document: dict[str, Any]) -> None:
        helpers = document.get("credHelpers")
        if not isinstance(helpers, dict):
            helpers = {}
            document["credHelpers"] = helpers
        helpers[host] = helper

    return change
