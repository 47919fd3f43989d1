"""ecr_helper.cache: the file backend's entries and locks, what goes into a cache key, and
open_cache's choice of backend (with its fall back to no cache, logged, for unsafe folders).

The contract shared with the keyring backend is in test_cache_contract.py.
"""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from pathlib import Path

import pytest

from ecr_helper import cache, paths
from ecr_helper.cache import FileCache, TokenCache, cache_key, open_cache
from ecr_helper.config import Config, RegistrySettings
from tests.helpers import CENTRAL, CENTRAL_HOST, PULL_ROLE, make_token

KEY = "0123456789abcdef0123456789abcdef"
STRANGER = 54321


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "cache" / "xecr"


@pytest.fixture
def files(folder: Path) -> FileCache:
    return FileCache(str(folder))


# -- the file backend ----------------------------------------------------------------------


def test_round_trip_in_private_files(files: FileCache, folder: Path) -> None:
    assert files.read(KEY) is None
    token = make_token()
    files.write(KEY, token)
    assert files.read(KEY) == token
    assert FileCache(str(folder)).read(KEY) == token  # another process sees it
    entry = folder / f"token-{KEY}.json"
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert json.loads(entry.read_bytes())["secret"] == token.secret


def _valid_entry(files: FileCache, folder: Path) -> bytes:
    files.write(KEY, make_token())
    return (folder / f"token-{KEY}.json").read_bytes()


@pytest.mark.parametrize(
    "damage",
    [
        "corrupt",
        "truncated",
        "empty",
        "wrong version",
        "no version",
        "list",
        "not utf-8",
        "huge",
        "nan",
    ],
)
def test_bad_entries_are_misses_healed_by_the_next_write(
    files: FileCache, folder: Path, damage: str
) -> None:
    raw = _valid_entry(files, folder)
    body = json.loads(raw)
    data = {
        "corrupt": b"{this is not json",
        "truncated": raw[: len(raw) - 7],
        "empty": b"",
        "wrong version": json.dumps({**body, "v": 2}).encode(),
        "no version": json.dumps({k: v for k, v in body.items() if k != "v"}).encode(),
        "list": json.dumps([body]).encode(),
        "not utf-8": b"\xff\xfe" + raw,
        "huge": json.dumps({**body, "pad": "x" * (1 << 17)}).encode(),
        "nan": raw.replace(b'"expires_at": ', b'"expires_at": NaN, "x": '),
    }[damage]
    entry = folder / f"token-{KEY}.json"
    entry.write_bytes(data)
    assert files.read(KEY) is None
    assert files.entries() == {}
    fresh = make_token("secret-healed-0123")
    files.write(KEY, fresh)
    assert files.read(KEY) == fresh


def test_entries_lists_only_readable_token_entries(files: FileCache, folder: Path) -> None:
    tokens = {f"{n:032x}": make_token(f"secret-number-{n}") for n in range(3)}
    for key, token in tokens.items():
        files.write(key, token)
    with files.lock(KEY, 1.0):  # leaves a .lock file behind
        pass
    (folder / "config-0123456789abcdef.json").write_text("{}")
    (folder / f".token-{KEY}.json.1.abcd.tmp").write_text("{}")
    (folder / "token-broken.json").write_text("{")
    (folder / "unrelated.txt").write_text("x")
    assert files.entries() == tokens


def test_entries_of_a_missing_folder_is_empty(files: FileCache) -> None:
    assert files.entries() == {}


def test_delete(files: FileCache) -> None:
    files.write(KEY, make_token())
    assert files.delete(KEY) is True
    assert files.read(KEY) is None
    assert files.delete(KEY) is False


# -- cache keys ----------------------------------------------------------------------------

BASE = RegistrySettings(
    host=CENTRAL_HOST,
    registry_id=CENTRAL,
    region="us-east-1",
    partition="aws",
    role_arns=(PULL_ROLE,),
    external_id="ext-1",
)
BASE_ENV = {"AWS_ACCESS_KEY_ID": "AKIAFAKEFAKEFAKE0001"}


def _variant(field: str, value: object) -> RegistrySettings:
    values = {name: getattr(BASE, name) for name in BASE.__slots__}
    values[field] = value
    return RegistrySettings(**values)


VARIANTS: dict[str, tuple[RegistrySettings, dict[str, str]]] = {
    "base": (BASE, BASE_ENV),
    "role": (_variant("role_arns", ("arn:aws:iam::333333333333:role/other",)), BASE_ENV),
    "no role": (_variant("role_arns", ()), BASE_ENV),
    "chain": (_variant("role_arns", ("arn:aws:iam::333333333333:role/hop", PULL_ROLE)), BASE_ENV),
    "external id": (_variant("external_id", "ext-2"), BASE_ENV),
    "no external id": (_variant("external_id", None), BASE_ENV),
    "source profile": (_variant("source_profile", "central"), BASE_ENV),
    "AWS_PROFILE": (BASE, {**BASE_ENV, "AWS_PROFILE": "other"}),
    "AWS_DEFAULT_PROFILE": (BASE, {**BASE_ENV, "AWS_DEFAULT_PROFILE": "other"}),
    "AWS_ROLE_ARN": (BASE, {**BASE_ENV, "AWS_ROLE_ARN": "arn:aws:iam::444444444444:role/ci"}),
    "AWS_ROLE_SESSION_NAME": (BASE, {**BASE_ENV, "AWS_ROLE_SESSION_NAME": "job-2"}),
    "AWS_WEB_IDENTITY_TOKEN_FILE": (BASE, {**BASE_ENV, "AWS_WEB_IDENTITY_TOKEN_FILE": "/run/t2"}),
    "AWS_SHARED_CREDENTIALS_FILE": (BASE, {**BASE_ENV, "AWS_SHARED_CREDENTIALS_FILE": "/c2"}),
    "AWS_CONFIG_FILE": (BASE, {**BASE_ENV, "AWS_CONFIG_FILE": "/config2"}),
    "HOME (the default AWS files)": (BASE, {**BASE_ENV, "HOME": "/home/other"}),
    "AWS_CONTAINER_CREDENTIALS_FULL_URI": (
        BASE,
        {**BASE_ENV, "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1:1/c"},
    ),
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": (
        BASE,
        {**BASE_ENV, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/credentials/x"},
    ),
    "AWS_CONTAINER_AUTHORIZATION_TOKEN": (
        BASE,
        {**BASE_ENV, "AWS_CONTAINER_AUTHORIZATION_TOKEN": "container-token-2"},
    ),
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": (
        BASE,
        {**BASE_ENV, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": "/run/pod-token"},
    ),
    "AWS_EC2_METADATA_DISABLED": (BASE, {**BASE_ENV, "AWS_EC2_METADATA_DISABLED": "true"}),
    "AWS_EC2_METADATA_SERVICE_ENDPOINT": (
        BASE,
        {**BASE_ENV, "AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://127.0.0.1:2"},
    ),
    "access key": (BASE, {"AWS_ACCESS_KEY_ID": "AKIAFAKEFAKEFAKE0002"}),
    "no access key": (BASE, {}),
    "region": (_variant("region", "us-east-2"), BASE_ENV),
    "partition": (_variant("partition", "aws-us-gov"), BASE_ENV),
    "session name": (_variant("role_session_name", "ci-2"), BASE_ENV),
    "duration": (_variant("duration_seconds", 3600), BASE_ENV),
    "ECR Public": (_variant("service", "ecr-public"), BASE_ENV),
}


def test_registries_of_one_identity_and_region_share_one_key() -> None:
    """ECR's token is valid for every registry of its region the caller may read."""
    key = cache_key(BASE, BASE_ENV)
    assert cache_key(_variant("registry_id", "999999999999"), BASE_ENV) == key
    assert cache_key(_variant("host", "registry.example.com"), BASE_ENV) == key


def test_every_component_changes_the_key() -> None:
    keys = {name: cache_key(s, env) for name, (s, env) in VARIANTS.items()}
    assert len(set(keys.values())) == len(keys), keys
    for key in keys.values():
        assert len(key) == 32 and set(key) <= set("0123456789abcdef")


def test_the_key_is_stable_and_ignores_the_endpoint_and_the_secret() -> None:
    key = cache_key(BASE, BASE_ENV)
    assert cache_key(BASE, dict(BASE_ENV)) == key
    for extra in (
        {"AWS_ENDPOINT_URL": "http://127.0.0.1:1"},
        {
            "AWS_ENDPOINT_URL_ECR": "http://127.0.0.1:2",
            "AWS_ENDPOINT_URL_STS": "http://127.0.0.1:3",
        },
        {"AWS_SECRET_ACCESS_KEY": "another-secret"},
        {"AWS_REGION": "eu-west-1"},
    ):
        assert cache_key(BASE, {**BASE_ENV, **extra}) == key, extra


@pytest.mark.parametrize(
    "variable",
    ["AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"],
)
def test_source_profile_wins_over_the_variables_botocore_then_ignores(variable: str) -> None:
    # botocore ignores the profile and web identity variables when a profile is named.
    settings = _variant("source_profile", "central")
    assert cache_key(settings, {**BASE_ENV, variable: "a"}) == cache_key(
        settings, {**BASE_ENV, variable: "b"}
    )


def test_container_credentials_count_even_with_a_source_profile() -> None:
    settings = _variant("source_profile", "central")
    uri = "AWS_CONTAINER_CREDENTIALS_FULL_URI"
    assert cache_key(settings, {**BASE_ENV, uri: "http://127.0.0.1:1/a"}) != cache_key(
        settings, {**BASE_ENV, uri: "http://127.0.0.1:1/b"}
    )


def test_the_key_does_not_contain_the_access_key() -> None:
    assert "AKIA" not in cache_key(BASE, BASE_ENV)


def test_the_same_home_spelled_two_ways_is_one_key() -> None:
    home = {**BASE_ENV, "HOME": "/home/a"}
    explicit = {**home, "AWS_CONFIG_FILE": "/home/a/.aws/config"}
    tilde = {**home, "AWS_CONFIG_FILE": "~/.aws/config"}
    assert cache_key(BASE, home) == cache_key(BASE, explicit) == cache_key(BASE, tilde)


# -- locks ---------------------------------------------------------------------------------


def test_lock_has_one_holder_across_threads(files: FileCache) -> None:
    held = threading.Event()
    release = threading.Event()
    results: list[bool] = []

    def holder() -> None:
        with files.lock(KEY, 5.0) as got:
            results.append(got)
            held.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert held.wait(10)
        started = time.monotonic()
        with files.lock(KEY, 0.3) as got:
            assert got is False
        assert time.monotonic() - started >= 0.25  # it waited its timeout
        with FileCache(files.folder or "").lock(KEY, 0.0) as got:
            assert got is False  # another FileCache (as another process would) too
        with files.lock("f" * 32, 0.0) as got:
            assert got is True  # other keys are not held up
    finally:
        release.set()
        thread.join(10)
    assert results == [True]
    with files.lock(KEY, 1.0) as got:
        assert got is True


def test_lock_never_lets_two_threads_in(files: FileCache) -> None:
    inside = 0
    most = 0
    guard = threading.Lock()
    failures: list[str] = []

    def worker() -> None:
        nonlocal inside, most
        for _ in range(25):
            with files.lock(KEY, 10.0) as got:
                if not got:
                    failures.append("lock not had")
                    continue
                with guard:
                    inside += 1
                    most = max(most, inside)
                time.sleep(0.001)
                with guard:
                    inside -= 1

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not failures and most == 1


def test_the_lock_file_is_0600(files: FileCache, folder: Path) -> None:
    old = os.umask(0)
    try:
        with files.lock(KEY, 1.0) as got:
            assert got
            lock = folder / f"token-{KEY}.lock"
            assert stat.S_IMODE(lock.stat().st_mode) == 0o600
    finally:
        os.umask(old)


def test_a_lock_in_an_unsafe_folder_is_not_held(files: FileCache, folder: Path) -> None:
    folder.parent.mkdir(parents=True)
    folder.mkdir(mode=0o777)
    folder.chmod(0o777)
    with files.lock(KEY, 1.0) as got:
        assert got is False
    assert not (folder / f"token-{KEY}.lock").exists()


def test_the_null_backend_keeps_nothing() -> None:
    null = TokenCache()
    null.write(KEY, make_token())
    assert null.read(KEY) is None and null.entries() == {} and null.delete(KEY) is False
    with null.lock(KEY, 5.0) as got:
        assert got is False


# -- choosing a backend --------------------------------------------------------------------


def test_open_cache_gives_the_user_file_cache() -> None:
    env = dict(os.environ)
    store = open_cache(Config(), env)
    assert isinstance(store, FileCache)
    assert store.folder == paths.user_cache_dir(env)
    assert stat.S_IMODE(os.stat(store.folder).st_mode) == 0o700


def test_open_cache_honours_xecr_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XECR_CACHE_DIR", str(tmp_path / "mine"))
    store = open_cache(Config(path="/etc/xecr/config.toml", system=True), dict(os.environ))
    assert isinstance(store, FileCache) and store.folder == str(tmp_path / "mine")
    assert not store.machine


def test_open_cache_for_the_machine_config_uses_the_machine_folder() -> None:
    env = dict(os.environ)
    store = open_cache(Config(path=env["XECR_SYSTEM_CONFIG"], system=True), env)
    assert isinstance(store, FileCache) and store.machine
    assert store.folder == env["XECR_SYSTEM_CACHE_DIR"]


def test_cache_none_is_the_null_backend(log_file: Path) -> None:
    env = dict(os.environ)
    store = open_cache(Config(defaults={"cache": "none"}), env)
    assert type(store) is TokenCache
    assert not os.path.exists(paths.user_cache_dir(env))  # not even created


def _unsafe(kind: str, folder: Path, tmp_path: Path) -> None:
    folder.parent.mkdir(parents=True, exist_ok=True)
    if kind == "symlink":
        real = tmp_path / "real-cache"
        real.mkdir(mode=0o700)
        folder.symlink_to(real)
        return
    folder.mkdir(mode=0o700)
    if kind == "foreign":
        os.chown(folder, STRANGER, -1)
    else:
        folder.chmod(0o777)


@pytest.mark.parametrize(
    ("kind", "why"),
    [
        ("symlink", "it is a symlink"),
        ("foreign", f"owned by uid {STRANGER}"),
        ("world-open", "lets others in"),
    ],
)
def test_an_unsafe_folder_means_no_cache_and_a_warning_in_the_log(
    kind: str, why: str, log_file: Path, tmp_path: Path
) -> None:
    env = dict(os.environ)
    folder = Path(paths.user_cache_dir(env))
    _unsafe(kind, folder, tmp_path)
    store = open_cache(Config(), env)
    assert type(store) is TokenCache
    text = log_file.read_text()
    assert "WARNING token cache disabled" in text and str(folder) in text and why in text
    assert len(text.splitlines()) == 1
    assert list(folder.iterdir()) == []  # nothing was written into it


def test_file_cache_helper_matches_open_cache() -> None:
    env = dict(os.environ)
    assert cache.file_cache(env, False).folder == paths.user_cache_dir(env)
    assert cache.file_cache(env, True).folder == env["XECR_SYSTEM_CACHE_DIR"]
