"""The contract every token cache backend keeps (file, keyring, and the null backend
where it applies), the keyring backend's own promises, and its fallback to the file
cache when the keyring cannot be used."""

from __future__ import annotations

import json
import logging
import os
import stat
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import keyring
import keyring.core
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import fail, null
from keyring.errors import KeyringLocked, PasswordDeleteError

from ecr_helper import cache, config, paths, refresh
from ecr_helper.cache import FileCache, TokenCache
from ecr_helper.cache.keyring import SERVICE, KeyringCache, open_keyring_cache
from ecr_helper.config import RegistrySettings
from ecr_helper.errors import CacheError
from ecr_helper.token import Token
from tests import helpers
from tests.helpers import CENTRAL, CENTRAL_HOST, PULL_ROLE

KEY = "a" * 32
OTHER = "b" * 32


class MemoryKeyring(KeyringBackend):
    """An in-process keyring; ``fail_on`` names the operations that raise."""

    priority = 1
    viable = False  # keyring's own discovery must never pick this class up

    def __init__(self) -> None:
        super().__init__()
        self.store: dict[tuple[str, str], str] = {}
        self.fail_on: set[str] = set()
        self.calls: list[str] = []

    def _maybe_fail(self, operation: str, echo: str = "") -> None:
        self.calls.append(operation)
        if operation in self.fail_on:
            raise KeyringLocked(f"collection is locked {echo}".strip())

    def get_password(self, service: str, username: str) -> str | None:
        self._maybe_fail("get")
        return self.store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        # Some backends echo what they were given in their errors: xecr must not repeat it.
        self._maybe_fail("set", echo=password)
        self.store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self._maybe_fail("delete")
        if self.store.pop((service, username), None) is None:
            raise PasswordDeleteError("not found")


def make_token(secret: str = "secret-one-0123456789", now: float | None = None) -> Token:
    return helpers.make_token(secret, now)


@pytest.fixture
def set_keyring(monkeypatch: pytest.MonkeyPatch) -> Callable[[KeyringBackend], None]:
    """Select a keyring backend for this test; the process's own is put back afterwards."""
    monkeypatch.setattr(keyring.core, "_keyring_backend", keyring.core._keyring_backend)
    return keyring.set_keyring


@pytest.fixture
def memory_keyring(set_keyring: Callable[[KeyringBackend], None]) -> MemoryKeyring:
    backend = MemoryKeyring()
    set_keyring(backend)
    return backend


@pytest.fixture
def warnings_logged() -> Iterator[list[logging.LogRecord]]:
    """The warnings (and worse) xecr writes to its log during the test."""
    from ecr_helper import log

    logger = log.setup(os.environ)
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Collect(logging.WARNING)
    level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)
    logger.setLevel(level)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "cache" / "xecr"


BACKENDS = ("file", "keyring", "none")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, folder: Path) -> TokenCache:
    if request.param == "none":
        return TokenCache()
    files = FileCache(str(folder))
    if request.param == "file":
        return files
    request.getfixturevalue("memory_keyring")
    store = open_keyring_cache(files)
    assert isinstance(store, KeyringCache)
    return store


@pytest.fixture(params=BACKENDS[:2])
def persistent(request: pytest.FixtureRequest, folder: Path) -> TokenCache:
    """The backends that keep what they are given."""
    files = FileCache(str(folder))
    if request.param == "file":
        return files
    request.getfixturevalue("memory_keyring")
    store = open_keyring_cache(files)
    assert isinstance(store, KeyringCache)
    return store


def entry_file(folder: Path, key: str) -> Path:
    """The one file holding ``key``'s entry, whichever backend wrote it."""
    found = [p for p in folder.iterdir() if key in p.name and p.name.endswith(".json")]
    assert len(found) == 1, found
    return found[0]


# -- the contract -----------------------------------------------------------------------


def test_a_cold_cache_is_a_miss(backend: TokenCache) -> None:
    assert backend.read(KEY) is None
    assert backend.entries() == {}


def test_round_trip(backend: TokenCache) -> None:
    token = make_token()
    backend.write(KEY, token)
    expected = None if backend.name == "none" else token
    assert backend.read(KEY) == expected
    if expected is not None:
        got = backend.read(KEY)
        assert got is not None and got.secret == token.secret and got.role_arn == PULL_ROLE


def test_overwrite_replaces_the_entry(persistent: TokenCache) -> None:
    persistent.write(KEY, make_token("secret-one-0123456789"))
    newer = make_token("secret-two-0123456789", now=time.time() + 1)
    persistent.write(KEY, newer)
    assert persistent.read(KEY) == newer


def test_keys_never_share_an_entry(persistent: TokenCache) -> None:
    first, second = make_token("secret-one-0123456789"), make_token("secret-two-0123456789")
    persistent.write(KEY, first)
    assert persistent.read(OTHER) is None
    persistent.write(OTHER, second)
    assert persistent.read(KEY) == first
    assert persistent.read(OTHER) == second


def test_delete(backend: TokenCache) -> None:
    backend.write(KEY, make_token())
    backend.write(OTHER, make_token("secret-two-0123456789"))
    kept = backend.name != "none"
    assert backend.delete(KEY) is kept
    assert backend.read(KEY) is None
    assert backend.delete(KEY) is False
    assert (backend.read(OTHER) is not None) is kept


def test_entries_lists_every_readable_entry(backend: TokenCache) -> None:
    first, second = make_token("secret-one-0123456789"), make_token("secret-two-0123456789")
    backend.write(KEY, first)
    backend.write(OTHER, second)
    expected = {} if backend.name == "none" else {KEY: first, OTHER: second}
    assert backend.entries() == expected


def test_entries_skips_a_corrupt_entry(persistent: TokenCache, folder: Path) -> None:
    persistent.write(KEY, make_token())
    persistent.write(OTHER, make_token("secret-two-0123456789"))
    entry_file(folder, KEY).write_bytes(b"{not json")
    assert list(persistent.entries()) == [OTHER]


def test_files_are_private(persistent: TokenCache, folder: Path) -> None:
    persistent.write(KEY, make_token())
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    with persistent.lock(KEY, 1.0):
        pass
    for path in folder.iterdir():
        assert stat.S_IMODE(path.lstat().st_mode) == 0o600, path.name


def test_write_into_an_open_folder_is_refused(persistent: TokenCache, folder: Path) -> None:
    folder.mkdir(parents=True)
    folder.chmod(0o777)
    with pytest.raises(CacheError, match="lets others in"):
        persistent.write(KEY, make_token())
    assert list(folder.iterdir()) == []


def test_lock_excludes_a_second_holder(persistent: TokenCache) -> None:
    with persistent.lock(KEY, 1.0) as held:
        assert held is True
        with persistent.lock(KEY, 0.0) as second:
            assert second is False
        with persistent.lock(OTHER, 0.0) as other_key:
            assert other_key is True  # one lock per key, not one for the cache
    with persistent.lock(KEY, 0.0) as again:
        assert again is True


def test_lock_waits_its_timeout_then_gives_up(persistent: TokenCache) -> None:
    with persistent.lock(KEY, 1.0):
        started = time.monotonic()
        with persistent.lock(KEY, 0.3) as second:
            waited = time.monotonic() - started
    assert second is False
    assert 0.25 <= waited < 5


def test_the_null_lock_never_holds_and_never_blocks() -> None:
    store = TokenCache()
    with store.lock(KEY, 30.0) as held, store.lock(KEY, 30.0) as again:
        assert held is False and again is False


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda raw: b"", id="empty"),
        pytest.param(lambda raw: raw[: len(raw) // 2], id="truncated"),
        pytest.param(lambda raw: b"\xff\xfe garbage", id="garbage"),
        pytest.param(lambda raw: b"[1, 2, 3]", id="a-list"),
        pytest.param(lambda raw: raw.replace(b'"v": 1', b'"v": 99'), id="other-version"),
        pytest.param(lambda raw: raw.replace(b'"username"', b'"user"'), id="missing-field"),
        pytest.param(
            lambda raw: raw.replace(b'"registry_id": "', b'"registry_id": 7, "x": "'),
            id="wrong-type",
        ),
    ],
)
def test_corrupt_entry_is_a_miss_and_is_rewritten(
    persistent: TokenCache, folder: Path, damage: Callable[[bytes], bytes]
) -> None:
    persistent.write(KEY, make_token())
    path = entry_file(folder, KEY)
    raw = path.read_bytes()
    damaged = damage(raw)
    assert damaged != raw
    path.write_bytes(damaged)
    assert persistent.read(KEY) is None
    fresh = make_token("secret-two-0123456789")
    persistent.write(KEY, fresh)
    assert persistent.read(KEY) == fresh


def test_times_that_make_no_sense_are_a_miss(persistent: TokenCache, folder: Path) -> None:
    persistent.write(KEY, make_token())
    path = entry_file(folder, KEY)
    body = json.loads(path.read_bytes())
    body["expires_at"] = body["issued_at"] - 1
    path.write_text(json.dumps(body))
    assert persistent.read(KEY) is None


def test_a_symlinked_entry_is_a_miss(persistent: TokenCache, folder: Path, tmp_path: Path) -> None:
    persistent.write(KEY, make_token())
    path = entry_file(folder, KEY)
    elsewhere = tmp_path / "planted.json"
    elsewhere.write_bytes(path.read_bytes())
    elsewhere.chmod(0o600)
    path.unlink()
    path.symlink_to(elsewhere)
    assert persistent.read(KEY) is None


def test_an_entry_others_may_write_is_a_miss(persistent: TokenCache, folder: Path) -> None:
    persistent.write(KEY, make_token())
    entry_file(folder, KEY).chmod(0o666)
    assert persistent.read(KEY) is None


def test_obtain_fetches_once_then_serves_the_cache(backend: TokenCache) -> None:
    settings = RegistrySettings(
        host=CENTRAL_HOST,
        registry_id=CENTRAL,
        region="us-east-1",
        partition="aws",
        role_arns=(PULL_ROLE,),
    )
    fetched: list[bool] = []

    def fetch(_settings: RegistrySettings, quick: bool) -> Token:
        fetched.append(quick)
        return make_token(f"secret-{len(fetched)}-0123456789")

    first = refresh.obtain(settings, backend, KEY, fetch)
    second = refresh.obtain(settings, backend, KEY, fetch)
    if backend.name == "none":
        assert fetched == [False, False] and first != second
    else:
        assert fetched == [False] and second == first


# -- the keyring backend's own promises ---------------------------------------------------


@pytest.fixture
def keyring_cache(folder: Path, memory_keyring: MemoryKeyring) -> KeyringCache:
    store = open_keyring_cache(FileCache(str(folder)))
    assert isinstance(store, KeyringCache)
    return store


def test_the_secret_lives_in_the_keyring_only(
    keyring_cache: KeyringCache, memory_keyring: MemoryKeyring, folder: Path
) -> None:
    token = make_token("secret-kept-in-the-keyring")
    keyring_cache.write(KEY, token)
    assert memory_keyring.store == {(SERVICE, KEY): token.secret}
    files = list(folder.iterdir())
    assert [p.name for p in files if p.suffix == ".json"] == [f"keyring-{KEY}.json"]
    for path in files:
        assert token.secret not in path.read_text(errors="replace")
    body = json.loads(entry_file(folder, KEY).read_text())
    assert body["expires_at"] == token.expires_at and "secret" not in body


def test_a_secret_gone_from_the_keyring_is_a_miss(
    keyring_cache: KeyringCache, memory_keyring: MemoryKeyring
) -> None:
    keyring_cache.write(KEY, make_token())
    memory_keyring.store.clear()
    assert keyring_cache.read(KEY) is None


def test_a_secret_that_is_not_the_entrys_is_a_miss(
    keyring_cache: KeyringCache, memory_keyring: MemoryKeyring
) -> None:
    # Two racing writers could leave one token's times beside another's secret.
    keyring_cache.write(KEY, make_token("secret-one-0123456789"))
    memory_keyring.store[(SERVICE, KEY)] = "secret-of-another-token"
    assert keyring_cache.read(KEY) is None


def test_a_keyring_read_error_is_a_miss_with_a_warning(
    keyring_cache: KeyringCache,
    memory_keyring: MemoryKeyring,
    warnings_logged: list[logging.LogRecord],
) -> None:
    keyring_cache.write(KEY, make_token())
    memory_keyring.fail_on.add("get")
    assert keyring_cache.read(KEY) is None
    assert keyring_cache.entries() == {}
    assert len(warnings_logged) == 2
    assert "KeyringLocked" in warnings_logged[0].getMessage()


def test_a_keyring_write_error_is_a_cache_error_without_the_secret(
    keyring_cache: KeyringCache, memory_keyring: MemoryKeyring, folder: Path
) -> None:
    memory_keyring.fail_on.add("set")
    token = make_token("secret-that-must-not-leak")
    with pytest.raises(CacheError) as caught:
        keyring_cache.write(KEY, token)
    message = str(caught.value)
    assert token.secret not in message
    assert "keyring" in message and "locked" in message and "\n" not in message
    assert keyring_cache.read(KEY) is None
    assert not folder.exists() or not any(folder.iterdir())


def test_obtain_survives_a_keyring_that_refuses_writes(
    keyring_cache: KeyringCache, memory_keyring: MemoryKeyring
) -> None:
    memory_keyring.fail_on.add("set")
    settings = RegistrySettings(
        host=CENTRAL_HOST, registry_id=CENTRAL, region="us-east-1", partition="aws"
    )
    token = make_token()
    assert refresh.obtain(settings, keyring_cache, KEY, lambda s, q: token) == token


def test_delete_forgets_the_secret_and_a_file_backend_copy(
    keyring_cache: KeyringCache, memory_keyring: MemoryKeyring, folder: Path
) -> None:
    # A token cached before `cache = "keyring"` was set is the same token: logout forgets both.
    keyring_cache.files.write(KEY, make_token("secret-from-file-cache"))
    keyring_cache.write(KEY, make_token())
    assert keyring_cache.delete(KEY) is True
    assert memory_keyring.store == {}
    assert [p for p in folder.iterdir() if p.suffix == ".json"] == []
    assert keyring_cache.delete(KEY) is False


def test_delete_of_a_secret_without_metadata(
    keyring_cache: KeyringCache, memory_keyring: MemoryKeyring
) -> None:
    memory_keyring.store[(SERVICE, KEY)] = "left-behind-secret"
    assert keyring_cache.delete(KEY) is True
    assert memory_keyring.store == {}


def test_a_keyring_delete_error_is_a_cache_error(
    keyring_cache: KeyringCache, memory_keyring: MemoryKeyring
) -> None:
    keyring_cache.write(KEY, make_token())
    memory_keyring.fail_on.add("delete")
    with pytest.raises(CacheError, match="remove service 'xecr'"):
        keyring_cache.delete(KEY)


# -- choosing the keyring, and falling back ---------------------------------------------


@pytest.fixture
def keyring_config(write_config: Callable[[str], Path]) -> config.Config:
    write_config('[defaults]\nregion = "us-east-1"\ncache = "keyring"\n')
    loaded = config.load(os.environ)
    assert loaded.cache_backend == "keyring"
    return loaded


def test_open_cache_gives_the_keyring_when_it_works(
    keyring_config: config.Config,
    memory_keyring: MemoryKeyring,
    warnings_logged: list[logging.LogRecord],
) -> None:
    store = cache.open_cache(keyring_config, os.environ)
    assert isinstance(store, KeyringCache)
    assert store.folder == paths.cache_dir(os.environ, False)
    assert type(store.files) is FileCache
    assert warnings_logged == []


def test_the_fail_keyring_falls_back_to_files_with_one_warning(
    keyring_config: config.Config,
    set_keyring: Callable[[KeyringBackend], None],
    warnings_logged: list[logging.LogRecord],
) -> None:
    set_keyring(fail.Keyring())
    store = cache.open_cache(keyring_config, os.environ)
    assert type(store) is FileCache
    assert len(warnings_logged) == 1
    message = warnings_logged[0].getMessage()
    assert "keyring.backends.fail.Keyring" in message and "file cache" in message
    token = make_token()
    store.write(KEY, token)  # and the file cache it gave works
    assert store.read(KEY) == token
    assert len(warnings_logged) == 1


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(null.Keyring, id="null-keyring"),
        pytest.param(lambda: _failing_probe(), id="probe-error"),
    ],
)
def test_other_unusable_keyrings_fall_back_too(
    folder: Path,
    set_keyring: Callable[[KeyringBackend], None],
    warnings_logged: list[logging.LogRecord],
    make: Callable[[], KeyringBackend],
) -> None:
    set_keyring(make())
    files = FileCache(str(folder))
    assert open_keyring_cache(files) is files
    assert len(warnings_logged) == 1


def _failing_probe() -> MemoryKeyring:
    backend = MemoryKeyring()
    backend.fail_on.add("get")
    return backend


def test_keyring_that_cannot_be_imported_falls_back(
    keyring_config: config.Config,
    monkeypatch: pytest.MonkeyPatch,
    warnings_logged: list[logging.LogRecord],
) -> None:
    monkeypatch.setitem(sys.modules, "keyring", None)
    store = cache.open_cache(keyring_config, os.environ)
    assert type(store) is FileCache
    assert len(warnings_logged) == 1 and "could not be loaded" in warnings_logged[0].getMessage()
