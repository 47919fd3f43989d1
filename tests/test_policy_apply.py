"""ecr_helper.policy.apply against the loopback moto fake, acting as the registry account."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

import pytest

from ecr_helper import aws, policy
from ecr_helper.errors import AwsError, PolicyError
from ecr_helper.policy import apply as policy_apply
from tests.fakeaws import FakeAws
from tests.helpers import CENTRAL

ADMIN = f"arn:aws:iam::{CENTRAL}:role/registry-admin"
REGION = "us-east-1"
ROOT_2 = "arn:aws:iam::222222222222:root"
ROLE_3 = "arn:aws:iam::333333333333:role/ci"
FOREIGN = {
    "Sid": "OrgRead",
    "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::555555555555:root"},
    "Action": ["ecr:BatchGetImage", "ecr:DescribeImages"],
}


def admin_ecr() -> Any:
    """An ECR client acting in the registry account, built the way the CLI builds it."""
    return aws.make_client("ecr", REGION, role_arns=[ADMIN])


@pytest.fixture
def ecr(fake_aws: FakeAws) -> Any:
    return admin_ecr()  # one per test: building a client costs a few tenths of a second


@pytest.fixture
def repo(fake_aws: FakeAws, ecr: Any) -> str:
    """A new repository in the registry account (moto's state outlives each test)."""
    name = f"team/app-{uuid.uuid4().hex[:8]}"
    ecr.create_repository(repositoryName=name)
    fake_aws.reset()
    return name


def stored(ecr: Any, name: str) -> dict[str, Any]:
    response = ecr.get_repository_policy(repositoryName=name)
    return dict(json.loads(response["policyText"]))


def apply(
    ecr: Any,
    name: str,
    pull: Sequence[str] = (),
    push: Sequence[str] = (),
    dry_run: bool = False,
    registry_id: str | None = CENTRAL,
) -> policy_apply.ApplyOutcome:
    return policy_apply.apply(
        ecr,
        repository=name,
        registry_id=registry_id,
        region=REGION,
        partition="aws",
        grant=policy.grants(pull, push, "aws"),
        dry_run=dry_run,
    )


def test_apply_to_a_repository_without_policy(fake_aws: FakeAws, ecr: Any, repo: str) -> None:
    outcome = apply(ecr, repo, pull=["222222222222"])
    assert outcome.written and outcome.changed and outcome.before is None
    assert outcome.registry_id == CENTRAL
    assert outcome.where == f"repository {repo} in registry {CENTRAL} ({REGION})"
    assert (
        stored(ecr, repo)
        == outcome.after
        == policy.repository_policy(policy.grants(["222222222222"], [], "aws"))
    )
    (written,) = fake_aws.requests("SetRepositoryPolicy")
    assert written.params["registryId"] == CENTRAL and written.params["repositoryName"] == repo
    assert json.loads(written.params["policyText"]) == outcome.after


def test_apply_merges_keeps_foreign_statements_and_is_idempotent(
    fake_aws: FakeAws, ecr: Any, repo: str
) -> None:
    text = json.dumps({"Version": "2012-10-17", "Statement": [FOREIGN]})
    ecr.set_repository_policy(repositoryName=repo, policyText=text)
    fake_aws.reset()
    first = apply(ecr, repo, pull=["222222222222"])
    assert first.written and first.before == {"Version": "2012-10-17", "Statement": [FOREIGN]}
    assert '+      "Sid": "XecrPull",' in first.diff
    second = apply(ecr, repo, pull=["222222222222"])
    assert not second.changed and not second.written and second.diff == ""
    assert fake_aws.calls("SetRepositoryPolicy") == 1
    assert fake_aws.calls("GetRepositoryPolicy") == 2
    third = apply(ecr, repo, push=[ROLE_3])
    assert third.written
    doc = stored(ecr, repo)
    assert doc["Statement"][0] == FOREIGN
    assert [s.get("Sid") for s in doc["Statement"]] == ["OrgRead", "XecrPull", "XecrPush"]
    assert doc["Statement"][1]["Principal"] == {"AWS": [ROOT_2]}
    assert doc["Statement"][2]["Principal"] == {"AWS": [ROLE_3]}


def test_dry_run_writes_nothing(fake_aws: FakeAws, ecr: Any, repo: str) -> None:
    outcome = apply(ecr, repo, push=[ROLE_3], dry_run=True)
    assert outcome.changed and not outcome.written
    assert outcome.diff.startswith(f"--- repository {repo} policy (none)\n")
    assert fake_aws.calls("SetRepositoryPolicy") == 0
    with pytest.raises(Exception, match="RepositoryPolicyNotFoundException"):
        ecr.get_repository_policy(repositoryName=repo)


def test_default_registry_is_the_acting_account(fake_aws: FakeAws, ecr: Any, repo: str) -> None:
    outcome = apply(ecr, repo, pull=["222222222222"], registry_id=None)
    assert outcome.written and outcome.registry_id == CENTRAL  # from ECR's answer
    (written,) = fake_aws.requests("SetRepositoryPolicy")
    assert "registryId" not in written.params


def test_missing_repository_is_one_line_naming_it(fake_aws: FakeAws, ecr: Any) -> None:
    with pytest.raises(AwsError) as caught:
        apply(ecr, "no/such-repo", pull=["222222222222"])
    text = str(caught.value)
    assert caught.value.code == "RepositoryNotFoundException"
    assert "repository no/such-repo not found in registry 111111111111 (us-east-1)" in text
    assert "--role-arn" in text and "\n" not in text


def test_credentials_of_another_account_do_not_reach_the_repository(
    fake_aws: FakeAws, repo: str
) -> None:
    base = aws.make_client("ecr", REGION)  # the base keys belong to moto's default account
    with pytest.raises(AwsError, match=f"repository {repo} not found in registry {CENTRAL}"):
        apply(base, repo, pull=["222222222222"])
    assert fake_aws.calls("SetRepositoryPolicy") == 0


@pytest.mark.parametrize("action", ["GetRepositoryPolicy", "SetRepositoryPolicy"])
def test_access_denied_names_the_permissions(
    fake_aws: FakeAws, ecr: Any, repo: str, action: str
) -> None:
    fake_aws.fail(action, "access_denied")
    with pytest.raises(AwsError) as caught:
        apply(ecr, repo, pull=["222222222222"])
    text = str(caught.value)
    assert f"ECR {action} denied for repository {repo}" in text
    assert "ecr:GetRepositoryPolicy and ecr:SetRepositoryPolicy" in text
    assert caught.value.code == "AccessDeniedException"
    fake_aws.clear_faults()
    with pytest.raises(Exception, match="RepositoryPolicyNotFoundException"):
        ecr.get_repository_policy(repositoryName=repo)


def test_other_failures_keep_the_generic_message(fake_aws: FakeAws, ecr: Any, repo: str) -> None:
    fake_aws.fail("GetRepositoryPolicy", "expired_token")
    with pytest.raises(AwsError) as caught:
        apply(ecr, repo, pull=["222222222222"])
    assert str(caught.value).startswith(
        f"ECR GetRepositoryPolicy for repository {repo} failed: AWS rejected the "
        "credentials (ExpiredTokenException)"
    )
    assert fake_aws.calls("SetRepositoryPolicy") == 0


class _Stub:
    """An ECR client answering GetRepositoryPolicy with fixed text."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.writes = 0

    def get_repository_policy(self, **_: Any) -> dict[str, Any]:
        return {"registryId": CENTRAL, "repositoryName": "app", "policyText": self.text}

    def set_repository_policy(self, **_: Any) -> dict[str, Any]:
        self.writes += 1
        return {}


@pytest.mark.parametrize("text", ["{not json", "[1, 2]"])
def test_unreadable_current_policy_is_never_overwritten(text: str) -> None:
    stub = _Stub(text)
    with pytest.raises(PolicyError, match=f"policy of repository app in registry {CENTRAL}"):
        apply(stub, "app", pull=["222222222222"])
    assert stub.writes == 0


def test_edited_xecr_statement_is_never_overwritten() -> None:
    stub = _Stub(
        json.dumps(
            {
                "Statement": [
                    {"Sid": "XecrPull", "Effect": "Deny", "Principal": "*", "Action": "ecr:*"}
                ]
            }
        )
    )
    with pytest.raises(PolicyError, match="XecrPull"):
        apply(stub, "app", pull=["222222222222"])
    assert stub.writes == 0
