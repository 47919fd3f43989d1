"""bootstrap.sh's sources: a venv under --root that names no build path, the
executable bundle, a .deb, an .rpm and an https:// URL."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import platform
import stat
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path, PurePosixPath

import pytest

import ecr_helper
from tests.bootstrap_support import (
    BASE_ARGS,
    REPO,
    SYSTEM_UNIT,
    bootstrap,
    image_python,
    listing,
)
from tests.e2e import harness

# Every test here starts the installed executables (or a shell script).
pytestmark = pytest.mark.slow


# -- --root builds an image that runs once booted ---------------------------------------------


def resolve_in(root: Path, path: str) -> Path:
    """Where PATH leads once ROOT is /: links followed inside ROOT, as chroot would."""
    todo = list(PurePosixPath(path).parts[1:])
    done: list[str] = []
    for _ in range(10_000):
        if not todo:
            return root.joinpath(*done)
        part = todo.pop(0)
        if part == "..":
            done = done[:-1]
        elif part != ".":
            here = root.joinpath(*done, part)
            if here.is_symlink():
                target = PurePosixPath(os.readlink(here))
                done = [] if target.is_absolute() else done
                todo = list(target.parts[1:] if target.is_absolute() else target.parts) + todo
            else:
                done.append(part)
    raise AssertionError(f"link loop at {path}")


def xecr_wheel(folder: Path) -> Path:
    """A wheel of this checkout's ecr_helper, made by hand: no build backend, no network."""
    version = ecr_helper.__version__
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    info = f"xecr-{version}.dist-info"
    files = {
        str(path.relative_to(REPO)): path.read_bytes()
        for path in sorted((REPO / "ecr_helper").rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }
    files[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: xecr\nVersion: {version}\n".encode()
    files[f"{info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    entry = "".join(f"{name} = {target}\n" for name, target in scripts.items())
    files[f"{info}/entry_points.txt"] = f"[console_scripts]\n{entry}".encode()
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    files[f"{info}/RECORD"] = ("\n".join([*record, f"{info}/RECORD,,"]) + "\n").encode()
    wheel = folder / f"xecr-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return wheel


def names_root(root: Path) -> list[str]:
    needle = str(root).encode()
    return [
        str(path.relative_to(root))
        for path in root.rglob("*")
        if path.is_file() and not path.is_symlink() and needle in path.read_bytes()
    ]


def test_root_builds_a_venv_that_names_no_path_of_the_build(tmp_path: Path) -> None:
    root = tmp_path / "root"
    image_python(root)
    wheel = xecr_wheel(tmp_path)
    env = {
        "XECR_BOOTSTRAP_SKIP_INSTALL": "",
        "XECR_BOOTSTRAP_PYTHON": sys.executable,
        "XECR_BOOTSTRAP_PIP_ARGS": "--no-index --no-deps",
    }
    done = bootstrap(root, *BASE_ARGS, "--source", str(wheel), **env)
    assert done.returncode == 0, done.stderr
    venv = root / "opt" / "xecr"

    # (a) No file in the image names the folder it was built in.
    assert names_root(root) == []
    # (b) Every script's interpreter, and every command link, exists once ROOT is /.
    scripts = [p for p in (venv / "bin").iterdir() if p.is_file() and not p.is_symlink()]
    shebangs = {p.name: p.read_bytes().split(b"\n", 1)[0] for p in scripts}
    for name in ("xecr", "docker-credential-xecr"):
        assert shebangs[name] == b"#!/opt/xecr/bin/python"
    for name, line in shebangs.items():
        if line.startswith(b"#!"):
            interpreter = line[2:].decode().split()[0]
            assert resolve_in(root, interpreter).is_file(), (name, interpreter)
    for name in ("xecr", "docker-credential-xecr"):
        assert resolve_in(root, f"/usr/local/bin/{name}") == venv / "bin" / name
    unit = (root / "etc/systemd/system/xecr.service").read_text()
    assert "ExecStart=/usr/local/bin/xecr daemon" in unit.splitlines()
    # (c) The venv's Python imports the installed package, from the venv; its compiled
    # files name /opt/xecr.
    python = str(venv / "bin" / "python")
    probe = "import ecr_helper.cli, sys; print(ecr_helper.cli.__file__, ecr_helper.__version__)"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    ran = subprocess.run(
        [python, "-c", probe], capture_output=True, text=True, timeout=60, cwd=tmp_path, env=clean
    )
    assert ran.returncode == 0, ran.stderr
    site = venv / f"lib/python{sys.version_info[0]}.{sys.version_info[1]}/site-packages"
    assert ran.stdout.split() == [str(site / "ecr_helper/cli/__init__.py"), ecr_helper.__version__]
    compiled = next(venv.rglob("ecr_helper/__pycache__/service.*.pyc"))
    assert b"/opt/xecr/lib/" in compiled.read_bytes()

    after_first = listing(root)
    again = bootstrap(root, *BASE_ARGS, "--source", str(wheel), **env)
    assert again.returncode == 0, again.stderr
    assert listing(root) == after_first


def test_root_refuses_a_python_the_image_does_not_have(tmp_path: Path) -> None:
    done = bootstrap(
        tmp_path / "root",
        *BASE_ARGS,
        XECR_BOOTSTRAP_SKIP_INSTALL="",
        XECR_BOOTSTRAP_PYTHON=sys.executable,
    )
    assert done.returncode == 1
    assert "the Python its venv would run" in done.stderr
    assert len(done.stderr.splitlines()) == 1
    assert not (tmp_path / "root/opt").exists()


# -- other sources: the executable bundle, a package, an https:// URL -------------------------

ARCH = platform.machine()


BOTH = ("xecr", "docker-credential-xecr")


def bundle(folder: Path, version: str, *, names: tuple[str, ...] = BOTH, arch: str = ARCH) -> Path:
    """A stand-in for xecr-V-linux-ARCH.tar.gz: one folder, bin/ and lib/."""
    top = f"xecr-{version}-linux-{arch}"
    archive = folder / f"{top}.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name in (top, f"{top}/bin", f"{top}/lib"):
            entry = tarfile.TarInfo(name)
            entry.type, entry.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(entry)
        files = {f"bin/{n}": f"#!/bin/sh\necho {n} {version}\n" for n in names}
        files[f"lib/only-in-{version}"] = version
        for name, text in files.items():
            entry = tarfile.TarInfo(f"{top}/{name}")
            entry.size, entry.mode = len(text), 0o755 if name.startswith("bin/") else 0o644
            entry.uid = entry.gid = 1234
            tar.addfile(entry, io.BytesIO(text.encode()))
    return archive


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_an_executable_bundle_is_unpacked_swapped_and_linked(tmp_path: Path) -> None:
    root = tmp_path / "root"
    first = bundle(tmp_path, "0.0.0")
    env = {"XECR_BOOTSTRAP_SKIP_INSTALL": ""}
    done = bootstrap(root, *BASE_ARGS, "--source", str(first), "--sha256", sha256(first), **env)
    assert done.returncode == 0, done.stderr
    opt = root / "opt" / "xecr"
    assert (opt / "bin/xecr").read_text() == "#!/bin/sh\necho xecr 0.0.0\n"
    assert (opt / "lib/only-in-0.0.0").exists()
    assert stat.S_IMODE(opt.stat().st_mode) == 0o755 and opt.stat().st_uid == os.geteuid()
    for name in ("xecr", "docker-credential-xecr"):
        assert os.readlink(root / "usr/local/bin" / name) == f"/opt/xecr/bin/{name}"
    assert sorted(p.name for p in (root / "opt").iterdir()) == ["xecr"]
    assert names_root(root) == []
    after_first = listing(root)
    again = bootstrap(root, *BASE_ARGS, "--source", str(first), **env)
    assert again.returncode == 0, again.stderr
    assert listing(root) == after_first and "installing" not in again.stdout

    newer = bundle(tmp_path, "0.0.1")
    update = bootstrap(root, *BASE_ARGS, "--source", str(newer), **env)
    assert update.returncode == 0, update.stderr
    assert (opt / "bin/xecr").read_text() == "#!/bin/sh\necho xecr 0.0.1\n"
    assert not (opt / "lib/only-in-0.0.0").exists()
    assert sorted(p.name for p in (root / "opt").iterdir()) == ["xecr"]

    # A broken bundle or a wrong checksum changes nothing.
    (tmp_path / "broken").mkdir()
    broken = bundle(tmp_path / "broken", "0.0.2", names=("xecr",))
    before = listing(root)
    for args, message in (
        (["--source", str(broken)], "has no executable bin/docker-credential-xecr"),
        (["--source", str(first), "--sha256", "0" * 64], "not installed"),
    ):
        refused = bootstrap(root, *BASE_ARGS, *args, **env)
        assert refused.returncode == 1 and message in refused.stderr, refused.stderr
        assert len(refused.stderr.splitlines()) == 1
        assert listing(root) == before


def test_a_bundle_for_another_machine_is_noted_under_root(tmp_path: Path) -> None:
    other = "aarch64" if ARCH != "aarch64" else "x86_64"
    archive = bundle(tmp_path, "0.0.0", arch=other)
    env = {"XECR_BOOTSTRAP_SKIP_INSTALL": ""}
    done = bootstrap(tmp_path / "root", *BASE_ARGS, "--source", str(archive), **env)
    assert done.returncode == 0, done.stderr
    assert f"is built for {other}, this machine is {ARCH}" in done.stdout


STUB_CURL = """#!/bin/bash
# Stands in for curl: logs its arguments, "downloads" from a local folder, no network.
echo "$*" >> "{log}"
while [ $# -gt 1 ]; do [ "$1" = -o ] && out=$2; shift; done
name=${{1##*/}}
if [ ! -f "{served}/$name" ]; then
    echo "curl: (22) The requested URL returned error: 404" >&2
    exit 22
fi
cp "{served}/$name" "$out"
"""


def test_an_https_source_is_downloaded_bounded_and_checked(tmp_path: Path) -> None:
    served, stubs, root = tmp_path / "served", tmp_path / "stubs", tmp_path / "root"
    served.mkdir()
    stubs.mkdir()
    log = tmp_path / "curl.log"
    (stubs / "curl").write_text(STUB_CURL.format(log=log, served=served))
    (stubs / "curl").chmod(0o755)
    archive = bundle(served, "0.0.0")
    url = f"https://releases.invalid/v0.0.0/{archive.name}"
    env = {"XECR_BOOTSTRAP_SKIP_INSTALL": "", "PATH": f"{stubs}:{os.environ['PATH']}"}

    wrong = bootstrap(root, *BASE_ARGS, "--source", url, "--sha256", "A" * 64, **env)
    assert wrong.returncode == 1 and "not installed" in wrong.stderr
    assert not (root / "opt").exists() or not any((root / "opt").iterdir())
    done = bootstrap(root, *BASE_ARGS, "--source", url, "--sha256", sha256(archive).upper(), **env)
    assert done.returncode == 0, done.stderr
    assert (root / "opt/xecr/bin/xecr").read_text() == "#!/bin/sh\necho xecr 0.0.0\n"
    calls = log.read_text().splitlines()
    assert len(calls) == 2
    for option in ("--fail", "--proto =https", "--connect-timeout", "--max-time", "--retry"):
        assert option in calls[-1]
    again = bootstrap(root, *BASE_ARGS, "--source", url, "--sha256", sha256(archive), **env)
    assert again.returncode == 0 and len(log.read_text().splitlines()) == 2  # not downloaded

    missing = bootstrap(tmp_path / "r2", *BASE_ARGS, "--source", url.replace("0.0.0-", "9-"), **env)
    assert missing.returncode == 1
    assert missing.stderr.splitlines() == [
        f"xecr bootstrap: could not download {url.replace('0.0.0-', '9-')}: "
        "curl: (22) The requested URL returned error: 404"
    ]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("http://releases.invalid/xecr-0.0.0-linux-x86_64.tar.gz", "only https:// URLs"),
        ("https://releases.invalid/download", "expected a .whl, .tar.gz, .deb or .rpm"),
        ("/nonexistent/xecr_0.0.0-1_amd64.deb", "no such file"),
    ],
)
def test_sources_that_cannot_be_installed_are_usage_errors(
    tmp_path: Path, source: str, message: str
) -> None:
    done = bootstrap(tmp_path / "root", *BASE_ARGS, "--source", source)
    assert done.returncode == 2 and message in done.stderr, done.stderr


def test_sha256_needs_a_file(tmp_path: Path) -> None:
    done = bootstrap(tmp_path / "root", *BASE_ARGS, "--source", "xecr==0.1.0", "--sha256", "0" * 64)
    assert done.returncode == 2 and "--sha256 needs a file" in done.stderr


def test_a_deb_under_root_is_unpacked_and_the_unit_runs_usr_bin(tmp_path: Path) -> None:
    harness.require_tool("dpkg-deb")
    tree = tmp_path / "tree"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN/control").write_text(
        "Package: xecr\nVersion: 0.0.0-1\nArchitecture: all\nMaintainer: t <t@t.invalid>\n"
        "Description: stand-in\n"
    )
    for name in ("xecr", "docker-credential-xecr"):
        path = tree / "usr/bin" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"#!/bin/sh\necho {name}\n")
        path.chmod(0o755)
    (tree / "lib/systemd/system").mkdir(parents=True)
    (tree / "lib/systemd/system/xecr.service").write_text(
        "[Service]\nExecStart=/usr/bin/xecr daemon\n"
    )
    deb = tmp_path / "xecr_0.0.0-1_all.deb"
    command = ["dpkg-deb", "--root-owner-group", "--build", str(tree), str(deb)]
    built = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert built.returncode == 0, built.stderr
    root = tmp_path / "root"
    (root / "usr/lib").mkdir(parents=True)
    (root / "lib").symlink_to("usr/lib")  # a merged-/usr image keeps its link
    env = {"XECR_BOOTSTRAP_SKIP_INSTALL": ""}
    done = bootstrap(root, *BASE_ARGS, "--source", str(deb), **env)
    assert done.returncode == 0, done.stderr
    assert (root / "usr/bin/xecr").read_text() == "#!/bin/sh\necho xecr\n"
    assert (root / "lib").is_symlink() and (root / "usr/lib/systemd/system/xecr.service").exists()
    assert not (root / "usr/local/bin/xecr").exists()
    unit = (root / "etc/systemd/system/xecr.service").read_text().splitlines()
    assert "ExecStart=/usr/bin/xecr daemon" in unit
    assert unit == [
        line.replace("/usr/local/bin/xecr", "/usr/bin/xecr")
        for line in SYSTEM_UNIT.read_text().splitlines()
    ]
    after_first = listing(root)
    again = bootstrap(root, *BASE_ARGS, "--source", str(deb), **env)
    assert again.returncode == 0, again.stderr
    assert listing(root) == after_first and "installing" not in again.stdout


RPM_SPEC = r"""
Name: xecr
Version: 0.0.0
Release: 1
Summary: stand-in
License: Apache-2.0
BuildArch: noarch
%define __os_install_post %{nil}
%define _build_id_links none
%description
stand-in
%install
units=%{buildroot}/usr/lib/systemd/system
mkdir -p %{buildroot}/usr/bin $units
for name in xecr docker-credential-xecr; do
    printf '#!/bin/sh\necho %s\n' $name > %{buildroot}/usr/bin/$name
    chmod 755 %{buildroot}/usr/bin/$name
done
printf '[Service]\nExecStart=/usr/bin/xecr daemon\n' > $units/xecr.service
%files
/usr/bin/xecr
/usr/bin/docker-credential-xecr
/usr/lib/systemd/system/xecr.service
"""


def test_an_rpm_under_root_is_unpacked_and_the_unit_runs_usr_bin(tmp_path: Path) -> None:
    for tool in ("rpmbuild", "rpm2cpio", "cpio"):
        harness.require_tool(tool)  # fails in CI, skips elsewhere
    top = tmp_path / "rpmbuild"
    spec = tmp_path / "xecr.spec"
    spec.write_text(RPM_SPEC)
    command = ["rpmbuild", "-bb", "--quiet", "--define", f"_topdir {top}", str(spec)]
    built = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stderr
    rpm = top / "RPMS/noarch/xecr-0.0.0-1.noarch.rpm"
    root = tmp_path / "root"
    env = {"XECR_BOOTSTRAP_SKIP_INSTALL": ""}
    done = bootstrap(root, *BASE_ARGS, "--source", str(rpm), "--sha256", sha256(rpm), **env)
    assert done.returncode == 0, done.stderr
    assert (root / "usr/bin/docker-credential-xecr").read_text() == (
        "#!/bin/sh\necho docker-credential-xecr\n"
    )
    assert (root / "usr/lib/systemd/system/xecr.service").exists()
    assert not (root / "usr/local/bin/xecr").exists()
    unit = (root / "etc/systemd/system/xecr.service").read_text().splitlines()
    assert "ExecStart=/usr/bin/xecr daemon" in unit
    after_first = listing(root)
    again = bootstrap(root, *BASE_ARGS, "--source", str(rpm), **env)
    assert again.returncode == 0, again.stderr
    assert listing(root) == after_first and "installing" not in again.stdout
