"""The self-contained Linux bundle: xecr, its dependencies, a CPython and the
glibc it was built against, in one relocatable folder.

Why not PyInstaller: its one-folder build answered a cached ``get`` 3.2x
slower than the pip-installed helper. This bundle runs a plain CPython with
``-I -S`` on compiled (unchecked-hash) bytecode, through a static launcher
(``launcher.c``), so it starts as fast as the leanest install. It carries the
dynamic loader and every shared library it uses, so it needs no glibc of the
host's: it runs on any Linux of its architecture, Amazon Linux 2 and Alpine
included. The interpreter and libraries are the build machine's Debian
packages (their versions are listed in ``lib/xecr/BUILDINFO``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from release import reproducible

HERE = Path(__file__).resolve().parent

# Parts of the standard library xecr never imports: tests, GUIs, build files,
# installers. (-S means site and its Debian patches never load either.)
STDLIB_SKIP = {
    "__pycache__", "test", "idlelib", "tkinter", "turtledemo", "turtle.py", "lib2to3",
    "ensurepip", "pydoc_data", "distutils", "_distutils_system_mod.py", "sqlite3",
    "curses", "dbm", "venv", "EXTERNALLY-MANAGED", "site-packages", "dist-packages",
}  # fmt: skip
DYNLOAD_SKIP = re.compile(
    r"^(_test|_ctypes_test|xxlimited|_xx|_curses|_dbm|_gdbm|_sqlite3|nis|readline"
    r"|ossaudiodev|_crypt|_tkinter)"
)
# botocore's service models: only the services xecr and the credential chain
# call (the rest is 90 % of botocore's size).
BOTOCORE_SERVICES = {"sts", "ecr", "ecr-public", "sso", "sso-oidc", "signin"}
# glibc loads these with dlopen (pthread_exit and unwinding), so ldd never names them.
DLOPENED = ("libgcc_s.so.1",)


def run(*command: str | Path, **kwargs: object) -> str:
    out = subprocess.run(
        [str(part) for part in command], check=True, capture_output=True, text=True, **kwargs
    )  # type: ignore[call-overload]
    return str(out.stdout)


def host_python() -> tuple[Path, str]:
    """The Debian interpreter (binary, "3.X") the bundle carries."""
    binary = Path(os.environ.get("XECR_BUNDLE_PYTHON", "/usr/bin/python3")).resolve()
    version = run(binary, "-I", "-S", "-c", "import sys;print('%d.%d' % sys.version_info[:2])")
    return binary, version.strip()


def copy_stdlib(source: Path, dest: Path) -> None:
    def ignore(folder: str, names: list[str]) -> set[str]:
        skip = {name for name in names if name in STDLIB_SKIP or name.startswith("config-")}
        if folder.endswith("lib-dynload"):
            skip |= {name for name in names if DYNLOAD_SKIP.match(name)}
        return skip

    shutil.copytree(source, dest, ignore=ignore, symlinks=False)


def install_packages(site: Path, wheel: Path) -> None:
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-compile"]
    pip += ["--disable-pip-version-check", "--no-warn-script-location", "--target", str(site)]
    subprocess.run([*pip, "-r", str(HERE / "bundle-requirements.txt")], check=True)
    subprocess.run([*pip, str(wheel)], check=True)
    shutil.rmtree(site / "bin", ignore_errors=True)
    for info in site.glob("*.dist-info"):
        # direct_url.json names the wheel's path on this machine, and the
        # console scripts removed above name this build's interpreter: drop
        # both, and their RECORD lines.
        (info / "direct_url.json").unlink(missing_ok=True)
        record = info / "RECORD"
        lines = record.read_text().splitlines(keepends=True)
        kept = [
            line for line in lines if not line.startswith("../") and "direct_url.json" not in line
        ]
        record.write_text("".join(kept))
    data = site / "botocore" / "data"
    for service in data.iterdir():
        if service.is_dir() and service.name not in BOTOCORE_SERVICES:
            shutil.rmtree(service)
    shutil.rmtree(site / "boto3" / "data", ignore_errors=True)
    for cache in list(site.rglob("__pycache__")):
        shutil.rmtree(cache)


def drop_shebangs(root: Path) -> None:
    """Blank the #! line of every module: nothing in the bundle is run as a
    script, and those lines name interpreters the bundle does not have."""
    for path in root.rglob("*.py"):
        data = path.read_bytes()
        if data.startswith(b"#!"):
            end = data.find(b"\n")
            path.write_bytes(b"#" + (data[end:] if end >= 0 else b""))
            path.chmod(0o644)


def _elf_files(root: Path) -> list[Path]:
    found = []
    for path in reproducible.walk(root):
        if path.is_file() and not path.is_symlink():
            with path.open("rb") as handle:
                if handle.read(4) == b"\x7fELF":
                    found.append(path)
    return found


def copy_libraries(root: Path, libs: Path) -> tuple[str, list[Path]]:
    """Copy every shared library the bundle's ELF files need into LIBS: the
    loader's name, and the files copied."""
    libs.mkdir(parents=True)
    needed: dict[str, Path] = {}
    loader = ""
    for elf in _elf_files(root):
        for line in run("ldd", elf).splitlines():
            parts = line.split()
            if "=>" in parts and len(parts) >= 3 and parts[2].startswith("/"):
                if root not in Path(parts[2]).resolve().parents:
                    needed[parts[0]] = Path(parts[2])
            elif parts and parts[0].startswith("/") and "ld-linux" in parts[0]:
                loader = Path(parts[0]).name
                needed[loader] = Path(parts[0])
    libc = needed.get("libc.so.6")
    if not loader or libc is None:
        raise SystemExit("release: ldd found no loader or libc for the bundle")
    for name in DLOPENED:
        needed[name] = libc.parent / name
    for name, path in sorted(needed.items()):
        shutil.copyfile(path.resolve(), libs / name)
    (libs / loader).chmod(0o755)  # the launcher executes it
    return loader, sorted(needed.values())


def build_launcher(dest: Path, loader: str) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    run(
        os.environ.get("CC", "gcc"), "-static", "-O2", "-s", "-Wall", "-Werror",
        f"-ffile-prefix-map={HERE}=.", f'-DXECR_LOADER="{loader}"',
        "-o", dest, HERE / "launcher.c",
    )  # fmt: skip


def buildinfo(sources: list[Path], site: Path) -> str:
    """What the bundle was made of: the Debian packages that own SOURCES, and
    the Python distributions in SITE."""
    packages = set()
    # dpkg -S exits 1 when any path is unknown to it; the rest still answer.
    owners = subprocess.run(["dpkg", "-S", *map(str, sources)], capture_output=True, text=True)
    for line in owners.stdout.splitlines():
        packages.add(line.split(":")[0])
    versions = run("dpkg-query", "-W", "-f", "${Package} ${Version}\\n", *sorted(packages))
    dists = sorted(p.name.removesuffix(".dist-info") for p in site.glob("*.dist-info"))
    return (
        "Debian packages:\n"
        + "".join(f"  {line}\n" for line in versions.splitlines())
        + "Python distributions:\n"
        + "".join(f"  {name}\n" for name in dists)
    )


def build(staging: Path, wheel: Path, epoch: int) -> Path:
    """Assemble the bundle in STAGING (made anew) and return it."""
    if staging.exists():
        shutil.rmtree(staging)
    python, version = host_python()
    stdlib = staging / "lib" / f"python{version}"
    (staging / "libexec").mkdir(parents=True)
    shutil.copyfile(python, staging / "libexec" / "python3")
    (staging / "libexec" / "python3").chmod(0o755)
    copy_stdlib(Path(f"/usr/lib/python{version}"), stdlib)
    site = stdlib / "site-packages"
    install_packages(site, wheel)
    drop_shebangs(staging / "lib")
    loader, libraries = copy_libraries(staging, staging / "lib" / "so")
    build_launcher(staging / "bin" / "xecr", loader)
    (staging / "bin" / "docker-credential-xecr").symlink_to("xecr")
    (staging / "install-node").symlink_to("bin/xecr")
    own = staging / "lib" / "xecr"
    own.mkdir()
    shutil.copyfile(HERE / "install_node.py", own / "install_node.py")
    sources = [python, Path(f"/usr/lib/python{version}/os.py"), *libraries]
    (own / "BUILDINFO").write_text(buildinfo(sources, site))
    shutil.copyfile(HERE.parent / "LICENSE", staging / "LICENSE")
    # Compiled once, here, with the bundled interpreter itself: unchecked-hash
    # bytecode is never compared with its source at start-up, and names no
    # build path (-s strips the staging folder).
    subprocess.run(
        [python, "-I", "-S", "-m", "compileall", "-q", "-j", "1", "-s", str(staging), "-p", "/",
         "--invalidation-mode", "unchecked-hash", str(staging / "lib")],
        check=True,
    )  # fmt: skip
    reproducible.normalize(staging, epoch)
    return staging
