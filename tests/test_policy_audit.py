"""ecr_helper.policy.audit: reading a repository policy for one principal (pure, no AWS)."""

from __future__ import annotations

from typing import Any

import pytest

from ecr_helper import policy
from ecr_helper.policy import Grants, audit, orgs

ORG = "o-exampleorg1"
OU = "o-exampleorg1/r-ab12/ou-ab12-11111111"
ROLE = "arn:aws:iam::222222222222:role/ci"
USER = "arn:aws:iam::222222222222:user/dev"
ROOT = "arn:aws:iam::222222222222:root"
REPO = "arn:aws:ecr:us-east-1:111111111111:repository/team/app"
PULL = audit.actions(push=False)
PUSH = audit.actions(push=True)


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(principal: Any, action: Any = "ecr:*", **more: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Principal": principal, "Action": action, **more}


def result(
    policy_doc: dict[str, Any] | None, who: str = ROLE, org: str | None = None, push: bool = False
) -> audit.Verdict:
    return audit.evaluate(policy_doc, audit.caller(who, org), PUSH if push else PULL, REPO)


def test_no_policy_is_not_granted() -> None:
    assert result(None) == audit.Verdict("not granted", (), "the repository has no policy")


@pytest.mark.parametrize(
    "principal",
    ["*", {"AWS": "*"}, {"AWS": ROOT}, {"AWS": "222222222222"}, {"AWS": [USER, ROLE]}],
)
def test_principals_that_cover_the_role(principal: Any) -> None:
    assert result(doc(allow(principal))).result == "allowed"


@pytest.mark.parametrize(
    "principal",
    [
        {"AWS": "arn:aws:iam::333333333333:root"},
        {"AWS": USER},
        {"AWS": "arn:aws:iam::222222222222:role/other"},
        {"Service": "lambda.amazonaws.com"},
    ],
)
def test_principals_that_do_not(principal: Any) -> None:
    assert result(doc(allow(principal))).result == "not granted"


def test_a_role_does_not_stand_for_its_account() -> None:
    assert result(doc(allow({"AWS": ROLE})), who=ROOT).result == "not granted"


def test_the_action_set_decides_pull_against_push() -> None:
    pulling = doc(allow({"AWS": ROOT}, list(policy.PULL_ACTIONS), Sid="P"))
    assert result(pulling).result == "allowed"
    pushing = result(pulling, push=True)
    assert pushing.result == "not granted" and "ecr:PutImage" in pushing.reason
    assert result(doc(allow({"AWS": ROOT}, "ecr:Batch*")), push=False).result == "not granted"
    assert result(doc(allow({"AWS": ROOT}, ["ecr:batch*", "ECR:Get*"]))).result == "allowed"


def test_not_action_and_resource() -> None:
    excluding = {"Effect": "Allow", "Principal": "*", "NotAction": "ecr:PutImage"}
    assert result(doc(excluding)).result == "allowed"
    assert result(doc(excluding), push=True).result == "not granted"
    elsewhere = allow("*", Resource="arn:aws:ecr:us-east-1:111111111111:repository/other/*")
    assert result(doc(elsewhere)).result == "not granted"
    here = allow("*", Resource="arn:aws:ecr:us-east-1:111111111111:repository/team/*")
    assert result(doc(here)).result == "allowed"


def test_an_explicit_deny_wins_and_is_named() -> None:
    verdict = result(
        doc(
            allow("*", Sid="All"),
            {"Sid": "NoCi", "Effect": "Deny", "Principal": {"AWS": ROLE}, "Action": "ecr:*"},
        )
    )
    assert verdict.result == "denied" and verdict.statements == ("NoCi",)
    other = {"Sid": "NoDel", "Effect": "Deny", "Principal": "*", "Action": "ecr:DeleteRepository"}
    assert result(doc(allow("*", Sid="All"), other)).result == "allowed"


def test_org_conditions_with_the_given_org() -> None:
    granted = policy.merge(None, orgs.with_orgs(Grants(), [ORG], []), "aws")
    assert result(granted, org=ORG) == audit.Verdict("allowed", ("XecrPullOrg",), "by XecrPullOrg")
    assert result(granted, org=OU).result == "allowed"
    assert result(granted, org="o-anotherorg9").result == "not granted"
    unknown = result(granted)
    assert unknown.result == "unknown" and "aws:PrincipalOrgID" in unknown.reason


def test_ou_path_conditions() -> None:
    granted = policy.merge(None, orgs.with_orgs(Grants(), [OU], []), "aws")
    assert result(granted, org=OU).result == "allowed"
    assert result(granted, org=OU + "/ou-ab12-22222222").result == "allowed"  # a child OU
    assert result(granted, org="o-exampleorg1/r-ab12/ou-ab12-33333333").result == "not granted"
    assert result(granted, org="o-anotherorg9").result == "not granted"
    assert result(granted, org=ORG).result == "unknown"  # which OU? it cannot tell
    whole = doc(
        allow("*", Condition={"ForAnyValue:StringLike": {"aws:PrincipalOrgPaths": [ORG + "/*"]}})
    )
    assert result(whole, org=ORG).result == "allowed"


def test_other_condition_keys_are_unknown_never_guessed() -> None:
    vpc = {"StringEquals": {"aws:SourceVpce": "vpce-1"}}
    verdict = result(doc(allow("*", Sid="Vpc", Condition=vpc)), org=ORG)
    assert verdict.result == "unknown"
    assert (
        verdict.reason
        == "Allow Vpc may apply: condition StringEquals aws:SourceVpce cannot be evaluated"
    )
    deny_unless_vpc = {"StringNotEquals": {"aws:SourceVpce": "vpce-1"}}
    guarded = doc(
        allow("*", Sid="All"),
        {
            "Sid": "Vpc",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "ecr:*",
            "Condition": deny_unless_vpc,
        },
    )
    assert result(guarded).result == "unknown"
    # A condition that fails for sure settles it, whatever the unknown one says.
    both = {**vpc, "StringEqualsIgnoreCase": {"aws:PrincipalAccount": "333333333333"}}
    assert result(doc(allow("*", Condition=both))).result == "not granted"


def test_principal_account_and_arn_conditions_are_evaluated() -> None:
    account = {"StringEquals": {"aws:PrincipalAccount": "222222222222"}}
    assert result(doc(allow("*", Condition=account))).result == "allowed"
    arn = {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::222222222222:role/c?"}}
    assert result(doc(allow("*", Condition=arn))).result == "allowed"
    assert result(doc(allow("*", Condition=arn)), who=USER).result == "not granted"


def test_an_unreadable_policy_is_unknown() -> None:
    assert result({"Statement": "nope"}).result == "unknown"
