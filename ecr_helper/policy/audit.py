"""Whether a repository policy lets one principal pull (or push), read as it is.

This module owns ``xecr policy audit``'s evaluation of one repository policy
for one consumer principal: Allow and Deny statements, Principal and
NotPrincipal (an account, a role, a user, ``*``), Action and NotAction with
wildcards, Resource and NotResource, and the conditions it can decide: the
organization (``aws:PrincipalOrgID``, ``aws:PrincipalOrgPaths``) from the org
or OU path the caller names, and ``aws:PrincipalAccount``/``aws:PrincipalArn``
from the principal. Any other condition is "unknown", never guessed. It
assumes nothing about who wrote the policy. Pure: no AWS call.

It decides the repository's side only: a principal in another account also
needs its own IAM policy to allow the actions (``xecr policy client``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ecr_helper.policy.documents import PULL_ACTIONS, PUSH_ACTIONS
from ecr_helper.policy.orgs import ORG_KEY, PATH_KEY, org_of

ALLOWED = "allowed"
DENIED = "denied"  # an explicit Deny
NOT_GRANTED = "not granted"  # no Allow
UNKNOWN = "unknown"  # a condition it cannot evaluate decides

_PRINCIPAL = re.compile(r"arn:(?P<partition>[a-z-]+):iam::(?P<account>[0-9]{12}):(?P<rest>.+)")
_STRING_TESTS = {
    "StringEquals": (False, False, False),
    "StringNotEquals": (False, False, True),
    "StringEqualsIgnoreCase": (False, True, False),
    "StringNotEqualsIgnoreCase": (False, True, True),
    "StringLike": (True, False, False),
    "StringNotLike": (True, False, True),
    "ArnEquals": (False, False, False),
    "ArnNotEquals": (False, False, True),
    "ArnLike": (True, False, False),
    "ArnNotLike": (True, False, True),
}


@dataclass(frozen=True)
class Caller:
    """The principal audited: its ARN and, when known, its organization and OU path."""

    arn: str
    org: str | None = None
    path: str | None = None  # o-.../r-.../ou-.../ (an account's path ends with "/")

    @property
    def account(self) -> str:
        match = _PRINCIPAL.fullmatch(self.arn)
        return match["account"] if match else ""


@dataclass(frozen=True)
class Verdict:
    """One repository's answer: ``result`` and the statements (Sids or #index) behind it."""

    result: str
    statements: tuple[str, ...] = ()
    reason: str = ""


def actions(push: bool) -> tuple[str, ...]:
    return PUSH_ACTIONS if push else PULL_ACTIONS


def caller(arn: str, org: str | None) -> Caller:
    """A caller from a validated principal ARN and ``--org`` (an org id or an OU path)."""
    if org is None:
        return Caller(arn)
    if "/" in org:
        path = org.rstrip("*").rstrip("/") + "/"
        return Caller(arn, org_of(path), path)
    return Caller(arn, org)


def evaluate(
    doc: Mapping[str, Any] | None, who: Caller, wanted: Sequence[str], resource: str
) -> Verdict:
    """Whether ``doc`` lets ``who`` do every action of ``wanted`` on ``resource``."""
    if doc is None:
        return Verdict(NOT_GRANTED, reason="the repository has no policy")
    body = doc.get("Statement", [])
    statements = [body] if isinstance(body, dict) else body
    if not isinstance(statements, list):
        return Verdict(UNKNOWN, reason="the policy has no readable Statement list")
    per_action = {a: _action(statements, who, a, resource) for a in wanted}
    for result in (DENIED, NOT_GRANTED, UNKNOWN):
        hit = [a for a, (r, _, _) in per_action.items() if r == result]
        if hit:
            sids = tuple(dict.fromkeys(s for a in hit for s in per_action[a][1]))
            if result == NOT_GRANTED:
                return Verdict(result, sids, f"no statement allows {', '.join(hit)} to it")
            return Verdict(result, sids, "; ".join(dict.fromkeys(per_action[a][2] for a in hit)))
    sids = tuple(dict.fromkeys(s for _, ss, _ in per_action.values() for s in ss))
    return Verdict(ALLOWED, sids, "by " + ", ".join(sids))


def _action(
    statements: list[Any], who: Caller, action: str, resource: str
) -> tuple[str, list[str], str]:
    """One action: (result, the statements deciding it, why)."""
    allow: list[str] = []
    maybe_allow: list[tuple[str, str]] = []
    deny: list[str] = []
    maybe_deny: list[tuple[str, str]] = []
    for index, statement in enumerate(statements):
        name = _name(statement, index)
        applies, why = _applies(statement, who, action, resource)
        effect = statement.get("Effect") if isinstance(statement, dict) else None
        if applies is False or effect not in ("Allow", "Deny"):
            continue
        if effect == "Deny":
            (deny.append(name) if applies else maybe_deny.append((name, why)))
        else:
            (allow.append(name) if applies else maybe_allow.append((name, why)))
    if deny:
        return DENIED, deny, f"{action} denied by {', '.join(deny)}"
    if maybe_deny and (allow or maybe_allow):
        names = [n for n, _ in maybe_deny]
        return UNKNOWN, names, f"Deny {names[0]} may apply: {maybe_deny[0][1]}"
    if allow:
        return ALLOWED, allow, ""
    if maybe_allow:
        names = [n for n, _ in maybe_allow]
        return UNKNOWN, names, f"Allow {names[0]} may apply: {maybe_allow[0][1]}"
    return NOT_GRANTED, [], f"no statement allows {action} to this principal"


def _name(statement: Any, index: int) -> str:
    sid = statement.get("Sid") if isinstance(statement, dict) else None
    return sid if isinstance(sid, str) and sid else f"#{index + 1}"


def _applies(statement: Any, who: Caller, action: str, resource: str) -> tuple[bool | None, str]:
    """Whether the statement covers this request: True, False, or None (unknown, and why)."""
    if not isinstance(statement, dict):
        return None, "a statement is not a JSON object"
    if not _matches_any(statement, "Action", "NotAction", action, _action_match):
        return False, ""
    if not _matches_any(statement, "Resource", "NotResource", resource, _resource_match):
        return False, ""
    if not _principal_matches(statement, who):
        return False, ""
    return _condition(statement.get("Condition"), who)


def _listed(value: Any) -> list[str]:
    items = [value] if isinstance(value, str) else value
    return [i for i in items if isinstance(i, str)] if isinstance(items, list) else []


def _matches_any(
    statement: Mapping[str, Any], key: str, not_key: str, value: str, test: Any
) -> bool:
    if key in statement:
        return any(test(p, value) for p in _listed(statement[key]))
    if not_key in statement:
        return not any(test(p, value) for p in _listed(statement[not_key]))
    return key == "Resource"  # a repository policy may leave Resource out; Action it may not


@functools.lru_cache(maxsize=1024)
def _glob(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    """IAM's wildcards: ``*`` any run of characters, ``?`` one; nothing else is special."""
    body = re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".")
    return re.compile(body, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def _like(pattern: str, value: str, ignore_case: bool = False) -> bool:
    return _glob(pattern, ignore_case).fullmatch(value) is not None


def _action_match(pattern: str, action: str) -> bool:
    return _like(pattern, action, ignore_case=True)  # IAM action names ignore case


def _resource_match(pattern: str, resource: str) -> bool:
    return _like(pattern, resource)


def _principal_matches(statement: Mapping[str, Any], who: Caller) -> bool:
    if "Principal" in statement:
        return _in_principal(statement["Principal"], who)
    if "NotPrincipal" in statement:
        return not _in_principal(statement["NotPrincipal"], who)
    return False


def _in_principal(principal: Any, who: Caller) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    for value in _listed(principal.get("AWS", [])):
        if value == "*" or value == who.arn:
            return True
        # An account (its id or its root ARN) stands for every principal of the account.
        match = _PRINCIPAL.fullmatch(value)
        account = value if value.isdigit() else (match["account"] if match else None)
        if account == who.account and (value.isdigit() or (match and match["rest"] == "root")):
            return True
    return False


def _condition(condition: Any, who: Caller) -> tuple[bool | None, str]:
    """All of the condition's tests: False if one fails, None if one cannot be decided."""
    if condition is None:
        return True, ""
    if not isinstance(condition, dict):
        return None, "its Condition is not a JSON object"
    unknown = ""
    for operator, tests in condition.items():
        if not isinstance(tests, dict):
            return None, f"its Condition {operator} is not a JSON object"
        for key, values in tests.items():
            result = _test(str(operator), str(key), _listed(values), who)
            if result is False:
                return False, ""
            if result is None and not unknown:
                unknown = f"condition {operator} {key} cannot be evaluated"
    return (None, unknown) if unknown else (True, "")


def _facts(key: str, who: Caller) -> list[str] | None:
    """The request's values for a condition key, or None when the audit cannot know them."""
    lowered = key.lower()
    if lowered == ORG_KEY.lower():
        return [who.org] if who.org else None
    if lowered == PATH_KEY.lower():
        return [who.path] if who.path else None
    if lowered == "aws:principalaccount":
        return [who.account]
    if lowered == "aws:principalarn":
        return [who.arn]
    return None


def _test(operator: str, key: str, values: list[str], who: Caller) -> bool | None:
    qualifier, _, test = operator.rpartition(":")
    # ...IfExists changes nothing here: the keys it knows exist for every IAM principal.
    test = test.removesuffix("IfExists")
    if qualifier not in ("", "ForAnyValue", "ForAllValues") or test not in _STRING_TESTS:
        return None
    facts = _facts(key, who)
    if facts is None:
        if key.lower() == PATH_KEY.lower() and who.org is not None:
            return _org_only_path(test, values, who.org)
        return None
    like, ignore_case, negated = _STRING_TESTS[test]
    hit = any(_string_match(p, f, like, ignore_case) for p in values for f in facts)
    return not hit if negated else hit


def _string_match(pattern: str, fact: str, like: bool, ignore_case: bool) -> bool:
    if like:
        return _like(pattern, fact, ignore_case)
    return pattern.lower() == fact.lower() if ignore_case else pattern == fact


def _org_only_path(test: str, values: list[str], org: str) -> bool | None:
    """An OU-path test knowing only the principal's org: decided only when the org settles it."""
    like, _, negated = _STRING_TESTS[test]
    if like and f"{org}/*" in values:
        return not negated  # every path of the org matches
    if all(not set("*?") & set(org_of(v)) and org_of(v) != org for v in values):
        return negated  # no path of the org can match
    return None
