"""The registry token: GetAuthorizationToken, from ECR or ECR Public, as the chain's last hop.

:func:`fetch_token` assumes the registry's configured chain (:mod:`ecr_helper.aws`)
and asks ECR for the caller's token (ECR Public's for ``public.ecr.aws``). No
``registryIds`` is sent: it is deprecated, and ECR's token is valid for every
registry of its region the caller may read, whichever id is named, which is
why the cache shares it (:func:`ecr_helper.cache.cache_key`).
:func:`authorization_token` asks with credentials already in hand (the
kubelet's pod roles). The answer becomes a :class:`Token` stamped with the
local clock; a token already expired by that clock is refused.
Imported only when the cache has missed: it imports boto3 through ``aws``.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from botocore import exceptions as bx

from ecr_helper import aws, log
from ecr_helper.errors import AwsError, PublicTokenDenied, TokenDenied
from ecr_helper.token import Token

if TYPE_CHECKING:
    import boto3

    from ecr_helper.config import RegistrySettings


def fetch_token(
    settings: RegistrySettings,
    quick: bool = False,
    clock: Callable[[], float] = time.time,
    sessions: Callable[[str | None], boto3.Session] | None = None,
) -> Token:
    """Assume the configured chain and fetch the registry's token from ECR
    (or, for ECR Public, from the ``ecr-public`` service, which has no registry ids).
    ``sessions`` gives the source session of a profile (see :func:`aws.assume_for`)."""
    timeouts = aws.QUICK if quick else aws.NORMAL
    sess, creds = aws.assume_for(settings, timeouts, sessions)
    if settings.role_arn:
        identity = settings.role_arn
    elif settings.source_profile:
        identity = f"profile {settings.source_profile}"
    else:
        identity = "the source credentials"
    return authorization_token(sess, creds, settings, identity, timeouts, clock)


def authorization_token(
    sess: boto3.Session,
    creds: dict[str, Any] | None,
    settings: RegistrySettings,
    identity: str,
    timeouts: aws.Timeouts,
    clock: Callable[[], float] = time.time,
) -> Token:
    """GetAuthorizationToken for the registry (ECR, or ECR Public), as ``creds``
    (``identity`` names them)."""
    service = "ecr-public" if settings.public else "ecr"
    client = aws.client(sess, service, settings.region, timeouts, creds)

    def denied(exc: bx.ClientError) -> AwsError:
        code = aws.error_code(exc)
        if code in ("AccessDeniedException", "AccessDenied"):
            if settings.public:
                return PublicTokenDenied(identity, code)
            return TokenDenied(settings.registry_id, identity, code)
        if settings.public:
            return aws.generic_error(exc, "ECR Public GetAuthorizationToken")
        return aws.generic_error(
            exc, f"ECR GetAuthorizationToken for registry {settings.registry_id}"
        )

    if settings.public:
        response = aws.call_with(client.get_authorization_token, service, settings.region, denied)
        # ECR Public answers one object, private ECR a list of them.
        data = response.get("authorizationData")
    else:
        response = aws.call_with(client.get_authorization_token, service, settings.region, denied)
        data = (response.get("authorizationData") or [None])[0]
    return _token_from(data, settings, clock())


def _token_from(data: Any, settings: RegistrySettings, now: float) -> Token:
    answerer = "ECR Public" if settings.public else "ECR"
    try:
        decoded = base64.b64decode(data["authorizationToken"]).decode()
        expires_at = data["expiresAt"].timestamp()
    except (KeyError, IndexError, ValueError, AttributeError, TypeError):
        raise AwsError(
            f"{answerer} answered GetAuthorizationToken for {settings.subject} with no usable token"
        ) from None
    username, _, password = decoded.partition(":")
    log.register_secret(password)
    log.register_secret(data["authorizationToken"])
    if not password or expires_at <= now:
        raise AwsError(
            f"{answerer} returned an already-expired token for {settings.subject} "
            "(check the system clock)"
        )
    return Token(
        username=username,
        secret=password,
        issued_at=now,
        expires_at=expires_at,
        registry=settings.host,
        registry_id=settings.registry_id,
        region=settings.region,
        role_arn=settings.role_arn,
    )
