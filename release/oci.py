"""The OCI image, written as a ``docker load``-able archive without any
registry or base image: one layer holding the bundle at /opt/xecr and the few
files a container needs (users, name service order, a writable HOME and /tmp).

The archive is both an OCI image layout (index.json, blobs/) and a Docker
archive (manifest.json), so ``docker load``, ``podman load`` and skopeo's
``oci-archive:`` all read it.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
from datetime import UTC, datetime
from pathlib import Path

from release import reproducible

OCI_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}
USER = 65532  # the unprivileged user by convention of minimal images
FILES = {
    "etc/passwd": "root:x:0:0:root:/root:/sbin/nologin\n"
    f"nonroot:x:{USER}:{USER}:nonroot:/home/nonroot:/sbin/nologin\n",
    "etc/group": f"root:x:0:\nnonroot:x:{USER}:\n",
    "etc/nsswitch.conf": "passwd: files\ngroup: files\nhosts: files dns\n",
}
# Folders with an owner or mode of their own: (mode, uid).
FOLDERS = {"tmp": (0o1777, 0), "root": (0o700, 0), "home/nonroot": (0o700, USER)}


def _json(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def _layer(root: Path, epoch: int) -> bytes:
    """ROOT as a tar, with FOLDERS' owners and modes."""
    source = io.BytesIO(reproducible.tar_bytes(root, "", epoch))
    buffer = io.BytesIO()
    with (
        tarfile.open(fileobj=source) as plain,
        tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as out,
    ):
        for info in plain.getmembers():
            if info.name in FOLDERS:
                info.mode, info.uid = FOLDERS[info.name]
                info.gid = info.uid
                info.uname = info.gname = "nonroot" if info.uid else "root"
            out.addfile(info, plain.extractfile(info) if info.isfile() else None)
    return buffer.getvalue()


def _rootfs(work: Path, bundle: Path) -> Path:
    root = work / "rootfs"
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(bundle, root / "opt" / "xecr", symlinks=True)
    for name, text in FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    for name in FOLDERS:
        (root / name).mkdir(parents=True, exist_ok=True)
    return root


def build(bundle: Path, work: Path, out: Path, version: str, arch: str, epoch: int) -> Path:
    root = _rootfs(work, bundle)
    reproducible.normalize(root, epoch)
    layer_tar = _layer(root, epoch)
    layer = reproducible.gzip_bytes(layer_tar)
    created = datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    labels = {
        "org.opencontainers.image.title": "xecr",
        "org.opencontainers.image.description": "Docker credential helper and login daemon "
        "for Amazon ECR across AWS accounts",
        "org.opencontainers.image.version": version,
        "org.opencontainers.image.licenses": "Apache-2.0",
        "org.opencontainers.image.created": created,
    }
    config = _json(
        {
            "architecture": OCI_ARCH[arch],
            "os": "linux",
            "created": created,
            "config": {
                "User": f"{USER}:{USER}",
                "Env": ["PATH=/opt/xecr/bin", "HOME=/home/nonroot"],
                "Entrypoint": ["/opt/xecr/bin/xecr"],
                "Cmd": ["--help"],
                "WorkingDir": "/home/nonroot",
                "Labels": labels,
            },
            "rootfs": {
                "type": "layers",
                "diff_ids": ["sha256:" + hashlib.sha256(layer_tar).hexdigest()],
            },
            "history": [{"created": created, "created_by": "scripts/release.sh"}],
        }
    )
    blobs: dict[str, bytes] = {}  # by path in the archive: blobs/sha256/HEX

    def blob(data: bytes) -> dict[str, str | int]:
        digest = hashlib.sha256(data).hexdigest()
        blobs[f"blobs/sha256/{digest}"] = data
        return {"digest": f"sha256:{digest}", "size": len(data)}

    config_ref, layer_ref = blob(config), blob(layer)
    manifest = _json(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config_ref},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **layer_ref}],
            "annotations": labels,
        }
    )
    ref = {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        **blob(manifest),
        "platform": {"architecture": OCI_ARCH[arch], "os": "linux"},
        "annotations": {
            "io.containerd.image.name": f"docker.io/library/xecr:{version}",
            "org.opencontainers.image.ref.name": version,
        },
    }
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json"}
    members = {
        "oci-layout": _json({"imageLayoutVersion": "1.0.0"}),
        "index.json": _json({**index, "manifests": [ref]}),
        "manifest.json": _json(
            [
                {
                    "Config": "blobs/" + str(config_ref["digest"]).replace(":", "/"),
                    "RepoTags": [f"xecr:{version}"],
                    "Layers": ["blobs/" + str(layer_ref["digest"]).replace(":", "/")],
                }
            ]
        ),
        **blobs,
    }
    target = out / f"xecr-{version}-oci-{arch}.tar"
    with tarfile.open(target, "w", format=tarfile.PAX_FORMAT) as archive:
        for folder in ("blobs", "blobs/sha256"):
            info = tarfile.TarInfo(folder)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, epoch
            archive.addfile(info)
        for name in sorted(members):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(members[name]), 0o644, epoch
            archive.addfile(info, io.BytesIO(members[name]))
    return target
