"""The .deb, installed for real with dpkg: a docker pull through
/usr/bin/docker-credential-xecr, lintian without errors, and a removal that
keeps the user's /etc/xecr/config.toml (a purge removes it)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e import harness
from tests.e2e.conftest import RegistryFactory
from tests.fakeaws import FakeAws
from tests.helpers import CENTRAL, PASSWORD, PULL_ROLE
from tests.release.conftest import artifact

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def deb_file(dist: Path) -> Path:
    harness.require_tool("dpkg")
    return artifact(dist, "xecr_{version}-1_*.deb")


@pytest.fixture
def installed_deb(deb_file: Path) -> Iterator[Path]:
    harness.require_root()
    if Path("/etc/xecr/config.toml").exists():
        pytest.fail("/etc/xecr/config.toml exists on this machine: the test would remove it")
    harness.run(["dpkg", "-i", str(deb_file)], timeout=300)
    try:
        yield Path("/usr/bin/docker-credential-xecr")
    finally:
        harness.run(["dpkg", "--purge", "xecr"], check=False, timeout=300)


def dpkg_status(package: str) -> str:
    done = subprocess.run(
        ["dpkg-query", "-W", "-f", "${db:Status-Abbrev}", package],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.stdout.strip()


def test_lintian_reports_no_error(deb_file: Path) -> None:
    lintian = harness.require_tool("lintian")
    done = harness.run([lintian, "--no-tag-display-limit", str(deb_file)], check=False, timeout=300)
    errors = [line for line in done.stdout.splitlines() if line.startswith("E:")]
    assert errors == [], done.stdout


def test_docker_pull_through_the_packaged_helper_then_removal_keeps_the_config(
    installed_deb: Path,
    fake_aws: FakeAws,
    dockerd: harness.Dockerd,
    registry_factory: RegistryFactory,
    write_config: object,
    tmp_path: Path,
) -> None:
    assert installed_deb.resolve() == Path("/usr/lib/xecr/bin/xecr")
    reg = registry_factory(username="AWS", password=PASSWORD)  # the pull role's token
    write_config(  # type: ignore[operator]
        f'[registries."{reg.host}"]\nregistry_id = "{CENTRAL}"\nregion = "us-east-1"\n'
        f'role_arn = "{PULL_ROLE}"\n'
    )
    env = {k: v for k, v in os.environ.items() if k.startswith(("AWS_", "XECR_", "XDG_"))}
    env["HOME"] = os.environ["HOME"]
    docker = dockerd.client(tmp_path / "docker", path_prepend=[Path("/usr/bin")], extra_env=env)
    ref = reg.ref("team/app", "1")
    harness.make_tiny_image(docker, ref, content=b"through the .deb\n")
    docker.write_config(cred_helpers={reg.host: "xecr"})
    docker.run("push", ref, timeout=120)
    docker.run("rmi", ref)
    docker.run("pull", ref, timeout=120)
    assert docker.image_exists(ref)
    assert fake_aws.calls("AssumeRole") == 1
    assert fake_aws.calls("GetAuthorizationToken") == 1

    config = Path("/etc/xecr/config.toml")
    config.write_text("# the user's machine-wide config\n")
    harness.run(["dpkg", "--remove", "xecr"], timeout=300)
    assert not installed_deb.exists()
    assert config.read_text() == "# the user's machine-wide config\n"
    assert dpkg_status("xecr").startswith("rc")  # removed, config files remain
    harness.run(["dpkg", "--purge", "xecr"], timeout=300)
    assert not config.exists()


def test_installs_units_plugin_link_and_docs(installed_deb: Path) -> None:
    unit = Path("/lib/systemd/system/xecr.service").read_text()
    assert "ExecStart=/usr/bin/xecr daemon" in unit
    plugin = Path(
        "/usr/libexec/kubernetes/kubelet-plugins/credential-provider/exec/docker-credential-xecr"
    )
    assert plugin.resolve() == Path("/usr/lib/xecr/bin/xecr")
    assert Path("/usr/share/doc/xecr/copyright").is_file()
    assert Path("/etc/xecr").is_dir()
    shown = subprocess.run(
        ["/usr/bin/xecr", "--version"], capture_output=True, text=True, timeout=60
    )
    assert shown.returncode == 0 and shown.stdout.startswith("xecr ")
