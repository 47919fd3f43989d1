"""The file backend of the token cache (the default), and its folder.

One JSON entry per key in the cache folder, written atomically by
:mod:`ecr_helper.securefile`; a sidecar ``.lock`` file per key serialises
fetches across processes (filelock, imported only when a lock is needed).
Anything wrong with an entry (corrupt, truncated, foreign, unsafe) makes it a
miss, never a crash; the next fetch replaces it.

The machine-wide cache (``machine``) is root's: its entries are keyed by the
machine's identity (:func:`ecr_helper.cache.cache_key`), so anyone else
using it is only a reader. A reader (not root) uses it only when the folder
is root's and closed to writes by others, takes only root's entries, and
never writes, locks or notes anything there: nothing a user writes is ever
served to root or to another user as the machine's token.
"""

from __future__ import annotations

import os

from ecr_helper import _cjson, paths, securefile
from ecr_helper.cache.base import NoLock, TokenCache
from ecr_helper.errors import CacheError
from ecr_helper.token import Token

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from ecr_helper.cache.base import Lock

try:  # hashlib pulls in OpenSSL (about 4 ms); the builtin module is enough here
    from _sha256 import sha256  # type: ignore[import-not-found,unused-ignore]  # <= 3.11
except ImportError:
    try:
        from _sha2 import sha256  # type: ignore[import-not-found,no-redef,unused-ignore]
    except ImportError:
        from hashlib import sha256  # type: ignore[assignment,unused-ignore]

ENTRY_PREFIX = "token-"


def digest(text: str) -> str:
    return str(sha256(text.encode()).hexdigest())


class FileLock:
    """A sidecar lock: ``with lock as held`` yields whether it was had in time."""

    def __init__(self, path: str, timeout: float, mode: int) -> None:
        from filelock import FileLock

        self._lock = FileLock(path, timeout=timeout, mode=mode)
        self._held = False

    def __enter__(self) -> bool:
        from filelock import Timeout

        try:
            self._lock.acquire()
        except (Timeout, OSError):
            return False
        self._held = True
        return True

    def __exit__(self, *exc: object) -> None:
        if self._held:
            self._lock.release()


class FileCache(TokenCache):
    """Entries as 0600 JSON files (0640 in the machine-wide cache)."""

    name = "file"

    def __init__(self, folder: str, shared_gid: int | None = None, machine: bool = False) -> None:
        self.folder = folder
        self.gid = shared_gid
        self.dir_mode = 0o750 if shared_gid is not None else 0o700
        self.file_mode = 0o640 if shared_gid is not None else 0o600
        self.machine = machine
        # Not root in the machine-wide cache: read root's entries, write nothing.
        self._reader = machine and os.geteuid() != 0
        self._ready = False

    def _path(self, key: str, suffix: str = ".json") -> str:
        assert self.folder is not None
        return os.path.join(self.folder, f"{ENTRY_PREFIX}{key}{suffix}")

    def prepare(self) -> None:
        """Create the folder if needed and check it is safe; :class:`CacheError` if not.

        Only root creates the machine-wide folder; users only read it.
        """
        if not self._ready:
            assert self.folder is not None
            if self._reader:
                _check_machine_dir(self.folder)
            else:
                securefile.ensure_dir(self.folder, self.dir_mode, self.gid)
            self._ready = True

    def _read(self, path: str, limit: int) -> bytes | None:
        if self._reader:
            try:
                self.prepare()
            except CacheError:
                return None
        return securefile.read_file(path, limit, root_only=self._reader)

    def _writable(self) -> None:
        if self._reader:
            raise CacheError(f"the machine-wide cache {self.folder} is written by root only")
        self.prepare()

    def read(self, key: str) -> Token | None:
        raw = self._read(self._path(key), 1 << 16)
        if raw is None:
            return None
        try:
            return Token.from_json(_cjson.loads(raw))
        except ValueError:
            return None

    def write(self, key: str, token: Token) -> None:
        self._writable()
        data = _cjson.dumps(token.to_json()).encode()
        securefile.write_atomic(self._path(key), data, self.file_mode, self.gid)
        assert self.folder is not None
        securefile.sweep_temp_files(self.folder)

    def note_failure(self, key: str, message: str, at: float) -> None:
        # Not a cached failure: only processes that started waiting before
        # `at` honour it (see refresh.obtain); every later get asks AWS again.
        data = _cjson.dumps({"at": at, "error": message}).encode()
        try:
            self._writable()
            securefile.write_atomic(self._path(key, ".fail"), data, self.file_mode, self.gid)
        except CacheError:
            pass

    def failure_since(self, key: str, since: float, until: float | None = None) -> str | None:
        note = self.last_failure(key)
        if note is None:
            return None
        at, error = note
        # A note from "after now" was written before the clock stepped back:
        # it says nothing about the fetch this caller queued behind.
        return error if at > since and (until is None or at <= until) else None

    def last_failure(self, key: str) -> tuple[float, str] | None:
        raw = self._read(self._path(key, ".fail"), 1 << 14)
        if raw is None:
            return None
        try:
            note = _cjson.loads(raw)
            return float(note["at"]), str(note["error"])
        except (ValueError, KeyError, TypeError):
            return None

    def delete(self, key: str) -> bool:
        self._writable()
        return securefile.remove(self._path(key))

    # The parsed copy of a config file (see :func:`ecr_helper.config.load`) lives
    # beside the tokens, keyed by the config file's absolute path.

    def _copy_path(self, source: str) -> str | None:
        if self._reader:
            return None  # the machine-wide cache is written by root only
        try:
            self.prepare()
        except CacheError:
            return None
        assert self.folder is not None
        return os.path.join(self.folder, f"config-{digest(os.path.abspath(source))[:16]}.json")

    def load_copy(self, source: str) -> bytes | None:
        """The stored parsed copy of config file ``source``, if any."""
        path = self._copy_path(source)
        return None if path is None else securefile.read_file(path)

    def save_copy(self, source: str, data: bytes) -> None:
        """Store the parsed copy of ``source``; a copy that cannot be written costs a parse."""
        path = self._copy_path(source)
        if path is None:
            return
        try:  # not contextlib.suppress: that import would land on the get path
            securefile.write_atomic(path, data)
        except CacheError:
            pass

    def entries(self) -> dict[str, Token]:
        return read_entries(self, ENTRY_PREFIX)

    def lock(self, key: str, timeout: float) -> Lock:
        try:
            self._writable()
        except CacheError:
            return NoLock()
        return FileLock(self._path(key, ".lock"), timeout, self.file_mode)


def _check_machine_dir(folder: str) -> None:
    """Refuse a machine-wide folder that is not root's (:class:`CacheError`)."""
    try:
        info = os.lstat(folder)
    except OSError as exc:
        raise CacheError(f"cannot use folder {folder}: {exc.strerror}") from None
    securefile.check_dir(folder, info)
    if info.st_uid != 0:
        raise CacheError(
            f"refusing folder {folder}: the machine-wide cache must be root's "
            f"(owned by uid {info.st_uid})"
        )


def read_entries(store: TokenCache, prefix: str) -> dict[str, Token]:
    """Every readable entry of a folder-backed cache whose files are ``<prefix><key>.json``."""
    assert store.folder is not None
    found: dict[str, Token] = {}
    try:
        names = sorted(os.listdir(store.folder))
    except OSError:
        return found
    for name in names:
        if name.startswith(prefix) and name.endswith(".json"):
            key = name[len(prefix) : -len(".json")]
            token = store.read(key)
            if token is not None:
                found[key] = token
    return found


def _machine_gid() -> int | None:
    """The docker group's id: its members may read the machine-wide cache."""
    import grp

    try:
        return grp.getgrnam("docker").gr_gid
    except KeyError:
        return None


def file_cache(env: Mapping[str, str], system: bool) -> FileCache:
    """The file cache for the config in force (machine-wide for /etc/xecr)."""
    machine = system and not env.get("XECR_CACHE_DIR")
    return FileCache(paths.cache_dir(env, system), _machine_gid() if machine else None, machine)
