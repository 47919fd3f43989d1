"""The .rpm: the same bundle and files as the .deb, for Amazon Linux 2023,
RHEL 9 and their kin (Amazon Linux 2 too: the bundle needs no host glibc)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from release import reproducible, system_files

SPEC = """\
Name: xecr
Version: {version}
Release: 1
Summary: Docker credential helper and login daemon for Amazon ECR
License: Apache-2.0
BuildArch: {arch}
# The bundle carries its own Python and C library: no dependency to declare,
# and nothing in /usr/lib/xecr provides a library to other packages.
AutoReqProv: no

%global debug_package %{{nil}}
%global __os_install_post %{{nil}}
%global _build_id_links none

%description
xecr answers Docker, podman, skopeo and the kubelet with Amazon ECR tokens
across AWS accounts: it assumes the configured cross-account role chain, calls
GetAuthorizationToken, caches the 12-hour token privately and shares it
between processes, and its daemon refreshes tokens before they expire.
This package carries its own Python and C library in /usr/lib/xecr.

%install
cp -a {root}/. %{{buildroot}}/

%post
if [ -d /run/systemd/system ]; then systemctl daemon-reload >/dev/null 2>&1 || :; fi

%postun
if [ -d /run/systemd/system ]; then systemctl daemon-reload >/dev/null 2>&1 || :; fi

%files
/usr/lib/xecr
/usr/bin/xecr
/usr/bin/docker-credential-xecr
{plugins}/docker-credential-xecr
/usr/lib/systemd/system/xecr.service
/usr/lib/systemd/user/xecr.service
# The folder only: /etc/xecr/config.toml is the user's, and an erase keeps it.
%dir /etc/xecr
%doc /usr/share/doc/xecr
"""


def build(bundle: Path, work: Path, out: Path, version: str, arch: str, epoch: int) -> Path:
    if work.exists():
        shutil.rmtree(work)
    root = work / "root"
    system_files.lay_out(root, bundle, "/usr/lib/systemd", "/usr/share/doc/xecr")
    shutil.copyfile(system_files.REPO / "CHANGELOG.md", root / "usr/share/doc/xecr/CHANGELOG.md")
    reproducible.normalize(root, epoch)
    spec = work / "xecr.spec"
    spec.write_text(
        SPEC.format(version=version, arch=arch, root=root, plugins=system_files.KUBELET_PLUGINS)
    )
    defines = {
        "_topdir": str(work / "rpmbuild"),
        "_rpmdir": str(work / "rpms"),
        "_buildhost": "xecr-release",
        "use_source_date_epoch_as_buildtime": "1",
        "clamp_mtime_to_source_date_epoch": "1",
        "_binary_payload": "w6.xzdio",
        "_rpmfilename": "%%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm",
    }
    command = ["rpmbuild", "-bb", "--nodeps", "--quiet", "--target", arch]
    for name, value in defines.items():
        command += ["--define", f"{name} {value}"]
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(epoch), "TZ": "UTC", "LC_ALL": "C"}
    subprocess.run([*command, str(spec)], check=True, env=env, stdout=subprocess.DEVNULL)
    built = work / "rpms" / f"xecr-{version}-1.{arch}.rpm"
    target = out / built.name
    shutil.copyfile(built, target)
    return target
