"""``xecr policy trust --oidc-provider`` (ecr_helper.policy.web_identity): a pod role's trust."""

from __future__ import annotations

import json
import subprocess

import pytest

from ecr_helper.errors import UsageError
from ecr_helper.policy import web_identity
from tests.helpers import XECR, installed

ISSUER = "oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"
PROVIDER = f"arn:aws:iam::222222222222:oidc-provider/{ISSUER}"


def test_one_service_account_is_an_exact_match() -> None:
    assert web_identity.trust_policy(PROVIDER, ["team-a:builder"]) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "XecrPodAssumeRoleWithWebIdentity",
                "Effect": "Allow",
                "Principal": {"Federated": PROVIDER},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{ISSUER}:aud": "sts.amazonaws.com",
                        f"{ISSUER}:sub": "system:serviceaccount:team-a:builder",
                    }
                },
            }
        ],
    }


def test_a_whole_namespace_uses_string_like_and_duplicates_go() -> None:
    doc = web_identity.trust_policy(
        PROVIDER, ["team-a:builder", "team-b:*", "team-a:builder"], audience="my-aud"
    )
    condition = doc["Statement"][0]["Condition"]
    assert condition == {
        "StringEquals": {f"{ISSUER}:aud": "my-aud"},
        "StringLike": {
            f"{ISSUER}:sub": [
                "system:serviceaccount:team-a:builder",
                "system:serviceaccount:team-b:*",
            ]
        },
    }


@pytest.mark.parametrize(
    ("provider", "accounts", "says"),
    [
        ("oidc.eks.us-east-1.amazonaws.com/id/X", ["a:b"], "invalid --oidc-provider"),
        ("arn:aws:iam::222222222222:role/x", ["a:b"], "invalid --oidc-provider"),
        (PROVIDER, [], "--service-account NAMESPACE:NAME"),
        (PROVIDER, ["builder"], "invalid --service-account 'builder'"),
        (PROVIDER, ["Team-A:builder"], "invalid --service-account"),
        (PROVIDER, ["team-a:*x"], "invalid --service-account"),
        (PROVIDER, ["*:builder"], "invalid --service-account"),
    ],
)
def test_bad_input_is_a_usage_error(provider: str, accounts: list[str], says: str) -> None:
    with pytest.raises(UsageError, match=says.replace("*", r"\*")):
        web_identity.trust_policy(provider, accounts)


def _xecr(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [installed(XECR), "policy", "trust", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.slow
def test_the_command_prints_it_and_refuses_mixed_flags() -> None:
    done = _xecr("--oidc-provider", PROVIDER, "--service-account", "team-a:builder")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == web_identity.trust_policy(PROVIDER, ["team-a:builder"])
    mixed = _xecr("--oidc-provider", PROVIDER, "--service-account", "a:b", "--external-id", "xx")
    assert mixed.returncode == 2 and "--external-id goes with --account" in mixed.stderr
    stray = _xecr("--account", "222222222222", "--service-account", "a:b")
    assert stray.returncode == 2 and "go with --oidc-provider" in stray.stderr
    both = _xecr("--account", "222222222222", "--oidc-provider", PROVIDER)
    assert both.returncode == 2 and "not allowed with argument" in both.stderr
