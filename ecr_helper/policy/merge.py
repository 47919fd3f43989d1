"""Merging xecr's grants into a repository's current policy.

xecr's two statements (``XecrPull``, ``XecrPush``) are added or updated, every
other statement is kept as it is, and a statement someone edited into
something a merge could silently widen is refused. Pure: no AWS call.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from ecr_helper.errors import PolicyError
from ecr_helper.policy import orgs
from ecr_helper.policy.documents import (
    PULL_ACTIONS,
    PULL_SID,
    PUSH_ACTIONS,
    PUSH_SID,
    VERSION,
    Document,
    Grants,
    same,
    unique,
)
from ecr_helper.registry import is_registry_id

_OUR_SIDS = {PULL_SID: PULL_ACTIONS, PUSH_SID: PUSH_ACTIONS}
_ALL_SIDS = frozenset({*_OUR_SIDS, *orgs.SIDS})
# The keys of one of our statements that xecr decides; any other key (a
# Condition someone added, say) is kept.
_OWNED_KEYS = ("Sid", "Effect", "Principal", "Action")


def merge(current: Mapping[str, Any] | None, grant: Grants, partition: str) -> Document:
    """``current`` with ``grant`` added to xecr's statements, every other statement kept.

    xecr's statements are those whose Sid is ``XecrPull`` or ``XecrPush``
    (principals) or one of :data:`ecr_helper.policy.orgs.SIDS` (organizations): a
    new principal (organization) joins its level's list, one granted push
    leaves the pull list, and none is listed twice. Granting what is
    already granted returns an equal copy of ``current`` (nothing to write).
    Raises :class:`PolicyError` when one of xecr's statements was edited into
    something a merge could silently widen (a Deny, NotPrincipal, NotAction).
    """
    if current is None:
        base: Document = {"Version": VERSION, "Statement": []}
    elif isinstance(current, Mapping):
        base = copy.deepcopy(dict(current))
    else:
        raise PolicyError("the current repository policy is not a JSON object")
    statements = _statements(base)
    first = _first_of_ours(statements)
    wanted = {
        **_principal_statements(statements, first, grant, partition),
        **_org_statements(statements, first, grant),
    }
    kept: list[Any] = []
    for index, statement in enumerate(statements):
        sid = statement.get("Sid")
        if isinstance(sid, str) and sid in _ALL_SIDS:
            ours = wanted[sid]
            if first[sid] == index and ours is not None:
                kept.append(ours)
            continue  # a duplicate of ours: its grants were folded into the first
        kept.append(statement)
    kept.extend(ours for sid, ours in wanted.items() if sid not in first and ours is not None)
    merged = {**base, "Statement": kept}
    if current is not None and same(merged, current):
        return copy.deepcopy(dict(current))
    if "Version" not in merged:
        merged = {"Version": VERSION, **merged}
    return merged


def _first_of_ours(statements: list[dict[str, Any]]) -> dict[str, int]:
    """Where each of xecr's statements first appears; refuses duplicates that differ."""
    first: dict[str, int] = {}
    for index, statement in enumerate(statements):
        sid = statement.get("Sid")
        if not isinstance(sid, str) or sid not in _ALL_SIDS:
            continue
        first.setdefault(sid, index)
        if _extras(statement) != _extras(statements[first[sid]]):
            # Folding it into the first would drop (or spread) its Condition.
            raise PolicyError(
                f"the current repository policy has two {sid} statements that differ "
                "beyond principals and actions; merge or rename them by hand"
            )
    return first


def _principal_statements(
    statements: list[dict[str, Any]], first: dict[str, int], grant: Grants, partition: str
) -> dict[str, Document | None]:
    held: dict[str, list[str]] = {PULL_SID: [], PUSH_SID: []}
    for statement in statements:
        sid = statement.get("Sid")
        if isinstance(sid, str) and sid in _OUR_SIDS:
            held[sid].extend(_aws_principals(statement, sid, partition))
    push = unique([*held[PUSH_SID], *grant.push])
    pushing = set(push)
    pull = [p for p in unique([*held[PULL_SID], *grant.pull]) if p not in pushing]
    return {
        sid: _our_statement(statements[first[sid]] if sid in first else None, sid, principals)
        for sid, principals in ((PULL_SID, pull), (PUSH_SID, push))
    }


def _org_statements(
    statements: list[dict[str, Any]], first: dict[str, int], grant: Grants
) -> dict[str, Document | None]:
    held: dict[str, list[str]] = {sid: [] for sid in orgs.SIDS}
    for statement in statements:
        sid = statement.get("Sid")
        if isinstance(sid, str) and sid in orgs.SIDS:
            held[sid].extend(orgs.held(statement, sid))
    added = orgs.split(
        [*held[orgs.PULL_ORG_SID], *held[orgs.PULL_PATH_SID], *grant.pull_orgs],
        [*held[orgs.PUSH_ORG_SID], *held[orgs.PUSH_PATH_SID], *grant.push_orgs],
    )
    result: dict[str, Document | None] = {}
    for sid, values in added.items():
        existing = statements[first[sid]] if sid in first else None
        ours = orgs.statement(existing, sid, values)
        unchanged = existing is not None and ours is not None and same(existing, ours)
        result[sid] = dict(existing) if unchanged and existing is not None else ours
    return result


def _statements(doc: Document) -> list[dict[str, Any]]:
    body = doc.get("Statement", [])
    if isinstance(body, dict):
        body = [body]  # a lone statement object is valid policy grammar
    if not isinstance(body, list) or not all(isinstance(s, dict) for s in body):
        raise PolicyError("the current repository policy has no valid Statement list")
    return body


def _aws_principals(statement: Mapping[str, Any], sid: str, partition: str) -> list[str]:
    if (
        statement.get("Effect") != "Allow"
        or "NotPrincipal" in statement
        or ("NotAction" in statement)
    ):
        raise PolicyError(
            f"statement {sid} of the current repository policy was edited (Deny, NotPrincipal "
            "or NotAction); xecr will not rewrite it: fix or rename it by hand"
        )
    principal = statement.get("Principal")
    if principal == "*":
        return ["*"]
    values = principal.get("AWS", []) if isinstance(principal, dict) else None
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise PolicyError(
            f"statement {sid} of the current repository policy has a Principal xecr cannot "
            "read; fix or rename it by hand"
        )
    # A bare account id is a legal principal; it means the root ARN.
    return [f"arn:{partition}:iam::{v}:root" if is_registry_id(v) else v for v in values]


def _our_statement(
    existing: Mapping[str, Any] | None, sid: str, principals: list[str]
) -> Document | None:
    others: Document = {}
    extras: Document = {}
    if existing is not None:
        old = existing.get("Principal")
        if isinstance(old, dict):
            others = {k: v for k, v in old.items() if k != "AWS"}
        extras = _extras(existing)
    if not principals and not others:
        return None  # a statement must name a principal; an empty one is dropped
    principal: Document = {"AWS": principals, **others} if principals else others
    statement: Document = {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": principal,
        "Action": list(_OUR_SIDS[sid]),
        **extras,
    }
    if existing is not None and same(existing, statement) and _listed(existing) == len(principals):
        return dict(existing)  # unchanged: keep its spelling, so nothing shows in the diff
    return statement


def _extras(statement: Mapping[str, Any]) -> Document:
    return {k: v for k, v in statement.items() if k not in _OWNED_KEYS}


def _listed(statement: Mapping[str, Any]) -> int:
    """How many AWS principals a statement lists, duplicates included."""
    principal = statement.get("Principal")
    values = principal.get("AWS", []) if isinstance(principal, dict) else [principal]
    return 1 if isinstance(values, str) else len(values)


def repository_policy(grant: Grants) -> Document:
    """A new repository policy holding just these grants."""
    return merge(None, grant, "aws")
