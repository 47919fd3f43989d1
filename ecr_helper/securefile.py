"""Private files: safe folders, atomic writes and careful reads.

Everything xecr writes that may hold a secret goes through here: 0600 files
(0640 in the machine-wide cache) in 0700 folders (0750), written to a temp
file in the same folder, fsynced and moved into place with ``os.replace``, so
a reader sees the old file or the new one, never half of one, even when the
writer is killed. Reads refuse symlinks and files that others may write.
:func:`folder_lock` serialises read-modify-replace edits of files people
share with other tools (the TOML config, Docker's ``config.json``).
"""

from __future__ import annotations

import errno
import os
import stat
import time

from ecr_helper.errors import CacheError, ConfigError, XecrError

# A private folder may be group-readable (the machine-wide cache is shared
# with the docker group) but never group-writable or open to others.
_DIR_FORBIDDEN = 0o027
_FILE_FORBIDDEN = 0o022
# A folder whose files are all private (0600) may be listed by others, never changed.
NO_WRITE_BY_OTHERS = 0o022


def ensure_dir(path: str, mode: int = 0o700, gid: int | None = None) -> None:
    """Create ``path`` (mode ``mode``) if missing, then check it is safe to use.

    Raises :class:`CacheError` for a symlink, a folder owned by another user,
    or one that others can write or read.
    """
    try:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        try:
            os.mkdir(path, mode)
        except FileExistsError:
            pass
        else:
            os.chmod(path, mode)  # mkdir's mode is filtered by the umask
            if gid is not None:
                os.chown(path, -1, gid)
        info = os.lstat(path)
    except OSError as exc:
        raise CacheError(f"cannot create folder {path}: {exc.strerror}") from None
    check_dir(path, info)


def check_dir(
    path: str, info: os.stat_result | None = None, *, forbidden: int = _DIR_FORBIDDEN
) -> None:
    """Refuse a folder that is a symlink, foreign-owned or open to others.

    ``forbidden``: the mode bits that refuse it; a folder whose files are all
    0600 may use :data:`NO_WRITE_BY_OTHERS` (others may list it, not change it).
    """
    try:
        info = info or os.lstat(path)
    except OSError as exc:
        raise CacheError(f"cannot use folder {path}: {exc.strerror}") from None
    if stat.S_ISLNK(info.st_mode):
        raise CacheError(f"refusing folder {path}: it is a symlink")
    if not stat.S_ISDIR(info.st_mode):
        raise CacheError(f"refusing folder {path}: not a folder")
    if info.st_uid not in (os.geteuid(), 0):
        raise CacheError(f"refusing folder {path}: owned by uid {info.st_uid}, not by you or root")
    if info.st_mode & forbidden:
        expected = (
            "(expected 0700, or 0750 for the machine-wide cache)"
            if forbidden == _DIR_FORBIDDEN
            else f"(run `chmod go-w {path}`)"
        )
        raise CacheError(
            f"refusing folder {path}: mode {stat.S_IMODE(info.st_mode):04o} lets others in "
            + expected
        )


def open_dir(path: str, *, forbidden: int = _DIR_FORBIDDEN) -> int:
    """A descriptor of the folder ``path`` itself, checked as :func:`check_dir` checks.

    The folder is opened without following a symlink and the check is made on
    what was opened, so writes through the descriptor (``dir_fd``) land in the
    folder that was checked even if its path is changed meanwhile.
    """
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            check_dir(path, forbidden=forbidden)  # says what it is instead
        raise CacheError(f"cannot use folder {path}: {exc.strerror}") from None
    try:
        check_dir(path, os.fstat(fd), forbidden=forbidden)
    except BaseException:
        os.close(fd)
        raise
    return fd


def check_config_file(path: str, info: os.stat_result, system: bool = False) -> None:
    """Refuse (:class:`ConfigError`) a config file that is not a regular file (a FIFO
    would hang the read) or that someone else could have written: it picks the roles
    and profiles (so the ``credential_process``) xecr runs with, and root run with
    another user's HOME (``sudo -E``) must not act on hers. ``system``: the
    machine-wide file, which root's daemon acts on, must be root's."""
    if system and (info.st_uid != 0 or info.st_mode & 0o022):
        raise ConfigError(
            path, "", "the machine-wide config must be owned by root and writable by root only"
        )
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(path, "", "not a regular file (check XECR_CONFIG)")
    if info.st_uid not in (os.geteuid(), 0):
        raise ConfigError(
            path,
            "",
            f"refused: owned by uid {info.st_uid}, not by you (uid {os.geteuid()}) or root; "
            "another user's config is never read",
        )
    if info.st_mode & _FILE_FORBIDDEN:
        raise ConfigError(
            path,
            "",
            f"refused: mode {stat.S_IMODE(info.st_mode):04o} lets others write it "
            f"(run `chmod go-w {path}`)",
        )


def read_capped(fd: int, limit: int) -> bytes:
    """At most LIMIT + 1 bytes from FD: one more than allowed tells a file that
    grew past LIMIT after it was checked from one that fits."""
    chunks = []
    remaining = limit + 1
    while remaining > 0:
        chunk = os.read(fd, min(remaining, 65536))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_file(path: str, limit: int = 1 << 20, root_only: bool = False) -> bytes | None:
    """The bytes of a regular file we may trust, or None when it is missing or unsafe.

    Trusted: yours or root's; ``root_only``: root's alone."""
    owners = (0,) if root_only else (os.geteuid(), 0)
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if (
            not stat.S_ISREG(info.st_mode)
            or info.st_uid not in owners
            or info.st_mode & _FILE_FORBIDDEN
            or info.st_size > limit
        ):
            return None
        data = read_capped(fd, limit)
        return data if len(data) <= limit else None
    except OSError:
        return None
    finally:
        os.close(fd)


def write_atomic(
    path: str,
    data: bytes,
    mode: int = 0o600,
    gid: int | None = None,
    *,
    uid: int | None = None,
    dir_fd: int | None = None,
) -> None:
    """Replace ``path`` with ``data`` atomically. Raises :class:`CacheError` on failure.

    ``uid``/``gid``: the owner and group to give the file (None: the writer's).
    ``dir_fd``: ``path`` is a name in that folder (see :func:`open_dir`).
    """
    folder = os.path.dirname(path) or "."
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(tmp, flags, mode, dir_fd=dir_fd)
        try:
            os.fchmod(fd, mode)
            if gid is not None or uid is not None:
                os.fchown(fd, -1 if uid is None else uid, -1 if gid is None else gid)
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except OSError as exc:
        try:
            os.unlink(tmp, dir_fd=dir_fd)
        except OSError:
            pass
        raise CacheError(f"cannot write {path}: {exc.strerror}") from None
    try:
        dfd = os.open(folder, os.O_RDONLY, dir_fd=dir_fd)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass  # the file is in place; a folder fsync is best effort


def sweep_temp_files(folder: str, older_than: float = 600.0) -> None:
    """Remove temp files left by writers that were killed mid-write.

    They never hold a half entry that is served (readers only open the final
    names), but they may hold a secret, so they do not linger.
    """
    import time

    limit = time.time() - older_than
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        if name.startswith(".") and name.endswith(".tmp"):
            path = os.path.join(folder, name)
            try:
                info = os.lstat(path)
                if stat.S_ISREG(info.st_mode) and info.st_mtime < limit:
                    os.unlink(path)
            except OSError:
                pass


def remove(path: str) -> bool:
    """Delete ``path`` if it exists. True when something was removed."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise CacheError(f"cannot remove {path}: {exc.strerror}") from None
    return True


EDIT_LOCK_WAIT = 10.0


def flock_within(fd: int, wait: float, poll: float = 0.005) -> bool:
    """Take an exclusive flock on ``fd``, trying until ``wait`` seconds have passed.

    False when another holder kept it that long; other failures raise ``OSError``.
    """
    import fcntl

    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(poll)


class folder_lock:
    """Hold an exclusive flock on ``folder`` itself while a file in it is edited.

    The lock is on the folder, not the file: the file is replaced by a rename,
    so a lock on it would be on the old inode, and a sidecar lock file would
    litter folders that belong to people and to Docker. Raises
    :class:`XecrError` naming the folder when the lock is not had in ``wait``.
    (A class, not ``contextlib.contextmanager``: that import would land on the
    cached get's path, which imports this module.)
    """

    def __init__(
        self, folder: str, wait: float = EDIT_LOCK_WAIT, *, dir_fd: int | None = None
    ) -> None:
        self.folder = folder
        self.wait = wait
        self._dir_fd = dir_fd  # lock the folder this descriptor holds (``folder`` only names it)
        self._fd: int | None = None

    def __enter__(self) -> None:
        folder, wait = self.folder, self.wait
        try:
            fd = os.open(
                folder if self._dir_fd is None else ".",
                os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | os.O_CLOEXEC,
                dir_fd=self._dir_fd,
            )
        except OSError as exc:
            raise XecrError(f"cannot open folder {folder} to lock it: {exc.strerror}") from None
        try:
            try:
                held = flock_within(fd, wait)
            except OSError as exc:
                raise XecrError(f"cannot lock folder {folder}: {exc.strerror}") from None
            if not held:
                raise XecrError(
                    f"another process has been editing files in {folder} for over "
                    f"{wait:.0f} s (another `xecr configure`?); try again"
                )
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the last descriptor releases the flock
            self._fd = None
