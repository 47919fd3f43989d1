"""Docker's ``config.json``: finding it and changing it without losing anything.

Used by ``xecr configure`` (adds ``credHelpers`` entries) and by the
daemon's ``--write-docker-config`` sink (:class:`DockerConfigSink` keeps
``auths`` entries). Every change reads
the current file, changes only the keys it owns, and replaces the file
atomically with the same mode (0600 when it is new), so other keys, other
helpers and other registries' logins are kept.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import threading
from typing import TYPE_CHECKING, Any

from ecr_helper import log, securefile
from ecr_helper.errors import ConfigError, XecrError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from ecr_helper.credentials import Token

HELPER_NAME = "xecr"


def config_path(env: Mapping[str, str]) -> str:
    """``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``."""
    folder = env.get("DOCKER_CONFIG") or os.path.join(
        env.get("HOME") or os.path.expanduser("~"), ".docker"
    )
    return os.path.join(folder, "config.json")


def load(path: str) -> dict[str, Any]:
    """The parsed file; an empty object when it does not exist."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(path, "", f"cannot read Docker's config: {exc.strerror}") from None
    if not text.strip():
        return {}
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise ConfigError(path, "", f"Docker's config is not valid JSON ({exc})") from None
    if not isinstance(document, dict):
        raise ConfigError(path, "", "Docker's config is not a JSON object")
    return document


def update(path: str, change: Callable[[dict[str, Any]], None]) -> bool:
    """Apply ``change`` to the document in ``path``; write only if it changed.

    Returns True when the file was written. Keeps the file's mode and owner.
    Parallel updates (two ``xecr configure`` runs, the daemon's sink) take
    turns: each reads what the one before it wrote.
    """
    folder = os.path.dirname(path) or "."
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
    except OSError as exc:
        raise ConfigError(path, "", f"cannot create its folder: {exc.strerror}") from None
    with securefile.folder_lock(folder):
        return _update_locked(path, change)


def _update_locked(path: str, change: Callable[[dict[str, Any]], None]) -> bool:
    document = load(path)
    before = json.dumps(document, sort_keys=True)
    change(document)
    if json.dumps(document, sort_keys=True) == before and os.path.exists(path):
        return False
    try:
        info = os.stat(path)
        mode, gid = stat.S_IMODE(info.st_mode), info.st_gid
    except FileNotFoundError:
        mode, gid = 0o600, None
    except OSError as exc:
        raise ConfigError(path, "", f"cannot update Docker's config: {exc.strerror}") from None
    data = (json.dumps(document, indent="\t") + "\n").encode()
    securefile.write_atomic(path, data, mode, gid)
    return True


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


class DockerConfigSink:
    """Keeps ``auths`` entries for the configured registries in ``DIR/config.json``.

    For tools that read Docker's file but cannot run credential helpers. Only
    the entries of configured hosts are written or removed; every other key
    is kept (:func:`ecr_helper.dockerconfig.update`).
    """

    def __init__(self, folder: str, hosts: Iterable[str] = ()) -> None:
        self.path = os.path.join(folder, "config.json")
        self._lock = threading.Lock()
        self._hosts = set(hosts)
        self._written: set[str] = set()

    def set_hosts(self, hosts: Iterable[str]) -> None:
        """Follow a reload: entries this sink wrote for dropped hosts are removed."""
        with self._lock:
            self._hosts = set(hosts)
            gone = self._written - self._hosts
            if gone:
                self._apply({host: None for host in gone})

    def put(self, tokens: Mapping[str, Token]) -> str | None:
        """Write the entries of these tokens. Returns the failure, if any (never raises)."""
        with self._lock:
            wanted = {h: t for h, t in tokens.items() if h in self._hosts}
            return self._apply(dict(wanted)) if wanted else None

    def _apply(self, entries: dict[str, Token | None]) -> str | None:
        def change(document: dict[str, Any]) -> None:
            auths = document.get("auths")
            if not isinstance(auths, dict):
                auths = {}
                document["auths"] = auths
            for host, token in entries.items():
                if token is None:
                    auths.pop(host, None)
                else:
                    pair = f"{token.username}:{token.secret}".encode()
                    auths[host] = {"auth": base64.b64encode(pair).decode("ascii")}

        try:
            update(self.path, change)
        except XecrError as exc:
            message = f"cannot keep {self.path}: {exc}"
            log.warning(message)
            return message
        for host, token in entries.items():
            if token is None:
                self._written.discard(host)
            else:
                self._written.add(host)
        return None
