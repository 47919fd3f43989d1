"""bootstrap.sh: every host family, region and partition xecr serves, and
--docker-user's files owned by that user."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from ecr_helper import config, registry
from tests.bootstrap_support import (
    BASE_ARGS,
    bootstrap,
    listing,
)
from tests.helpers import CENTRAL, CENTRAL_HOST, PULL_ROLE

# Every test here starts the installed executables (or a shell script).
pytestmark = pytest.mark.slow


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
