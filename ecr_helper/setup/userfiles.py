"""Files xecr edits for people (its TOML config, Docker's ``config.json``): reads
that are bounded and never hang, and folders and owners that stay theirs.

``xecr configure`` and the daemon's Docker sink read a file someone else may have
put in place (a dotfile symlink, a FIFO, a 15 MB file), and may run as root with
another user's HOME (``sudo -E``). What is read is looked at before it is opened
and bounded; what root makes in her folders is given to her.
"""

from __future__ import annotations

import os
import stat

from ecr_helper import securefile
from ecr_helper.errors import ConfigError


def make_dirs(path: str, mode: int = 0o700) -> None:
    """Create ``path`` and its missing parents (mode ``mode``; raises ``OSError``).

    Root making folders in someone else's (``sudo -E`` with her HOME) gives
    each new one to the owner of the folder it is made in, so she can still
    reach what was made for her.
    """
    missing: list[str] = []
    current = os.path.abspath(path)
    while not os.path.lexists(current):
        missing.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder, mode)
        except FileExistsError:
            continue  # a parallel run made it
        if os.geteuid() == 0:
            parent_info = os.stat(os.path.dirname(folder))
            if parent_info.st_uid != 0:
                os.chown(folder, parent_info.st_uid, parent_info.st_gid, follow_symlinks=False)


def owner_for(
    existing: os.stat_result | None, folder: os.stat_result
) -> tuple[int | None, int | None]:
    """The (uid, gid) for :func:`write_atomic` to give a file replacing ``existing``
    (None: a new file in ``folder``); None leaves the writer's own.

    A replaced file keeps its owner and group as far as the writer may give them
    (root: both; others: a group they are in). Root making a new file in someone
    else's folder (``sudo -E`` with her HOME) gives it to that folder's owner.
    """
    euid = os.geteuid()
    if existing is None:
        if euid == 0 and folder.st_uid != 0:
            return folder.st_uid, folder.st_gid
        return None, None
    if euid == 0:
        return existing.st_uid, existing.st_gid
    groups = {os.getegid(), *os.getgroups()}
    return None, (existing.st_gid if existing.st_gid in groups else None)


def read_regular(
    path: str, limit: int, *, dir_fd: int | None = None, shown: str | None = None
) -> tuple[bytes, os.stat_result] | None:
    """The bytes and status of the regular file ``path``; None when it does not exist.

    Raises :class:`ConfigError` (naming ``shown``, else ``path``) for a symlink,
    anything but a regular file, more than ``limit`` bytes, or a failed read.
    The file is looked at before it is opened, and opened non-blocking and
    without following a symlink, so a FIFO or a device put there never hangs
    the reader. ``dir_fd``: ``path`` is a name in that folder.
    """
    shown = shown or path
    try:
        info = os.stat(path, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(shown, "", f"cannot read it: {exc.strerror}") from None
    _check_regular(shown, info, limit)
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(shown, "", f"cannot read it: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        _check_regular(shown, info, limit)  # what was opened, if it changed meanwhile
        data = securefile.read_capped(fd, limit)
    except OSError as exc:
        raise ConfigError(shown, "", f"cannot read it: {exc.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise ConfigError(shown, "", f"larger than {limit // 1024} KiB; is it the right file?")
    return data, info


def _check_regular(shown: str, info: os.stat_result, limit: int) -> None:
    if stat.S_ISLNK(info.st_mode):
        raise ConfigError(shown, "", "refused: it is a symlink")
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(shown, "", "refused: not a regular file")
    if info.st_size > limit:
        raise ConfigError(shown, "", f"larger than {limit // 1024} KiB; is it the right file?")
