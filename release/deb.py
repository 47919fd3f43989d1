"""The .deb: the bundle in /usr/lib/xecr, carrying its own Python and glibc,
so one package serves every Debian and Ubuntu (22.04's Python 3.10 too)."""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

from release import reproducible, system_files

DEB_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}
MAINTAINER = os.environ.get("XECR_MAINTAINER", "xecr developers <xecr@users.noreply.github.com>")
DESCRIPTION = """\
Description: Docker credential helper and login daemon for Amazon ECR
 xecr answers Docker, podman, skopeo and the kubelet with Amazon ECR tokens
 across AWS accounts: it assumes the configured cross-account role chain, calls
 GetAuthorizationToken, caches the 12-hour token privately and shares it
 between processes, and its daemon refreshes tokens before they expire.
 .
 This package carries its own Python and C library in /usr/lib/xecr."""

POSTRM = """\
#!/bin/sh
# Purge removes what xecr wrote at run time and the machine-wide config;
# a plain removal keeps them.
set -e
if [ "$1" = purge ]; then
    rm -f /etc/xecr/config.toml
    rmdir /etc/xecr 2>/dev/null || true
    rm -rf /var/cache/xecr /var/log/xecr
fi
if [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload >/dev/null 2>&1 || true
fi
"""
POSTINST = """\
#!/bin/sh
# The unit is installed, not enabled: a config must exist first
# (/usr/share/doc/xecr/examples/config.toml).
set -e
if [ "$1" = configure ] && [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload >/dev/null 2>&1 || true
fi
"""
LINTIAN_OVERRIDES = """\
# /usr/lib/xecr is a private, self-contained runtime (its own CPython and
# glibc, so one package serves every release): its libraries are not for other
# packages, its bytecode is compiled at build time for the start-up of every
# `docker pull`, and the static launcher runs that runtime's loader.
xecr: shared-library-is-executable 0755 [usr/lib/xecr/lib/so/ld-linux-*]
xecr: embedded-library * [usr/lib/xecr/*]
xecr: package-installs-python-pycache-dir [usr/lib/xecr/*]
xecr: statically-linked-binary [usr/lib/xecr/bin/xecr]
"""
COPYRIGHT = """\
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: xecr

Files: *
Copyright: the xecr developers
License: Apache-2.0

Files: usr/lib/xecr/lib/*
Copyright: the Python Software Foundation; the GNU C Library's and the
 libraries' authors; the authors of the Python distributions listed in
 usr/lib/xecr/lib/xecr/BUILDINFO (each carries its license in its .dist-info)
License: various
 Every component of the bundled runtime is the Debian package or PyPI
 distribution named in usr/lib/xecr/lib/xecr/BUILDINFO, under its own license.

License: Apache-2.0
 On Debian systems, the full text of the Apache License 2.0 can be found in
 /usr/share/common-licenses/Apache-2.0.
"""


def _changelog(version: str, epoch: int) -> str:
    when = format_datetime(datetime.fromtimestamp(epoch, UTC))
    return (
        f"xecr ({version}-1) unstable; urgency=medium\n\n"
        f"  * Release {version}: see /usr/share/doc/xecr/changelog.gz.\n\n"
        f" -- {MAINTAINER}  {when}\n"
    )


def _installed_size(root: Path) -> int:
    total = 0
    for path in reproducible.walk(root):
        if path.is_file() and not path.is_symlink():
            total += path.stat().st_size
    return (total + 1023) // 1024


def build(bundle: Path, work: Path, out: Path, version: str, arch: str, epoch: int) -> Path:
    if work.exists():
        shutil.rmtree(work)
    root = work / "root"
    doc = "/usr/share/doc/xecr"
    system_files.lay_out(root, bundle, "/lib/systemd", doc)
    docs = root / doc.lstrip("/")
    (docs / "copyright").write_text(COPYRIGHT)
    (docs / "changelog.gz").write_bytes(
        reproducible.gzip_bytes((system_files.REPO / "CHANGELOG.md").read_bytes())
    )
    (docs / "changelog.Debian.gz").write_bytes(
        reproducible.gzip_bytes(_changelog(version, epoch).encode())
    )
    overrides = root / "usr" / "share" / "lintian" / "overrides"
    overrides.mkdir(parents=True)
    (overrides / "xecr").write_text(LINTIAN_OVERRIDES)
    control_dir = root / "DEBIAN"
    control_dir.mkdir()
    control = (
        f"Package: xecr\nVersion: {version}-1\nArchitecture: {DEB_ARCH[arch]}\n"
        f"Maintainer: {MAINTAINER}\nInstalled-Size: {_installed_size(root)}\n"
        "Section: admin\nPriority: optional\n"
        "Suggests: docker.io | docker-ce | podman\n"
        f"{DESCRIPTION}\n"
    )
    (control_dir / "control").write_text(control)
    for name, text in (("postinst", POSTINST), ("postrm", POSTRM)):
        (control_dir / name).write_text(text)
        (control_dir / name).chmod(0o755)
    reproducible.normalize(root, epoch)
    deb = out / f"xecr_{version}-1_{DEB_ARCH[arch]}.deb"
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(epoch)}
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "-Zxz", "-z6", "--build", str(root), str(deb)],
        check=True, env=env, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return deb
