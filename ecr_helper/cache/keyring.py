"""The keyring backend of the token cache (``cache = "keyring"`` in ``[defaults]``).

For workstations: each token's secret lives in the OS keyring (macOS Keychain,
Secret Service, Windows Credential Locker) under service ``xecr`` with the
cache key as the user name. What decides whether it may be served (its times,
registry, role) lives beside it as a ``keyring-<key>.json`` file in the file
cache's folder, written like every other entry (0600, atomic) and holding no
secret, so the refresh policy never has to open the keyring to say "expired".
Locks are the file cache's sidecar locks.

The metadata carries a short digest of the secret it belongs to: two writers
racing (a lock timeout, a ``login`` beside a ``get``) could otherwise pair one
token's expiry with another token's secret. A mismatch is a miss.

This module is imported only when the keyring backend is asked for: the
default file path never imports ``keyring`` (its import alone costs more
than a cached ``get`` may spend; keyring imports :mod:`pathlib` anyway, so
this module may use it). A keyring that cannot be used (keyring's
``fail`` or ``null`` backend on a headless box, or one that errors on a
probe) leaves the file cache in charge, with one warning in the log; a
keyring error later is a miss when reading and a :class:`CacheError` when
writing, never a crash.
"""

from __future__ import annotations

import json
from pathlib import Path

from ecr_helper import securefile
from ecr_helper.cache.base import TokenCache
from ecr_helper.cache.file import FileCache, digest, read_entries
from ecr_helper.errors import CacheError
from ecr_helper.token import Token

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Protocol

    from ecr_helper.cache.base import Lock

    class Backend(Protocol):
        """What xecr uses of a ``keyring.backend.KeyringBackend``."""

        def get_password(self, service: str, username: str) -> str | None: ...

        def set_password(self, service: str, username: str, password: str) -> None: ...

        def delete_password(self, service: str, username: str) -> None: ...


SERVICE = "xecr"
ENTRY_PREFIX = "keyring-"
# The user name of the probe lookup; no entry is ever written under it.
PROBE_USER = "xecr-probe"
_CHECK_LENGTH = 16
_MESSAGE_LIMIT = 200


def _check(secret: str) -> str:
    """A short digest tying an entry's metadata to its secret (reveals nothing usable)."""
    return digest(secret)[:_CHECK_LENGTH]


def backend_name(backend: object) -> str:
    kind = type(backend)
    return f"{kind.__module__}.{kind.__qualname__}"


def _describe(exc: BaseException, secret: str | None = None) -> str:
    """One line about a keyring failure, with any secret it might echo removed."""
    text = " ".join(str(exc).split())[:_MESSAGE_LIMIT]
    if secret and secret in text:
        text = text.replace(secret, "***")
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class KeyringCache(TokenCache):
    """Secrets in the OS keyring, their metadata as files in the file cache's folder."""

    name = "keyring"

    def __init__(self, files: FileCache, backend: Backend) -> None:
        self.files = files
        self.folder = files.folder
        self.backend = backend

    def _path(self, key: str) -> str:
        assert self.folder is not None
        return str(Path(self.folder) / f"{ENTRY_PREFIX}{key}.json")

    def _warn(self, message: str) -> None:
        from ecr_helper import log

        log.warning(message)

    def read(self, key: str) -> Token | None:
        raw = securefile.read_file(self._path(key), limit=1 << 16)
        if raw is None:
            return None
        try:
            body = json.loads(raw)
            check = body["check"]
        except (ValueError, KeyError, TypeError):
            return None
        try:
            secret = self.backend.get_password(SERVICE, key)
        except Exception as exc:  # any backend (D-Bus, Keychain) may fail its own way
            self._warn(
                f"keyring {backend_name(self.backend)} could not be read, "
                f"treating the cached token as missing ({_describe(exc)})"
            )
            return None
        if not isinstance(secret, str) or not secret or check != _check(secret):
            return None  # removed from the keyring, or the metadata of another token
        return Token.from_json(body, secret=secret)

    def write(self, key: str, token: Token) -> None:
        try:
            self.backend.set_password(SERVICE, key, token.secret)
        except Exception as exc:  # any backend may fail its own way; the token just isn't kept
            raise CacheError(
                f"cannot store the token of {token.registry or key} in the keyring "
                f"{backend_name(self.backend)} ({_describe(exc, token.secret)}); "
                'check that the keyring is unlocked, or set cache = "file" in [defaults]'
            ) from None
        body = token.to_json(with_secret=False)
        body["check"] = _check(token.secret)
        self.files.prepare()
        securefile.write_atomic(
            self._path(key), json.dumps(body).encode(), self.files.file_mode, self.files.gid
        )

    def delete(self, key: str) -> bool:
        """Forget the entry: its metadata, its secret, and any file-backend copy."""
        removed = securefile.remove(self._path(key))
        # A token cached before the switch to the keyring is the same token: forget it too.
        removed = self.files.delete(key) or removed
        try:
            if self.backend.get_password(SERVICE, key) is None:
                return removed
            self.backend.delete_password(SERVICE, key)
        except Exception as exc:  # the secret may still be in the keyring: say so
            raise CacheError(
                f"cannot remove the token {key} from the keyring {backend_name(self.backend)} "
                f"({_describe(exc)}); remove service {SERVICE!r}, user {key!r} by hand"
            ) from None
        return True

    def entries(self) -> dict[str, Token]:
        return read_entries(self, ENTRY_PREFIX)

    def note_failure(self, key: str, message: str, at: float) -> None:
        self.files.note_failure(key, message, at)

    def failure_since(self, key: str, since: float, until: float | None = None) -> str | None:
        return self.files.failure_since(key, since, until)

    def last_failure(self, key: str) -> tuple[float, str] | None:
        return self.files.last_failure(key)

    def lock(self, key: str, timeout: float) -> Lock:
        return self.files.lock(key, timeout)


def unusable(backend: Backend) -> str | None:
    """Why ``backend`` cannot hold tokens, or None when it can.

    keyring's ``fail`` backend (priority 0) raises on every call; its ``null``
    backend and an empty chainer (priority -1) silently forget everything,
    which would make every ``get`` call AWS.
    """
    try:
        priority = float(type(backend).priority)  # type: ignore[attr-defined]
    except Exception as exc:  # a backend's priority check may raise to say "not viable"
        return f"it is not viable ({_describe(exc)})"
    if priority <= 0:
        return "it is keyring's fallback, which cannot store anything (no keyring service found)"
    try:
        backend.get_password(SERVICE, PROBE_USER)
    except Exception as exc:  # the probe stands for every later call
        return f"a probe lookup failed ({_describe(exc)})"
    return None


def open_keyring_cache(files: FileCache) -> TokenCache:
    """The keyring backend over ``files``, or ``files`` itself when the keyring is unusable."""
    try:
        import keyring

        backend = keyring.get_keyring()
    except Exception as exc:  # import or backend discovery: keyring has many ways to fail
        return _fall_back(files, f"keyring could not be loaded ({_describe(exc)})")
    problem = unusable(backend)
    if problem is not None:
        return _fall_back(files, f"keyring {backend_name(backend)} is unusable: {problem}")
    return KeyringCache(files, backend)


def _fall_back(files: FileCache, why: str) -> TokenCache:
    from ecr_helper import log

    log.warning(f'cache = "keyring" asked for, using the file cache in {files.folder}: {why}')
    return files
