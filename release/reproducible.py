"""What makes two builds of one commit byte-identical: one timestamp, sorted
archives, fixed owners and modes, and no path of the build machine."""

from __future__ import annotations

import gzip
import io
import os
import stat
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path


def source_date_epoch(repo: Path) -> int:
    """SOURCE_DATE_EPOCH if set, else the last commit's time."""
    given = os.environ.get("SOURCE_DATE_EPOCH")
    if given:
        return int(given)
    out = subprocess.run(
        ["git", "-C", str(repo), "log", "-1", "--format=%ct"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return int(out.strip())


def walk(root: Path) -> Iterator[Path]:
    """Every path below ROOT (not ROOT itself), parents first, in byte order."""
    for entry in sorted(root.iterdir(), key=lambda p: os.fsencode(p.name)):
        yield entry
        if entry.is_dir() and not entry.is_symlink():
            yield from walk(entry)


def normalize(root: Path, epoch: int) -> None:
    """Modes 0755 (folders, executables) or 0644, every mtime EPOCH, ROOT included."""
    for path in [*walk(root), root]:
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode):
            os.utime(path, (epoch, epoch), follow_symlinks=False)
            continue
        executable = stat.S_ISDIR(info.st_mode) or info.st_mode & 0o111
        path.chmod(0o755 if executable else 0o644)
        os.utime(path, (epoch, epoch))


def _tarinfo(archive: tarfile.TarFile, path: Path, name: str, epoch: int) -> tarfile.TarInfo:
    info = archive.gettarinfo(str(path), arcname=name)
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mtime = min(int(info.mtime), epoch)
    if info.isdir() or info.mode & 0o111:
        info.mode = 0o755
    elif info.isfile():
        info.mode = 0o644
    return info


def tar_bytes(root: Path, prefix: str, epoch: int) -> bytes:
    """ROOT's tree as an uncompressed tar, every name under PREFIX (may be "")."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        if prefix:
            archive.addfile(_tarinfo(archive, root, prefix, epoch))
        for path in walk(root):
            rel = path.relative_to(root).as_posix()
            name = f"{prefix}/{rel}" if prefix else rel
            info = _tarinfo(archive, path, name, epoch)
            if info.isfile():
                with path.open("rb") as handle:
                    archive.addfile(info, handle)
            else:
                archive.addfile(info)
    return buffer.getvalue()


def gzip_bytes(data: bytes) -> bytes:
    """DATA gzipped with no name and no time in the header."""
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0, compresslevel=9) as out:
        out.write(data)
    return buffer.getvalue()


def foreign_paths(root: Path, needles: list[str]) -> list[str]:
    """Files below ROOT whose bytes name any of NEEDLES (paths of the build machine)."""
    found = []
    encoded = [needle.encode() for needle in needles if needle]
    for path in walk(root):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            if any(needle in data for needle in encoded):
                found.append(path.relative_to(root).as_posix())
    return found
