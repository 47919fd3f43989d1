"""ecr_helper.policy: exact documents, principal validation, merging and diffs."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecr_helper import policy
from ecr_helper.errors import InvalidPrincipal, PolicyError, UsageError
from ecr_helper.policy import Grants

PULL = {"ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"}
PUSH = PULL | {
    "ecr:PutImage",
    "ecr:InitiateLayerUpload",
    "ecr:UploadLayerPart",
    "ecr:CompleteLayerUpload",
}
ROOT_2 = "arn:aws:iam::222222222222:root"
ROLE_3 = "arn:aws:iam::333333333333:role/ci"
FOREIGN = [
    {
        "Sid": "LambdaPull",
        "Effect": "Allow",
        "Principal": {"Service": "lambda.amazonaws.com"},
        "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
        "Condition": {"StringLike": {"aws:sourceArn": "arn:aws:lambda:us-east-1:1:function:*"}},
    },
    {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "ecr:DeleteRepository",
    },
]


def by_sid(doc: dict[str, Any], sid: str) -> list[dict[str, Any]]:
    return [s for s in doc["Statement"] if s.get("Sid") == sid]


def aws_principals(statement: dict[str, Any]) -> list[str]:
    values = statement["Principal"]["AWS"]
    return [values] if isinstance(values, str) else list(values)


# -- exact documents -----------------------------------------------------------------------
def test_action_sets_are_exact() -> None:
    assert set(policy.PULL_ACTIONS) == PULL and len(policy.PULL_ACTIONS) == 3
    assert set(policy.PUSH_ACTIONS) == PUSH and len(policy.PUSH_ACTIONS) == 7


def test_repository_policy_is_exact() -> None:
    doc = policy.repository_policy(policy.grants(["222222222222"], [ROLE_3], "aws"))
    assert doc == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "XecrPull",
                "Effect": "Allow",
                "Principal": {"AWS": [ROOT_2]},
                "Action": list(policy.PULL_ACTIONS),
            },
            {
                "Sid": "XecrPush",
                "Effect": "Allow",
                "Principal": {"AWS": [ROLE_3]},
                "Action": list(policy.PUSH_ACTIONS),
            },
        ],
    }
    assert json.loads(policy.render(doc)) == doc


def test_repository_policy_with_one_level_has_one_statement() -> None:
    doc = policy.repository_policy(policy.grants(["222222222222"], [], "aws"))
    assert [s["Sid"] for s in doc["Statement"]] == ["XecrPull"]
    doc = policy.repository_policy(policy.grants([], ["222222222222"], "aws"))
    assert [s["Sid"] for s in doc["Statement"]] == ["XecrPush"]


def test_sids_are_alphanumeric_for_iam() -> None:
    for sid in (policy.PULL_SID, policy.PUSH_SID, policy.TOKEN_SID, policy.TRUST_SID):
        assert sid.isalnum() and sid.isascii()


def test_client_policy_pull_is_exact() -> None:
    arn = "arn:aws:ecr:us-east-1:111111111111:repository/team/app"
    assert policy.client_policy([arn]) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "XecrGetAuthorizationToken",
                "Effect": "Allow",
                "Action": "ecr:GetAuthorizationToken",
                "Resource": "*",
            },
            {
                "Sid": "XecrPull",
                "Effect": "Allow",
                "Action": list(policy.PULL_ACTIONS),
                "Resource": arn,
            },
        ],
    }


def test_client_policy_push_and_several_repositories() -> None:
    arns = [
        "arn:aws:ecr:us-east-1:111111111111:repository/app",
        "arn:aws-cn:ecr:cn-north-1:111111111111:repository/team/*",
    ]
    doc = policy.client_policy([*arns, arns[0]], push=True)
    token, grant = doc["Statement"]
    assert token["Action"] == "ecr:GetAuthorizationToken" and token["Resource"] == "*"
    assert grant["Sid"] == "XecrPush" and set(grant["Action"]) == PUSH
    assert grant["Resource"] == arns


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:ecr:us-east-1:111111111111:repository/",
        "arn:aws:ecr:us-east-1:11111111111:repository/app",
        "arn:aws:ecr:nowhere:111111111111:repository/app",
        "arn:aws:s3:::bucket",
        "arn:nope:ecr:us-east-1:111111111111:repository/app",
        "arn:aws:ecr:us-east-1:111111111111:repository/App",
        "111111111111.dkr.ecr.us-east-1.amazonaws.com/app",
    ],
)
def test_client_policy_rejects_bad_repository_arns(arn: str) -> None:
    with pytest.raises(UsageError, match="invalid repository ARN"):
        policy.client_policy([arn])


def test_trust_policy_is_exact() -> None:
    assert policy.trust_policy([ROOT_2]) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "XecrConsumerAssumeRole",
                "Effect": "Allow",
                "Principal": {"AWS": ROOT_2},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    with_id = policy.trust_policy([ROOT_2], "ext-42")
    assert with_id["Statement"][0]["Condition"] == {"StringEquals": {"sts:ExternalId": "ext-42"}}
    assert policy.trust_policy([ROOT_2, ROLE_3, ROOT_2])["Statement"][0]["Principal"] == {
        "AWS": [ROOT_2, ROLE_3]
    }


@pytest.mark.parametrize("bad", ["x", "has space", "a" * 1225, "semi;colon"])
def test_trust_policy_rejects_bad_external_ids(bad: str) -> None:
    with pytest.raises(UsageError, match="invalid external id"):
        policy.trust_policy([ROOT_2], bad)


# -- principals ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("given", "partition", "arn"),
    [
        ("222222222222", "aws", ROOT_2),
        (" 222222222222 ", "aws", ROOT_2),
        ("222222222222", "aws-cn", "arn:aws-cn:iam::222222222222:root"),
        ("222222222222", "aws-us-gov", "arn:aws-us-gov:iam::222222222222:root"),
        (ROLE_3, "aws", ROLE_3),
        ("arn:aws:iam::333333333333:role/team/ci-pull", "aws", None),
        ("arn:aws:iam::333333333333:user/alice@example.com", "aws", None),
        (ROOT_2, "aws", ROOT_2),
        ("arn:aws-cn:iam::333333333333:role/ci", "aws-cn", None),
    ],
)
def test_principal_forms(given: str, partition: str, arn: str | None) -> None:
    assert policy.principal_arn(given, partition) == (arn or given)


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ("*", "wildcards"),
        ("arn:aws:iam::*:root", "wildcards"),
        ("arn:aws:iam::222222222222:role/*", "wildcards"),
        ("arn:aws:iam::222222222222:role/ci-?", "wildcards"),
        ("22222222222?", "wildcards"),
        ("12345", "exactly 12 digits"),
        ("2222222222223", "exactly 12 digits"),
        ("arn:aws:sts::222222222222:assumed-role/ci/session", "role session"),
        ("arn:aws:iam::222222222222:group/devs", "only role and user ARNs"),
        ("arn:aws:iam::222222222222:policy/p", "only role and user ARNs"),
        ("arn:aws:iam::22222222222:role/ci", "only role and user ARNs"),
        ("ecr-pull", "expected a 12-digit account id"),
        ("lambda.amazonaws.com", "expected a 12-digit account id"),
        ("", "empty"),
        ("arn:aws-moon:iam::222222222222:role/ci", "unknown partition"),
        ("arn:aws-cn:iam::222222222222:role/ci", "partition aws-cn but the registry is in aws"),
    ],
)
def test_rejected_principals(given: str, reason: str) -> None:
    with pytest.raises(InvalidPrincipal, match=reason) as caught:
        policy.principal_arn(given, "aws")
    assert isinstance(caught.value, UsageError)
    assert caught.value.principal == given.strip() or given == ""
    assert "\n" not in str(caught.value)


def test_grants_dedupe_and_push_wins() -> None:
    grant = policy.grants(["222222222222", ROOT_2, ROLE_3, "444444444444"], [ROLE_3, ROLE_3], "aws")
    assert grant == Grants(pull=(ROOT_2, "arn:aws:iam::444444444444:root"), push=(ROLE_3,))


def test_role_arn_and_repository_ref() -> None:
    assert policy.role_arn(ROLE_3) == ROLE_3
    assert policy.role_account(ROLE_3) == "333333333333"
    for bad in (ROOT_2, "arn:aws:iam::333333333333:user/u", "role/ci"):
        with pytest.raises(UsageError, match="invalid role ARN"):
            policy.role_arn(bad)
    assert policy.repository_ref("team/app") == policy.RepositoryRef("team/app")
    assert policy.repository_ref(
        "111111111111.dkr.ecr.eu-west-1.amazonaws.com/team/app"
    ) == policy.RepositoryRef("team/app", "111111111111", "eu-west-1")
    assert policy.repository_ref(
        "arn:aws:ecr:eu-west-1:111111111111:repository/team/app"
    ) == policy.RepositoryRef("team/app", "111111111111", "eu-west-1")
    for bad in ("Team/App", "a", "app/", "team//app", "-app", ""):
        with pytest.raises(UsageError, match="invalid repository"):
            policy.repository_ref(bad)


# -- merging -------------------------------------------------------------------------------
def with_foreign() -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": copy.deepcopy(FOREIGN)}


def test_merge_keeps_foreign_statements_and_appends_ours() -> None:
    current = with_foreign()
    merged = policy.merge(current, policy.grants(["222222222222"], [], "aws"), "aws")
    assert merged["Statement"][:2] == FOREIGN
    assert current == with_foreign()  # the input is not modified
    (ours,) = by_sid(merged, "XecrPull")
    assert aws_principals(ours) == [ROOT_2] and set(ours["Action"]) == PULL
    assert len(merged["Statement"]) == 3


def test_merge_is_idempotent() -> None:
    grant = policy.grants(["222222222222"], [ROLE_3], "aws")
    once = policy.merge(with_foreign(), grant, "aws")
    twice = policy.merge(once, grant, "aws")
    assert twice == once
    assert policy.diff(once, twice, "p") == ""


def test_done_when_pull_twice_then_push_for_a_role() -> None:
    pull = policy.grants(["222222222222"], [], "aws")
    doc = policy.merge(with_foreign(), pull, "aws")
    doc = policy.merge(doc, pull, "aws")
    doc = policy.merge(doc, policy.grants([], [ROLE_3], "aws"), "aws")
    assert doc["Statement"][:2] == FOREIGN and len(doc["Statement"]) == 4
    (pulls,) = by_sid(doc, "XecrPull")
    (pushes,) = by_sid(doc, "XecrPush")
    assert aws_principals(pulls) == [ROOT_2] and aws_principals(pushes) == [ROLE_3]
    assert set(pushes["Action"]) == PUSH


def test_a_new_principal_joins_the_list_in_place() -> None:
    doc = policy.merge(with_foreign(), policy.grants(["222222222222"], [], "aws"), "aws")
    doc["Statement"].append(
        {"Sid": "Later", "Effect": "Allow", "Principal": "*", "Action": "ecr:DescribeImages"}
    )
    doc = policy.merge(doc, policy.grants(["444444444444"], [], "aws"), "aws")
    assert [s.get("Sid") for s in doc["Statement"]] == ["LambdaPull", None, "XecrPull", "Later"]
    assert aws_principals(by_sid(doc, "XecrPull")[0]) == [ROOT_2, "arn:aws:iam::444444444444:root"]


def test_push_moves_a_principal_out_of_pull_and_pull_never_downgrades() -> None:
    doc = policy.merge(None, policy.grants(["222222222222", ROLE_3], [], "aws"), "aws")
    doc = policy.merge(doc, policy.grants([], ["222222222222"], "aws"), "aws")
    assert aws_principals(by_sid(doc, "XecrPull")[0]) == [ROLE_3]
    assert aws_principals(by_sid(doc, "XecrPush")[0]) == [ROOT_2]
    again = policy.merge(doc, policy.grants(["222222222222"], [], "aws"), "aws")
    assert again == doc
    # Moving the last pull principal to push removes the empty pull statement.
    doc = policy.merge(doc, policy.grants([], [ROLE_3], "aws"), "aws")
    assert by_sid(doc, "XecrPull") == []
    assert aws_principals(by_sid(doc, "XecrPush")[0]) == [ROOT_2, ROLE_3]


def test_merge_reads_what_aws_or_people_wrote() -> None:
    current = {
        "Version": "2008-10-17",
        "Statement": [
            {
                "Sid": "XecrPull",
                "Effect": "Allow",
                "Principal": {"AWS": "222222222222"},
                "Action": "ecr:BatchGetImage",
            },
            {
                "Sid": "XecrPull",
                "Effect": "Allow",
                "Principal": {"AWS": [ROLE_3, ROLE_3, ROOT_2]},
                "Action": ["ecr:*"],
            },
            *copy.deepcopy(FOREIGN),
        ],
    }
    merged = policy.merge(current, policy.grants(["222222222222"], [], "aws"), "aws")
    assert merged["Version"] == "2008-10-17"  # the owner's choice is kept
    assert merged["Statement"][1:] == FOREIGN
    (ours,) = by_sid(merged, "XecrPull")
    assert aws_principals(ours) == [ROOT_2, ROLE_3]  # bare id = root ARN; no duplicates
    assert ours["Action"] == list(policy.PULL_ACTIONS)


def test_merge_keeps_other_principal_kinds_added_to_our_statement() -> None:
    current = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "XecrPull",
                "Effect": "Allow",
                "Principal": {"Service": "codebuild.amazonaws.com", "AWS": [ROLE_3]},
                "Action": list(policy.PULL_ACTIONS),
            },
        ],
    }
    merged = policy.merge(current, policy.grants([], [ROLE_3], "aws"), "aws")
    (pulls,) = by_sid(merged, "XecrPull")
    assert pulls["Principal"] == {"Service": "codebuild.amazonaws.com"}
    assert aws_principals(by_sid(merged, "XecrPush")[0]) == [ROLE_3]


def test_merge_keeps_a_condition_added_to_our_statement() -> None:
    condition = {"StringEquals": {"aws:PrincipalOrgID": "o-abc"}}
    doc = policy.merge(None, policy.grants(["222222222222"], [], "aws"), "aws")
    doc["Statement"][0]["Condition"] = condition
    merged = policy.merge(doc, policy.grants(["444444444444"], [], "aws"), "aws")
    assert merged["Statement"][0]["Condition"] == condition
    assert len(aws_principals(merged["Statement"][0])) == 2


def test_unchanged_policy_in_another_spelling_is_not_rewritten() -> None:
    current = {
        "Statement": {
            "Sid": "XecrPull",
            "Effect": "Allow",
            "Principal": {"AWS": ROOT_2},
            "Action": list(reversed(policy.PULL_ACTIONS)),
        }
    }
    merged = policy.merge(current, policy.grants(["222222222222"], [], "aws"), "aws")
    assert merged == current  # no Version added, no list forced: nothing to write
    assert policy.diff(current, merged, "p") == ""


@pytest.mark.parametrize(
    "edited",
    [
        {"Effect": "Deny"},
        {"NotPrincipal": {"AWS": ROOT_2}},
        {"NotAction": "ecr:PutImage"},
        {"Principal": {"AWS": [1, 2]}},
        {"Principal": "someone"},
    ],
)
def test_merge_refuses_our_statement_edited_beyond_reading(edited: dict[str, Any]) -> None:
    statement = {
        "Sid": "XecrPush",
        "Effect": "Allow",
        "Principal": {"AWS": [ROOT_2]},
        "Action": list(policy.PUSH_ACTIONS),
        **edited,
    }
    with pytest.raises(PolicyError, match="XecrPush"):
        policy.merge(
            {"Version": "2012-10-17", "Statement": [statement]},
            policy.grants(["444444444444"], [], "aws"),
            "aws",
        )


def test_merge_refuses_to_fold_differing_duplicates_of_ours() -> None:
    pull = {
        "Sid": "XecrPull",
        "Effect": "Allow",
        "Principal": {"AWS": [ROOT_2]},
        "Action": list(policy.PULL_ACTIONS),
    }
    limited = {
        **pull,
        "Principal": {"AWS": [ROLE_3]},
        "Condition": {"Bool": {"aws:SecureTransport": "true"}},
    }
    with pytest.raises(PolicyError, match="two XecrPull statements"):
        policy.merge({"Statement": [pull, limited]}, Grants(pull=(ROOT_2,)), "aws")


@pytest.mark.parametrize("statement", ["text", [1], 1, [{"Sid": "a"}, "b"]])
def test_merge_refuses_unreadable_statement_lists(statement: Any) -> None:
    with pytest.raises(PolicyError, match="Statement"):
        policy.merge({"Statement": statement}, Grants(pull=(ROOT_2,)), "aws")


def test_diff_shows_the_change_as_a_unified_diff() -> None:
    before = with_foreign()
    after = policy.merge(before, policy.grants([], [ROLE_3], "aws"), "aws")
    text = policy.diff(before, after, "repository app policy")
    lines = text.splitlines()
    assert lines[0] == "--- repository app policy (current)"
    assert lines[1] == "+++ repository app policy (new)"
    assert '+      "Sid": "XecrPush",' in lines
    assert f'+          "{ROLE_3}"' in lines
    assert not any(line.startswith("-  ") for line in lines)  # nothing removed
    new = policy.diff(None, after, "repository app policy")
    assert new.splitlines()[0] == "--- repository app policy (none)"
    assert all(line.startswith(("+", "-", "@")) for line in new.splitlines())


# -- properties ----------------------------------------------------------------------------
_accounts = st.sampled_from(
    ["222222222222", "333333333333", "444444444444", ROLE_3, "arn:aws:iam::555555555555:user/u"]
)
_steps = st.lists(
    st.tuples(st.lists(_accounts, max_size=3), st.lists(_accounts, max_size=3)),
    min_size=1,
    max_size=6,
)


@settings(max_examples=60, deadline=None)
@given(_steps)
def test_any_sequence_of_grants_keeps_policy_invariants(
    steps: list[tuple[list[str], list[str]]],
) -> None:
    doc: dict[str, Any] | None = with_foreign()
    granted: dict[str, str] = {}
    for pull, push in steps:
        grant = policy.grants(pull, push, "aws")
        doc = policy.merge(doc, grant, "aws")
        assert policy.merge(doc, grant, "aws") == doc  # idempotent at every step
        for arn in grant.pull:
            granted.setdefault(arn, "pull")
        for arn in grant.push:
            granted[arn] = "push"
    assert doc is not None
    assert doc["Statement"][:2] == FOREIGN
    listed: list[str] = []
    levels: dict[str, str] = {}
    for sid, level in (("XecrPull", "pull"), ("XecrPush", "push")):
        found = by_sid(doc, sid)
        assert len(found) <= 1
        for statement in found:
            listed.extend(aws_principals(statement))
            levels.update(dict.fromkeys(aws_principals(statement), level))
    assert len(listed) == len(set(listed))  # no principal appears twice
    assert levels == granted  # every grant is there, at the highest level asked
