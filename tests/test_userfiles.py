"""ecr_helper.setup.userfiles: reading people's files without hanging or reading
without bound, and keeping what root makes in her folders hers (``sudo -E``)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from ecr_helper.errors import ConfigError
from ecr_helper.setup import userfiles

STRANGER = 54321  # a uid (and gid) nobody on the test machine has


def test_read_regular_reads_a_file_and_says_none_when_missing(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    assert userfiles.read_regular(str(path), 100) is None
    path.write_bytes(b"{}")
    found = userfiles.read_regular(str(path), 100)
    assert found is not None and found[0] == b"{}" and stat.S_ISREG(found[1].st_mode)


def test_read_regular_refuses_a_fifo_without_opening_it(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    os.mkfifo(path)  # opened for reading without O_NONBLOCK, this would block forever
    with pytest.raises(ConfigError, match="refused: not a regular file"):
        userfiles.read_regular(str(path), 100)


def test_read_regular_refuses_a_symlink_and_a_folder(tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    real.write_text("{}")
    (tmp_path / "link.json").symlink_to(real)
    with pytest.raises(ConfigError, match="refused: it is a symlink"):
        userfiles.read_regular(str(tmp_path / "link.json"), 100)
    with pytest.raises(ConfigError, match="refused: not a regular file"):
        userfiles.read_regular(str(tmp_path), 100)


def test_read_regular_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    path.write_bytes(b"x" * 2048)
    found = userfiles.read_regular(str(path), 2048)
    assert found is not None and len(found[0]) == 2048
    with pytest.raises(ConfigError, match="larger than 1 KiB") as caught:
        userfiles.read_regular(str(path), 2047, shown="shown.json")
    assert caught.value.path == "shown.json"


def test_read_regular_in_a_folder_descriptor(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    fd = os.open(tmp_path, os.O_RDONLY)
    try:
        found = userfiles.read_regular("config.json", 100, dir_fd=fd)
    finally:
        os.close(fd)
    assert found is not None and found[0] == b"{}"


def test_make_dirs_makes_every_missing_level(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "c"
    userfiles.make_dirs(str(target), 0o700)
    userfiles.make_dirs(str(target), 0o700)  # already there: nothing to do
    assert target.is_dir() and stat.S_IMODE(target.stat().st_mode) == 0o700


def test_make_dirs_as_root_gives_new_folders_to_the_owner_of_hers(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    hers = tmp_path / "her"
    hers.mkdir()
    os.chown(hers, STRANGER, STRANGER)
    userfiles.make_dirs(str(hers / ".config" / "xecr"))
    for folder in (hers / ".config", hers / ".config" / "xecr"):
        assert (folder.stat().st_uid, folder.stat().st_gid) == (STRANGER, STRANGER)
    mine = tmp_path / "mine" / "sub"
    userfiles.make_dirs(str(mine))
    assert mine.stat().st_uid == 0


def test_owner_for_a_replaced_and_a_new_file(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_text("")
    info = path.stat()
    folder = tmp_path.stat()
    if os.geteuid() == 0:
        assert userfiles.owner_for(info, folder) == (info.st_uid, info.st_gid)
        os.chown(tmp_path, STRANGER, STRANGER)
        assert userfiles.owner_for(None, tmp_path.stat()) == (STRANGER, STRANGER)
        os.chown(tmp_path, 0, 0)
        assert userfiles.owner_for(None, tmp_path.stat()) == (None, None)
    else:
        assert userfiles.owner_for(info, folder) == (None, info.st_gid)
        assert userfiles.owner_for(None, folder) == (None, None)
