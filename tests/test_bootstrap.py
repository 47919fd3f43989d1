"""packaging/: the EC2 bootstrap script's set-up on a scratch root (config, Docker,
unit, idempotence, arguments), and the service definitions it and people install."""

from __future__ import annotations

import json
import os
import plistlib
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from ecr_helper import config
from tests.bootstrap_support import (
    BASE_ARGS,
    BOOTSTRAP,
    OTHER_DOCKER_CONFIG,
    PLIST,
    REPO,
    SYSTEM_UNIT,
    USER_UNIT,
    XECR,
    bootstrap,
    image_python,
    listing,
    make_scratch,
)
from tests.e2e import harness
from tests.fakeaws import FakeAws
from tests.helpers import CENTRAL, CENTRAL_HOST, PULL_ROLE

# Every test here starts the installed executables (or a shell script).
pytestmark = pytest.mark.slow


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    return make_scratch(tmp_path)


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
    shellcheck = harness.require_tool("shellcheck")  # fails in CI, skips elsewhere
    scripts = [BOOTSTRAP, *sorted((REPO / "scripts").glob("*.sh")), REPO / ".ci" / "run"]
    lint = subprocess.run(
        [shellcheck, *map(str, scripts)], capture_output=True, text=True, timeout=60
    )
    assert lint.returncode == 0, lint.stdout
