"""The OCI image archive: ``docker load`` takes it with no registry, the
container answers ``get-login-password`` against the loopback AWS, and its
``install-node`` puts the bundle and the kubelet plugin link onto a node."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.e2e import harness
from tests.fakeaws import FakeAws
from tests.helpers import CENTRAL_HOST
from tests.release.conftest import artifact, version

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def image(dist: Path, dockerd: harness.Dockerd, tmp_path_factory: pytest.TempPathFactory) -> str:
    docker = dockerd.client(tmp_path_factory.mktemp("image-docker"))
    loaded = docker.run("load", "-i", str(artifact(dist, "xecr-{version}-oci-*.tar")), timeout=300)
    assert f"xecr:{version()}" in loaded.stdout
    return f"xecr:{version()}"


def test_get_login_password_in_the_container(
    image: str, dockerd: harness.Dockerd, fake_aws: FakeAws, tmp_path: Path
) -> None:
    docker = dockerd.client(tmp_path / "docker")
    aws = [f"{k}={v}" for k, v in os.environ.items() if k.startswith("AWS_")]
    env_args = [arg for pair in aws for arg in ("-e", pair)]
    done = docker.run(
        "run", "--rm", "--network", "host", *env_args, image, "get-login-password", CENTRAL_HOST,
        timeout=120,
    )  # fmt: skip
    assert done.stdout == "123456789012-auth-token\n"  # no role: the caller's own account
    assert fake_aws.calls("GetAuthorizationToken") == 1
    inspected = docker.run("image", "inspect", "--format", "{{.Config.User}}", image)
    assert inspected.stdout.strip() == "65532:65532"


def test_install_node_copies_the_bundle_and_links_the_plugin(
    image: str, dockerd: harness.Dockerd, tmp_path: Path
) -> None:
    docker = dockerd.client(tmp_path / "docker")
    host = tmp_path / "host"
    host.mkdir()
    docker.run(
        "run", "--rm", "--user", "0", "--read-only", "-v", f"{host}:/host",
        "--entrypoint", "/opt/xecr/install-node", image,
        "/host/opt/xecr", "/host/etc/eks/image-credential-provider",
        timeout=120,
    )  # fmt: skip
    link = host / "etc/eks/image-credential-provider/docker-credential-xecr"
    assert os.readlink(link) == "/opt/xecr/bin/docker-credential-xecr"  # as the node sees it
    helper = host / "opt/xecr/bin/docker-credential-xecr"
    shown = subprocess.run(
        [str(helper), "version"], capture_output=True, text=True, timeout=60, env={"PATH": "/x"}
    )
    assert version() in shown.stdout, shown.stderr
