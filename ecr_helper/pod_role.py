"""The AWS side of a pod's own role: AssumeRoleWithWebIdentity with the pod's
service-account token, the registry's configured chain on top, then ECR.

The web-identity role is the *source* identity: the configured roles (and the
external id, on the last) are assumed with its credentials, and the last hop asks
ECR for the token; a registry with no configured role is asked by the pod's role
itself. AssumeRoleWithWebIdentity is an unsigned call (the token is the
credential), so the node's own credentials are neither needed nor looked up.

Imported only after the cache missed, like :mod:`ecr_helper.aws`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from botocore import UNSIGNED
from botocore import exceptions as bx
from botocore.config import Config as BotoConfig

from ecr_helper import aws, ecr, log
from ecr_helper.errors import AwsError, WebIdentityDenied

if TYPE_CHECKING:
    from collections.abc import Callable

    import boto3

    from ecr_helper.config import RegistrySettings
    from ecr_helper.service_account import PodRole
    from ecr_helper.token import Token

# STS's answers when the role's trust policy, the OIDC provider or the token is at fault.
_REFUSED = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "InvalidIdentityToken",
        "IDPRejectedClaim",
        "ExpiredTokenException",
    }
)


def assume_web_identity(
    sess: boto3.Session,
    pod: PodRole,
    region: str,
    duration: int | None,
    timeouts: aws.Timeouts,
) -> dict[str, Any]:
    """The credentials of ``pod``'s role, from its service-account token."""
    config = aws.boto_config(timeouts).merge(BotoConfig(signature_version=UNSIGNED))

    def make() -> Any:
        return sess.client("sts", region_name=region, config=config)

    sts = aws.call_with(make, "sts", region, aws.session_error)

    def refused(exc: bx.ClientError) -> AwsError:
        code = aws.error_code(exc)
        if code in _REFUSED:
            return WebIdentityDenied(pod.role_arn, pod.account, code)
        return aws.generic_error(
            exc, f"AssumeRoleWithWebIdentity {pod.role_arn} for {pod.describe()}"
        )

    response = aws.call_with(
        lambda: sts.assume_role_with_web_identity(
            RoleArn=pod.role_arn,
            RoleSessionName=pod.session_name,
            WebIdentityToken=pod.token,
            DurationSeconds=duration or aws.DEFAULT_DURATION,
        ),
        "sts",
        region,
        refused,
    )
    creds: dict[str, Any] = response["Credentials"]
    log.register_secret(creds["SecretAccessKey"])
    log.register_secret(creds["SessionToken"])
    log.debug(f"assumed {pod.role_arn} with the token of service account {pod.account.label}")
    return creds


def fetch_token(
    settings: RegistrySettings,
    pod: PodRole,
    quick: bool = False,
    clock: Callable[[], float] = time.time,
) -> Token:
    """The registry's token, fetched as ``pod``'s role and then the configured chain."""
    timeouts = aws.QUICK if quick else aws.NORMAL
    sess = aws.call_with(lambda: aws.session(None), "sts", settings.region, aws.session_error)
    creds = assume_web_identity(sess, pod, settings.region, settings.duration_seconds, timeouts)
    roles = settings.role_arns
    if roles[:1] == (pod.role_arn,):
        # A chain written for nodes may start at the pod's own role: it is had already.
        roles = roles[1:]
    try:
        last = aws.assume_chain(
            sess,
            roles,
            settings.region,
            external_id=settings.external_id,
            # CloudTrail in the registry's account names the service account too.
            session_name=settings.role_session_name or pod.session_name,
            duration=settings.duration_seconds,
            timeouts=timeouts,
            source=creds,
        )
        identity = settings.role_arn or pod.role_arn
        return ecr.authorization_token(sess, last, settings, identity, timeouts, clock)
    except AwsError as exc:
        error = AwsError(f"{exc} (pulling for {pod.describe()})")
        error.code = exc.code
        raise error from None
