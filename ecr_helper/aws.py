"""xecr's calls to AWS: source credentials, clients with bounded timeouts, the
AssumeRole chain, GetCallerIdentity, and errors a user can act on.
GetAuthorizationToken, the chain's last hop, is :mod:`ecr_helper.ecr`'s.

With :mod:`ecr_helper.ecr` and :mod:`ecr_helper.pod_role` it is the only code
that imports boto3, and it is imported only after the cache missed (and the
lock was won). Source credentials come from boto3's standard chain
(environment, profiles, SSO, credential_process, web identity, container and
instance metadata), with the metadata probe held to one short attempt so a
machine without credentials fails in about a second, not a minute.
``AWS_ENDPOINT_URL`` and its per-service forms are honoured by botocore.

Every session is made by :func:`session`, and loads botocore's own data only:
never its customer data (``~/.aws/models``, the ``data_path`` setting,
``AWS_DATA_PATH``), whose endpoint rule sets would decide where signed
requests go: root with another user's HOME must not send them where she says.
"""

from __future__ import annotations

import functools
import os
import re
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
import botocore.session
from botocore import exceptions as bx
from botocore.config import Config as BotoConfig
from botocore.loaders import Loader

from ecr_helper import log, source
from ecr_helper.errors import (
    THROTTLE_CODES,
    AssumeRoleDenied,
    AwsError,
    EndpointError,
    NoCredentialsError,
    SsoLoginNeeded,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from mypy_boto3_sts.client import STSClient

    from ecr_helper.config import RegistrySettings


@dataclass(frozen=True)
class Timeouts:
    """Per-call bounds. ``attempts`` counts the first try."""

    connect: float
    read: float
    attempts: int


# A call that hangs costs attempts x (connect or read) plus backoff: with these
# a `get` ends in about 15 s at worst, under the documented 20 s bound.
NORMAL = Timeouts(connect=2.0, read=4.0, attempts=3)
# Refreshing a token that is still valid must not hold up a pull.
QUICK = Timeouts(connect=1.0, read=2.0, attempts=1)
DEFAULT_DURATION = 900

_CREDENTIAL_CODES = frozenset(
    {
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
        "InvalidSignatureException",
    }
)
# Called with each botocore session made here: the daemon's metrics (--listen) hook in.
SESSION_HOOKS: list[Callable[[botocore.session.Session], None]] = []
# botocore sessions are not thread-safe, their clients are: the daemon's fetch
# threads share one session per source identity (ecr_helper.daemon.clients), so
# clients are made one at a time.
_CLIENT_LOCK = threading.Lock()


def default_session_name(env: dict[str, str] | None = None) -> str:
    environ = os.environ if env is None else env
    user = environ.get("USER") or environ.get("LOGNAME") or str(os.geteuid())
    return ("xecr-" + re.sub(r"[^\w+=,.@-]", "-", user, flags=re.ASCII))[:64]


def session(profile: str | None) -> boto3.Session:
    """A boto3 session on the standard chain with a quick metadata probe."""
    source.refuse_unsafe_files(os.environ)  # root with another user's HOME (sudo -E)
    core = botocore.session.Session(profile=profile)
    core.register_component("data_loader", builtin_loader())
    core.set_config_variable("metadata_service_timeout", 1)
    core.set_config_variable("metadata_service_num_attempts", 1)
    core.set_config_variable("sts_regional_endpoints", "regional")
    for hook in SESSION_HOOKS:
        hook(core)
    return boto3.Session(botocore_session=core)


def builtin_loader() -> Loader:
    """A loader of botocore's bundled data alone (boto3 adds its own bundled folder).

    botocore's default searches ``~/.aws/models`` and the ``data_path`` folders
    first; xecr needs none of that, for anyone."""
    return Loader(extra_search_paths=[Loader.BUILTIN_DATA_PATH], include_default_search_paths=False)


def boto_config(timeouts: Timeouts) -> BotoConfig:
    return BotoConfig(
        connect_timeout=timeouts.connect,
        read_timeout=timeouts.read,
        retries={"mode": "standard", "total_max_attempts": timeouts.attempts},
        user_agent_extra="xecr",
    )


def client(
    sess: boto3.Session,
    service: str,
    region: str,
    timeouts: Timeouts,
    creds: dict[str, Any] | None,
) -> Any:
    extra: dict[str, Any] = {}
    if creds is not None:
        extra = {
            "aws_access_key_id": creds["AccessKeyId"],
            "aws_secret_access_key": creds["SecretAccessKey"],
            "aws_session_token": creds["SessionToken"],
        }
    try:
        # The service name is a plain str here, which boto3-stubs' Literal
        # overloads cannot match.
        with _CLIENT_LOCK:
            return sess.client(  # type: ignore[call-overload]
                service, region_name=region, config=boto_config(timeouts), **extra
            )
    except bx.BotoCoreError as exc:
        mapped = _describe(exc, service, region)
        if mapped is None:
            raise AwsError(f"cannot set up the AWS {service.upper()} client ({exc})") from None
        raise mapped from None


def sts_client(
    sess: boto3.Session, region: str, timeouts: Timeouts, creds: dict[str, Any] | None
) -> STSClient:
    """An STS client (typed with boto3-stubs) acting as ``creds``, else the session's source."""
    sts: STSClient = client(sess, "sts", region, timeouts, creds)
    return sts


def _describe(exc: Exception, service: str, region: str) -> AwsError | None:
    """Map the failures that are not ClientErrors: credentials and the network."""
    if isinstance(exc, bx.ProfileNotFound):
        return NoCredentialsError(
            f"AWS profile {exc.kwargs.get('profile')!r} not found: check source_profile in the "
            "xecr config, AWS_PROFILE, and ~/.aws/config"
        )
    if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError):
        return NoCredentialsError(
            "no AWS credentials found: set AWS_PROFILE or source_profile, configure ~/.aws, "
            "or run where a role is attached (instance profile, task role, web identity)"
        )
    if isinstance(exc, bx.SSOError | bx.TokenRetrievalError):
        return SsoLoginNeeded("the AWS SSO login has expired or is missing")  # see deadline
    if isinstance(exc, bx.CredentialRetrievalError):
        return NoCredentialsError(
            f"AWS source credentials could not be loaded ({type(exc).__name__}): "
            "for SSO run `aws sso login`; check the profile's credential settings"
        )
    if isinstance(exc, bx.ConnectTimeoutError | bx.ReadTimeoutError):
        return EndpointError(
            f"AWS {service.upper()} in {region} did not answer in time: check the network, "
            "proxy settings and AWS_ENDPOINT_URL"
        )
    if isinstance(exc, bx.EndpointConnectionError | bx.ConnectionClosedError | bx.HTTPClientError):
        return EndpointError(
            f"cannot reach AWS {service.upper()} in {region}: check the network, "
            "proxy settings and AWS_ENDPOINT_URL"
        )
    return None


def error_code(exc: bx.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "Unknown"))


def generic_error(exc: bx.ClientError, what: str) -> AwsError:
    code = error_code(exc)
    if code in _CREDENTIAL_CODES:
        error = AwsError(
            f"{what} failed: AWS rejected the credentials ({code}); refresh the source "
            "credentials (aws sso login, new keys) and check the system clock"
        )
    elif code in THROTTLE_CODES:
        error = AwsError(f"{what} failed: throttled by AWS ({code}) after retries; try again")
    else:
        error = AwsError(f"{what} failed ({code}){_aws_message(exc)}")
    error.code = code
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    error.status = status if isinstance(status, int) else 0
    return error


def _aws_message(exc: bx.ClientError) -> str:
    """AWS's own explanation, on one line, bounded, with secrets removed."""
    message = str(exc.response.get("Error", {}).get("Message", "")).strip()
    if not message:
        return ""
    message = log.redact(" ".join(message.split()))
    return f": {message[:300]}"


def call_with(
    fn: Callable[[], Any],
    service: str,
    region: str,
    on_client_error: Callable[[bx.ClientError], AwsError],
) -> Any:
    try:
        return fn()
    except bx.ClientError as exc:
        log.debug(f"{service} error: {exc}")
        raise on_client_error(exc) from None
    except bx.BotoCoreError as exc:
        mapped = _describe(exc, service, region)
        log.debug(f"{service} failure: {type(exc).__name__}: {exc}")
        if mapped is None:
            raise AwsError(f"AWS {service.upper()} call failed ({type(exc).__name__})") from None
        raise mapped from None


def assume_chain(
    sess: boto3.Session,
    role_arns: Sequence[str],
    region: str,
    *,
    external_id: str | None = None,
    session_name: str | None = None,
    duration: int | None = None,
    timeouts: Timeouts = NORMAL,
    source: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """Assume each role in order; external id and session name go with the last hop.

    The first hop is made with ``source`` (credentials already had, like a pod's
    web-identity role: then every hop is a chained one) or else the session's.
    Returns the last hop's credentials, or ``source`` for an empty chain.
    """
    creds = source
    for index, role in enumerate(role_arns):
        last = index == len(role_arns) - 1
        params: dict[str, Any] = {
            "RoleArn": role,
            "RoleSessionName": (session_name if last and session_name else None)
            or default_session_name(),
            # AWS caps every role-chained session (each hop after the first) at an hour.
            "DurationSeconds": min(
                duration or DEFAULT_DURATION, 3600 if index or source else 43200
            ),
        }
        if last and external_id:
            params["ExternalId"] = external_id
        sts = sts_client(sess, region, timeouts, creds)

        def denied(exc: bx.ClientError, role: str = role) -> AwsError:
            if exc.operation_name != "AssumeRole":  # the source (web identity) was refused
                return generic_error(exc, f"{exc.operation_name} for the source identity")
            code = error_code(exc)
            if code in ("AccessDenied", "AccessDeniedException"):
                return AssumeRoleDenied(role, code)
            return generic_error(exc, f"AssumeRole {role}")

        response = call_with(functools.partial(sts.assume_role, **params), "sts", region, denied)
        creds = response["Credentials"]
        log.register_secret(creds["SecretAccessKey"])
        log.register_secret(creds["SessionToken"])
        log.debug(f"assumed {role} (hop {index + 1} of {len(role_arns)})")
    return creds


def assume_for(
    settings: RegistrySettings,
    timeouts: Timeouts = NORMAL,
    sessions: Callable[[str | None], boto3.Session] | None = None,
) -> tuple[boto3.Session, dict[str, Any] | None]:
    """The source session and the credentials of the registry's role chain.

    ``sessions`` gives the source session of a profile (the daemon shares them);
    by default a new one is made."""
    return _source_and_chain(
        settings.source_profile,
        settings.role_arns,
        settings.region,
        external_id=settings.external_id,
        session_name=settings.role_session_name,
        duration=settings.duration_seconds,
        timeouts=timeouts,
        sessions=sessions,
    )


def _source_and_chain(
    profile: str | None,
    role_arns: Sequence[str],
    region: str,
    *,
    external_id: str | None = None,
    session_name: str | None = None,
    duration: int | None = None,
    timeouts: Timeouts = NORMAL,
    sessions: Callable[[str | None], boto3.Session] | None = None,
) -> tuple[boto3.Session, dict[str, Any] | None]:
    make = sessions or session
    sess = call_with(lambda: make(profile), "sts", region, session_error)
    creds = assume_chain(
        sess,
        role_arns,
        region,
        external_id=external_id,
        session_name=session_name,
        duration=duration,
        timeouts=timeouts,
    )
    return sess, creds


def session_error(exc: bx.ClientError) -> AwsError:
    return generic_error(exc, "AWS session")


def make_client(
    service: str,
    region: str,
    *,
    role_arns: Sequence[str] = (),
    external_id: str | None = None,
    source_profile: str | None = None,
    session_name: str | None = None,
    timeouts: Timeouts = NORMAL,
) -> Any:
    """A boto3 client for ``service`` acting as the last role of the chain."""
    sess, creds = _source_and_chain(
        source_profile,
        role_arns,
        region,
        external_id=external_id,
        session_name=session_name,
        timeouts=timeouts,
    )
    return client(sess, service, region, timeouts, creds)


def caller_identity(
    region: str, source_profile: str | None = None, timeouts: Timeouts = NORMAL
) -> str:
    """The ARN the source credentials belong to (GetCallerIdentity)."""
    sess = call_with(lambda: session(source_profile), "sts", region, session_error)
    sts = sts_client(sess, region, timeouts, None)
    response = call_with(
        sts.get_caller_identity, "sts", region, lambda e: generic_error(e, "GetCallerIdentity")
    )
    return str(response["Arn"])


def call(fn: Callable[[], Any], service: str, region: str, what: str) -> Any:
    """Run one AWS call, mapping its failures to one-line :class:`AwsError`s."""
    return call_with(fn, service, region, lambda e: generic_error(e, what))
