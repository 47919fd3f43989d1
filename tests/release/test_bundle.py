"""The self-contained Linux bundle (``xecr-VERSION-linux-ARCH.tar.gz``): it
runs with no Python and no C library of the host's, from any folder and
through a symlink, names no path of the machine that built it, and answers
cold and cached ``get``s against the loopback AWS."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.fakeaws import FakeAws
from tests.helpers import CENTRAL_HOST
from tests.release.conftest import REPO, artifact, version

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bundle(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundle, unpacked into a folder whose name is not the one it was built in."""
    where = tmp_path_factory.mktemp("unpacked")
    with tarfile.open(artifact(dist, "xecr-{version}-linux-*.tar.gz")) as archive:
        names = archive.getnames()
        archive.extractall(where, filter="tar")
    top = {name.split("/")[0] for name in names}
    assert top == {f"xecr-{version()}-linux-{platform.machine()}"}
    moved = where / "somewhere else"
    (where / top.pop()).rename(moved)
    return moved


def bare_env(home: Path, **extra: str) -> dict[str, str]:
    """What a machine without Python gives: no Python on PATH, no PYTHON* variables."""
    keep = ("AWS_", "XDG_", "DOCKER_CONFIG", "XECR_")
    env = {key: value for key, value in os.environ.items() if key.startswith(keep)}
    return {**env, "HOME": str(home), "PATH": "/nonexistent", **extra}


def run(argv: list[str], env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, input=stdin, capture_output=True, text=True, env=env, timeout=60)


def test_runs_with_no_python_through_a_symlink(bundle: Path, tmp_path: Path) -> None:
    links = tmp_path / "bin"
    links.mkdir()
    (links / "docker-credential-xecr").symlink_to(bundle / "bin" / "docker-credential-xecr")
    env = bare_env(tmp_path, PYTHONHOME="/nonexistent", PYTHONPATH="/nonexistent")
    version_out = run([str(links / "docker-credential-xecr"), "version"], env)
    assert version_out.returncode == 0, version_out.stderr
    assert version() in version_out.stdout
    not_ours = run([str(links / "docker-credential-xecr"), "get"], env, "registry.example.com\n")
    assert (not_ours.returncode, not_ours.stdout, not_ours.stderr) == (
        1,
        "credentials not found in native keychain\n",
        "",
    )


def test_cold_then_cached_get_against_the_loopback_aws(
    bundle: Path, fake_aws: FakeAws, tmp_path: Path
) -> None:
    env = bare_env(Path(os.environ["HOME"]))
    helper = str(bundle / "bin" / "docker-credential-xecr")
    for _ in range(2):
        got = run([helper, "get"], env, CENTRAL_HOST + "\n")
        assert got.returncode == 0, got.stderr
        # No role configured: the fake's token for the caller's own account (moto's).
        assert '"Secret": "123456789012-auth-token"' in got.stdout
    assert fake_aws.calls("GetAuthorizationToken") == 1  # the second came from the cache


def test_needs_nothing_of_the_host_but_a_kernel(bundle: Path, tmp_path: Path) -> None:
    """In an empty root (only the bundle and /proc), it still answers."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare for a chroot with its own /proc")
    root = tmp_path / "root"
    shutil.copytree(bundle, root / "opt" / "xecr", symlinks=True)
    (root / "proc").mkdir()
    (root / "tmp").mkdir()
    script = f"mount -t proc proc {root}/proc && exec chroot {root} /opt/xecr/bin/xecr --version"
    done = subprocess.run(
        ["unshare", "--mount", "--fork", "sh", "-c", script],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/tmp"},
        timeout=60,
    )
    assert (done.returncode, done.stdout) == (0, f"xecr {version()}\n"), done.stderr


def test_launcher_is_static_and_every_library_is_carried(bundle: Path) -> None:
    launcher = (bundle / "bin" / "xecr").read_bytes()
    assert launcher[:4] == b"\x7fELF"
    assert b"/lib64/ld-linux" not in launcher and b"ld-linux-aarch64" not in launcher[:4096]
    ldd = subprocess.run(["ldd", str(bundle / "bin" / "xecr")], capture_output=True, text=True)
    assert "not a dynamic executable" in ldd.stdout + ldd.stderr
    libs = bundle / "lib" / "so"
    assert (libs / "libc.so.6").is_file() and any(libs.glob("ld-linux*"))


def test_names_no_path_of_the_build_machine(bundle: Path) -> None:
    needles = [str(REPO).encode(), b"/build/release/", b"release-venv"]
    named = [
        str(path.relative_to(bundle))
        for path in bundle.rglob("*")
        if path.is_file()
        and not path.is_symlink()
        and any(needle in path.read_bytes() for needle in needles)
    ]
    assert named == []


def test_doctor_points_at_the_bundle_when_the_helper_is_off_path(
    bundle: Path, tmp_path: Path, write_config: object
) -> None:
    write_config('[registries."111111111111.dkr.ecr.us-east-1.amazonaws.com"]\n')  # type: ignore[operator]
    docker = Path(os.environ["DOCKER_CONFIG"])
    docker.mkdir(parents=True, exist_ok=True)
    (docker / "config.json").write_text(f'{{"credHelpers": {{"{CENTRAL_HOST}": "xecr"}}}}')
    env = bare_env(Path(os.environ["HOME"]))
    done = run([str(bundle / "bin" / "xecr"), "doctor"], env)
    line = next(x for x in done.stdout.splitlines() if x.startswith("FAIL docker config"))
    assert f"it is in {bundle / 'bin'} (the xecr bundle)" in line
