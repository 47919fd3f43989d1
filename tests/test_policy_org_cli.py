"""``xecr policy`` at organization scale, run as the installed executable against the fake:
``repository --prefix/--all --pull-org``, ``template`` and ``audit``."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from ecr_helper import aws
from tests.fakeaws import FakeAws
from tests.helpers import CENTRAL, installed

pytestmark = pytest.mark.slow

ADMIN = f"arn:aws:iam::{CENTRAL}:role/registry-admin"
ORG = "o-exampleorg1"
OTHER_ORG = "o-anotherorg9"
ROLE = "arn:aws:iam::222222222222:role/ci"  # a role of an account in ORG
TEAM = [f"team/app-{i:03d}" for i in range(120)]
OTHER = [f"other/svc-{i}" for i in range(10)]
# Three repositories with statements xecr did not write; none of them grants ROLE pull.
OWN: dict[str, list[dict[str, Any]]] = {
    "team/app-007": [
        {
            "Sid": "OrgRead",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::555555555555:root"},
            "Action": ["ecr:BatchGetImage", "ecr:DescribeImages"],
        }
    ],
    "team/app-042": [
        {
            "Sid": "LambdaPull",
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
        }
    ],
    "team/app-099": [
        {
            "Sid": "NoDelete",
            "Effect": "Deny",
            "Principal": "*",
            "Action": ["ecr:DeleteRepository", "ecr:BatchDeleteImage"],
        }
    ],
}
ADMIN_ARGS = ["--role-arn", ADMIN, "--region", "us-east-1"]


def xecr(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [installed("xecr"), "policy", *args],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def policy_of(ecr: Any, name: str) -> dict[str, Any] | None:
    try:
        text = ecr.get_repository_policy(repositoryName=name)["policyText"]
    except ecr.exceptions.RepositoryPolicyNotFoundException:
        return None
    return dict(json.loads(text))


@pytest.fixture
def registry(fake_aws: FakeAws) -> Iterator[Any]:
    """130 repositories in the registry account, three with policies of their own; the fake
    pages DescribeRepositories by 50, so 130 take three pages."""
    ecr = aws.make_client("ecr", "us-east-1", role_arns=[ADMIN])
    for name in [*TEAM, *OTHER]:
        ecr.create_repository(repositoryName=name)
    for name, statements in OWN.items():
        ecr.set_repository_policy(
            repositoryName=name,
            policyText=json.dumps({"Version": "2012-10-17", "Statement": statements}),
        )
    fake_aws.ecr.page_cap = 50
    fake_aws.ecr.reset_templates()
    fake_aws.reset()
    yield ecr
    fake_aws.ecr.page_cap = None
    fake_aws.ecr.reset_templates()


def audit(*args: str) -> subprocess.CompletedProcess[str]:
    return xecr("audit", "--principal", ROLE, *args, *ADMIN_ARGS)


def test_done_when_one_prefix_apply_grants_the_org_and_the_audit_agrees(
    fake_aws: FakeAws, registry: Any
) -> None:
    before = audit("--org", ORG, "--prefix", "team/")
    assert before.returncode == 1, before.stderr
    assert "team/app-000: not granted: the repository has no policy\n" in before.stdout
    assert "team/app-007: not granted: no statement allows ecr:BatchGetImage" in before.stdout
    assert f"pull by {ROLE}: 0 of 120 repositories under team/ allow it; not: " in before.stdout
    fake_aws.reset()

    started = time.monotonic()
    first = xecr("repository", "--prefix", "team/", "--pull-org", ORG, "--apply", *ADMIN_ARGS)
    first_seconds = time.monotonic() - started
    first_calls = fake_aws.counts()
    assert first.returncode == 0, first.stderr
    assert first.stdout.count(": policy set\n") == 120
    assert first.stdout.endswith(
        f"120 repositories under team/ in registry {CENTRAL} (us-east-1): "
        "120 set, 0 already granted, 0 failed\n"
    )
    # Progress is a count on stderr, not a line per repository.
    progress = first.stderr.splitlines()
    assert 1 <= len(progress) <= 4 and progress[-1] == "xecr policy: repositories 120/120"
    assert first_calls["DescribeRepositories"] == 3  # 130 repositories, pages of 50
    assert first_calls["GetRepositoryPolicy"] == 120
    assert first_calls["SetRepositoryPolicy"] == 120
    written = {r.params["repositoryName"] for r in fake_aws.requests("SetRepositoryPolicy")}
    assert written == set(TEAM)

    for name, statements in OWN.items():
        doc = policy_of(registry, name)
        assert doc is not None and doc["Statement"][: len(statements)] == statements
    granted = policy_of(registry, "team/app-000")
    assert granted is not None
    assert granted["Statement"] == [
        {
            "Sid": "XecrPullOrg",
            "Effect": "Allow",
            "Principal": "*",
            "Action": [
                "ecr:BatchGetImage",
                "ecr:GetDownloadUrlForLayer",
                "ecr:BatchCheckLayerAvailability",
            ],
            "Condition": {"StringEquals": {"aws:PrincipalOrgID": [ORG]}},
        }
    ]
    assert all(policy_of(registry, name) is None for name in OTHER)

    fake_aws.reset()
    started = time.monotonic()
    again = xecr("repository", "--prefix", "team/", "--pull-org", ORG, "--apply", *ADMIN_ARGS)
    again_seconds = time.monotonic() - started
    assert again.returncode == 0, again.stderr
    assert fake_aws.calls("SetRepositoryPolicy") == 0
    assert again.stdout.count(": already grants this\n") == 120
    again_calls = fake_aws.counts()

    after = audit("--org", ORG, "--prefix", "team/")
    assert after.returncode == 0, after.stdout
    assert after.stdout.count(": allowed: by XecrPullOrg\n") == 120
    everywhere = audit("--org", ORG, "--all")
    assert everywhere.returncode == 1
    assert everywhere.stdout.splitlines()[-1] == (
        f"pull by {ROLE}: 120 of 130 repositories allow it; not: " + ", ".join(OTHER)
    )
    # A principal of another organization, or of an unknown one, is never counted as granted.
    for org_args in (["--org", OTHER_ORG], []):
        outsider = audit(*org_args, "--prefix", "team/", "--json")
        assert outsider.returncode == 1
        report = json.loads(outsider.stdout)
        assert report["allowed"] == 0 and report["total"] == 120
    print(
        f"\n130 repositories: apply {sum(first_calls.values())} AWS calls {first_calls} in "
        f"{first_seconds:.2f} s; re-apply {sum(again_calls.values())} calls {again_calls} in "
        f"{again_seconds:.2f} s"
    )


def test_dry_run_shows_each_change_and_writes_nothing(fake_aws: FakeAws, registry: Any) -> None:
    done = xecr("repository", "--all", "--push-org", ORG, "--dry-run", *ADMIN_ARGS)
    assert done.returncode == 0, done.stderr
    assert fake_aws.calls("SetRepositoryPolicy") == 0
    assert done.stdout.count("+++ repository ") == 130
    assert "team/app-007: would change (dry run)\n" in done.stdout
    assert done.stdout.endswith(
        f"130 repositories in registry {CENTRAL} (us-east-1): 130 would change, "
        "0 already granted, 0 failed; nothing written\n"
    )


def test_one_failing_repository_is_reported_and_the_others_go_on(
    fake_aws: FakeAws, registry: Any
) -> None:
    fake_aws.fail("SetRepositoryPolicy", "access_denied", match={"repositoryName": "team/app-005"})
    fake_aws.fail("GetRepositoryPolicy", "throttle", times=2, match={"repositoryName": TEAM[9]})
    done = xecr(
        "repository", "--prefix", "team/app-00", "--pull", "222222222222", "--apply", *ADMIN_ARGS
    )
    assert done.returncode == 1
    assert done.stderr.startswith(
        "xecr policy: repository team/app-005: ECR SetRepositoryPolicy denied for repository "
        "team/app-005"
    )
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stdout.count(": policy set\n") == 9  # the throttled one included
    assert "9 set, 0 already granted, 1 failed" in done.stdout


def test_one_repository_by_uri_takes_an_org_too(fake_aws: FakeAws, registry: Any) -> None:
    uri = f"{CENTRAL}.dkr.ecr.us-east-1.amazonaws.com/team/app-001"
    done = xecr(
        "repository", "--repository", uri, "--pull-org", ORG, "--apply", "--role-arn", ADMIN
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith(
        f"set the policy of repository team/app-001 in registry {CENTRAL} (us-east-1)\n"
    )
    single = audit("--org", ORG, "--repository", uri)
    assert single.returncode == 0, single.stdout
    assert single.stdout.splitlines()[-1] == (
        f"pull by {ROLE}: 1 of 1 repository team/app-001 allow it"
    )


def test_an_empty_scope_is_one_line_and_exit_1(fake_aws: FakeAws, registry: Any) -> None:
    done = xecr("repository", "--prefix", "nothing/", "--pull-org", ORG, "--apply", *ADMIN_ARGS)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == (
        f"xecr policy: no repositories under nothing/ in registry {CENTRAL} (us-east-1): "
        "check --prefix, --registry-id, --region and --role-arn\n"
    )


def test_template_is_created_then_left_alone_then_updated(fake_aws: FakeAws, registry: Any) -> None:
    args = ["template", "--prefix", "team/", "--pull-org", ORG, *ADMIN_ARGS]
    dry = xecr(*args, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert fake_aws.calls("CreateRepositoryCreationTemplate") == 0
    created = xecr(*args, "--apply")
    assert created.returncode == 0, created.stderr
    assert created.stdout.endswith(
        f"created the creation template of prefix team/ in registry {CENTRAL} (us-east-1) "
        "(applied for CREATE_ON_PUSH, PULL_THROUGH_CACHE, REPLICATION)\n"
    )
    stored = registry.describe_repository_creation_templates(prefixes=["team/"])
    template = stored["repositoryCreationTemplates"][0]
    assert template["appliedFor"] == ["CREATE_ON_PUSH", "PULL_THROUGH_CACHE", "REPLICATION"]
    assert json.loads(template["repositoryPolicy"])["Statement"][0]["Sid"] == "XecrPullOrg"

    fake_aws.reset()
    again = xecr(*args, "--apply")
    assert again.returncode == 0 and "already grants this: nothing to change" in again.stdout
    assert fake_aws.calls("UpdateRepositoryCreationTemplate") == 0
    assert fake_aws.calls("CreateRepositoryCreationTemplate") == 0

    pushing = xecr("template", "--prefix", "team/", "--push-org", ORG, "--apply", *ADMIN_ARGS)
    assert pushing.returncode == 0, pushing.stderr
    assert fake_aws.calls("UpdateRepositoryCreationTemplate") == 1
    stored = registry.describe_repository_creation_templates(prefixes=["team/"])
    sids = [
        s["Sid"]
        for s in json.loads(stored["repositoryCreationTemplates"][0]["repositoryPolicy"])[
            "Statement"
        ]
    ]
    assert sids == ["XecrPushOrg"]  # push includes pull: the org left the pull statement


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (
            ["repository", "--prefix", "team/", "--pull-org", "o-x", "--apply"],
            "invalid organization",
        ),
        (["repository", "--prefix", "Team/", "--pull-org", ORG, "--apply"], "invalid --prefix"),
        (["repository", "--prefix", "team/", "--pull-org", ORG], "--prefix only goes with"),
        (["template", "--prefix", "team/", "--apply"], "name at least one principal"),
        (["template", "--prefix", "Team", "--pull-org", ORG, "--apply"], "invalid template"),
        (["audit", "--principal", ROLE, "--all", "--org", "org1"], "invalid organization"),
    ],
)
def test_usage_errors_are_one_line_exit_2(args: list[str], says: str) -> None:
    done = xecr(*args, "--region", "us-east-1")
    assert done.returncode == 2, done.stderr
    assert says in done.stderr and done.stderr.count("\n") == 1 and done.stdout == ""
