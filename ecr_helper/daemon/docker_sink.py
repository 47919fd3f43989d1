"""``xecr daemon --write-docker-config DIR``: ``auths`` entries for tools that
cannot run credential helpers.

:class:`DockerConfigSink` writes the configured registries' tokens into
``DIR/config.json`` as the daemon refreshes them, through
:func:`ecr_helper.setup.dockerconfig.update`, which keeps every other key.
The tokens are secrets: the file is always 0600 and ``DIR`` must be a folder
only its owner (the daemon's user, or root) can change, never a symlink
(:func:`ecr_helper.setup.dockerconfig.open_sink_folder`). A ``DIR`` that is not
is refused when the sink is made, so the daemon does not start; one that turns
unsafe later is refused at each write, logged, and the daemon keeps serving.

ECR Public's token is written under both its names (``public.ecr.aws`` and the
dual-stack ``ecr-public.aws.com``): a tool that reads only ``auths`` would pull
the other name anonymously, at the anonymous rate limit.
"""

from __future__ import annotations

import base64
import os
import threading
from typing import TYPE_CHECKING, Any

from ecr_helper import log
from ecr_helper.errors import XecrError
from ecr_helper.registry import PUBLIC_HOST, PUBLIC_HOSTS
from ecr_helper.setup.dockerconfig import FILE_NAME, check_sink, update

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from ecr_helper.token import Token


def names(host: str) -> list[str]:
    """Every ``auths`` key a configured host's token is written under."""
    return sorted(PUBLIC_HOSTS) if host == PUBLIC_HOST else [host]


def check_folder(folder: str) -> None:
    """Raise :class:`XecrError` (one line) when ``folder`` is no place for tokens."""
    check_sink(os.path.join(folder, FILE_NAME))


class DockerConfigSink:
    """Keeps ``auths`` entries for the configured registries in ``DIR/config.json``.

    For tools that read Docker's file but cannot run credential helpers. Only
    the entries of configured hosts are written or removed; every other key
    is kept (:func:`ecr_helper.setup.dockerconfig.update`).
    """

    def __init__(self, folder: str, hosts: Iterable[str] = ()) -> None:
        """Raises :class:`XecrError` (one line) for a ``folder`` tokens must not go to."""
        check_folder(folder)
        self.path = os.path.join(folder, FILE_NAME)
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
                for name in names(host):
                    if token is None:
                        auths.pop(name, None)
                    else:
                        pair = f"{token.username}:{token.secret}".encode()
                        auths[name] = {"auth": base64.b64encode(pair).decode("ascii")}

        try:
            update(self.path, change, private=True)
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
