"""packaging/: the EC2 bootstrap script, run against a scratch root (never
systemd, never the network), and the service definitions it and people install."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import platform
import plistlib
import shutil
import stat
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path, PurePosixPath

import pytest

import ecr_helper
from ecr_helper import config, registry
from tests.fakeaws import FakeAws
from tests.helpers import CENTRAL, CENTRAL_HOST, PULL_ROLE

# Every test here starts the installed executables (or a shell script).
pytestmark = pytest.mark.slow


REPO = Path(__file__).resolve().parent.parent
PACKAGING = REPO / "packaging"
BOOTSTRAP = PACKAGING / "ec2" / "bootstrap.sh"
SYSTEM_UNIT = PACKAGING / "systemd" / "xecr.service"
USER_UNIT = PACKAGING / "systemd" / "xecr-user.service"
PLIST = PACKAGING / "launchd" / "com.xecr.daemon.plist"
XECR = str(Path(sys.executable).parent / "xecr")

BASE_ARGS = ["--role-arn", PULL_ROLE, "--registry-id", CENTRAL, "--region", "us-east-1"]
OTHER_DOCKER_CONFIG = {
    "auths": {"registry.example.com": {"auth": "dXNlcjpwYXNz"}},
    "credsStore": "desktop",
    "credHelpers": {"gcr.io": "gcloud"},
    "proxies": {"default": {"httpProxy": "http://127.0.0.1:3128"}},
}


def bootstrap(root: Path | None, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "XECR_BOOTSTRAP_SKIP_INSTALL": "1", **env}
    command = ["bash", str(BOOTSTRAP), *args]
    if root is not None:
        command += ["--root", str(root)]
    return subprocess.run(command, capture_output=True, text=True, env=environ, timeout=60)


def listing(root: Path) -> list[tuple[object, ...]]:
    """What a checksum listing shows: every path's kind, mode, link target, bytes and mtime."""
    rows: list[tuple[object, ...]] = []
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        rel = str(path.relative_to(root))
        mode = oct(stat.S_IMODE(info.st_mode))
        if stat.S_ISLNK(info.st_mode):
            rows.append((rel, "link", os.readlink(path)))
        elif stat.S_ISDIR(info.st_mode):
            rows.append((rel, "dir", mode, info.st_uid, info.st_gid))
        else:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            rows.append((rel, "file", mode, info.st_uid, info.st_gid, digest, info.st_mtime_ns))
    return rows


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    """A scratch root with a Docker config for root that has other things in it."""
    root = tmp_path / "root"
    docker = root / "root" / ".docker"
    docker.mkdir(parents=True, mode=0o700)
    (docker / "config.json").write_text(json.dumps(OTHER_DOCKER_CONFIG, indent=2))
    (docker / "config.json").chmod(0o640)
    return root


def test_twice_on_a_scratch_root_sets_everything_up_then_changes_nothing(
    scratch: Path, fake_aws: FakeAws
) -> None:
    args = [*BASE_ARGS, "--external-id", "ext-0123", "--docker-user", "ec2-user"]
    first = bootstrap(scratch, *args)
    assert first.returncode == 0, first.stderr
    after_first = listing(scratch)

    # The config: valid for xecr, machine-wide, world-readable (every user's `get` reads it).
    conf = scratch / "etc" / "xecr" / "config.toml"
    assert stat.S_IMODE(conf.stat().st_mode) == 0o644
    loaded = config.parse_file(str(conf), system=True)
    assert loaded.hosts() == [CENTRAL_HOST]
    settings = loaded.resolve(CENTRAL_HOST)
    assert (settings.registry_id, settings.region) == (CENTRAL, "us-east-1")
    assert settings.role_arns == (PULL_ROLE,) and settings.external_id == "ext-0123"

    # Root's Docker config: the helper added, everything else and the mode kept.
    docker = scratch / "root" / ".docker" / "config.json"
    doc = json.loads(docker.read_text())
    assert doc["credHelpers"] == {"gcr.io": "gcloud", CENTRAL_HOST: "xecr"}
    assert {k: v for k, v in doc.items() if k != "credHelpers"} == {
        k: v for k, v in OTHER_DOCKER_CONFIG.items() if k != "credHelpers"
    }
    assert stat.S_IMODE(docker.stat().st_mode) == 0o640
    user_docker = scratch / "home" / "ec2-user" / ".docker" / "config.json"
    assert json.loads(user_docker.read_text()) == {"credHelpers": {CENTRAL_HOST: "xecr"}}
    assert stat.S_IMODE(user_docker.stat().st_mode) == 0o600

    # The unit, enabled the way systemctl enable does it, and the commands on PATH.
    unit = scratch / "etc" / "systemd" / "system" / "xecr.service"
    assert unit.read_text() == SYSTEM_UNIT.read_text()
    wants = scratch / "etc" / "systemd" / "system" / "multi-user.target.wants" / "xecr.service"
    assert os.readlink(wants) == "/etc/systemd/system/xecr.service"
    for name in ("xecr", "docker-credential-xecr"):
        assert os.readlink(scratch / "usr" / "local" / "bin" / name) == f"/opt/xecr/bin/{name}"

    second = bootstrap(scratch, *args)
    assert second.returncode == 0, second.stderr
    assert listing(scratch) == after_first
    assert "wrote" not in second.stdout and "linked" not in second.stdout

    # The daemon takes the written config as it is.
    env = dict(os.environ, XECR_SYSTEM_CONFIG=str(conf))
    once = subprocess.run(
        [XECR, "daemon", "--once"], capture_output=True, text=True, env=env, timeout=60
    )
    assert once.returncode == 0, once.stderr
    assert once.stdout.startswith(f"refreshed {CENTRAL_HOST} (registry {CENTRAL})")
    request = fake_aws.requests("AssumeRole")[-1]
    assert (request.params["RoleArn"], request.params["ExternalId"]) == (PULL_ROLE, "ext-0123")


def test_changed_arguments_change_only_the_config(scratch: Path) -> None:
    assert bootstrap(scratch, *BASE_ARGS).returncode == 0
    before = {str(row[0]): row for row in listing(scratch)}
    again = bootstrap(scratch, *BASE_ARGS, "--external-id", "new-id")
    assert again.returncode == 0, again.stderr
    after = {str(row[0]): row for row in listing(scratch)}
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert changed == ["etc/xecr/config.toml"]
    settings = config.parse_file(str(scratch / "etc/xecr/config.toml")).resolve(CENTRAL_HOST)
    assert settings.external_id == "new-id"


def test_an_alias_host_with_no_enable(scratch: Path) -> None:
    done = bootstrap(
        scratch,
        "--role-arn",
        PULL_ROLE,
        "--registry",
        "Images.Example.com",
        "--registry-id",
        CENTRAL,
        "--region",
        "eu-west-1",
        "--no-enable",
    )
    assert done.returncode == 0, done.stderr
    loaded = config.parse_file(str(scratch / "etc/xecr/config.toml"))
    settings = loaded.resolve("images.example.com")
    assert (settings.registry_id, settings.region, settings.external_id) == (
        CENTRAL,
        "eu-west-1",
        None,
    )
    assert (scratch / "etc/systemd/system/xecr.service").exists()
    assert not (scratch / "etc/systemd/system/multi-user.target.wants").exists()


def test_an_ecr_host_given_as_a_url(scratch: Path) -> None:
    host = f"{CENTRAL}.dkr.ecr.eu-west-1.amazonaws.com"
    done = bootstrap(
        scratch,
        "--role-arn",
        PULL_ROLE,
        "--registry",
        f"https://{host}:443/v2/",
        "--region",
        "eu-west-1",
    )
    assert done.returncode == 0, done.stderr
    assert config.parse_file(str(scratch / "etc/xecr/config.toml")).hosts() == [host]
    doc = json.loads((scratch / "root/.docker/config.json").read_text())
    assert doc["credHelpers"][host] == "xecr"


def test_a_china_region_gets_the_china_domain(tmp_path: Path) -> None:
    root = tmp_path / "root"
    done = bootstrap(
        root,
        "--role-arn",
        "arn:aws-cn:iam::222222222222:role/pull",
        "--registry-id",
        CENTRAL,
        "--region",
        "cn-north-1",
    )
    assert done.returncode == 0, done.stderr
    loaded = config.parse_file(str(root / "etc/xecr/config.toml"))
    assert loaded.hosts() == [f"{CENTRAL}.dkr.ecr.cn-north-1.amazonaws.com.cn"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--registry-id", CENTRAL, "--region", "us-east-1"], "--role-arn is required"),
        (
            [
                "--role-arn",
                "arn:aws:iam::2222:role/x",
                "--registry-id",
                CENTRAL,
                "--region",
                "us-east-1",
            ],
            "not an IAM role ARN",
        ),
        (["--role-arn", PULL_ROLE, "--registry-id", CENTRAL], "--region is required"),
        (
            ["--role-arn", PULL_ROLE, "--registry-id", CENTRAL, "--region", "Mars"],
            "not an AWS region",
        ),
        (["--role-arn", PULL_ROLE, "--region", "us-east-1"], "give --registry-id"),
        (["--role-arn", PULL_ROLE, "--registry-id", "12345", "--region", "us-east-1"], "12-digit"),
        ([*BASE_ARGS, "--external-id", 'x"\n[defaults]'], "--external-id must be"),
        (
            ["--role-arn", PULL_ROLE, "--registry", CENTRAL_HOST, "--region", "eu-west-1"],
            "contradicts the host",
        ),
        (
            ["--role-arn", PULL_ROLE, "--registry", "images.example.com", "--region", "us-east-1"],
            "give --registry-id too",
        ),
        ([*BASE_ARGS, "--docker-user", "../etc"], "not a user name"),
        ([*BASE_ARGS, "--frobnicate"], "unknown argument"),
        ([*BASE_ARGS, "--region"], "--region needs a value"),
    ],
)
def test_wrong_arguments_exit_2_and_write_nothing(
    tmp_path: Path, args: list[str], message: str
) -> None:
    root = tmp_path / "root"
    done = bootstrap(root, *args)
    assert done.returncode == 2
    assert message in done.stderr and "usage: bootstrap.sh" in done.stderr
    assert not root.exists() or listing(root) == []


def test_help_exits_zero() -> None:
    done = bootstrap(None, "--help")
    assert (done.returncode, done.stdout.startswith("usage: bootstrap.sh")) == (0, True)


STUB_PYTHON = """#!/bin/bash
# Stands in for python3: records what the bootstrap asks, makes a fake venv, no network.
echo "python $*" >> "{log}"
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
    mkdir -p "$3/bin"
    cat > "$3/bin/python" <<EOF
#!/bin/bash
echo "venv-python \\$*" >> "{log}"
if [ "\\$1 \\$2 \\$3" = "-m pip install" ]; then
    for name in xecr docker-credential-xecr; do
        printf '#!/bin/sh\\n' > "$3/bin/\\$name"; chmod +x "$3/bin/\\$name"
    done
fi
EOF
    chmod +x "$3/bin/python"
    exit 0
fi
exec "{real}" "$@"
"""


def test_the_install_step_makes_a_venv_and_pip_installs_once(tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    stub = tmp_path / "python-stub"
    stub.write_text(STUB_PYTHON.format(log=log, real=sys.executable))
    stub.chmod(0o755)
    root = tmp_path / "root"
    image_python(root)

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        return bootstrap(
            root,
            *BASE_ARGS,
            "--source",
            str(REPO),
            *extra,
            XECR_BOOTSTRAP_SKIP_INSTALL="",
            XECR_BOOTSTRAP_PYTHON=str(stub),
            XECR_BOOTSTRAP_PIP_ARGS="--no-index --no-deps",
        )

    def pip_calls() -> list[str]:
        return [line for line in log.read_text().splitlines() if "-m pip install" in line]

    first = run()
    assert first.returncode == 0, first.stderr
    venv = root / "opt" / "xecr"
    assert f"python -m venv {venv}" in log.read_text().splitlines()
    assert pip_calls() == [
        "venv-python -m pip install --quiet --disable-pip-version-check --upgrade "
        f"--no-index --no-deps {REPO}"
    ]
    assert (venv / ".bootstrap-source").read_text() == f"{REPO}\n"
    after_first = listing(root)
    second = run()
    assert second.returncode == 0, second.stderr
    assert len(pip_calls()) == 1 and listing(root) == after_first
    assert run("--reinstall").returncode == 0
    assert len(pip_calls()) == 2


def minimal_path(tmp_path: Path, *extra: tuple[str, str]) -> str:
    """A PATH with coreutils and bash only (no cmp, no python), as on a minimal image."""
    bare = tmp_path / "bin"
    bare.mkdir()
    for tool in (
        "bash",
        "cat",
        "chmod",
        "cut",
        "dirname",
        "basename",
        "id",
        "ln",
        "mkdir",
        "mktemp",
        "mv",
        "od",
        "readlink",
        "rm",
        "stat",
        "tr",
    ):
        found = shutil.which(tool)
        assert found
        (bare / tool).symlink_to(found)
    for name, target in extra:
        (bare / name).symlink_to(target)
    return str(bare)


def test_idempotent_without_cmp(tmp_path: Path) -> None:
    path = minimal_path(tmp_path, ("python3", sys.executable))
    root = tmp_path / "root"
    assert bootstrap(root, *BASE_ARGS, PATH=path).returncode == 0
    after_first = listing(root)
    again = bootstrap(root, *BASE_ARGS, PATH=path)
    assert again.returncode == 0, again.stderr
    assert f"unchanged {root}/etc/xecr/config.toml" in again.stdout
    assert listing(root) == after_first


def test_without_a_usable_python_in_a_scratch_root_it_says_so(tmp_path: Path) -> None:
    old = tmp_path / "python-old"
    old.write_text("#!/bin/sh\nexit 1\n")
    old.chmod(0o755)
    done = bootstrap(
        tmp_path / "root",
        *BASE_ARGS,
        XECR_BOOTSTRAP_SKIP_INSTALL="",
        XECR_BOOTSTRAP_PYTHON=str(old),
        PATH=minimal_path(tmp_path),
    )
    assert done.returncode == 1
    assert "no Python 3.11 or newer found" in done.stderr


# -- every host and region xecr serves -------------------------------------------------------

ECR_HOSTS = [
    # (host, region, role partition)
    (f"{CENTRAL}.dkr.ecr.us-east-1.amazonaws.com", "us-east-1", "aws"),
    (f"{CENTRAL}.dkr.ecr-fips.us-east-2.amazonaws.com", "us-east-2", "aws"),
    (f"{CENTRAL}.dkr.ecr.us-gov-west-1.amazonaws.com", "us-gov-west-1", "aws-us-gov"),
    (f"{CENTRAL}.dkr-ecr.eu-west-1.on.aws", "eu-west-1", "aws"),
    (f"{CENTRAL}.dkr-ecr-fips.us-gov-east-1.on.aws", "us-gov-east-1", "aws-us-gov"),
    (f"{CENTRAL}.dkr.ecr.cn-north-1.amazonaws.com.cn", "cn-north-1", "aws-cn"),
    (f"{CENTRAL}.dkr-ecr.cn-northwest-1.on.amazonwebservices.com.cn", "cn-northwest-1", "aws-cn"),
    (f"{CENTRAL}.dkr.ecr.us-iso-east-1.c2s.ic.gov", "us-iso-east-1", "aws-iso"),
    (f"{CENTRAL}.dkr.ecr.us-isob-east-1.sc2s.sgov.gov", "us-isob-east-1", "aws-iso-b"),
    (f"{CENTRAL}.dkr.ecr.eu-isoe-west-1.cloud.adc-e.uk", "eu-isoe-west-1", "aws-iso-e"),
    (f"{CENTRAL}.dkr.ecr.us-isof-south-1.csp.hci.ic.gov", "us-isof-south-1", "aws-iso-f"),
    (f"{CENTRAL}.dkr.ecr.eusc-de-east-1.amazonaws.eu", "eusc-de-east-1", "aws-eusc"),
    (f"{CENTRAL}.dkr.ecr-fips.eusc-de-east-1.amazonaws.eu", "eusc-de-east-1", "aws-eusc"),
]


def role_in(partition: str) -> str:
    return f"arn:{partition}:iam::222222222222:role/pull"


@pytest.mark.parametrize(("host", "region", "partition"), ECR_HOSTS, ids=[h[0] for h in ECR_HOSTS])
def test_every_ecr_host_family_is_accepted(
    tmp_path: Path, host: str, region: str, partition: str
) -> None:
    parsed = registry.parse_ecr_host(host)
    assert parsed is not None and parsed.region == region  # the table is xecr's own
    for n, how in enumerate((["--registry", host.upper()], ["--registry-id", CENTRAL])):
        if how[0] == "--registry-id" and (parsed.fips or parsed.dualstack):
            continue  # --registry-id names the canonical host only
        root = tmp_path / str(n)
        done = bootstrap(root, "--role-arn", role_in(partition), *how, "--region", region)
        assert done.returncode == 0, done.stderr
        loaded = config.parse_file(str(root / "etc/xecr/config.toml"), system=True)
        assert loaded.hosts() == [host]
        settings = loaded.resolve(host)
        assert (settings.registry_id, settings.region) == (CENTRAL, region)
        assert settings.role_arns == (role_in(partition),)
        doc = json.loads((root / "root/.docker/config.json").read_text())
        assert doc["credHelpers"] == {host: "xecr"}


LOOK_ALIKES = [
    f"{CENTRAL}.dkr.ecr.us-east-1.amazonaws.com.evil.example",
    f"{CENTRAL}.dkr.ecr.us-east-1.amazonaws.eu",  # a region outside the domain's partition
    f"{CENTRAL}.dkr.ecr.eusc-de-east-1.amazonaws.com",
    f"{CENTRAL}.dkr.ecr.cn-north-1.amazonaws.com",
    f"{CENTRAL}.dkr-ecr.us-east-1.amazonaws.com",  # dual-stack kind, IPv4 domain
    f"{CENTRAL}.dkr.ecr.us-east-1.on.aws",  # IPv4 kind, dual-stack domain
    f"{CENTRAL}.dkr-ecr.eusc-de-east-1.amazonaws.eu",
    f"{CENTRAL[:-1]}.dkr.ecr.us-east-1.amazonaws.com",
    f"{CENTRAL}.dkr.ecr.lala-land-1.amazonaws.com",
    f"{CENTRAL}.dkr.ecr.us-east-1.c2s.ic.gov",
    f"evil.{CENTRAL}.dkr.ecr.us-east-1.amazonaws.com",
]


@pytest.mark.parametrize("host", LOOK_ALIKES)
def test_look_alike_hosts_are_not_ecr(tmp_path: Path, host: str) -> None:
    assert registry.parse_ecr_host(host) is None  # the table is xecr's own
    region = host.split(".")[3] if host[0].isdigit() else "us-east-1"
    if not registry.is_region(region):
        region = "us-east-1"
    partition = registry.region_partition(region)
    args = ["--role-arn", role_in(partition), "--registry", host, "--region", region]
    done = bootstrap(tmp_path / "root", *args)
    assert done.returncode == 2, done.stderr
    assert f"--registry {host} is not an ECR host name" in done.stderr


@pytest.mark.parametrize(
    ("region", "partition"),
    [("us-east-1", "aws-cn"), ("eusc-de-east-1", "aws"), ("us-gov-west-1", "aws")],
)
def test_a_role_from_another_partition_is_refused(
    tmp_path: Path, region: str, partition: str
) -> None:
    args = ["--role-arn", role_in(partition), "--registry-id", CENTRAL, "--region", region]
    done = bootstrap(tmp_path / "root", *args)
    assert done.returncode == 2
    assert f"--role-arn is in the partition {partition}" in done.stderr


@pytest.mark.parametrize("host", ["public.ecr.aws", "ecr-public.aws.com"])
def test_ecr_public(tmp_path: Path, host: str) -> None:
    root = tmp_path / "root"
    args = ["--role-arn", PULL_ROLE, "--registry", host, "--region", "us-east-1"]
    done = bootstrap(root, *args)
    assert done.returncode == 0, done.stderr
    loaded = config.parse_file(str(root / "etc/xecr/config.toml"), system=True)
    assert loaded.hosts() == ["public.ecr.aws"]
    assert loaded.resolve(host).role_arns == (PULL_ROLE,)
    doc = json.loads((root / "root/.docker/config.json").read_text())
    assert doc["credHelpers"] == {host: "xecr"}
    refused = bootstrap(tmp_path / "other", *args, "--registry-id", CENTRAL)
    assert refused.returncode == 2 and "has no registry id" in refused.stderr


# -- --docker-user's files are that user's ----------------------------------------------------

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="giving files to a user needs root")


@as_root
def test_docker_user_files_belong_to_the_user_in_the_image(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text(
        "root:x:0:0:root:/root:/bin/bash\n"
        "ec2-user:x:4242:4343:EC2 Default User:/home/ec2-user:/bin/bash\n"
    )
    done = bootstrap(root, *BASE_ARGS, "--docker-user", "ec2-user")
    assert done.returncode == 0, done.stderr
    home = root / "home" / "ec2-user"
    for path, mode in (
        (home, 0o700),
        (home / ".docker", 0o700),
        (home / ".docker/config.json", 0o600),
    ):
        info = path.stat()
        assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (4242, 4343, mode), path
    assert (root / "home").stat().st_uid == 0
    assert json.loads((home / ".docker/config.json").read_text()) == {
        "credHelpers": {CENTRAL_HOST: "xecr"}
    }
    after_first = listing(root)
    again = bootstrap(root, *BASE_ARGS, "--docker-user", "ec2-user")
    assert again.returncode == 0, again.stderr
    assert listing(root) == after_first


@as_root
def test_a_root_owned_docker_folder_left_by_an_earlier_run_goes_to_the_user(tmp_path: Path) -> None:
    root = tmp_path / "root"
    # What the earlier bootstrap left: the user missing from the image, files owned by root.
    first = bootstrap(root, *BASE_ARGS, "--docker-user", "ec2-user")
    assert first.returncode == 0, first.stderr
    assert (
        f"--docker-user ec2-user is not in {root}/etc/passwd: {root}/home/ec2-user/.docker "
        "stays owned by root"
    ) in first.stdout
    docker = root / "home/ec2-user/.docker"
    assert (docker.stat().st_uid, (docker / "config.json").stat().st_uid) == (0, 0)
    (root / "etc").mkdir(exist_ok=True)
    (root / "etc/passwd").write_text("ec2-user:x:4242:4343::/home/ec2-user:/bin/sh\n")
    again = bootstrap(root, *BASE_ARGS, "--docker-user", "ec2-user")
    assert again.returncode == 0, again.stderr
    for path in (docker, docker / "config.json"):
        assert (path.stat().st_uid, path.stat().st_gid) == (4242, 4343), path


# -- --root builds an image that runs once booted ---------------------------------------------


def image_python(root: Path) -> Path:
    """Put this Python's interpreter at its own path inside ROOT, as an image would have it."""
    base = Path(getattr(sys, "_base_executable", sys.executable))
    inside = root / base.relative_to("/")
    inside.parent.mkdir(parents=True, exist_ok=True)
    if not inside.exists():
        shutil.copy2(base.resolve(), inside)
    return inside


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


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb is not installed")
def test_a_deb_under_root_is_unpacked_and_the_unit_runs_usr_bin(tmp_path: Path) -> None:
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


@pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("rpmbuild", "rpm2cpio", "cpio")),
    reason="rpmbuild, rpm2cpio or cpio is not installed",
)
def test_an_rpm_under_root_is_unpacked_and_the_unit_runs_usr_bin(tmp_path: Path) -> None:
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


# -- the service definitions ------------------------------------------------------------


def test_the_system_unit_runs_root_hardened_with_home() -> None:
    text = SYSTEM_UNIT.read_text()
    lines = {line.strip() for line in text.splitlines()}
    for wanted in (
        "User=root",
        "Environment=HOME=/root",
        "ExecStart=/usr/local/bin/xecr daemon",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/cache/xecr /var/log/xecr",
        "WantedBy=multi-user.target",
    ):
        assert wanted in lines, wanted
    user = {line.strip() for line in USER_UNIT.read_text().splitlines()}
    assert "WantedBy=default.target" in user and "Restart=on-failure" in user
    assert not any(line.startswith("User=") for line in user)


def _verify(unit: Path, tmp_path: Path, user: bool) -> subprocess.CompletedProcess[str]:
    # The daemon's binary need not exist here: point ExecStart at one that does.
    copy = tmp_path / unit.name
    text = unit.read_text()
    text = text.replace("/usr/local/bin/xecr", "/bin/true").replace(
        "%h/.local/bin/xecr", "/bin/true"
    )
    copy.write_text(text)
    command = ["systemd-analyze", *(["--user"] if user else []), "verify", str(copy)]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=30, cwd=tmp_path, env=dict(os.environ)
    )


@pytest.mark.parametrize(
    ("unit", "user"), [(SYSTEM_UNIT, False), (USER_UNIT, True)], ids=["system", "user"]
)
def test_systemd_accepts_the_units(unit: Path, user: bool, tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    done = _verify(unit, tmp_path, user)
    assert done.returncode == 0, done.stderr
    assert "Unknown" not in done.stderr and "ignoring" not in done.stderr, done.stderr


def test_the_launchd_agent() -> None:
    with PLIST.open("rb") as handle:
        agent = plistlib.load(handle)
    assert agent["Label"] == "com.xecr.daemon" == PLIST.stem
    assert agent["ProgramArguments"][1:] == ["daemon"]
    assert agent["ProgramArguments"][0].endswith("/xecr")
    assert agent["RunAtLoad"] is True
    assert agent["KeepAlive"] == {"SuccessfulExit": False}


def test_the_bootstrap_script_is_executable_bash(tmp_path: Path) -> None:
    assert BOOTSTRAP.stat().st_mode & stat.S_IXUSR
    assert BOOTSTRAP.read_text().startswith("#!/bin/bash\n")
    check = subprocess.run(
        ["bash", "-n", str(BOOTSTRAP)], capture_output=True, text=True, timeout=30
    )
    assert check.returncode == 0, check.stderr
    if shutil.which("shellcheck"):
        lint = subprocess.run(
            ["shellcheck", str(BOOTSTRAP)], capture_output=True, text=True, timeout=60
        )
        assert lint.returncode == 0, lint.stdout
