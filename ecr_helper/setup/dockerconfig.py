"""Docker's ``config.json``: finding it and changing it without losing anything.

Used by ``xecr configure`` (adds ``credHelpers`` entries), by ``doctor`` and
by the daemon's ``--write-docker-config`` sink
(:mod:`ecr_helper.daemon.docker_sink` keeps ``auths`` entries). Every change
reads the current file, changes only the keys it owns, and replaces the file
atomically with the same mode (0600 when it is new), so other keys, other
helpers and other registries' logins are kept.
"""

from __future__ import annotations

import json
import os
import stat
from typing import TYPE_CHECKING, Any

from ecr_helper import securefile
from ecr_helper.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

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
    """
    document = load(path)
    before = json.dumps(document, sort_keys=True)
    change(document)
    if json.dumps(document, sort_keys=True) == before and os.path.exists(path):
        return False
    folder = os.path.dirname(path)
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
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
