"""The exceptions xecr raises: each one's text is the single line a user sees.

Every class subclasses a builtin as well (filelock's habit), so callers that
know nothing of xecr can still catch them sensibly, and each carries the
context (file, key, role ARN, registry id) as attributes for tests and logs.
Messages never contain secrets.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ecr_helper.service_account import ServiceAccount

NOT_FOUND = "credentials not found in native keychain"
# docker-credential-helpers' text for an empty address, which its client library recognises.
NO_SERVER_URL = "no credentials server URL"
# The error codes with which STS and ECR say "slow down".
THROTTLE_CODES = frozenset({"Throttling", "ThrottlingException", "TooManyRequestsException"})


class XecrError(Exception):
    """Base class. ``str(error)`` is one line that says what failed and what to check.

    ``registry`` is the host a protocol ``get`` failed for, when it is one xecr
    serves: the CLI then says the line on stderr too, where pulls show it.
    """

    registry: str | None = None


class NotOurRegistry(XecrError, LookupError):
    """The address is neither an ECR host nor a configured alias.

    Docker expects exactly this text from a helper that holds no credentials.
    """

    def __init__(self, address: str = "") -> None:
        super().__init__(NOT_FOUND)
        self.address = address


class InputError(XecrError, ValueError):
    """What arrived on stdin or argv cannot be used."""


class ConfigError(XecrError, ValueError):
    """The configuration file is unreadable or invalid."""

    def __init__(self, path: str, key: str, problem: str) -> None:
        # Keys come from the file and may hold anything, newlines included:
        # escape them so the message stays one line.
        self.raw_key = key
        key = key.encode("unicode_escape").decode("ascii")
        where = f"{path}: {key}" if key else path
        super().__init__(f"config error in {where}: {problem}")
        self.path = path
        self.key = key
        self.problem = problem


class CacheError(XecrError, OSError):
    """The token cache cannot be used safely (or at all); callers go on uncached."""


class AwsError(XecrError, RuntimeError):
    """A call to AWS failed. Never cached; the caller may still serve a valid token."""

    code: str = ""
    status: int = 0  # the HTTP status AWS answered with; 0 when it did not answer

    @property
    def overloaded(self) -> bool:
        """AWS throttled the call or failed on its side (5xx): a retry must wait its turn."""
        return self.code in THROTTLE_CODES or 500 <= self.status <= 599


class NoCredentialsError(AwsError):
    """No source credentials were found in the AWS credential chain."""


class SsoLoginNeeded(NoCredentialsError):
    """The source profile rests on an IAM Identity Center login that must be renewed."""


class EndpointError(AwsError, ConnectionError):
    """An AWS endpoint could not be reached, or did not answer in time."""


class AssumeRoleDenied(AwsError, PermissionError):
    """STS refused AssumeRole for a role of the chain."""

    def __init__(self, role_arn: str, code: str) -> None:
        super().__init__(
            f"AssumeRole denied for {role_arn} ({code}): check that role's trust policy "
            "(principal and external id) and the caller's sts:AssumeRole permission"
        )
        self.role_arn = role_arn
        self.code = code


class WebIdentityDenied(AwsError, PermissionError):
    """STS refused AssumeRoleWithWebIdentity for a pod's role with its service-account token."""

    def __init__(self, role_arn: str, account: ServiceAccount, code: str) -> None:
        audience = ",".join(account.audiences) or "sts.amazonaws.com"
        super().__init__(
            f"AssumeRoleWithWebIdentity denied for {role_arn} as service account "
            f"{account.label} ({code}): that role's trust policy must allow the cluster's "
            f"OIDC provider with sub {account.subject} and aud {audience} "
            "(xecr policy trust --oidc-provider prints one)"
        )
        self.role_arn = role_arn
        self.service_account = account.label
        self.code = code


class TokenDenied(AwsError, PermissionError):
    """ECR refused GetAuthorizationToken."""

    def __init__(self, registry_id: str, identity: str, code: str) -> None:
        super().__init__(
            f"ECR GetAuthorizationToken denied for registry {registry_id} as {identity} "
            f"({code}): that identity needs ecr:GetAuthorizationToken"
        )
        self.registry_id = registry_id
        self.identity = identity
        self.code = code


class PublicTokenDenied(TokenDenied):
    """ECR Public refused GetAuthorizationToken."""

    def __init__(self, identity: str, code: str) -> None:
        # Not TokenDenied's text: ECR Public has no registry id, and other actions.
        AwsError.__init__(
            self,
            f"ECR Public GetAuthorizationToken denied as {identity} ({code}): that identity "
            "needs ecr-public:GetAuthorizationToken and sts:GetServiceBearerToken "
            "(`xecr policy client --public` prints that policy)",
        )
        self.registry_id = ""
        self.identity = identity
        self.code = code


class UsageError(XecrError, ValueError):
    """The command line is wrong (people's commands exit 2)."""


class InvalidPrincipal(UsageError):
    """A principal given on the command line is not an account id or a role/user ARN."""

    def __init__(self, principal: str, reason: str) -> None:
        super().__init__(f"invalid principal {principal!r}: {reason}")
        self.principal = principal


class PolicyError(XecrError, ValueError):
    """A repository's current policy cannot be merged without guessing; nothing is written."""


class AlreadyRunning(XecrError):
    """Another daemon holds the lock of this cache folder."""

    def __init__(self, folder: str, pid: int | None) -> None:
        super().__init__(
            f"already running for cache folder {folder} (pid {pid if pid else 'unknown'})"
        )
        self.folder = folder
        self.pid = pid
