"""ecr_helper.securefile: private folders and files, atomic replacement, and the refusals
(symlinks, other owners, folders and files others may write)."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from ecr_helper import securefile
from ecr_helper.errors import CacheError, XecrError

STRANGER = 54321  # a uid (and gid) nobody on the test machine has


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


@pytest.fixture
def umask() -> Iterator[None]:
    """A permissive umask, so modes come from xecr and not from the process."""
    old = os.umask(0)
    yield
    os.umask(old)


@pytest.fixture
def private(tmp_path: Path) -> Path:
    folder = tmp_path / "private"
    securefile.ensure_dir(str(folder))
    return folder


# -- folders -------------------------------------------------------------------------------


@pytest.mark.usefixtures("umask")
def test_ensure_dir_creates_0700_with_parents(tmp_path: Path) -> None:
    folder = tmp_path / "a" / "b" / "xecr"
    securefile.ensure_dir(str(folder))
    assert mode(folder) == 0o700
    securefile.ensure_dir(str(folder))  # a second call accepts what the first made


def test_ensure_dir_0700_under_a_strict_or_loose_umask(tmp_path: Path) -> None:
    for index, mask in enumerate((0o077, 0o000, 0o022)):
        old = os.umask(mask)
        try:
            folder = tmp_path / f"f{index}"
            securefile.ensure_dir(str(folder))
        finally:
            os.umask(old)
        assert mode(folder) == 0o700


def test_ensure_dir_shared_mode_and_group(tmp_path: Path) -> None:
    folder = tmp_path / "machine"
    securefile.ensure_dir(str(folder), 0o750, STRANGER)
    assert mode(folder) == 0o750
    assert folder.stat().st_gid == STRANGER


@pytest.mark.parametrize("bits", [0o750, 0o700, 0o500])
def test_group_readable_folders_are_accepted(tmp_path: Path, bits: int) -> None:
    folder = tmp_path / "ok"
    folder.mkdir()
    folder.chmod(bits)
    securefile.check_dir(str(folder))
    securefile.ensure_dir(str(folder))


@pytest.mark.parametrize("bits", [0o777, 0o770, 0o755, 0o705, 0o701, 0o720, 0o1777])
def test_folders_open_to_others_are_refused(tmp_path: Path, bits: int) -> None:
    folder = tmp_path / "open"
    folder.mkdir()
    folder.chmod(bits)
    for check in (securefile.check_dir, securefile.ensure_dir):
        with pytest.raises(CacheError, match=f"mode {bits & 0o7777:04o} lets others in") as c:
            check(str(folder))
        assert str(folder) in str(c.value)


def test_a_symlinked_folder_is_refused(tmp_path: Path, private: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(private)
    for check in (securefile.check_dir, securefile.ensure_dir):
        with pytest.raises(CacheError, match="symlink"):
            check(str(link))


def test_a_foreign_folder_is_refused(private: Path) -> None:
    os.chown(private, STRANGER, -1)
    for check in (securefile.check_dir, securefile.ensure_dir):
        with pytest.raises(CacheError, match=f"owned by uid {STRANGER}"):
            check(str(private))


def test_a_file_is_not_a_folder(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_text("x")
    for check in (securefile.check_dir, securefile.ensure_dir):
        with pytest.raises(CacheError, match="not a folder"):
            check(str(path))


def test_a_missing_folder_fails_the_check(tmp_path: Path) -> None:
    with pytest.raises(CacheError, match="cannot use folder"):
        securefile.check_dir(str(tmp_path / "missing"))


def test_a_folder_that_cannot_be_created(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    with pytest.raises(CacheError, match="cannot create folder"):
        securefile.ensure_dir(str(blocker / "xecr"))


# -- atomic writes -------------------------------------------------------------------------


@pytest.mark.usefixtures("umask")
def test_write_atomic_makes_a_0600_file(private: Path) -> None:
    path = private / "entry.json"
    securefile.write_atomic(str(path), b"one")
    assert path.read_bytes() == b"one"
    assert mode(path) == 0o600
    assert leftovers(private) == []


def test_write_atomic_shared_mode_and_group(private: Path) -> None:
    path = private / "entry.json"
    securefile.write_atomic(str(path), b"one", 0o640, STRANGER)
    assert mode(path) == 0o640
    assert path.stat().st_gid == STRANGER


def test_write_atomic_replaces_the_whole_file_at_once(private: Path) -> None:
    path = private / "entry.json"
    securefile.write_atomic(str(path), b"old content, quite long")
    with path.open("rb") as reader:  # a reader that opened the old file
        inode = path.stat().st_ino
        securefile.write_atomic(str(path), b"new")
        assert reader.read() == b"old content, quite long"  # never a mix of the two
    assert path.read_bytes() == b"new"
    assert path.stat().st_ino != inode  # replaced by rename, not rewritten in place
    assert leftovers(private) == []


def test_write_atomic_tightens_an_old_loose_file(private: Path) -> None:
    path = private / "entry.json"
    path.write_bytes(b"old")
    path.chmod(0o666)
    securefile.write_atomic(str(path), b"new")
    assert mode(path) == 0o600


def test_write_atomic_replaces_a_symlink_instead_of_following_it(
    private: Path, tmp_path: Path
) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep me")
    path = private / "entry.json"
    path.symlink_to(victim)
    securefile.write_atomic(str(path), b"new")
    assert victim.read_bytes() == b"keep me"
    assert not path.is_symlink() and path.read_bytes() == b"new"


def test_write_atomic_large_data(private: Path) -> None:
    data = os.urandom(3 << 20)
    path = private / "big"
    securefile.write_atomic(str(path), data)
    assert path.read_bytes() == data


def test_a_failed_write_raises_cache_error_and_leaves_no_temp_file(
    private: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = private / "entry.json"
    securefile.write_atomic(str(path), b"old")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(CacheError) as caught:
        securefile.write_atomic(str(path), b"new")
    assert str(path) in str(caught.value) and "No space left" in str(caught.value)
    assert isinstance(caught.value, OSError)
    assert leftovers(private) == []
    assert path.read_bytes() == b"old"


def test_a_write_onto_a_folder_fails_cleanly(private: Path) -> None:
    target = private / "taken"
    target.mkdir()
    with pytest.raises(CacheError, match="cannot write"):
        securefile.write_atomic(str(target), b"data")
    assert leftovers(private) == []
    assert target.is_dir()


def test_a_write_into_a_missing_folder_fails_cleanly(tmp_path: Path) -> None:
    with pytest.raises(CacheError, match="cannot write"):
        securefile.write_atomic(str(tmp_path / "missing" / "entry.json"), b"data")


# -- careful reads -------------------------------------------------------------------------


def test_read_file_returns_the_bytes(private: Path) -> None:
    path = private / "entry.json"
    securefile.write_atomic(str(path), b"content")
    assert securefile.read_file(str(path)) == b"content"
    path.chmod(0o640)  # group-readable is fine (the machine-wide cache)
    assert securefile.read_file(str(path)) == b"content"


def test_read_file_missing_is_none(private: Path) -> None:
    assert securefile.read_file(str(private / "missing")) is None


def test_read_file_refuses_a_symlink(private: Path, tmp_path: Path) -> None:
    real = private / "real"
    securefile.write_atomic(str(real), b"planted")
    link = private / "link"
    link.symlink_to(real)
    assert securefile.read_file(str(link)) is None
    assert securefile.read_file(str(real)) == b"planted"


@pytest.mark.parametrize("bits", [0o620, 0o602, 0o666, 0o622])
def test_read_file_refuses_files_others_may_write(private: Path, bits: int) -> None:
    path = private / "entry.json"
    securefile.write_atomic(str(path), b"content")
    path.chmod(bits)
    assert securefile.read_file(str(path)) is None


def test_read_file_refuses_a_foreign_file(private: Path) -> None:
    path = private / "entry.json"
    securefile.write_atomic(str(path), b"content")
    os.chown(path, STRANGER, -1)
    assert securefile.read_file(str(path)) is None


def test_read_file_refuses_a_folder(private: Path) -> None:
    (private / "sub").mkdir(mode=0o700)
    assert securefile.read_file(str(private / "sub")) is None


def test_read_file_limit(private: Path) -> None:
    path = private / "entry.json"
    securefile.write_atomic(str(path), b"x" * 100)
    assert securefile.read_file(str(path), limit=100) == b"x" * 100
    assert securefile.read_file(str(path), limit=99) is None


def test_remove(private: Path) -> None:
    path = private / "entry.json"
    securefile.write_atomic(str(path), b"x")
    assert securefile.remove(str(path)) is True
    assert securefile.remove(str(path)) is False
    (private / "sub").mkdir()
    with pytest.raises(CacheError, match="cannot remove"):
        securefile.remove(str(private / "sub"))


# -- folders checked once and used through a descriptor (issue 20) -------------------------


@pytest.mark.parametrize("bits", [0o700, 0o750, 0o755, 0o705])
def test_open_dir_no_write_by_others_accepts_folders_others_may_only_list(
    tmp_path: Path, bits: int
) -> None:
    folder = tmp_path / "sink"
    folder.mkdir()
    folder.chmod(bits)
    fd = securefile.open_dir(str(folder), forbidden=securefile.NO_WRITE_BY_OTHERS)
    os.close(fd)


@pytest.mark.parametrize("bits", [0o720, 0o702, 0o777, 0o1777])
def test_open_dir_no_write_by_others_refuses_writable_folders(tmp_path: Path, bits: int) -> None:
    folder = tmp_path / "sink"
    folder.mkdir()
    folder.chmod(bits)
    with pytest.raises(CacheError, match=f"mode {bits:04o} lets others in .*chmod go-w"):
        securefile.open_dir(str(folder), forbidden=securefile.NO_WRITE_BY_OTHERS)


def test_open_dir_refuses_a_symlink_and_a_file(tmp_path: Path, private: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(private)
    with pytest.raises(CacheError, match="it is a symlink"):
        securefile.open_dir(str(link))
    (tmp_path / "file").write_text("")
    with pytest.raises(CacheError, match="not a folder"):
        securefile.open_dir(str(tmp_path / "file"))


def test_write_atomic_through_a_folder_descriptor_lands_in_the_checked_folder(
    tmp_path: Path, private: Path
) -> None:
    fd = securefile.open_dir(str(private))
    try:
        moved = tmp_path / "moved"
        private.rename(moved)
        private.symlink_to(tmp_path / "elsewhere")  # the path now names another place
        securefile.write_atomic("config.json", b"{}", dir_fd=fd)
    finally:
        os.close(fd)
    assert (moved / "config.json").read_bytes() == b"{}"
    assert mode(moved / "config.json") == 0o600
    assert leftovers(moved) == [] and not (tmp_path / "elsewhere").exists()


def test_write_atomic_gives_the_owner_asked_for(private: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("only root gives files away")
    path = private / "hers.json"
    securefile.write_atomic(str(path), b"x", 0o644, STRANGER, uid=STRANGER)
    info = path.stat()
    assert (info.st_uid, info.st_gid, mode(path)) == (STRANGER, STRANGER, 0o644)


def test_folder_lock_on_a_descriptor_excludes_a_lock_by_path(private: Path) -> None:
    fd = securefile.open_dir(str(private))
    try:
        with (
            securefile.folder_lock(str(private), dir_fd=fd),
            pytest.raises(XecrError, match="editing files in"),
            securefile.folder_lock(str(private), wait=0.05),
        ):
            pass
        with securefile.folder_lock(str(private), wait=0.05):
            pass
    finally:
        os.close(fd)
