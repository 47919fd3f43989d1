"""``xecr policy``, run as the installed executable, printing and applying against the fake."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from typing import Any

import pytest

from ecr_helper import aws, policy
from tests.fakeaws import FakeAws
from tests.helpers import CENTRAL, CENTRAL_HOST, installed

# Every test here starts the installed executables (or a shell script).
pytestmark = pytest.mark.slow


ADMIN = f"arn:aws:iam::{CENTRAL}:role/registry-admin"
ROOT_2 = "arn:aws:iam::222222222222:root"
ROLE_3 = "arn:aws:iam::333333333333:role/ci"
PULL = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
PUSH = [
    *PULL,
    "ecr:PutImage",
    "ecr:InitiateLayerUpload",
    "ecr:UploadLayerPart",
    "ecr:CompleteLayerUpload",
]
FOREIGN = [
    {
        "Sid": "OrgRead",
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::555555555555:root"},
        "Action": ["ecr:BatchGetImage", "ecr:DescribeImages"],
    },
    {
        "Sid": "LambdaPull",
        "Effect": "Allow",
        "Principal": {"Service": "lambda.amazonaws.com"},
        "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
    },
]


def xecr(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [installed("xecr"), "policy", *args],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def ok(*args: str) -> str:
    done = xecr(*args)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return done.stdout


def usage_error(*args: str) -> str:
    """Run a wrong command: exit 2 and one line on stderr, nothing on stdout."""
    done = xecr(*args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    return done.stderr


# -- printing ------------------------------------------------------------------------------
def test_repository_prints_the_exact_policy() -> None:
    doc = json.loads(ok("repository", "--pull", "222222222222", "--push", ROLE_3))
    assert doc == {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "XecrPull", "Effect": "Allow", "Principal": {"AWS": [ROOT_2]}, "Action": PULL},
            {"Sid": "XecrPush", "Effect": "Allow", "Principal": {"AWS": [ROLE_3]}, "Action": PUSH},
        ],
    }


def test_repository_principals_join_one_statement_per_level() -> None:
    doc = json.loads(
        ok(
            "repository",
            "--pull",
            "222222222222",
            ROLE_3,
            "--pull",
            ROOT_2,
            "--push",
            "444444444444",
            "--pull",
            "444444444444",
        )
    )
    assert [s["Sid"] for s in doc["Statement"]] == ["XecrPull", "XecrPush"]
    assert doc["Statement"][0]["Principal"] == {"AWS": [ROOT_2, ROLE_3]}
    assert doc["Statement"][1]["Principal"] == {"AWS": ["arn:aws:iam::444444444444:root"]}


def test_account_ids_take_the_partition_of_the_region() -> None:
    doc = json.loads(ok("repository", "--pull", "222222222222", "--region", "cn-north-1"))
    assert doc["Statement"][0]["Principal"] == {"AWS": ["arn:aws-cn:iam::222222222222:root"]}
    doc = json.loads(ok("trust", "--account", "222222222222", "--region", "us-gov-west-1"))
    assert doc["Statement"][0]["Principal"] == {"AWS": "arn:aws-us-gov:iam::222222222222:root"}


def test_client_prints_the_exact_policy() -> None:
    arn = f"arn:aws:ecr:us-east-1:{CENTRAL}:repository/team/app"
    doc = json.loads(ok("client", "--repository-arn", arn))
    assert doc == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "XecrGetAuthorizationToken",
                "Effect": "Allow",
                "Action": "ecr:GetAuthorizationToken",
                "Resource": "*",
            },
            {"Sid": "XecrPull", "Effect": "Allow", "Action": PULL, "Resource": arn},
        ],
    }
    pushing = json.loads(ok("client", "--repository-arn", arn, "--push"))
    assert pushing["Statement"][1] == {
        "Sid": "XecrPush",
        "Effect": "Allow",
        "Action": PUSH,
        "Resource": arn,
    }


def test_trust_prints_the_exact_policy() -> None:
    assert json.loads(ok("trust", "--account", "222222222222", "--external-id", "ext-42")) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "XecrConsumerAssumeRole",
                "Effect": "Allow",
                "Principal": {"AWS": ROOT_2},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:ExternalId": "ext-42"}},
            },
        ],
    }
    plain = json.loads(ok("trust", "--account", "222222222222"))
    assert "Condition" not in plain["Statement"][0]


# -- usage errors --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "bad",
    [
        "*",
        "arn:aws:iam::*:root",
        "arn:aws:iam::222222222222:role/*",
        "12345",
        "arn:aws:sts::222222222222:assumed-role/ci/s",
        "ecr-pull",
    ],
)
def test_bad_principal_is_a_usage_error_naming_it(bad: str) -> None:
    err = usage_error("repository", "--pull", "222222222222", "--push", bad)
    assert err == err.strip() + "\n" and err.count("\n") == 1
    assert err.startswith(f"xecr policy: invalid principal {bad!r}: ")


def test_bad_trusted_account_is_a_usage_error_naming_it() -> None:
    err = usage_error("trust", "--account", "222222222222", "--account", "*")
    assert err.startswith("xecr policy: invalid principal '*': wildcards are not allowed")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["repository"], "name at least one principal"),
        (
            ["repository", "--pull", "222222222222", "--repository", "app"],
            "--repository only goes with --apply or --dry-run",
        ),
        (
            ["repository", "--pull", "222222222222", "--role-arn", ADMIN],
            "--role-arn only goes with --apply or --dry-run",
        ),
        (["repository", "--pull", "222222222222", "--apply"], "need --repository"),
        (
            ["repository", "--pull", "222222222222", "--apply", "--repository", "App!"],
            "invalid repository 'App!'",
        ),
        (
            [
                "repository",
                "--pull",
                "222222222222",
                "--apply",
                "--repository",
                "app",
                "--role-arn",
                ROOT_2,
            ],
            "invalid role ARN",
        ),
        (
            [
                "repository",
                "--pull",
                "222222222222",
                "--apply",
                "--repository",
                "app",
                "--registry-id",
                "123",
            ],
            "invalid --registry-id",
        ),
        (
            [
                "repository",
                "--pull",
                "222222222222",
                "--apply",
                "--repository",
                f"{CENTRAL_HOST}/app",
                "--region",
                "eu-west-1",
            ],
            "--region eu-west-1 contradicts",
        ),
        (["repository", "--pull", "222222222222", "--region", "mars"], "invalid region"),
        (
            ["repository", "--pull", ROLE_3, "--region", "cn-north-1"],
            "partition aws but the registry is in aws-cn",
        ),
        (["client", "--repository-arn", "app"], "invalid repository ARN 'app'"),
        # Neither a repository nor ECR Public: nothing to grant.
        (["client"], "--repository-arn ARN (or --public for ECR Public)"),
        (["trust", "--account", "222222222222", "--external-id", "x"], "invalid external id"),
    ],
)
def test_usage_errors_exit_2_with_one_line(args: list[str], says: str) -> None:
    err = usage_error(*args)
    assert says in err and err.count("\n") == 1


@pytest.mark.parametrize(
    "args",
    [
        ["repository", "--pull", "222222222222", "--apply", "--dry-run", "--repository", "a1"],
        ["trust"],
        [],
    ],
)
def test_argparse_usage_errors_exit_2(args: list[str]) -> None:
    done = xecr(*args)
    assert done.returncode == 2 and done.stdout == "" and "usage: xecr policy" in done.stderr


def test_apply_without_a_region_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    err = usage_error("repository", "--pull", "222222222222", "--apply", "--repository", "app")
    assert "no region: pass --region" in err


# -- applying against the fake -------------------------------------------------------------
@pytest.fixture
def registry(fake_aws: FakeAws) -> tuple[Any, str]:
    """An ECR client in the registry account and a new repository holding foreign statements."""
    ecr = aws.make_client("ecr", "us-east-1", role_arns=[ADMIN])
    name = f"team/app-{uuid.uuid4().hex[:8]}"
    ecr.create_repository(repositoryName=name)
    ecr.set_repository_policy(
        repositoryName=name, policyText=json.dumps({"Version": "2012-10-17", "Statement": FOREIGN})
    )
    fake_aws.reset()
    return ecr, name


def current(ecr: Any, name: str) -> dict[str, Any]:
    return dict(json.loads(ecr.get_repository_policy(repositoryName=name)["policyText"]))


def test_done_when_pull_twice_then_push_for_a_role(
    fake_aws: FakeAws, registry: tuple[Any, str]
) -> None:
    ecr, name = registry
    acting = ["--apply", "--repository", name, "--role-arn", ADMIN, "--registry-id", CENTRAL]
    first = ok("repository", "--pull", "222222222222", *acting)
    assert first.startswith(f"--- repository {name} policy (current)\n")
    assert f'+          "{ROOT_2}"' in first.splitlines()
    assert first.endswith(
        f"set the policy of repository {name} in registry {CENTRAL} (us-east-1)\n"
    )
    second = ok("repository", "--pull", "222222222222", *acting)
    assert second == (
        f"repository {name} in registry {CENTRAL} (us-east-1) already grants "
        "this: nothing to change\n"
    )
    assert fake_aws.calls("SetRepositoryPolicy") == 1
    third = ok("repository", "--push", ROLE_3, *acting)
    assert '+      "Sid": "XecrPush",' in third.splitlines()
    assert fake_aws.calls("SetRepositoryPolicy") == 2

    doc = current(ecr, name)
    assert doc["Statement"][:2] == FOREIGN  # everything that was there before, untouched
    assert [s["Sid"] for s in doc["Statement"]] == ["OrgRead", "LambdaPull", "XecrPull", "XecrPush"]
    pulls, pushes = doc["Statement"][2:]
    assert pulls == {
        "Sid": "XecrPull",
        "Effect": "Allow",
        "Principal": {"AWS": [ROOT_2]},
        "Action": PULL,
    }
    assert pushes == {
        "Sid": "XecrPush",
        "Effect": "Allow",
        "Principal": {"AWS": [ROLE_3]},
        "Action": PUSH,
    }
    # Every call was made as the registry role, never with the base keys.
    assert {r.params["RoleArn"] for r in fake_aws.requests("AssumeRole")} == {ADMIN}
    assert all(
        r.access_key_id and r.access_key_id.startswith("ASIA")
        for r in fake_aws.requests()
        if r.service == "ecr"
    )


def test_dry_run_shows_the_difference_and_writes_nothing(
    fake_aws: FakeAws, registry: tuple[Any, str]
) -> None:
    ecr, name = registry
    out = ok(
        "repository",
        "--push",
        ROLE_3,
        "--dry-run",
        "--role-arn",
        ADMIN,
        "--repository",
        f"{CENTRAL_HOST}/{name}",
    )
    assert '+      "Sid": "XecrPush",' in out.splitlines()
    assert out.endswith(
        f"dry run: nothing written to the policy of repository {name} in "
        f"registry {CENTRAL} (us-east-1)\n"
    )
    assert fake_aws.calls("SetRepositoryPolicy") == 0
    assert current(ecr, name) == {"Version": "2012-10-17", "Statement": FOREIGN}


def test_apply_failure_is_one_line_exit_1(fake_aws: FakeAws) -> None:
    done = xecr(
        "repository",
        "--pull",
        "222222222222",
        "--apply",
        "--repository",
        "no/such-repo",
        "--role-arn",
        ADMIN,
    )
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == (
        f"xecr policy: repository no/such-repo not found in registry {CENTRAL} (us-east-1): "
        "check --repository, --registry-id and --region, and act as the registry account "
        "(--role-arn)\n"
    )


def test_denied_role_is_one_line_exit_1(fake_aws: FakeAws) -> None:
    fake_aws.fail("AssumeRole", "access_denied")
    done = xecr(
        "repository",
        "--pull",
        "222222222222",
        "--apply",
        "--repository",
        "app",
        "--role-arn",
        ADMIN,
    )
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith(f"xecr policy: AssumeRole denied for {ADMIN} (AccessDenied)")
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert fake_aws.calls("GetRepositoryPolicy") == 0


def test_printed_policy_is_what_apply_writes(fake_aws: FakeAws) -> None:
    ecr = aws.make_client("ecr", "us-east-1", role_arns=[ADMIN])
    name = f"fresh-{uuid.uuid4().hex[:8]}"
    ecr.create_repository(repositoryName=name)
    printed = ok("repository", "--pull", "222222222222", "--push", ROLE_3)
    ok(
        "repository",
        "--pull",
        "222222222222",
        "--push",
        ROLE_3,
        "--apply",
        "--repository",
        name,
        "--role-arn",
        ADMIN,
    )
    assert current(ecr, name) == json.loads(printed)
    assert policy.render(current(ecr, name)) == printed
