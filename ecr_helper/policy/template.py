"""Merging xecr's grants into an ECR repository creation template's repository policy.

This module owns ``xecr policy template``: read the template of a prefix
(DescribeRepositoryCreationTemplates), merge the grants into its
``repositoryPolicy`` with the same rules as a repository's
(:func:`ecr_helper.policy.merge.merge`), and write it with
UpdateRepositoryCreationTemplate, or CreateRepositoryCreationTemplate when the
prefix has none, only when something changes. Repositories that ECR then
creates under the prefix (on push, by pull-through cache or by replication:
``appliedFor``) start with that policy. The ECR client is a parameter.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ecr_helper import aws, policy
from ecr_helper.errors import AwsError, PolicyError, UsageError
from ecr_helper.policy import Document, Grants
from ecr_helper.policy.apply import policy_text

if TYPE_CHECKING:
    from collections.abc import Sequence

    from mypy_boto3_ecr.client import ECRClient

APPLIED_FOR = ("CREATE_ON_PUSH", "PULL_THROUGH_CACHE", "REPLICATION")
# ECR's Prefix pattern (botocore's service model), 1-256 characters.
_PREFIX = re.compile(
    r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*/?|ROOT",
    re.ASCII,
)


@dataclass(frozen=True)
class TemplateOutcome:
    """What applying to a template did. ``diff`` is empty when nothing changes."""

    prefix: str
    registry_id: str
    region: str
    before: Document | None
    after: Document
    diff: str
    exists: bool
    applied_for: tuple[str, ...]
    written: bool

    @property
    def changed(self) -> bool:
        return bool(self.diff)

    @property
    def where(self) -> str:
        registry = f"registry {self.registry_id}" if self.registry_id else "the registry"
        return f"the creation template of prefix {self.prefix} in {registry} ({self.region})"


def prefix(text: str) -> str:
    """A creation template's prefix: a repository namespace (``team`` or ``team/``) or ROOT."""
    if not 1 <= len(text) <= 256 or _PREFIX.fullmatch(text) is None:
        raise UsageError(
            f"invalid template --prefix {text!r}: expected a repository namespace like team/ "
            "(or ROOT for every repository no other template matches)"
        )
    return text


def applied_for(values: Sequence[str]) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(v.upper().replace("-", "_") for v in values))
    for value in chosen:
        if value not in APPLIED_FOR:
            raise UsageError(
                f"invalid --applied-for {value!r}: expected one of {', '.join(APPLIED_FOR)}"
            )
    return chosen


def _error(exc: AwsError, action: str, prefix: str) -> AwsError:
    if exc.code in ("AccessDeniedException", "AccessDenied"):
        error = AwsError(
            f"ECR {action} denied for the creation template of prefix {prefix} ({exc.code}): the "
            "identity acting (--role-arn, or the source credentials) needs "
            f"ecr:{action}, and ECR needs a customRoleArn only for tags or KMS"
        )
        error.code = exc.code
        return error
    return exc


def read(ecr: ECRClient, prefix: str, region: str) -> tuple[dict[str, Any] | None, str]:
    """The template of exactly ``prefix`` (None when it has none) and the registry id."""
    try:
        response = aws.call(
            lambda: ecr.describe_repository_creation_templates(prefixes=[prefix]),
            "ecr",
            region,
            f"ECR DescribeRepositoryCreationTemplates for prefix {prefix}",
        )
    except AwsError as exc:
        raise _error(exc, "DescribeRepositoryCreationTemplates", prefix) from None
    registry = str(response.get("registryId") or "")
    for item in response.get("repositoryCreationTemplates", []):
        if item.get("prefix") == prefix:
            return dict(item), registry
    return None, registry


def _current_policy(template: dict[str, Any] | None, prefix: str) -> Document | None:
    text = (template or {}).get("repositoryPolicy") or ""
    if not text.strip():
        return None
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        raise PolicyError(
            f"the repository policy of the creation template of prefix {prefix} is not a "
            "JSON object; fix it by hand before applying"
        )
    return doc


def apply(
    ecr: ECRClient,
    *,
    prefix: str,
    region: str,
    partition: str,
    grant: Grants,
    applied: Sequence[str] = (),
    dry_run: bool = False,
    registry_id: str | None = None,
) -> TemplateOutcome:
    """Merge ``grant`` into the template's policy; create the template if there is none.

    ``applied`` adds to a template's ``appliedFor`` (a new one gets every kind
    when it is empty); nothing is ever removed from it. ``registry_id``, when
    given, must be the registry the client acts in (checked before writing).
    """
    template, registry = read(ecr, prefix, region)
    if registry_id and registry and registry != registry_id:
        # The template API has no registryId: it acts in the caller's own registry.
        raise PolicyError(
            f"the credentials act in registry {registry}, not {registry_id}: act as the "
            "registry account (--role-arn) to set its creation template"
        )
    before = _current_policy(template, prefix)
    after = policy.merge(before, grant, partition)
    had = tuple(str(a) for a in (template or {}).get("appliedFor", []))
    kinds = tuple(dict.fromkeys([*had, *applied])) or APPLIED_FOR
    difference = policy.diff(before, after, f"creation template {prefix} repository policy")
    if template is not None and kinds != had:
        difference += f"appliedFor: {', '.join(had)} -> {', '.join(kinds)}\n"
    outcome = TemplateOutcome(
        prefix, registry, region, before, after, difference, template is not None, kinds, False
    )
    if not difference or dry_run:
        return outcome
    text = policy_text(after, f"the creation template of prefix {prefix}")
    action = "UpdateRepositoryCreationTemplate" if template else "CreateRepositoryCreationTemplate"
    call = (
        ecr.update_repository_creation_template
        if template
        else ecr.create_repository_creation_template
    )
    try:
        response = aws.call(
            lambda: call(prefix=prefix, repositoryPolicy=text, appliedFor=list(kinds)),  # type: ignore[arg-type]
            "ecr",
            region,
            f"ECR {action} for prefix {prefix}",
        )
    except AwsError as exc:
        raise _error(exc, action, prefix) from None
    registry = str(response.get("registryId") or registry)
    return TemplateOutcome(
        prefix, registry, region, before, after, difference, outcome.exists, kinds, True
    )
