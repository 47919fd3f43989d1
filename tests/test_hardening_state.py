"""Issue 7 point 2, through the installed executables: a broken config is one
line naming the file and the key; a damaged cache entry heals on the next
``get``; an unusable cache folder (read-only, unwritable, full, a symlink,
someone else's) leaves ``get`` answering uncached with a warning in the log
and nothing written through it; SIGKILL in the middle of a cache write never
leaves a partial entry that is served.

Read-only and full folders are real tmpfs mounts; the unwritable folder is a
0500 folder used by a process that lost CAP_DAC_OVERRIDE (root otherwise
writes anywhere, and the Python install under /root is closed to other
users). Each skips, saying why, where the sandbox does not allow it.
"""

from __future__ import annotations

import ctypes
import json
import os
import random
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ecr_helper.token import Token
from tests.fakeaws import FakeAws
from tests.helpers import (
    ANSWER,
    CENTRAL_HOST,
    CONFIG,
    HELPER,
    PASSWORD,
    PULL_ROLE,
    XECR,
    Result,
    assert_answers,
    assert_one_line_failure,
    assert_private_entry,
    cache_folder,
    get,
    installed,
    log_text,
    run,
    scan,
    token_entries,
    warm_entry,
)

# Every test here starts the installed executables (or a shell script).
pytestmark = pytest.mark.slow

NOBODY = 65534
PLANTED = "planted-secret-not-from-aws"


def _token_count(fake: FakeAws) -> int:
    return fake.calls("GetAuthorizationToken")


# ---------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------

MALFORMED = {
    "unclosed table": '[defaults\nregion = "us-east-1"\n',
    "unterminated string": '[defaults]\nregion = "us-east-1\n',
    "duplicate key": '[defaults]\nregion = "us-east-1"\nregion = "us-east-2"\n',
    "bare words": "this is not toml\n",
    "NUL byte": '[defaults]\nregion = "us-east-1"\x00\n',
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_toml_names_the_file(
    case: str, write_config: Callable[[str], Path], fake_aws: FakeAws, tmp_path: Path
) -> None:
    path = write_config(MALFORMED[case])
    result = get()
    assert_one_line_failure(result, str(path), "not valid TOML")
    login = run([XECR, "login"])
    assert_one_line_failure(login, "xecr login:", str(path), stream="stderr")
    assert fake_aws.counts() == {}
    scan(fake_aws, tmp_path, [result, login])


BAD_VALUES = {
    "region is a number": ("[defaults]\nregion = 5\n", "defaults.region"),
    "duration is text": ('[defaults]\nduration_seconds = "900"\n', "defaults.duration_seconds"),
    "duration out of range": ("[defaults]\nduration_seconds = 60\n", "defaults.duration_seconds"),
    "cache is a boolean": ("[defaults]\ncache = true\n", "defaults.cache"),
    "defaults is a value": ('defaults = "us-east-1"\n', "defaults"),
    "registries is a value": ('registries = "all"\n', "registries"),
    "registry is a value": (
        f'[registries]\n"{CENTRAL_HOST}" = 5\n',
        f'registries."{CENTRAL_HOST}"',
    ),
    "role is a number": (
        f'[registries."{CENTRAL_HOST}"]\nrole_arn = 42\n',
        f'registries."{CENTRAL_HOST}".role_arn',
    ),
    "role is not an ARN": (
        f'[registries."{CENTRAL_HOST}"]\nrole_arn = ["{PULL_ROLE}", "ecr-pull"]\n',
        f'registries."{CENTRAL_HOST}".role_arn',
    ),
    "registry id is a number": (
        '[registries."registry.example.com"]\nregistry_id = 333333333333\nregion = "us-east-1"\n',
        'registries."registry.example.com".registry_id',
    ),
    "alias without registry id": (
        '[registries."registry.example.com"]\nregion = "us-east-1"\n',
        'registries."registry.example.com".registry_id',
    ),
    "host is not a host": (
        '[registries."not a host!"]\nregistry_id = "333333333333"\n',
        'registries."not a host!"',
    ),
}
UNKNOWN_KEYS = {
    "top level": ('colour = "blue"\n', "colour"),
    "in defaults": ('[defaults]\nregoin = "us-east-1"\n', "defaults.regoin"),
    "in a registry": (
        f'[registries."{CENTRAL_HOST}"]\nrole = "{PULL_ROLE}"\n',
        f'registries."{CENTRAL_HOST}".role',
    ),
    "a misspelt table": ('[default]\nregion = "us-east-1"\n', "default"),
}


@pytest.mark.parametrize(
    ("text", "key"),
    [*BAD_VALUES.values(), *UNKNOWN_KEYS.values()],
    ids=[*BAD_VALUES, *(f"unknown key {k}" for k in UNKNOWN_KEYS)],
)
def test_bad_values_and_unknown_keys_name_file_and_key(
    text: str, key: str, write_config: Callable[[str], Path], fake_aws: FakeAws, tmp_path: Path
) -> None:
    path = write_config(text)
    # A section's own mistake fails the host it names; the rest fail every host.
    host = key.split('"')[1] if key.startswith('registries."') else CENTRAL_HOST
    if host == "not a host!":
        # No client can ask for that name: the other registries keep working,
        # and people's commands name the broken section.
        # No role for CENTRAL_HOST here: the base keys' own token (account 123456789012).
        assert_answers(get(), {**ANSWER, "Secret": "123456789012-auth-token"})
        fake_aws.reset()
        result = run([XECR, "login"])
        assert result.returncode == 1
        assert f"config error in {path}: {key}: " in result.err
    else:
        result = get(host)
        line = assert_one_line_failure(result, f"config error in {path}: {key}: ")
        assert "credentials not found" not in line
    assert fake_aws.counts() == {}
    scan(fake_aws, tmp_path, [result])


UNPARSEABLE = {
    # Each once escaped config.parse_file as an "internal error".
    "not UTF-8": b'[defaults]\nregion = "us-east-1"\n# caf\xe9\n',
    "nested too deeply": b"a = " + b"[" * 100_000 + b"\n",
}


def test_a_section_named_with_a_newline_is_one_line_in_status(
    isolated_env: Path, fake_aws: FakeAws
) -> None:
    """The raw key in the message once made the error two lines on Docker's stdout; now
    that section fails alone, and people see it, escaped, on one line."""
    path = isolated_env / ".config" / "xecr" / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_bytes(b'[registries."bad\\nhost"]\nregistry_id = "333333333333"\n')
    result = run([XECR, "status"])
    assert result.returncode == 0
    [line] = [x for x in result.out.splitlines() if "config error" in x and ":" in x[:12]]
    assert f'config error in {path}: registries."bad\\nhost"' in line
    assert fake_aws.counts() == {}


@pytest.mark.parametrize(
    "case",
    list(UNPARSEABLE),
)
def test_unparseable_config_is_one_clear_line(
    case: str, isolated_env: Path, fake_aws: FakeAws
) -> None:
    path = isolated_env / ".config" / "xecr" / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_bytes(UNPARSEABLE[case])
    result = get()
    assert_one_line_failure(result, f"config error in {path}")
    assert fake_aws.counts() == {}


def test_a_fixed_config_is_read_again(
    write_config: Callable[[str], Path], fake_aws: FakeAws
) -> None:
    """The parsed copy kept in the cache never outlives an edit of the file."""
    write_config(CONFIG)
    assert_answers(get())
    path = write_config(CONFIG + "oops = 1\n")
    assert_one_line_failure(get(), str(path), "oops")
    write_config(CONFIG)
    assert_answers(get())


def test_a_corrupt_config_copy_is_only_a_miss(configured: FakeAws, isolated_env: Path) -> None:
    assert_answers(get())
    copies = list(cache_folder(isolated_env).glob("config-*.json"))
    assert len(copies) == 1
    copies[0].write_bytes(b'{"v": 1, "path": ')
    assert_answers(get())
    json.loads(copies[0].read_bytes())  # rewritten whole


# ---------------------------------------------------------------------------
# Damaged cache entries
# ---------------------------------------------------------------------------


def _planted_body() -> dict[str, object]:
    now = time.time()
    return {
        "v": 1,
        "username": "AWS",
        "secret": PLANTED,
        "issued_at": now - 60,
        "expires_at": now + 40000,
        "registry": CENTRAL_HOST,
        "registry_id": "111111111111",
        "region": "us-east-1",
        "role_arn": PULL_ROLE,
    }


def _write(entry: Path, data: bytes, mode: int = 0o600) -> None:
    entry.write_bytes(data)
    entry.chmod(mode)


def _truncate(entry: Path) -> None:
    data = entry.read_bytes()
    _write(entry, data[: len(data) // 2])


def _symlink(entry: Path) -> None:
    target = entry.parent.parent / "planted.json"
    _write(target, json.dumps(_planted_body()).encode())
    entry.unlink()
    entry.symlink_to(target)


def _need_root(what: str) -> None:
    if os.geteuid() != 0:
        pytest.skip(f"needs root, to {what}")


def _foreign(entry: Path) -> None:
    _need_root("give a file to another user")
    _write(entry, json.dumps(_planted_body()).encode())
    os.chown(entry, NOBODY, NOBODY)


def _field(name: str, value: object) -> Callable[[Path], None]:
    def change(entry: Path) -> None:
        body = json.loads(entry.read_bytes())
        body[name] = value
        _write(entry, json.dumps(body).encode())

    return change


CORRUPTIONS: dict[str, Callable[[Path], None]] = {
    "truncated": _truncate,
    "empty": lambda e: _write(e, b""),
    "garbage": lambda e: _write(e, random.Random(3).randbytes(300)),
    "a JSON list": lambda e: _write(e, b"[]"),
    "missing fields": lambda e: _write(e, b'{"v": 1}'),
    "secret is a number": _field("secret", 12345),
    "secret is empty": _field("secret", ""),
    "expiry is text": _field("expires_at", "tomorrow"),
    "expires before issued": _field("expires_at", 1.0),
    "a future version": _field("v", 99),
    "oversized": lambda e: _write(e, e.read_bytes()[:-1] + b" " * 70_000 + b"}"),
    "others may write it": lambda e: _write(e, json.dumps(_planted_body()).encode(), 0o666),
    "a symlink": _symlink,
    "someone else's": _foreign,
}


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_a_damaged_entry_heals_on_the_next_get(
    case: str, configured: FakeAws, isolated_env: Path, tmp_path: Path
) -> None:
    fake = configured
    entry, results = warm_entry(isolated_env)
    before = _token_count(fake)
    CORRUPTIONS[case](entry)
    healing = get()
    assert_answers(healing)  # the real token, never a planted one
    assert _token_count(fake) == before + 1, "the damaged entry was not treated as a miss"
    assert_private_entry(entry)
    token = Token.from_json(json.loads(entry.read_bytes()))
    assert token is not None and token.secret == PASSWORD
    again = get()
    assert_answers(again)
    assert _token_count(fake) == before + 1, "the healed entry is not served"
    if case == "a symlink":
        assert PLANTED in (entry.parent.parent / "planted.json").read_text()  # untouched
    results += [healing, again]
    scan(fake, tmp_path, results, results)


def test_an_entry_that_is_a_folder_still_answers(
    configured: FakeAws, isolated_env: Path, tmp_path: Path
) -> None:
    first = get()
    [entry] = token_entries(cache_folder(isolated_env))
    entry.unlink()
    entry.mkdir(mode=0o700)
    results = [get(), get()]
    for result in results:
        assert_answers(result)
    assert _token_count(configured) == 3
    assert "token not cached" in log_text(isolated_env)
    scan(configured, tmp_path, [first, *results], [first, *results])


# ---------------------------------------------------------------------------
# Unusable cache folders
# ---------------------------------------------------------------------------


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """Mount small tmpfs file systems (0700, root's); unmounted afterwards."""
    mounted: list[Path] = []

    def mount(size: str) -> Path:
        point = tmp_path / f"mnt{len(mounted)}"
        point.mkdir()
        proc = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "xecr-test", str(point)],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip() or proc.returncode}")
        mounted.append(point)
        return point

    yield mount
    for point in reversed(mounted):
        done = subprocess.run(["umount", str(point)], capture_output=True, timeout=10, check=False)
        if done.returncode != 0:
            subprocess.run(
                ["umount", "-l", str(point)], capture_output=True, timeout=10, check=False
            )


def _assert_uncached(fake: FakeAws, home: Path, results: list[Result], *warnings: str) -> None:
    for result in results:
        assert_answers(result)
    assert _token_count(fake) == len(results), "a token was served from a cache that is unusable"
    log = log_text(home)
    for warning in warnings:
        assert warning in log, (warning, log)


def test_a_read_only_cache_folder_answers_uncached(
    configured: FakeAws, tmpfs: Callable[[str], Path], isolated_env: Path, tmp_path: Path
) -> None:
    point = tmpfs("64k")
    folder = point / "cache"
    folder.mkdir(mode=0o700)
    subprocess.run(["mount", "-o", "remount,ro", str(point)], check=True, timeout=10)
    env = {"XECR_CACHE_DIR": str(folder)}
    results = [get(extra_env=env), get(extra_env=env)]
    _assert_uncached(configured, isolated_env, results, "token not cached", "Read-only file system")
    assert list(folder.iterdir()) == []
    scan(configured, tmp_path, results, results)


def _without_dac_override() -> None:
    """Drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the bounding set, so
    root's child obeys permission bits like anyone else."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _can_drop_dac(tmp_path: Path) -> str | None:
    probe = tmp_path / "probe"
    probe.mkdir(mode=0o500)
    try:
        proc = subprocess.run(
            ["touch", str(probe / "x")],
            preexec_fn=_without_dac_override,
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"cannot drop CAP_DAC_OVERRIDE here ({exc})"
    if proc.returncode == 0:
        return "this sandbox lets a process without CAP_DAC_OVERRIDE write a 0500 folder"
    return None


def test_an_unwritable_cache_folder_answers_uncached(
    configured: FakeAws, isolated_env: Path, tmp_path: Path
) -> None:
    preexec: Callable[[], None] | None = None
    if os.geteuid() == 0:  # root writes a 0500 folder unless it gives up the capability
        reason = _can_drop_dac(tmp_path)
        if reason:
            pytest.skip(reason)
        preexec = _without_dac_override
    folder = cache_folder(isolated_env)
    folder.mkdir(parents=True, mode=0o700)
    folder.chmod(0o500)
    results = [get(preexec_fn=preexec) for _ in range(2)]
    _assert_uncached(configured, isolated_env, results, "token not cached", "Permission denied")
    assert list(folder.iterdir()) == []
    scan(configured, tmp_path, results, results)


def test_a_full_disk_answers_uncached(
    configured: FakeAws, tmpfs: Callable[[str], Path], isolated_env: Path, tmp_path: Path
) -> None:
    point = tmpfs("64k")
    folder = point / "cache"
    folder.mkdir(mode=0o700)
    with pytest.raises(OSError, match="No space left"), (point / "filler").open("wb") as filler:
        while True:
            filler.write(b"\0" * 4096)
            filler.flush()
    env = {"XECR_CACHE_DIR": str(folder)}
    results = [get(extra_env=env), get(extra_env=env)]
    _assert_uncached(
        configured, isolated_env, results, "token not cached", "No space left on device"
    )
    # Nothing half-written is left behind: no entry, no temp file.
    assert [p.name for p in folder.iterdir() if not p.name.endswith(".lock")] == []
    scan(configured, tmp_path, results, results)


def _symlinked(home: Path, tmp_path: Path) -> Path:
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    cache_folder(home).parent.mkdir(parents=True, exist_ok=True)
    cache_folder(home).symlink_to(target)
    return target


def _foreign_owned(home: Path, tmp_path: Path) -> Path:
    _need_root("give a folder to another user")
    folder = cache_folder(home)
    folder.mkdir(parents=True, mode=0o700)
    os.chown(folder, NOBODY, NOBODY)
    return folder


def _open_to_all(home: Path, tmp_path: Path) -> Path:
    folder = cache_folder(home)
    folder.mkdir(parents=True)
    folder.chmod(0o777)
    return folder


def _a_file(home: Path, tmp_path: Path) -> Path:
    folder = cache_folder(home)
    folder.parent.mkdir(parents=True, exist_ok=True)
    folder.write_text("")
    return folder


UNSAFE_FOLDERS: dict[str, tuple[Callable[[Path, Path], Path], str]] = {
    "a symlink": (_symlinked, "it is a symlink"),
    "owned by someone else": (_foreign_owned, f"owned by uid {NOBODY}"),
    "open to everyone": (_open_to_all, "lets others in"),
    "a file": (_a_file, "not a folder"),
}


@pytest.mark.parametrize("case", list(UNSAFE_FOLDERS))
def test_an_unsafe_cache_folder_is_refused(
    case: str, configured: FakeAws, isolated_env: Path, tmp_path: Path
) -> None:
    make, why = UNSAFE_FOLDERS[case]
    where = make(isolated_env, tmp_path)
    results = [get(), get()]
    _assert_uncached(configured, isolated_env, results, "token cache disabled", why)
    if where.is_dir():
        assert list(where.iterdir()) == [], "something was written through an unsafe folder"
    else:
        assert where.read_text() == ""
    scan(configured, tmp_path, results, results)


# ---------------------------------------------------------------------------
# SIGKILL while writing
# ---------------------------------------------------------------------------

ROUNDS = 4
WRITERS = 6


def _entries_are_whole(folder: Path) -> None:
    """Every entry parses and holds the real token; a temp file is never an entry."""
    for entry in token_entries(folder):
        assert_private_entry(entry)
        token = Token.from_json(json.loads(entry.read_bytes()))
        assert token is not None, f"{entry} is not a whole entry"
        assert token.secret == PASSWORD


def test_sigkill_while_writing_never_leaves_a_served_partial_entry(
    configured: FakeAws, isolated_env: Path, tmp_path: Path
) -> None:
    """Writers (``xecr login``, which always fetches and writes, and ``get`` on a
    cold cache) are killed at random moments, and also the moment their temp
    file appears (stopped first, so a concurrent ``get`` runs while the write is
    half done). After each round every entry is whole and ``get`` is right."""
    rng = random.Random(20240607)
    folder = cache_folder(isolated_env)
    assert_answers(get())
    env = dict(os.environ)
    stopped_mid_write = 0
    killed = 0
    outputs: list[Result] = []
    for round_ in range(ROUNDS):
        if round_ % 2:
            assert run([HELPER, "erase"], CENTRAL_HOST.encode()).returncode == 0
        procs: dict[int, subprocess.Popen[bytes]] = {}
        kill_at: dict[int, float] = {}
        start = time.monotonic()
        for index in range(WRITERS):
            args = (
                [installed(XECR), "login", CENTRAL_HOST]
                if index % 2 == 0
                else [installed(HELPER), "get"]
            )
            proc = subprocess.Popen(
                args,
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=env,
            )
            assert proc.stdin is not None
            if args[-1] == "get":
                proc.stdin.write(CENTRAL_HOST.encode())
            proc.stdin.close()
            procs[proc.pid] = proc
            kill_at[proc.pid] = start + rng.uniform(0.1, 2.5)
        deadline = start + 60
        while any(p.poll() is None for p in procs.values()):
            assert time.monotonic() < deadline, "writers did not finish"
            for name in os.listdir(folder):
                if not name.endswith(".tmp"):
                    continue
                pid = int(name.split(".")[3])
                writer = procs.get(pid)
                if writer is None or writer.poll() is not None:
                    continue
                try:
                    os.kill(pid, signal.SIGSTOP)
                except ProcessLookupError:
                    continue
                if (folder / name).exists():
                    stopped_mid_write += 1
                    _entries_are_whole(folder)
                    if token_entries(folder):  # else a get would wait for the frozen lock
                        during = get()
                        assert_answers(during)  # served from the old, whole entry
                        outputs.append(during)
                writer.kill()
                killed += 1
                writer.wait(timeout=10)
            now = time.monotonic()
            for pid, proc in procs.items():
                if proc.poll() is None and now >= kill_at[pid]:
                    proc.kill()
                    killed += 1
                    proc.wait(timeout=10)
            time.sleep(0.0005)
        for proc in procs.values():
            proc.wait(timeout=10)
        _entries_are_whole(folder)
        after = get()
        assert_answers(after)
        outputs.append(after)
        _entries_are_whole(folder)
    print(f"killed {killed} writers, {stopped_mid_write} of them with a temp file open")
    assert killed > 0
    scan(configured, tmp_path, outputs, outputs)


def test_leftover_temp_files_are_never_served(
    configured: FakeAws, isolated_env: Path, tmp_path: Path
) -> None:
    """What a writer killed mid-write leaves (a partial temp file) is not an entry."""
    folder = cache_folder(isolated_env)
    assert_answers(get())
    [entry] = token_entries(folder)
    whole = entry.read_bytes()
    entry.unlink()
    partial = folder / f".{entry.name}.4242.0badcafe.tmp"
    partial.write_bytes(whole[:40])
    partial.chmod(0o600)
    healed = get()
    assert_answers(healed)
    assert _token_count(configured) == 2
    _entries_are_whole(folder)
    scan(configured, tmp_path, [healed], [healed])
