"""The trust policy of a pod's own role: which service accounts of which cluster may
assume it with their tokens (``xecr policy trust --oidc-provider``).

A pod's role is assumed with AssumeRoleWithWebIdentity, so its trust policy names the
cluster's IAM OIDC provider as a ``Federated`` principal and conditions on the token's
``sub`` (``system:serviceaccount:NAMESPACE:NAME``) and ``aud`` (the kubelet's
``serviceAccountTokenAudience``). Pure: nothing here calls AWS.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ecr_helper.errors import UsageError
from ecr_helper.policy.documents import VERSION

SID = "XecrPodAssumeRoleWithWebIdentity"
AUDIENCE = "sts.amazonaws.com"
_PROVIDER_ARN = re.compile(
    r"arn:(?P<partition>aws|aws-cn|aws-us-gov|aws-iso|aws-iso-b|aws-iso-e|aws-iso-f):iam::"
    r"(?P<account>[0-9]{12}):oidc-provider/(?P<url>[A-Za-z0-9.-]+(?:/[A-Za-z0-9._-]+)*)",
    re.ASCII,
)
_NAMESPACE = re.compile(r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?", re.ASCII)
_NAME = re.compile(r"[a-z0-9](?:[-a-z0-9.]{0,251}[a-z0-9])?", re.ASCII)
_AUDIENCE = re.compile(r"[\x21-\x7e]{1,255}", re.ASCII)


def provider_url(arn: str) -> str:
    """The issuer host and path an OIDC provider ARN names (the condition keys' prefix)."""
    match = _PROVIDER_ARN.fullmatch(arn.strip())
    if match is None:
        raise UsageError(
            f"invalid --oidc-provider {arn!r}: expected the IAM OIDC provider's ARN, "
            "arn:aws:iam::<account>:oidc-provider/<issuer host and path> "
            "(aws iam list-open-id-connect-providers)"
        )
    return match["url"]


def subject(text: str) -> str:
    """``NAMESPACE:NAME`` (or ``NAMESPACE:*``) as the token's ``sub``."""
    namespace, colon, name = text.strip().partition(":")
    if (
        not colon
        or not _NAMESPACE.fullmatch(namespace)
        or not (name == "*" or _NAME.fullmatch(name))
    ):
        raise UsageError(
            f"invalid --service-account {text!r}: expected NAMESPACE:NAME "
            "(or NAMESPACE:* for every service account of a namespace)"
        )
    return f"system:serviceaccount:{namespace}:{name}"


def trust_policy(
    provider_arn: str, service_accounts: Sequence[str], audience: str = AUDIENCE
) -> dict[str, Any]:
    """The trust policy letting these service accounts' tokens assume the role."""
    url = provider_url(provider_arn)
    if not service_accounts:
        raise UsageError("name the pods' service accounts with --service-account NAMESPACE:NAME")
    if not _AUDIENCE.fullmatch(audience):
        raise UsageError(f"invalid --audience {audience!r}")
    subjects = list(dict.fromkeys(subject(s) for s in service_accounts))
    # StringLike for a namespace's every service account; exact names match alike.
    test = "StringLike" if any(s.endswith(":*") for s in subjects) else "StringEquals"
    condition: dict[str, Any] = {"StringEquals": {f"{url}:aud": audience}}
    condition.setdefault(test, {})[f"{url}:sub"] = subjects[0] if len(subjects) == 1 else subjects
    statement = {
        "Sid": SID,
        "Effect": "Allow",
        "Principal": {"Federated": provider_arn.strip()},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": condition,
    }
    return {"Version": VERSION, "Statement": [statement]}
