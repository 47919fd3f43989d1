"""The files a system package adds around the bundle, shared by the .deb and
the .rpm: launchers in /usr/bin, the systemd units, the kubelet plugin link,
/etc/xecr and the documentation."""

from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PREFIX = "/usr/lib/xecr"
# Where kubelets look for credential-provider plugins by convention
# (--image-credential-provider-bin-dir); EKS's folder is linked by the DaemonSet.
KUBELET_PLUGINS = "/usr/libexec/kubernetes/kubelet-plugins/credential-provider/exec"
EXAMPLE_CONFIG = """\
# xecr machine-wide configuration: copy to /etc/xecr/config.toml and edit.
# See /usr/share/doc/xecr/README.md ("Configuration").

[defaults]
region = "us-east-1"

[registries."111111111111.dkr.ecr.us-east-1.amazonaws.com"]
role_arn = "arn:aws:iam::111111111111:role/ecr-pull"
# external_id = "..."
"""


def unit_text(name: str) -> str:
    """A unit from packaging/systemd, pointed at the packaged executable."""
    text = (REPO / "packaging" / "systemd" / name).read_text()
    text = text.replace("/usr/local/bin/xecr", "/usr/bin/xecr")
    return text.replace("%h/.local/bin/xecr", "/usr/bin/xecr")


def lay_out(root: Path, bundle: Path, unit_dir: str, doc_dir: str) -> None:
    """Fill ROOT (a package's file system) with BUNDLE and the files around it."""
    shutil.copytree(bundle, root / PREFIX.lstrip("/"), symlinks=True)
    usr_bin = root / "usr" / "bin"
    usr_bin.mkdir(parents=True)
    for name in ("xecr", "docker-credential-xecr"):
        (usr_bin / name).symlink_to(f"../lib/xecr/bin/{name}")
    plugins = root / KUBELET_PLUGINS.lstrip("/")
    plugins.mkdir(parents=True)
    up = "../" * KUBELET_PLUGINS.strip("/").count("/")
    (plugins / "docker-credential-xecr").symlink_to(f"{up}lib/xecr/bin/docker-credential-xecr")
    system = root / unit_dir.lstrip("/") / "system"
    user = root / unit_dir.lstrip("/") / "user"
    system.mkdir(parents=True)
    user.mkdir(parents=True)
    (system / "xecr.service").write_text(unit_text("xecr.service"))
    (user / "xecr.service").write_text(unit_text("xecr-user.service"))
    # /etc/xecr holds the user's config.toml; the package owns the folder only,
    # so removing the package never deletes a config the user wrote.
    (root / "etc" / "xecr").mkdir(parents=True)
    docs = root / doc_dir.lstrip("/")
    (docs / "examples").mkdir(parents=True)
    (docs / "examples" / "config.toml").write_text(EXAMPLE_CONFIG)
    for name in ("README.md", "SECURITY.md"):
        shutil.copyfile(REPO / name, docs / name)
    shutil.copyfile(REPO / "packaging" / "README.md", docs / "packaging.md")
    kube = docs / "kubernetes"
    shutil.copytree(REPO / "packaging" / "kubernetes", kube)
