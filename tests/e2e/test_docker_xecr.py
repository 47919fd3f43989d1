"""The product end to end with real components: the docker CLI and dockerd,
a real docker-registry with htpasswd auth, skopeo, and the installed
``docker-credential-xecr``, against the loopback fake AWS.

The registry's only user is ``AWS`` with the password the fake issues to the
pull role (ECR's way: the caller's token, valid for every registry of its
region), so a push or pull succeeds only if xecr assumed the role and asked
ECR for its token. The registry is reached as
``127.0.0.1:PORT``, an alias host that xecr's config maps to the central
registry id (real ECR host names would need DNS pointed at loopback).
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e import harness
from tests.e2e.conftest import RegistryFactory
from tests.fakeaws import FakeAws
from tests.helpers import CENTRAL, PASSWORD, PULL_ROLE, installed

pytestmark = pytest.mark.e2e

EXTERNAL_ID = "e2e-external-id"


def _installed_helper() -> str:
    return installed("docker-credential-xecr")


def _configure(write_config: object, host: str) -> None:
    write_config(  # type: ignore[operator]
        f"""
[defaults]
region = "us-east-1"

[registries."{host}"]
registry_id = "{CENTRAL}"
role_arn = "{PULL_ROLE}"
external_id = "{EXTERNAL_ID}"
role_session_name = "e2e-pull"
"""
    )


def _env(fake: FakeAws) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.startswith(("AWS_", "XECR_", "XDG_"))}
    env["HOME"] = os.environ["HOME"]
    env["AWS_ENDPOINT_URL"] = fake.url
    return env


@dataclass(frozen=True)
class Setup:
    registry: harness.Registry
    docker: harness.DockerClient
    env: dict[str, str]
    bin_dir: Path


@pytest.fixture
def setup(
    fake_aws: FakeAws,
    dockerd: harness.Dockerd,
    registry_factory: RegistryFactory,
    write_config: object,
    tmp_path: Path,
) -> Setup:
    """A registry whose only login is the central registry's token, xecr configured
    for it as an alias host, and a docker CLI whose credHelpers send it to xecr."""
    reg = registry_factory(username="AWS", password=PASSWORD)
    _configure(write_config, reg.host)
    bin_dir = Path(_installed_helper()).parent
    env = _env(fake_aws)
    docker = dockerd.client(tmp_path / "docker-config", path_prepend=[bin_dir], extra_env=env)
    docker.write_config(cred_helpers={reg.host: "xecr"})
    return Setup(reg, docker, env, bin_dir)


def test_docker_push_and_pull_through_xecr(fake_aws: FakeAws, setup: Setup, tmp_path: Path) -> None:
    reg, docker = setup.registry, setup.docker

    ref = reg.ref("team/app", "1")
    harness.make_tiny_image(docker, "xecr-e2e/app:1", content=b"pushed through xecr\n")
    docker.run("tag", "xecr-e2e/app:1", ref)
    docker.run("push", ref, timeout=120)
    docker.run("rmi", ref, "xecr-e2e/app:1")
    assert not docker.image_exists(ref)
    docker.run("pull", ref, timeout=120)
    assert docker.image_exists(ref)

    # One role assumption and one token for the whole push and pull: the
    # second `get` was served from the cache.
    assert fake_aws.calls("AssumeRole") == 1
    assert fake_aws.calls("GetAuthorizationToken") == 1
    assume = fake_aws.requests("AssumeRole")[0].params
    assert assume["RoleArn"] == PULL_ROLE
    assert assume["ExternalId"] == EXTERNAL_ID
    assert assume["RoleSessionName"] == "e2e-pull"
    # No registryIds: deprecated, the token is the caller's for the region.
    assert fake_aws.requests("GetAuthorizationToken")[0].params == {}

    # No password was written into Docker's config: it stays with xecr.
    saved = json.loads((tmp_path / "docker-config" / "config.json").read_text())
    assert saved["credHelpers"] == {reg.host: "xecr"}
    assert reg.host not in saved.get("auths", {})


def test_pull_through_cache_paths_need_nothing_special(
    fake_aws: FakeAws, setup: Setup, tmp_path: Path
) -> None:
    """A pull-through cache repository is a path under the same registry host
    (<host>/docker-hub/library/nginx): Docker asks xecr for the host alone, and
    the one token serves it like any repository, with no configuration for it."""
    reg, docker = setup.registry, setup.docker
    cached = reg.ref("docker-hub/library/nginx", "1.27")
    other = reg.ref("ecr-public/docker/library/busybox", "1")
    harness.make_tiny_image(docker, "xecr-e2e/nginx:1.27", content=b"as if from docker hub\n")
    for ref in (cached, other):
        docker.run("tag", "xecr-e2e/nginx:1.27", ref)
        docker.run("push", ref, timeout=120)
    docker.run("rmi", cached, other, "xecr-e2e/nginx:1.27")
    docker.run("pull", cached, timeout=120)
    docker.run("pull", other, timeout=120)
    assert docker.image_exists(cached) and docker.image_exists(other)
    assert fake_aws.calls("GetAuthorizationToken") == 1
    assert fake_aws.requests("GetAuthorizationToken")[0].params == {}

    skopeo = harness.make_skopeo(
        tmp_path / "skopeo", path_prepend=[setup.bin_dir], extra_env=setup.env
    )
    skopeo.write_auth(cred_helpers={reg.host: "xecr"})
    inspected = json.loads(skopeo.inspect(cached).stdout)
    assert inspected["Name"] == f"{reg.host}/docker-hub/library/nginx"
    assert fake_aws.calls("GetAuthorizationToken") == 1


def test_two_registries_of_a_region_are_pulled_from_with_one_token(
    fake_aws: FakeAws,
    dockerd: harness.Dockerd,
    registry_factory: RegistryFactory,
    write_config: object,
    tmp_path: Path,
) -> None:
    """Issue 22: two registries (two accounts' ids, one region, one role chain) both
    accept the one token ECR gives the role; xecr fetches it once for both."""
    first = registry_factory(username="AWS", password=PASSWORD)
    second = registry_factory(username="AWS", password=PASSWORD)
    write_config(  # type: ignore[operator]
        f"""
[defaults]
region = "us-east-1"
role_arn = "{PULL_ROLE}"
external_id = "{EXTERNAL_ID}"

[registries."{first.host}"]
registry_id = "{CENTRAL}"

[registries."{second.host}"]
registry_id = "333333333333"
"""
    )
    bin_dir = Path(_installed_helper()).parent
    docker = dockerd.client(
        tmp_path / "docker-config", path_prepend=[bin_dir], extra_env=_env(fake_aws)
    )
    docker.write_config(cred_helpers={first.host: "xecr", second.host: "xecr"})
    harness.make_tiny_image(docker, "xecr-e2e/two:1", content=b"one token, two registries\n")
    refs = [first.ref("team/app", "1"), second.ref("team/app", "1")]
    for ref in refs:
        docker.run("tag", "xecr-e2e/two:1", ref)
        docker.run("push", ref, timeout=120)
    docker.run("rmi", *refs, "xecr-e2e/two:1")
    for ref in refs:
        docker.run("pull", ref, timeout=120)
        assert docker.image_exists(ref)
    assert fake_aws.calls("AssumeRole") == 1
    assert fake_aws.calls("GetAuthorizationToken") == 1


def _assert_names_the_role_and_the_fix(output: str, host: str) -> None:
    """The helper's stderr line, as the client printed it to the person."""
    assert "Traceback" not in output
    [line] = [x for x in output.splitlines() if "xecr: " in x]
    assert f"xecr: {host}: AssumeRole denied for {PULL_ROLE} (AccessDenied)" in line
    assert "check that role's trust policy" in line
    assert f"xecr doctor {host}" in line


def test_docker_pull_shows_which_role_was_denied_and_what_to_check(
    fake_aws: FakeAws, setup: Setup
) -> None:
    """Docker swallows the helper's stdout on pull ("no basic auth credentials") but shows
    its stderr: the person sees the role ARN and the fix, not just Docker's words."""
    reg, docker = setup.registry, setup.docker
    fake_aws.fail("AssumeRole", "access_denied")
    result = docker.run("pull", reg.ref("team/app", "1"), check=False, timeout=120)
    assert result.returncode != 0
    _assert_names_the_role_and_the_fix(result.stdout + result.stderr, reg.host)
    # The line is in xecr's log too.
    log_text = (Path(os.environ["XDG_STATE_HOME"]) / "xecr" / "log" / "xecr.log").read_text()
    assert f"AssumeRole denied for {PULL_ROLE}" in log_text
    assert fake_aws.calls("GetAuthorizationToken") == 0


def test_skopeo_inspect_shows_which_role_was_denied_and_what_to_check(
    fake_aws: FakeAws, setup: Setup, tmp_path: Path
) -> None:
    reg = setup.registry
    skopeo = harness.make_skopeo(
        tmp_path / "skopeo", path_prepend=[setup.bin_dir], extra_env=setup.env
    )
    skopeo.write_auth(cred_helpers={reg.host: "xecr"})
    fake_aws.fail("AssumeRole", "access_denied")
    result = skopeo.inspect(reg.ref("team/app", "1"), check=False)
    assert result.returncode != 0
    _assert_names_the_role_and_the_fix(result.stdout + result.stderr, reg.host)
    assert fake_aws.calls("GetAuthorizationToken") == 0


def test_skopeo_reads_through_xecr(fake_aws: FakeAws, setup: Setup, tmp_path: Path) -> None:
    reg, docker = setup.registry, setup.docker
    ref = reg.ref("team/tool", "2")
    harness.make_tiny_image(docker, "xecr-e2e/tool:2", content=b"for skopeo\n")
    docker.run("tag", "xecr-e2e/tool:2", ref)
    docker.run("push", ref, timeout=120)

    skopeo = harness.make_skopeo(
        tmp_path / "skopeo", path_prepend=[setup.bin_dir], extra_env=setup.env
    )
    skopeo.write_auth(cred_helpers={reg.host: "xecr"})
    result = skopeo.inspect(ref)
    assert json.loads(result.stdout)["Name"] == f"{reg.host}/team/tool"
    # skopeo asked xecr; the token came from the cache docker's push filled.
    assert fake_aws.calls("GetAuthorizationToken") == 1


def test_xecr_configure_then_docker_pull_with_no_hand_editing(
    fake_aws: FakeAws,
    dockerd: harness.Dockerd,
    registry_factory: RegistryFactory,
    tmp_path: Path,
) -> None:
    """The newcomer's path: one `xecr configure`, then docker push and pull just work."""
    reg = registry_factory(username="AWS", password=PASSWORD)
    bin_dir = Path(_installed_helper()).parent
    docker_config = tmp_path / "docker-config"
    env = {
        **_env(fake_aws),
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "DOCKER_CONFIG": str(docker_config),
    }
    configure = subprocess.run(
        [
            str(bin_dir / "xecr"),
            "configure",
            reg.host,
            "--registry-id",
            CENTRAL,
            "--region",
            "us-east-1",
            "--role-arn",
            PULL_ROLE,
            "--external-id",
            EXTERNAL_ID,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert configure.returncode == 0, configure.stderr
    docker = dockerd.client(docker_config, path_prepend=[bin_dir], extra_env=_env(fake_aws))
    assert docker.read_config()["credHelpers"] == {reg.host: "xecr"}

    ref = reg.ref("team/new", "1")
    harness.make_tiny_image(docker, "xecr-e2e/new:1", content=b"configured, not edited\n")
    docker.run("tag", "xecr-e2e/new:1", ref)
    docker.run("push", ref, timeout=120)
    docker.run("rmi", ref, "xecr-e2e/new:1")
    docker.run("pull", ref, timeout=120)
    assert docker.image_exists(ref)
    assert fake_aws.requests("AssumeRole")[0].params["ExternalId"] == EXTERNAL_ID
