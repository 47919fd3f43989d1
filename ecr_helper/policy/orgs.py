"""Granting an AWS Organization (or one of its OUs) in a repository policy.

This module owns the organization side of xecr's grants: validating an
organization id (``o-...``) or an OU path (``o-.../r-.../ou-.../``), the
statements that grant them (``Principal: "*"`` narrowed by a Condition on
``aws:PrincipalOrgID`` or ``aws:PrincipalOrgPaths``, as AWS recommends for
cross-account ECR in an organization) and merging those into a current
policy's statements. Pure: no AWS call.

A statement with ``Principal: "*"`` is only ever written with a non-empty
organization condition: an empty one would grant everyone.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import Any

from ecr_helper.errors import PolicyError, UsageError
from ecr_helper.policy.documents import PULL_ACTIONS, PUSH_ACTIONS, Document, Grants, unique

ORG_KEY = "aws:PrincipalOrgID"
PATH_KEY = "aws:PrincipalOrgPaths"
ORG_TEST = "StringEquals"
PATH_TEST = "ForAnyValue:StringLike"
PULL_ORG_SID = "XecrPullOrg"
PUSH_ORG_SID = "XecrPushOrg"
PULL_PATH_SID = "XecrPullOrgPath"
PUSH_PATH_SID = "XecrPushOrgPath"
# Sid -> (actions, condition test, condition key)
SIDS: dict[str, tuple[tuple[str, ...], str, str]] = {
    PULL_ORG_SID: (PULL_ACTIONS, ORG_TEST, ORG_KEY),
    PUSH_ORG_SID: (PUSH_ACTIONS, ORG_TEST, ORG_KEY),
    PULL_PATH_SID: (PULL_ACTIONS, PATH_TEST, PATH_KEY),
    PUSH_PATH_SID: (PUSH_ACTIONS, PATH_TEST, PATH_KEY),
}
_ORG = r"o-[a-z0-9]{10,32}"
ORG_ID = re.compile(_ORG, re.ASCII)
_PATH = re.compile(
    rf"(?P<org>{_ORG})/r-[0-9a-z]{{4,32}}(?:/ou-[0-9a-z]{{4,32}}-[a-z0-9]{{8,32}})*/?\*?",
    re.ASCII,
)


def target(text: str) -> tuple[str, str]:
    """``(key, value)`` for an org id or an OU path given on the command line.

    An org id is kept; an OU path becomes ``o-.../r-.../ou-.../*``: that OU and
    every OU and account below it.
    """
    given = text.strip()
    if ORG_ID.fullmatch(given):
        return ORG_KEY, given
    if _PATH.fullmatch(given):
        return PATH_KEY, given.rstrip("*").rstrip("/") + "/*"
    raise UsageError(
        f"invalid organization {text!r}: expected an org id (o-exampleorgid) or an OU path "
        "(o-exampleorgid/r-ab12/ou-ab12-11111111)"
    )


def org_of(value: str) -> str:
    """The organization id an org id or path pattern starts with."""
    return value.split("/", 1)[0]


def split(pull: Iterable[str], push: Iterable[str]) -> dict[str, list[str]]:
    """The validated values per Sid; one given for both gets push (push includes pull)."""
    wanted: dict[str, list[str]] = {sid: [] for sid in SIDS}
    for level, given in (("Push", push), ("Pull", pull)):
        for text in given:
            key, value = target(text)
            sid = f"Xecr{level}Org" + ("Path" if key == PATH_KEY else "")
            wanted[sid].append(value)
    for pull_sid, push_sid in ((PULL_ORG_SID, PUSH_ORG_SID), (PULL_PATH_SID, PUSH_PATH_SID)):
        pushing = set(wanted[push_sid])
        wanted[pull_sid] = [v for v in unique(wanted[pull_sid]) if v not in pushing]
        wanted[push_sid] = unique(wanted[push_sid])
    return wanted


def with_orgs(grant: Grants, pull: Iterable[str], push: Iterable[str]) -> Grants:
    """``grant`` plus these organizations or OU paths (validated; push includes pull)."""
    push_values = unique(target(t)[1] for t in push)
    taken = set(push_values)
    pull_values = [v for v in unique(target(t)[1] for t in pull) if v not in taken]
    return dataclasses.replace(grant, pull_orgs=tuple(pull_values), push_orgs=tuple(push_values))


def held(statement: Mapping[str, Any], sid: str) -> list[str]:
    """The org ids or paths one of our org statements grants; refuses one edited to widen."""
    _, test, key = SIDS[sid]
    principal = statement.get("Principal")
    if (
        statement.get("Effect") != "Allow"
        or "NotPrincipal" in statement
        or "NotAction" in statement
        or principal not in ("*", {"AWS": "*"}, {"AWS": ["*"]})
    ):
        raise PolicyError(
            f"statement {sid} of the current repository policy was edited (its Effect, "
            "Principal or Action); xecr will not rewrite it: fix or rename it by hand"
        )
    condition = statement.get("Condition")
    values = condition.get(test, {}).get(key) if isinstance(condition, dict) else None
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        raise PolicyError(
            f"statement {sid} of the current repository policy has no {test} {key} condition "
            "xecr can read; fix or rename it by hand"
        )
    return list(values)


def statement(existing: Mapping[str, Any] | None, sid: str, values: list[str]) -> Document | None:
    """Our org statement granting ``values``, keeping what else ``existing`` had."""
    if not values:
        return None  # never Principal "*" without its organization condition
    actions, test, key = SIDS[sid]
    extras = {
        k: v
        for k, v in (existing or {}).items()
        if k not in ("Sid", "Effect", "Principal", "Action", "Condition")
    }
    condition: dict[str, Any] = {}
    old = (existing or {}).get("Condition")
    if isinstance(old, dict):
        condition = {op: dict(keys) for op, keys in old.items() if isinstance(keys, dict)}
    spelled = condition.get(test, {}).get(key)
    # A lone string is kept as it was spelled, so an unchanged grant shows no difference.
    condition.setdefault(test, {})[key] = spelled if [spelled] == values else values
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": "*",
        "Action": list(actions),
        "Condition": condition,
        **extras,
    }
