"""Applying xecr's grants to a repository's policy through an ECR client, without clobbering.

This module owns the read-merge-write of one repository policy: read the
current policy (GetRepositoryPolicy; none is an empty start), merge xecr's
grants into it (:func:`ecr_helper.policy.merge.merge` keeps every other
statement), and write it with SetRepositoryPolicy only when it changed.
The ECR client is a parameter: the CLI builds it acting through the
registry account's role, the tests point one at the loopback fake.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypedDict

from ecr_helper import aws, policy
from ecr_helper.errors import AwsError, PolicyError
from ecr_helper.policy import Document, Grants

if TYPE_CHECKING:
    from mypy_boto3_ecr.client import ECRClient


@dataclass(frozen=True)
class ApplyOutcome:
    """What applying did. ``diff`` is empty when the policy already granted everything."""

    repository: str
    registry_id: str
    region: str
    before: Document | None
    after: Document
    diff: str
    written: bool

    @property
    def changed(self) -> bool:
        return bool(self.diff)

    @property
    def where(self) -> str:
        registry = f"registry {self.registry_id}" if self.registry_id else "the default registry"
        return f"repository {self.repository} in {registry} ({self.region})"


class RegistryId(TypedDict, total=False):
    """The optional ``registryId`` of ECR's repository calls (absent: the caller's own)."""

    registryId: str


def registry_param(registry_id: str | None) -> RegistryId:
    return {"registryId": registry_id} if registry_id else {}


def explain(
    exc: AwsError, action: str, repository: str, registry_id: str | None, region: str
) -> AwsError:
    """Turn the codes a policy user can act on into a line that says what to check."""
    registry = f"registry {registry_id}" if registry_id else "the credentials' own registry"
    if exc.code == "RepositoryNotFoundException":
        error = AwsError(
            f"repository {repository} not found in {registry} ({region}): check --repository, "
            "--registry-id and --region, and act as the registry account (--role-arn)"
        )
    elif exc.code in ("AccessDeniedException", "AccessDenied"):
        error = AwsError(
            f"ECR {action} denied for repository {repository} in {registry} ({exc.code}): the "
            "identity acting (--role-arn, or the source credentials) needs "
            "ecr:GetRepositoryPolicy and ecr:SetRepositoryPolicy on it"
        )
    elif exc.code == "InvalidParameterException" and action == "SetRepositoryPolicy":
        error = AwsError(
            f"ECR rejected the merged policy of repository {repository} in {registry} "
            f"({exc.code}): check that every account, role and user granted exists"
        )
    else:
        return exc
    error.code = exc.code
    return error


def read_policy(
    ecr: ECRClient, repository: str, registry_id: str | None, region: str
) -> tuple[Document | None, str]:
    """The repository's current policy (None when it has none) and the registry id."""
    try:
        response = aws.call(
            lambda: ecr.get_repository_policy(
                repositoryName=repository, **registry_param(registry_id)
            ),
            "ecr",
            region,
            f"ECR GetRepositoryPolicy for repository {repository}",
        )
    except AwsError as exc:
        if exc.code == "RepositoryPolicyNotFoundException":
            return None, registry_id or ""
        raise explain(exc, "GetRepositoryPolicy", repository, registry_id, region) from None
    registry = str(response.get("registryId") or registry_id or "")
    try:
        doc = json.loads(response["policyText"])
    except (KeyError, TypeError, ValueError):
        raise PolicyError(
            f"the current policy of repository {repository} in registry {registry} is not "
            "valid JSON; fix it by hand before applying"
        ) from None
    if not isinstance(doc, dict):
        raise PolicyError(
            f"the current policy of repository {repository} in registry {registry} is not "
            "a JSON object; fix it by hand before applying"
        )
    return doc, registry


# ECR's limit on a repository policy's text (RepositoryPolicyText, max 10240).
MAX_POLICY_CHARS = 10240


def policy_text(doc: Document, what: str) -> str:
    """The text to write: indented when it fits ECR's limit, else compact, else refused."""
    text = policy.render(doc)
    if len(text) > MAX_POLICY_CHARS:
        text = json.dumps(doc, separators=(",", ":"))
    if len(text) > MAX_POLICY_CHARS:
        raise PolicyError(
            f"the merged policy of {what} would be {len(text)} characters, "
            f"over ECR's limit of {MAX_POLICY_CHARS}: grant an organization or fewer "
            "principals, or remove statements by hand"
        )
    return text


def apply(
    ecr: ECRClient,
    *,
    repository: str,
    registry_id: str | None,
    region: str,
    partition: str,
    grant: Grants,
    dry_run: bool = False,
) -> ApplyOutcome:
    """Merge ``grant`` into the repository's policy and write it unless ``dry_run``.

    Nothing is written when the merged policy means the same as the current
    one, so applying the same grant twice makes one write at most.
    """
    before, registry = read_policy(ecr, repository, registry_id, region)
    after = policy.merge(before, grant, partition)
    difference = policy.diff(before, after, f"repository {repository} policy")
    written = False
    text = (
        policy_text(after, f"repository {repository}") if difference else ""
    )  # dry runs check it too
    if difference and not dry_run:
        try:
            response = aws.call(
                lambda: ecr.set_repository_policy(
                    repositoryName=repository,
                    policyText=text,
                    **registry_param(registry_id),
                ),
                "ecr",
                region,
                f"ECR SetRepositoryPolicy for repository {repository}",
            )
        except AwsError as exc:
            raise explain(exc, "SetRepositoryPolicy", repository, registry_id, region) from None
        registry = str(response.get("registryId") or registry)
        written = True
    return ApplyOutcome(repository, registry, region, before, after, difference, written)
