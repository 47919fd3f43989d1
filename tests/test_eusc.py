"""The AWS European Sovereign Cloud (partition aws-eusc, domain amazonaws.eu): its
registry hosts and an alias naming one of its regions get their token from ECR in that
region, through the installed executables and the loopback fake; its role ARNs are
accepted; configure and policy know its partition."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from ecr_helper import config, config_schema
from ecr_helper.policy import principal_arn
from tests.fakeaws import FakeAws
from tests.helpers import HELPER, XECR, get, run

ID = "123456789012"
HOST = f"{ID}.dkr.ecr.eusc-de-east-1.amazonaws.eu"
FIPS_HOST = f"{ID}.dkr.ecr-fips.eusc-de-east-1.amazonaws.eu"
EUSC_ROLE = "arn:aws-eusc:iam::555555555555:role/eusc-pull"


def _config(home: Path, text: str) -> None:
    path = home / ".config" / "xecr" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.mark.slow
@pytest.mark.parametrize("address", [HOST, f"https://{FIPS_HOST.upper()}:443/v2/"])
def test_done_when_an_eusc_host_gets_its_token_from_its_region(
    fake_aws: FakeAws, address: str
) -> None:
    done = get(address)
    assert done.returncode == 0, (done.out, done.err)
    # The caller's token (the fake's base keys are account 123456789012's), as ECR answers.
    secret = "123456789012-auth-token"
    assert done.answer() == {"ServerURL": address, "Username": "AWS", "Secret": secret}
    [request] = fake_aws.requests()
    assert (request.action, request.service, request.region) == (
        "GetAuthorizationToken",
        "ecr",
        "eusc-de-east-1",
    )
    assert request.params == {}  # registryIds is deprecated: the token is the caller's
    fake_aws.reset()
    assert get(address).returncode == 0 and fake_aws.counts() == {}


@pytest.mark.slow
def test_an_alias_in_an_eusc_region_with_an_eusc_role(
    isolated_env: Path, fake_aws: FakeAws
) -> None:
    _config(
        isolated_env,
        f"""
[defaults]
region = "eusc-de-east-1"

[registries."registry.example.eu"]
registry_id = "{ID}"
role_arn = "{EUSC_ROLE}"
""",
    )
    done = get("registry.example.eu")
    assert done.returncode == 0, (done.out, done.err)
    [assume] = fake_aws.requests("AssumeRole")
    assert (assume.region, assume.params["RoleArn"]) == ("eusc-de-east-1", EUSC_ROLE)
    [token] = fake_aws.requests("GetAuthorizationToken")
    assert (token.region, token.params) == ("eusc-de-east-1", {})
    assert token.access_key_id is not None and token.access_key_id.startswith("ASIA")


@pytest.mark.slow
def test_the_kubelet_plugin_answers_for_an_eusc_image(fake_aws: FakeAws) -> None:
    request = {
        "apiVersion": "credentialprovider.kubelet.k8s.io/v1",
        "kind": "CredentialProviderRequest",
        "image": f"{HOST}/team/app:1",
    }
    done = run([HELPER, "kubelet"], json.dumps(request).encode())
    assert done.returncode == 0, done.err
    assert json.loads(done.out)["auth"] == {
        HOST: {"username": "AWS", "password": "123456789012-auth-token"}
    }
    [asked] = fake_aws.requests("GetAuthorizationToken")
    assert asked.region == "eusc-de-east-1"


def test_the_config_accepts_eusc_regions_and_role_arns() -> None:
    text = f'[defaults]\nregion = "eusc-de-east-1"\nrole_arn = "{EUSC_ROLE}"\n'
    defaults, registries = config_schema.validate(tomllib.loads(text), "/t.toml")
    settings = config.Config("/t.toml", False, defaults, registries).resolve(HOST)
    assert (settings.region, settings.partition, settings.role_arn) == (
        "eusc-de-east-1",
        "aws-eusc",
        EUSC_ROLE,
    )


@pytest.mark.slow
def test_configure_an_eusc_alias_and_policy_trust_in_its_partition(isolated_env: Path) -> None:
    done = run(
        [
            XECR,
            "configure",
            "mirror.example.eu",
            "--registry-id",
            ID,
            "--region",
            "eusc-de-east-1",
            "--role-arn",
            EUSC_ROLE,
            "--no-docker",
        ]
    )
    assert done.returncode == 0, done.err
    trust = run(
        [XECR, "policy", "trust", "--account", "666666666666"],
        extra_env={"AWS_REGION": "eusc-de-east-1"},
    )
    assert trust.returncode == 0, trust.err
    principal = json.loads(trust.out)["Statement"][0]["Principal"]["AWS"]
    assert principal == "arn:aws-eusc:iam::666666666666:root"
    assert principal_arn(EUSC_ROLE, "aws-eusc") == EUSC_ROLE
