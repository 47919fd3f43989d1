"""``xecr policy``'s core: the documents (:mod:`.documents`), merging xecr's grants into a
repository's current policy (:mod:`.merge`) and applying it through ECR (:mod:`.apply`); a
pod role's trust policy is :mod:`.web_identity`'s. At organization scale: granting an
organization or OU (:mod:`.orgs`), many repositories at once (:mod:`.bulk`), creation
templates (:mod:`.template`) and the audit of who can pull (:mod:`.audit`).

This package's public names are the documents' and the merge's; the other modules (some
call AWS) are imported by name.
"""

from __future__ import annotations

from ecr_helper.policy.documents import (
    PARTITIONS,
    PULL_ACTIONS,
    PULL_SID,
    PUSH_ACTIONS,
    PUSH_SID,
    TOKEN_ACTION,
    TOKEN_SID,
    TRUST_SID,
    VERSION,
    Document,
    Grants,
    RepositoryRef,
    client_policy,
    diff,
    external_id,
    grants,
    principal_arn,
    render,
    repository_arn,
    repository_ref,
    role_account,
    role_arn,
    same,
    trust_policy,
)
from ecr_helper.policy.merge import merge, repository_policy

__all__ = [
    "PARTITIONS",
    "PULL_ACTIONS",
    "PULL_SID",
    "PUSH_ACTIONS",
    "PUSH_SID",
    "TOKEN_ACTION",
    "TOKEN_SID",
    "TRUST_SID",
    "VERSION",
    "Document",
    "Grants",
    "RepositoryRef",
    "client_policy",
    "diff",
    "external_id",
    "grants",
    "merge",
    "principal_arn",
    "render",
    "repository_arn",
    "repository_policy",
    "repository_ref",
    "role_account",
    "role_arn",
    "same",
    "trust_policy",
]
