"""The policy documents of a cross-account ECR set-up, built exactly.

This module owns the three documents ``xecr policy`` prints (the central
repository's policy, a consumer's IAM policy, a registry role's trust
policy), the validation of the principals and ARNs that go into them, and the
comparison and diff shown before a policy is written. It is pure: merging
xecr's grants into a current policy is :mod:`ecr_helper.policy.merge`'s job,
reading and writing it through ECR :mod:`ecr_helper.policy.apply`'s.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ecr_helper.errors import InvalidPrincipal, UsageError
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


@dataclass(frozen=True)
class Grants:
    """Principal ARNs to grant, by access level. No ARN is in both: push includes pull."""

    pull: tuple[str, ...] = ()
    push: tuple[str, ...] = ()
    # Organization ids or OU path patterns (:mod:`ecr_helper.policy.orgs`), by level.
    pull_orgs: tuple[str, ...] = ()
    push_orgs: tuple[str, ...] = ()


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
    push_arns = unique(principal_arn(p, partition) for p in push)
    taken = set(push_arns)
    pull_arns = [a for a in unique(principal_arn(p, partition) for p in pull) if a not in taken]
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


def client_policy(
    repository_arns: Sequence[str], push: bool = False, public: bool = False
) -> Document:
    """The IAM policy a consumer principal needs to pull (or push) these repositories,
    and with ``public`` to fetch ECR Public's token (its pulls need nothing more)."""
    arns = unique(repository_arn(a) for a in repository_arns)
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
    arns = unique(principals)
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


def unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))
