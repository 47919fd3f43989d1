"""One daemon per cache folder: the instance lock.

``daemon.lock`` in the cache folder is held (flock) for the daemon's life and
holds its pid. :func:`is_running` asks with a shared, non-blocking flock, so
``get``, ``status`` and ``doctor`` can tell in microseconds whether a daemon
keeps the folder's tokens fresh; it imports nothing beyond the standard
library's builtins, since ``get`` may call it.
"""

from __future__ import annotations

import os
import stat
import time

from ecr_helper import securefile
from ecr_helper.errors import AlreadyRunning, XecrError

LOCK_NAME = "daemon.lock"
# A probe (status, doctor, a get's daemon check) holds a shared lock for an
# instant; a starting daemon keeps trying for this long before it concludes
# that a daemon holds the lock. The pid in the file says nothing until then:
# it stays behind when a daemon ends.
_ACQUIRE_WAIT = 2.0


class InstanceLock:
    """The held ``daemon.lock`` of one cache folder; released by :meth:`release`."""

    def __init__(self, path: str, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    def release(self) -> None:
        # The file stays: deleting a lock file races with the next daemon's open.
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def acquire_instance(
    folder: str, mode: int = 0o600, gid: int | None = None, wait: float = _ACQUIRE_WAIT
) -> InstanceLock:
    """Take the folder's daemon lock at once, or raise :class:`AlreadyRunning`."""
    path = os.path.join(folder, LOCK_NAME)
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, mode)
    except OSError as exc:
        raise XecrError(
            f"cannot create {path}: {exc.strerror} (the machine-wide cache is kept by the "
            "system daemon, run as root)"
        ) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
            raise XecrError(f"refusing {path}: not a regular file owned by you")
        if not securefile.flock_within(fd, wait):
            raise _held(folder, path, _read_pid(fd))
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        os.fchmod(fd, mode)
        if gid is not None:
            os.fchown(fd, -1, gid)
    except BaseException:
        os.close(fd)
        raise
    return InstanceLock(path, fd)


def _held(folder: str, path: str, pid: int | None) -> XecrError:
    """Why the lock could not be had: a live daemon, or something else holding it."""
    if pid is not None and not _alive(pid):
        return XecrError(
            f"cannot start: {path} is held by another process, but not by a daemon "
            f"(pid {pid} in it has ended); see `fuser {path}`"
        )
    return AlreadyRunning(folder, pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # another user's process
    return True


def is_running(cache_folder: str) -> int | None:
    """The pid of the daemon holding ``cache_folder``'s lock, else None.

    -1 means a daemon holds the lock but its pid cannot be read (it is being
    written). A lock file this user may not open reads as None.
    """
    import fcntl

    path = os.path.join(cache_folder, LOCK_NAME)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        try:
            # Shared, so two probes never see each other as a daemon.
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            deadline = time.monotonic() + 0.2
            pid = _read_pid(fd)
            while pid is None and time.monotonic() < deadline:
                time.sleep(0.02)
                pid = _read_pid(fd)
            return pid if pid is not None else -1
        except OSError:
            return None
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() and int(text) > 0 else None
