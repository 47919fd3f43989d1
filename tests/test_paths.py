"""ecr_helper.paths: on Linux our folders are platformdirs' folders (computed without
importing it), the environment overrides, and no crash without a HOME."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import platformdirs
import pytest

from ecr_helper import paths

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="XDG is Linux's")

XDG = ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME")


def ours_and_theirs() -> list[tuple[str, str]]:
    env = dict(os.environ)
    return [
        (paths.user_config_dir(env), platformdirs.user_config_dir("xecr", appauthor=False)),
        (paths.user_cache_dir(env), platformdirs.user_cache_dir("xecr", appauthor=False)),
        (paths.user_log_dir(env), platformdirs.user_log_dir("xecr", appauthor=False)),
    ]


def test_set_xdg_folders_match_platformdirs(tmp_path: Path) -> None:
    pairs = ours_and_theirs()
    for ours, theirs in pairs:
        assert ours == theirs
        assert ours.startswith(str(tmp_path))  # the conftest's XDG values were used


@pytest.mark.parametrize("blank", [None, "", "   "])
def test_unset_or_blank_xdg_folders_match_platformdirs(
    monkeypatch: pytest.MonkeyPatch, isolated_env: Path, blank: str | None
) -> None:
    for var in XDG:
        if blank is None:
            monkeypatch.delenv(var)
        else:
            monkeypatch.setenv(var, blank)
    pairs = ours_and_theirs()
    for ours, theirs in pairs:
        assert ours == theirs
    assert pairs[0][0] == str(isolated_env / ".config" / "xecr")
    assert pairs[1][0] == str(isolated_env / ".cache" / "xecr")
    assert pairs[2][0] == str(isolated_env / ".local" / "state" / "xecr" / "log")


def test_relative_xdg_folders_are_ignored_like_platformdirs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for var in XDG:
        monkeypatch.setenv(var, "relative/dir")
    for ours, theirs in ours_and_theirs():
        assert ours == theirs


def test_files_and_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = dict(os.environ)
    assert paths.user_config_file(env) == os.path.join(paths.user_config_dir(env), "config.toml")
    assert paths.system_config_file(env) == env["XECR_SYSTEM_CONFIG"]
    assert paths.system_config_file({}) == "/etc/xecr/config.toml"
    assert paths.cache_dir(env, False) == paths.user_cache_dir(env)
    assert paths.cache_dir(env, True) == env["XECR_SYSTEM_CACHE_DIR"]
    assert paths.cache_dir({"HOME": str(tmp_path)}, True) == "/var/cache/xecr"
    assert paths.log_dir(env) == paths.user_log_dir(env)
    explicit = {**env, "XECR_CACHE_DIR": "/x/cache", "XECR_LOG_DIR": "/x/log"}
    assert paths.cache_dir(explicit, False) == paths.cache_dir(explicit, True) == "/x/cache"
    assert paths.log_dir(explicit) == "/x/log"


def test_no_home_does_not_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOME")
    for var in XDG:
        monkeypatch.delenv(var)
    env = dict(os.environ)
    for folder in (paths.user_config_dir(env), paths.user_cache_dir(env), paths.user_log_dir(env)):
        assert os.path.isabs(folder) and "~" not in folder


def test_no_home_and_no_passwd_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOME")
    for var in XDG:
        monkeypatch.delenv(var)
    monkeypatch.setattr(os.path, "expanduser", lambda path: path)  # no passwd entry either
    env = dict(os.environ)
    folders = [paths.user_config_dir(env), paths.user_cache_dir(env), paths.user_log_dir(env)]
    for folder in folders:
        assert os.path.isabs(folder) and "~" not in folder
        assert not folder.startswith("/tmp")  # never a guessable shared folder
    # XDG variables still count without a HOME
    monkeypatch.setenv("XDG_CACHE_HOME", "/srv/cache")
    assert paths.user_cache_dir(dict(os.environ)) == "/srv/cache/xecr"
