"""The policy documents of a cross-account ECR set-up, built exactly and merged safely.

This module owns the three documents ``xecr policy`` prints (the central
repository's policy, a consumer's IAM policy, a registry role's trust
policy), the validation of the principals and ARNs that go into them, the
merge of xecr's grants into a repository's current policy (xecr's two
statements are added or updated, every other statement is kept as it is),
and the diff shown before a policy is written. It is pure: reading and
writing a repository's policy through ECR is ``policy_apply``'s job.
"""

from __future__ import annotations

import copy
import difflib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ecr_helper.errors import UsageError, XecrError
from ecr_helper.registry import is_region, is_registry_id, parse_ecr_host

VERSION = "2012-10-17"
PULL_ACTIONS = (
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
    "ecr:BatchCheckLayerAvailability",
)
PUSH_ACTIONS = (
    *PULL_ACTIONS,
    "ecr:PutImage",
    "ecr:InitiateLayerUpload",
    "ecr:UploadLayerPart",
    "ecr:CompleteLayerUpload",
)
TOKEN_ACTION = "ecr:GetAuthorizationToken"  # noqa: S105 - an IAM action name
# IAM accepts only [A-Za-z0-9] in a Sid (identity policies reject "xecr-pull"),
# so the same ids work in every kind of policy.
PULL_SID = "XecrPull"
PUSH_SID = "XecrPush"
TOKEN_SID = "XecrGetAuthorizationToken"  # noqa: S105 - a statement id
# ECR Public's token is a bearer token that STS issues on the service's behalf.
PUBLIC_TOKEN_ACTIONS = ("ecr-public:GetAuthorizationToken", "sts:GetServiceBearerToken")
PUBLIC_TOKEN_SID = "XecrEcrPublicToken"  # noqa: S105 - a statement id
TRUST_SID = "XecrConsumerAssumeRole"
_OUR_SIDS = {PULL_SID: PULL_ACTIONS, PUSH_SID: PUSH_ACTIONS}
# The keys of one of our statements that xecr decides; any other key (a
# Condition someone added, say) is kept.
_OWNED_KEYS = ("Sid", "Effect", "Principal", "Action")

PARTITIONS = frozenset(
    {"aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b", "aws-iso-e", "aws-iso-f", "aws-eusc"}
)
_IAM = r"arn:(?P<partition>[a-z-]+):iam::(?P<account>[0-9]{12}):"
_PATH_NAME = r"/(?:[\w+=,.@-]+/)*[\w+=,.@-]{1,64}"
_IAM_ARN = re.compile(rf"{_IAM}(?:root|(?:role|user){_PATH_NAME})", re.ASCII)
_ROLE_ARN = re.compile(rf"{_IAM}role{_PATH_NAME}", re.ASCII)
_REPO_NAME = re.compile(r"(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*", re.ASCII)
# IAM Resource elements may use wildcards in the name part (repository/team/*).
_REPO_PATTERN = re.compile(r"[a-z0-9*](?:[a-z0-9._/*-]*[a-z0-9*])?", re.ASCII)
_REPO_ARN = re.compile(
    r"arn:(?P<partition>[a-z-]+):ecr:(?P<region>[a-z0-9-]+):"
    r"(?P<account>[0-9]{12}):repository/(?P<name>.+)",
    re.ASCII,
)
_EXTERNAL_ID = re.compile(r"[\w+=,.@:/-]{2,1224}", re.ASCII)
_SET_KEYS = frozenset(
    {
        "Action",
        "NotAction",
        "Resource",
        "NotResource",
        "AWS",
        "Service",
        "Federated",
        "CanonicalUser",
    }
)

Document = dict[str, Any]


class InvalidPrincipal(UsageError):
    """A principal given on the command line is not an account id or a role/user ARN."""

    def __init__(self, principal: str, reason: str) -> None:
        super().__init__(f"invalid principal {principal!r}: {reason}")
        self.principal = principal


class PolicyError(XecrError, ValueError):
    """A repository's current policy cannot be merged without guessing; nothing is written."""


@dataclass(frozen=True)
class Grants:
    """Principal ARNs to grant, by access level. No ARN is in both: push includes pull."""

    pull: tuple[str, ...] = ()
    push: tuple[str, ...] = ()


@dataclass(frozen=True)
class RepositoryRef:
    """A repository named on the command line; registry id and region when it said them."""

    name: str
    registry_id: str | None = None
    region: str | None = None


def principal_arn(text: str, partition: str) -> str:
    """The ARN a command-line principal stands for, in the registry's ``partition``.

    A 12-digit account id becomes ``arn:<partition>:iam::<id>:root``; an IAM
    role or user ARN (or an account's root ARN) is kept. Anything else, and
    any wildcard, raises :class:`InvalidPrincipal`.
    """
    given = text.strip()
    if not given:
        raise InvalidPrincipal(text, "empty (expected a 12-digit account id or a role/user ARN)")
    if "*" in given or "?" in given:
        raise InvalidPrincipal(
            given, "wildcards are not allowed: name each account id or role/user ARN"
        )
    if is_registry_id(given):
        return f"arn:{partition}:iam::{given}:root"
    match = _IAM_ARN.fullmatch(given)
    if match is None:
        raise InvalidPrincipal(given, _why_not_principal(given))
    if match["partition"] not in PARTITIONS:
        raise InvalidPrincipal(given, f"unknown partition {match['partition']!r}")
    if match["partition"] != partition:
        raise InvalidPrincipal(
            given,
            f"it is in partition {match['partition']} but the registry is in {partition} "
            "(check --region)",
        )
    return given


def _why_not_principal(text: str) -> str:
    if text.isdigit():
        return "an account id has exactly 12 digits"
    if ":sts::" in text and ":assumed-role/" in text:
        return "that is a role session; name the role itself (arn:aws:iam::<account>:role/NAME)"
    if text.startswith("arn:") and ":iam::" in text:
        return "only role and user ARNs (arn:aws:iam::<account>:role/NAME or user/NAME) qualify"
    return "expected a 12-digit account id or a role/user ARN (arn:aws:iam::<account>:role/NAME)"


def grants(pull: Iterable[str], push: Iterable[str], partition: str) -> Grants:
    """Validate the principals of ``--pull`` and ``--push``; one named for both gets push."""
    push_arns = _unique(principal_arn(p, partition) for p in push)
    taken = set(push_arns)
    pull_arns = [a for a in _unique(principal_arn(p, partition) for p in pull) if a not in taken]
    return Grants(pull=tuple(pull_arns), push=tuple(push_arns))


def role_arn(text: str) -> str:
    """A role ARN to act through; raises :class:`UsageError` for anything else."""
    match = _ROLE_ARN.fullmatch(text.strip())
    if match is None or match["partition"] not in PARTITIONS:
        raise UsageError(f"invalid role ARN {text!r} (expected arn:aws:iam::<account>:role/NAME)")
    return text.strip()


def role_account(arn: str) -> str:
    """The account id of a validated role ARN."""
    return arn.split(":")[4]


def external_id(text: str) -> str:
    if _EXTERNAL_ID.fullmatch(text) is None:
        raise UsageError(f"invalid external id {text!r}: use 2-1224 of A-Z a-z 0-9 +=,.@:/-_")
    return text


def repository_ref(text: str) -> RepositoryRef:
    """A repository given by name, by URI (``<host>/<name>``) or by ARN."""
    given = text.strip()
    arn = _REPO_ARN.fullmatch(given)
    if arn is not None:
        if arn["partition"] not in PARTITIONS or not is_region(arn["region"]):
            raise UsageError(f"invalid repository ARN {given!r}")
        return RepositoryRef(_repo_name(arn["name"], given), arn["account"], arn["region"])
    host, slash, rest = given.partition("/")
    ecr = parse_ecr_host(host.lower()) if slash else None
    if ecr is not None:
        return RepositoryRef(_repo_name(rest, given), ecr.registry_id, ecr.region)
    return RepositoryRef(_repo_name(given, given))


def _repo_name(name: str, given: str) -> str:
    if not 2 <= len(name) <= 256 or _REPO_NAME.fullmatch(name) is None:
        raise UsageError(
            f"invalid repository {given!r}: expected a repository name (like team/app), "
            "its URI or its ARN"
        )
    return name


def repository_arn(text: str) -> str:
    """Validate a repository ARN for an IAM policy (wildcards allowed in the name)."""
    given = text.strip()
    match = _REPO_ARN.fullmatch(given)
    if (
        match is None
        or match["partition"] not in PARTITIONS
        or not is_region(match["region"])
        or _REPO_PATTERN.fullmatch(match["name"]) is None
    ):
        raise UsageError(
            f"invalid repository ARN {text!r} "
            "(expected arn:aws:ecr:<region>:<account>:repository/NAME)"
        )
    return given


def repository_policy(grant: Grants) -> Document:
    """A new repository policy holding just these grants."""
    return merge(None, grant, "aws")


def client_policy(
    repository_arns: Sequence[str], push: bool = False, public: bool = False
) -> Document:
    """The IAM policy a consumer principal needs to pull (or push) these repositories,
    and with ``public`` to fetch ECR Public's token (its pulls need nothing more)."""
    arns = _unique(repository_arn(a) for a in repository_arns)
    if not arns and not public:
        raise UsageError(
            "name the repository with --repository-arn ARN (or --public for ECR Public)"
        )
    statements: list[Document] = []
    if arns:
        statements += [
            {"Sid": TOKEN_SID, "Effect": "Allow", "Action": TOKEN_ACTION, "Resource": "*"},
            {
                "Sid": PUSH_SID if push else PULL_SID,
                "Effect": "Allow",
                "Action": list(PUSH_ACTIONS if push else PULL_ACTIONS),
                "Resource": arns[0] if len(arns) == 1 else arns,
            },
        ]
    if public:
        statements.append(
            {
                "Sid": PUBLIC_TOKEN_SID,
                "Effect": "Allow",
                "Action": list(PUBLIC_TOKEN_ACTIONS),
                "Resource": "*",
            }
        )
    return {"Version": VERSION, "Statement": statements}


def trust_policy(principals: Sequence[str], external: str | None = None) -> Document:
    """The trust policy of a registry-account role that these principals may assume."""
    arns = _unique(principals)
    if not arns:
        raise UsageError("name the consumer account with --account ID")
    statement: Document = {
        "Sid": TRUST_SID,
        "Effect": "Allow",
        "Principal": {"AWS": arns[0] if len(arns) == 1 else arns},
        "Action": "sts:AssumeRole",
    }
    if external is not None:
        statement["Condition"] = {"StringEquals": {"sts:ExternalId": external_id(external)}}
    return {"Version": VERSION, "Statement": [statement]}


def merge(current: Mapping[str, Any] | None, grant: Grants, partition: str) -> Document:
    """``current`` with ``grant`` added to xecr's statements, every other statement kept.

    xecr's statements are those whose Sid is ``XecrPull`` or ``XecrPush``: a
    new principal joins its level's principal list, a principal granted push
    leaves the pull list, and no principal is listed twice. Granting what is
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
    held: dict[str, list[str]] = {PULL_SID: [], PUSH_SID: []}
    first: dict[str, int] = {}
    for index, statement in enumerate(statements):
        sid = statement.get("Sid")
        if isinstance(sid, str) and sid in _OUR_SIDS:
            held[sid].extend(_aws_principals(statement, sid, partition))
            first.setdefault(sid, index)
            if _extras(statement) != _extras(statements[first[sid]]):
                # Folding it into the first would drop (or spread) its Condition.
                raise PolicyError(
                    f"the current repository policy has two {sid} statements that differ "
                    "beyond principals and actions; merge or rename them by hand"
                )
    push = _unique([*held[PUSH_SID], *grant.push])
    pushing = set(push)
    pull = [p for p in _unique([*held[PULL_SID], *grant.pull]) if p not in pushing]
    wanted = {
        sid: _our_statement(statements[first[sid]] if sid in first else None, sid, principals)
        for sid, principals in ((PULL_SID, pull), (PUSH_SID, push))
    }
    kept: list[Any] = []
    for index, statement in enumerate(statements):
        sid = statement.get("Sid")
        if isinstance(sid, str) and sid in _OUR_SIDS:
            ours = wanted[sid]
            if first[sid] == index and ours is not None:
                kept.append(ours)
            continue  # a duplicate of ours: its principals were folded into the first
        kept.append(statement)
    kept.extend(ours for sid, ours in wanted.items() if sid not in first and ours is not None)
    merged = {**base, "Statement": kept}
    if current is not None and same(merged, current):
        return copy.deepcopy(dict(current))
    if "Version" not in merged:
        merged = {"Version": VERSION, **merged}
    return merged


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


def same(left: Any, right: Any) -> bool:
    """Whether two policy documents (or statements) mean the same thing.

    Action, Resource and principal lists are sets, a single string equals a
    list of one, and a lone Statement object equals a list of one.
    """
    return bool(_normal(left) == _normal(right))


def _normal(value: Any, key: str = "") -> Any:
    if key in _SET_KEYS:
        items = [value] if isinstance(value, str) else value
        if isinstance(items, list) and all(isinstance(i, str) for i in items):
            return frozenset(items)
    if key == "Statement" and isinstance(value, dict):
        value = [value]
    if key == "Principal" and value == "*":
        return {"AWS": frozenset({"*"})}
    if isinstance(value, Mapping):
        return {k: _normal(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_normal(v) for v in value]
    return value


def render(doc: Mapping[str, Any]) -> str:
    """The document as printed and as written: indented JSON, keys in document order."""
    return json.dumps(doc, indent=2) + "\n"


def diff(before: Mapping[str, Any] | None, after: Mapping[str, Any], name: str) -> str:
    """A unified diff of the pretty-printed documents; empty when they mean the same."""
    if before is not None and same(before, after):
        return ""
    old = render(before).splitlines(keepends=True) if before is not None else []
    return "".join(
        difflib.unified_diff(
            old,
            render(after).splitlines(keepends=True),
            fromfile=f"{name} (current)" if before is not None else f"{name} (none)",
            tofile=f"{name} (new)",
        )
    )


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))
