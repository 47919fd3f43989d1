"""ecr_helper.setup.trust_advice: doctor's advice for a denied AssumeRole names a principal
that IAM and ``xecr policy trust`` accept (the role, not the session an assumed-role caller
is), says when the role's path cannot be known, and gives the command that prints the
policy, which the installed ``xecr policy trust`` runs as given (issue 21, item 1)."""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest

from ecr_helper.config import RegistrySettings
from ecr_helper.errors import AssumeRoleDenied
from ecr_helper.setup import doctor
from ecr_helper.setup.trust_advice import principal_for, trust_hint
from ecr_helper.token import Token
from tests.fakeaws import FakeAws
from tests.helpers import CENTRAL_HOST, PULL_ROLE, XECR, run

NODE_SESSION = "arn:aws:sts::222222222222:assumed-role/ec2-node/i-0123456789abcdef0"
NODE_ROLE = "arn:aws:iam::222222222222:role/ec2-node"
HUB_ROLE = "arn:aws:iam::333333333333:role/team/hub"
NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("caller", "principal", "note"),
    [
        (NODE_SESSION, NODE_ROLE, "drops the role's path"),
        (
            "arn:aws-cn:sts::222222222222:assumed-role/AWSReservedSSO_Dev_0a1b/ann@example.com",
            "arn:aws-cn:iam::222222222222:role/AWSReservedSSO_Dev_0a1b",
            "role/PATH/AWSReservedSSO_Dev_0a1b",
        ),
        ("arn:aws:iam::123456789012:user/dev", "arn:aws:iam::123456789012:user/dev", ""),
        (HUB_ROLE, HUB_ROLE, ""),
        ("arn:aws:iam::123456789012:root", "arn:aws:iam::123456789012:root", ""),
        ("arn:aws:sts::123456789012:federated-user/bob", "123456789012", "the account of"),
    ],
)
def test_the_principal_of_each_kind_of_caller(caller: str, principal: str, note: str) -> None:
    found = principal_for(caller)
    assert found.value == principal
    assert (note in found.note) if note else found.note == ""


def test_a_session_is_advised_as_its_role_with_the_command(isolated_env: Path) -> None:
    hint = trust_hint(PULL_ROLE, NODE_SESSION, "fleet-1", "us-east-1", first=True)
    assert hint.startswith(f"{PULL_ROLE}'s trust policy must name {NODE_ROLE} as principal (")
    assert f"must name {NODE_SESSION}" not in hint
    assert "drops the role's path" in hint
    assert "its sts:ExternalId must be 'fleet-1'" in hint
    assert hint.endswith(
        f"`xecr policy trust --account {NODE_ROLE} --external-id fleet-1 --region us-east-1` "
        "prints one"
    )


class SessionProbes:
    """Doctor's probes for a caller that is an assumed role, its AssumeRole denied."""

    def identity(self, region: str, profile: str | None) -> str:
        return NODE_SESSION

    def assume(self, settings: RegistrySettings) -> None:
        raise AssumeRoleDenied(settings.role_arns[-1], "AccessDenied")

    def token(self, settings: RegistrySettings) -> Token:
        raise AssertionError("no token without the role")


def _assume_check(write_config: Callable[[str], Path], text: str) -> doctor.Check:
    write_config(text)
    fake = SessionProbes()
    checks = doctor.run(
        dict(os.environ), (), doctor.Probes(fake.identity, fake.assume, fake.token), lambda: NOW
    )
    [check] = [c for c in checks if c.name == "assume role"]
    return check


def test_doctor_names_the_role_of_an_assumed_role_caller(
    write_config: Callable[[str], Path],
) -> None:
    check = _assume_check(
        write_config, f'[registries."{CENTRAL_HOST}"]\nrole_arn = "{PULL_ROLE}"\n'
    )
    assert check.failed
    assert f"must name {NODE_ROLE} as principal" in check.hint
    assert f"--account {NODE_ROLE} --region us-east-1`" in check.hint


def test_a_later_hop_names_the_role_before_it(write_config: Callable[[str], Path]) -> None:
    check = _assume_check(
        write_config,
        f'[registries."{CENTRAL_HOST}"]\nrole_arn = ["{HUB_ROLE}", "{PULL_ROLE}"]\n'
        'external_id = "fleet-1"\n',
    )
    assert f"{PULL_ROLE}'s trust policy must name {HUB_ROLE} as principal" in check.hint
    assert "the role before it in the chain" in check.hint
    assert f"--account {HUB_ROLE} --external-id fleet-1 --region us-east-1`" in check.hint


def _advised_command(line: str) -> list[str]:
    found = re.search(r"`(xecr policy trust [^`]*)`", line)
    assert found, f"no `xecr policy trust` command in the advice: {line}"
    return shlex.split(found[1])


@pytest.mark.slow
def test_the_installed_doctors_advice_runs_through_the_installed_policy_trust(
    write_config: Callable[[str], Path], fake_aws: FakeAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The source credentials are an EC2 node's role session, as an instance profile gives.
    sts = boto3.client("sts", endpoint_url=fake_aws.url, region_name="us-east-1")
    credentials = sts.assume_role(RoleArn=NODE_ROLE, RoleSessionName="i-0123456789abcdef0")[
        "Credentials"
    ]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", credentials["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", credentials["SecretAccessKey"])
    monkeypatch.setenv("AWS_SESSION_TOKEN", credentials["SessionToken"])
    # Another region's partition in the environment: the advice must not depend on it.
    monkeypatch.setenv("AWS_REGION", "cn-north-1")
    write_config(
        f'[defaults]\nregion = "us-east-1"\n[registries."{CENTRAL_HOST}"]\n'
        f'role_arn = "{PULL_ROLE}"\nexternal_id = "fleet-1"\n'
    )
    fake_aws.fail("AssumeRole", "access_denied", match={"RoleArn": PULL_ROLE})
    done = run([XECR, "doctor", "--no-docker"], timeout=60)
    assert done.returncode == 1, done.out
    [line] = [x for x in done.out.splitlines() if x.startswith("FAIL assume role")]
    assert f"source credentials are {NODE_SESSION.rsplit('/', 1)[0]}/" in done.out
    assert f"must name {NODE_ROLE} as principal" in line
    command = _advised_command(line)
    assert command[:3] == ["xecr", "policy", "trust"]
    printed = run([XECR, *command[1:]])
    assert printed.returncode == 0, printed.err
    [statement] = json.loads(printed.out)["Statement"]
    assert statement["Principal"] == {"AWS": NODE_ROLE}
    assert statement["Condition"] == {"StringEquals": {"sts:ExternalId": "fleet-1"}}
