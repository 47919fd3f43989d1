"""A keyring backend kept in one JSON file, for tests that run xecr in subprocesses.

Select it with ``PYTHON_KEYRING_BACKEND=tests.filekeyring.FileKeyring`` (the
repository root on ``PYTHONPATH``) and name the file in ``XECR_TEST_KEYRING_FILE``.
Every process sees the same passwords; updates take an flock and replace the
file atomically, so concurrent writers never lose each other's entries.
Plain text on purpose: it stands in for the OS keyring, which tests may not touch.
"""

from __future__ import annotations

import fcntl
import json
import os
from typing import Any

from keyring.backend import KeyringBackend
from keyring.compat import properties
from keyring.errors import PasswordDeleteError

ENV = "XECR_TEST_KEYRING_FILE"


def _path() -> str:
    path = os.environ.get(ENV)
    if not path:
        raise RuntimeError(f"{ENV} is not set: the test keyring has no file")
    return path


def load(path: str | None = None) -> dict[str, dict[str, str]]:
    """Every stored password, by service and user name (for assertions)."""
    try:
        with open(path or _path(), encoding="utf-8") as handle:
            data: Any = json.load(handle)
    except FileNotFoundError:
        return {}
    return data if isinstance(data, dict) else {}


def _update(change: Any) -> None:
    path = _path()
    with open(f"{path}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = load(path)
        change(data)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(data, handle)
        os.replace(tmp, path)


class FileKeyring(KeyringBackend):
    @properties.classproperty
    def priority(cls) -> float:
        # Not viable without its file, so keyring's own discovery never picks it.
        _path()
        return 1

    def get_password(self, service: str, username: str) -> str | None:
        return load().get(service, {}).get(username)

    def set_password(self, service: str, username: str, password: str) -> None:
        _update(lambda data: data.setdefault(service, {}).__setitem__(username, password))

    def delete_password(self, service: str, username: str) -> None:
        if username not in load().get(service, {}):
            raise PasswordDeleteError(f"no password for {username!r} in {service!r}")
        _update(lambda data: data.get(service, {}).pop(username, None))
