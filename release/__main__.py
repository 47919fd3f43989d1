"""``python -m release``: build every artifact of this commit into dist/.

Run through ``scripts/release.sh``, which installs the tools first. Prints one
line per artifact (size) and what the bundle needs of the host.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from release import bundle, deb, oci, reproducible, rpm

REPO = Path(__file__).resolve().parent.parent


def version() -> str:
    text = (REPO / "ecr_helper" / "__init__.py").read_text()
    found = re.search(r'^__version__ = "([^"]+)"', text, re.M)
    if not found:
        raise SystemExit("release: no __version__ in ecr_helper/__init__.py")
    return found.group(1)


def python_dists(out: Path, epoch: int) -> Path:
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(epoch)}
    subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--wheel", "-o", str(out), str(REPO)],
        check=True, env=env, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, sorted(out.iterdir()))],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    [wheel] = out.glob("*.whl")
    return wheel


def bundle_tarball(staging: Path, out: Path, name: str, epoch: int) -> Path:
    target = out / f"{name}.tar.gz"
    target.write_bytes(reproducible.gzip_bytes(reproducible.tar_bytes(staging, name, epoch)))
    return target


def glibc_note(staging: Path) -> str:
    """What the bundle asks of the host's C library: nothing, it carries its own."""
    libc = (staging / "lib" / "so" / "libc.so.6").read_bytes()
    found = re.search(rb"GNU C Library [^\n]*release version ([0-9]+(?:\.[0-9]+)+)", libc)
    carried = found.group(1).decode() if found else "?"
    return (
        f"host glibc needed: none (the bundle carries glibc {carried} "
        "and a static launcher; Linux kernel 3.2 or newer)"
    )


def sums(out: Path) -> Path:
    lines = [
        f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.name}\n"
        for path in sorted(out.iterdir())
        if path.name != "SHA256SUMS"
    ]
    target = out / "SHA256SUMS"
    target.write_text("".join(lines))
    return target


def main() -> int:
    parser = argparse.ArgumentParser(prog="release", description=__doc__)
    parser.add_argument("--out", type=Path, default=REPO / "dist")
    parser.add_argument("--work", type=Path, default=REPO / "build" / "release")
    args = parser.parse_args()
    started = time.monotonic()
    epoch = reproducible.source_date_epoch(REPO)
    ver, arch = version(), platform.machine()
    out, work = args.out.resolve(), args.work.resolve()
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    work.mkdir(parents=True, exist_ok=True)
    wheel = python_dists(out, epoch)
    name = f"xecr-{ver}-linux-{arch}"
    staging = bundle.build(work / name, wheel, epoch)
    foreign = reproducible.foreign_paths(staging, [str(REPO), str(work), str(out)])
    if foreign:
        raise SystemExit(f"release: the bundle names a build path in {', '.join(foreign[:5])}")
    bundle_tarball(staging, out, name, epoch)
    deb.build(staging, work / "deb", out, ver, arch, epoch)
    rpm.build(staging, work / "rpm", out, ver, arch, epoch)
    oci.build(staging, work / "oci", out, ver, arch, epoch)
    sums(out)
    for path in sorted(out.iterdir()):
        print(f"{path.stat().st_size / 1e6:8.1f} MB  {path.name}")
    print(glibc_note(staging))
    print(f"built in {time.monotonic() - started:.0f} s (SOURCE_DATE_EPOCH={epoch})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
