"""A pod's own identity in a kubelet request (KEP-4412): who the service account is,
which role it asks for, and the options that decide what happens without one.

Since Kubernetes 1.33 the kubelet can send the credential provider the pulling pod's
projected service-account token (``serviceAccountToken``) and chosen annotations of
its service account (``serviceAccountAnnotations``). The token is a JWT that STS
verifies in AssumeRoleWithWebIdentity; xecr only reads its claims (unverified) to
name the service account: in the session name, in error lines and in the cache key,
so that what was fetched for one service account is never served to another.

The token is a secret. It is registered with the log's redaction filter as soon as
it is read, never appears in a message, a key or a file, and ``repr`` hides it.
Nothing here imports boto3: the AWS side is :mod:`ecr_helper.pod_role`.
"""

from __future__ import annotations

import base64
import binascii
import re

from ecr_helper import log
from ecr_helper._frozen import Frozen
from ecr_helper.config_schema import is_role_arn
from ecr_helper.errors import InputError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

# The annotation kubernetes/cloud-provider-aws's ecr-credential-provider reads, so
# service accounts already annotated for it work unchanged.
ROLE_ANNOTATION = "eks.amazonaws.com/ecr-role-arn"
ANNOTATION_VAR = "XECR_KUBELET_ROLE_ANNOTATION"
UNANNOTATED_VAR = "XECR_KUBELET_UNANNOTATED"
CACHE_TYPE_VAR = "XECR_KUBELET_CACHE_TYPE"
UNANNOTATED_CHOICES = ("node", "refuse")
# tokenAttributes.cacheType in the kubelet's CredentialProviderConfig.
CACHE_TYPES = ("ServiceAccount", "Token")
MAX_TOKEN = 16 * 1024
_SUBJECT = re.compile(r"system:serviceaccount:([^:]+):([^:]+)")
_SESSION_CHARS = re.compile(r"[^\w+=,.@-]", re.ASCII)
_SESSION_MAX = 64
# A token whose exp is this far past is refused even from the cache: the kubelet
# never sends one, and STS would refuse it.
_CLOCK_SKEW = 60.0
# The last second of the year 9999, the latest time Python's datetime can hold.
_MAX_EXP = 253402300799


class KubeletOptions(Frozen):
    """How the kubelet mode treats service accounts, from the provider's ``env``."""

    __slots__ = ("role_annotation", "unannotated", "cache_type")
    role_annotation: str
    unannotated: str
    cache_type: str

    def __init__(
        self,
        role_annotation: str = ROLE_ANNOTATION,
        unannotated: str = "node",
        cache_type: str = "ServiceAccount",
    ) -> None:
        self._set(role_annotation=role_annotation, unannotated=unannotated, cache_type=cache_type)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> KubeletOptions:
        annotation = env.get(ANNOTATION_VAR, "").strip() or ROLE_ANNOTATION
        unannotated = env.get(UNANNOTATED_VAR, "").strip() or "node"
        cache_type = env.get(CACHE_TYPE_VAR, "").strip() or "ServiceAccount"
        if unannotated not in UNANNOTATED_CHOICES:
            raise InputError(
                f"{UNANNOTATED_VAR}={unannotated!r}: expected node (serve service accounts "
                "without a role annotation with the node's identity) or refuse"
            )
        if cache_type not in CACHE_TYPES:
            raise InputError(
                f"{CACHE_TYPE_VAR}={cache_type!r}: expected ServiceAccount or Token, the "
                "tokenAttributes.cacheType of the kubelet's CredentialProviderConfig"
            )
        return cls(annotation, unannotated, cache_type)


class ServiceAccount(Frozen):
    """The service account a token was issued for, read from its claims."""

    __slots__ = ("namespace", "name", "uid", "issuer", "audiences", "expires_at")
    namespace: str
    name: str
    uid: str
    issuer: str
    audiences: tuple[str, ...]
    expires_at: float | None

    def __init__(
        self,
        namespace: str,
        name: str,
        uid: str = "",
        issuer: str = "",
        audiences: tuple[str, ...] = (),
        expires_at: float | None = None,
    ) -> None:
        self._set(
            namespace=namespace,
            name=name,
            uid=uid,
            issuer=issuer,
            audiences=audiences,
            expires_at=expires_at,
        )

    @property
    def label(self) -> str:
        """``namespace/name``, as kubectl names it."""
        return f"{self.namespace}/{self.name}"

    @property
    def subject(self) -> str:
        """The token's ``sub``, which a role's trust policy conditions on."""
        return f"system:serviceaccount:{self.namespace}:{self.name}"


class PodRole(Frozen):
    """A service account's token and the role it asks xecr to pull as."""

    __slots__ = ("account", "role_arn", "token", "session_name")
    _hidden = ("token",)
    account: ServiceAccount
    role_arn: str
    token: str
    session_name: str

    def __init__(self, account: ServiceAccount, role_arn: str, token: str) -> None:
        self._set(
            account=account, role_arn=role_arn, token=token, session_name=session_name(account)
        )

    def describe(self) -> str:
        return f"service account {self.account.label} (role {self.role_arn})"


def claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, unverified (STS verifies the signature)."""
    import json

    parts = token.split(".")
    if len(parts) != 3 or not all(parts):
        raise InputError("the request's serviceAccountToken is not a JWT (header.payload.sig)")
    payload = parts[1]
    try:
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        body = json.loads(raw)
    except (binascii.Error, ValueError, RecursionError):
        raise InputError("the request's serviceAccountToken has no readable JWT claims") from None
    if not isinstance(body, dict):
        raise InputError("the request's serviceAccountToken has no readable JWT claims")
    return body


def service_account(token: str, now: float) -> ServiceAccount:
    """The service account a kubelet-issued token names; refuses an expired token."""
    body = claims(token)
    subject = body.get("sub")
    match = _SUBJECT.fullmatch(subject) if isinstance(subject, str) else None
    if match is None:
        raise InputError(
            "the request's serviceAccountToken is not a Kubernetes service account token "
            "(its sub is not system:serviceaccount:NAMESPACE:NAME)"
        )
    namespace, name = match.groups()
    details = body.get("kubernetes.io")
    uid = ""
    if isinstance(details, dict):
        account = details.get("serviceaccount")
        if isinstance(account, dict) and isinstance(account.get("uid"), str):
            uid = account["uid"]
    audience = body.get("aud")
    if isinstance(audience, str):
        audiences: tuple[str, ...] = (audience,)
    elif isinstance(audience, list):
        audiences = tuple(sorted(a for a in audience if isinstance(a, str)))
    else:
        audiences = ()
    issuer = body.get("iss") if isinstance(body.get("iss"), str) else ""
    expires_at = _expiry(body.get("exp"), f"{namespace}/{name}")
    found = ServiceAccount(namespace, name, uid, str(issuer), audiences, expires_at)
    if expires_at is not None and expires_at < now - _CLOCK_SKEW:
        raise InputError(
            f"the serviceAccountToken of service account {found.label} has expired: "
            "check the node's clock"
        )
    return found


def _expiry(value: object, label: str) -> float | None:
    """The token's ``exp`` as a time the clock can be compared with (None: absent).

    NaN would pass every expiry check (it compares false) and float(10**400)
    overflows: a number outside the years datetime holds is no expiry a kubelet
    sets, and is refused here, before any AWS call.
    """
    if value is None:
        return None
    if (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and -_MAX_EXP <= value <= _MAX_EXP  # NaN compares false
    ):
        return float(value)
    raise InputError(
        f"the serviceAccountToken of service account {label} has an exp claim that is "
        "not a time (seconds since 1970): check the token the kubelet sends"
    )


def session_name(account: ServiceAccount) -> str:
    """``name@namespace``, in STS's alphabet and at most 64 characters.

    A longer one keeps its start and ends in a digest of the whole, so two service
    accounts never share a session name in CloudTrail.
    """
    name = _SESSION_CHARS.sub("-", f"{account.name}@{account.namespace}")
    if len(name) <= _SESSION_MAX:
        return name
    from ecr_helper.cache.file import digest

    tail = digest(f"{account.namespace}/{account.name}")[:8]
    return f"{name[: _SESSION_MAX - 9]}-{tail}"


def pod_role(
    token: str,
    annotations: Mapping[str, Any],
    options: KubeletOptions,
    now: float,
) -> tuple[ServiceAccount, PodRole | None]:
    """The service account of the request and its role, or None when it has no role.

    Raises :class:`InputError` for a token that names no service account and for an
    annotation that is not a role ARN.
    """
    if len(token) > MAX_TOKEN:
        raise InputError(f"the request's serviceAccountToken is longer than {MAX_TOKEN} bytes")
    log.register_secret(token)
    account = service_account(token, now)
    role = annotations.get(options.role_annotation)
    if role is None:
        return account, None
    if not isinstance(role, str) or not is_role_arn(role.strip()):
        raise InputError(
            f"service account {account.label}: annotation {options.role_annotation} is not an "
            "IAM role ARN (arn:aws:iam::<12 digits>:role/NAME)"
        )
    return account, PodRole(account, role.strip(), token)


def cache_key(base: str, pod: PodRole) -> str:
    """The cache key of a token fetched as ``pod``'s role for the registry of ``base``.

    ``base`` is the registry's ordinary key (host, chain, external id, profile); on top
    come the cluster (issuer), the service account's namespace, name and uid, the
    token's audience and the role. Two service accounts never share an entry, even
    with the same role annotation; a service account deleted and made again (a new
    uid) does not inherit the old one's. The token itself is not in the key.
    """
    import json

    from ecr_helper.cache.file import digest

    account = pod.account
    parts = [
        "pod-role",
        base,
        account.issuer,
        account.namespace,
        account.name,
        account.uid,
        list(account.audiences),
        pod.role_arn,
    ]
    return digest(json.dumps(parts))[:32]
