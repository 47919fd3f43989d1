"""ecr_helper.policy.orgs and the merge of organization grants (pure, no AWS)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ecr_helper import policy
from ecr_helper.errors import PolicyError, UsageError
from ecr_helper.policy import Grants, orgs

ORG = "o-exampleorg1"
OU = "o-exampleorg1/r-ab12/ou-ab12-11111111"
PULL = list(policy.PULL_ACTIONS)
PUSH = list(policy.PUSH_ACTIONS)
FOREIGN = {
    "Sid": "OrgRead",
    "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::555555555555:root"},
    "Action": ["ecr:BatchGetImage"],
}


def org_grant(pull: list[str] | None = None, push: list[str] | None = None) -> Grants:
    return orgs.with_orgs(Grants(), pull or [], push or [])


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (ORG, ("aws:PrincipalOrgID", ORG)),
        (OU, ("aws:PrincipalOrgPaths", OU + "/*")),
        (OU + "/", ("aws:PrincipalOrgPaths", OU + "/*")),
        (OU + "/*", ("aws:PrincipalOrgPaths", OU + "/*")),
        (OU + "/ou-ab12-22222222", ("aws:PrincipalOrgPaths", OU + "/ou-ab12-22222222/*")),
    ],
)
def test_targets_are_org_ids_or_ou_paths(given: str, expected: tuple[str, str]) -> None:
    assert orgs.target(given) == expected


@pytest.mark.parametrize("bad", ["", "*", "o-short", "O-EXAMPLEORG1", "o-exampleorg1/*", "r-ab12"])
def test_anything_else_is_a_usage_error(bad: str) -> None:
    with pytest.raises(UsageError, match="invalid organization"):
        orgs.target(bad)


def test_a_new_policy_has_one_statement_per_kind_and_level() -> None:
    doc = policy.merge(None, org_grant([ORG, OU], ["o-anotherorg9"]), "aws")
    assert doc["Statement"] == [
        {
            "Sid": "XecrPullOrg",
            "Effect": "Allow",
            "Principal": "*",
            "Action": PULL,
            "Condition": {"StringEquals": {"aws:PrincipalOrgID": [ORG]}},
        },
        {
            "Sid": "XecrPushOrg",
            "Effect": "Allow",
            "Principal": "*",
            "Action": PUSH,
            "Condition": {"StringEquals": {"aws:PrincipalOrgID": ["o-anotherorg9"]}},
        },
        {
            "Sid": "XecrPullOrgPath",
            "Effect": "Allow",
            "Principal": "*",
            "Action": PULL,
            "Condition": {"ForAnyValue:StringLike": {"aws:PrincipalOrgPaths": [OU + "/*"]}},
        },
    ]


def test_merging_twice_is_the_same_and_others_are_kept_in_place() -> None:
    current = {"Version": "2012-10-17", "Statement": [FOREIGN]}
    once = policy.merge(current, org_grant([ORG]), "aws")
    assert once["Statement"][0] == FOREIGN and len(once["Statement"]) == 2
    twice = policy.merge(once, org_grant([ORG]), "aws")
    assert twice == once and policy.diff(once, twice, "x") == ""


def test_push_takes_the_org_out_of_pull_and_pull_never_takes_push_away() -> None:
    pulled = policy.merge(None, org_grant([ORG, "o-anotherorg9"]), "aws")
    pushed = policy.merge(pulled, org_grant(push=[ORG]), "aws")
    by_sid = {s["Sid"]: s for s in pushed["Statement"]}
    assert by_sid["XecrPullOrg"]["Condition"]["StringEquals"]["aws:PrincipalOrgID"] == [
        "o-anotherorg9"
    ]
    assert by_sid["XecrPushOrg"]["Condition"]["StringEquals"]["aws:PrincipalOrgID"] == [ORG]
    assert policy.merge(pushed, org_grant([ORG]), "aws") == pushed


def test_the_last_org_leaving_pull_drops_the_statement_never_widening_it() -> None:
    pulled = policy.merge(None, org_grant([ORG]), "aws")
    pushed = policy.merge(pulled, org_grant(push=[ORG]), "aws")
    assert [s["Sid"] for s in pushed["Statement"]] == ["XecrPushOrg"]
    for statement in pushed["Statement"]:
        assert statement["Principal"] != "*" or statement["Condition"]


def test_another_condition_on_our_statement_is_kept() -> None:
    doc = policy.merge(None, org_grant([ORG]), "aws")
    doc["Statement"][0]["Condition"]["Bool"] = {"aws:SecureTransport": "true"}
    merged = policy.merge(doc, org_grant(["o-anotherorg9"]), "aws")
    condition = merged["Statement"][0]["Condition"]
    assert condition["Bool"] == {"aws:SecureTransport": "true"}
    assert condition["StringEquals"]["aws:PrincipalOrgID"] == [ORG, "o-anotherorg9"]


@pytest.mark.parametrize(
    "edit",
    [
        {"Effect": "Deny"},
        {"Principal": {"AWS": "arn:aws:iam::222222222222:root"}},
        {"Condition": {}},
        {"Condition": {"StringLike": {"aws:PrincipalOrgID": ORG}}},
        {"Condition": {"StringEquals": {"aws:PrincipalOrgID": []}}},
    ],
)
def test_an_edited_org_statement_is_refused(edit: dict[str, Any]) -> None:
    doc = policy.merge(None, org_grant([ORG]), "aws")
    edited = copy.deepcopy(doc)
    edited["Statement"][0].update(edit)
    with pytest.raises(PolicyError, match="XecrPullOrg"):
        policy.merge(edited, org_grant(["o-anotherorg9"]), "aws")


def test_principals_and_orgs_merge_side_by_side() -> None:
    grant = orgs.with_orgs(policy.grants(["222222222222"], [], "aws"), [ORG], [])
    doc = policy.merge(None, grant, "aws")
    assert [s["Sid"] for s in doc["Statement"]] == ["XecrPull", "XecrPullOrg"]


def test_an_org_spelled_as_a_lone_string_is_left_as_it_is() -> None:
    written_by_hand = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "XecrPullOrg",
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": PULL,
                "Condition": {"StringEquals": {"aws:PrincipalOrgID": ORG}},
            }
        ],
    }
    merged = policy.merge(written_by_hand, org_grant([ORG]), "aws")
    assert merged == written_by_hand and policy.diff(written_by_hand, merged, "x") == ""
