"""Every AWS exchange as a whole: a wall-clock deadline, and errors that name what to run.

botocore's timeouts bound each connect and each read, not a call: an endpoint
that answers one byte every few seconds never trips them. :func:`within` runs
the work on a daemon thread and stops waiting for it at the deadline. The
abandoned thread holds no lock and its result is dropped, never cached; a
process that exits takes it along, and the daemon's retry schedule keeps the
number of such threads small. The entry points below (what ``get``, ``login``,
``get-login-password``, the kubelet mode, the daemon and ``doctor`` call)
import :mod:`ecr_helper.aws` only when called, and name the exact ``aws sso
login`` command when the source profile's SSO login has expired.
"""

from __future__ import annotations

import os
import threading
import time

from ecr_helper.errors import EndpointError, SsoLoginNeeded

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar

    from ecr_helper.config import RegistrySettings
    from ecr_helper.token import Token

    T = TypeVar("T")

# A `get` that must fetch is promised to end within 20 s (README, SECURITY.md);
# what is left is for starting Python and answering.
FETCH_DEADLINE = 15.0
# Refreshing a still-valid token must not hold up a pull by more than 5 s.
QUICK_DEADLINE = 3.0

_live_lock = threading.Lock()
_live = 0


def live() -> int:
    """The threads :func:`within` started that have not ended, abandoned ones included."""
    with _live_lock:
        return _live


def _count(change: int) -> None:
    global _live
    with _live_lock:
        _live += change


def within(seconds: float, work: Callable[[], T], what: str) -> T:
    """``work()``'s result, or :class:`EndpointError` once ``seconds`` have passed.

    ``what`` names the exchange for the error line. Exceptions from ``work``
    are raised in the caller's thread as they are.
    """
    box: list[T] = []
    failure: list[BaseException] = []
    done = threading.Event()

    def run() -> None:
        try:
            box.append(work())
        except BaseException as exc:  # handed to the caller, whatever it is
            failure.append(exc)
        finally:
            _count(-1)
            done.set()

    started = time.monotonic()
    _count(+1)
    try:
        threading.Thread(target=run, name="xecr-fetch", daemon=True).start()
    except BaseException:
        _count(-1)
        raise
    if not done.wait(seconds):
        waited = time.monotonic() - started
        raise EndpointError(
            f"{what} did not finish within {waited:.0f} s (an endpoint that answers too "
            "slowly): check the network, proxy settings and AWS_ENDPOINT_URL"
        )
    if failure:
        raise failure[0]
    return box[0]


def _sso_hint(profile: str | None, work: Callable[[], T]) -> T:
    """``work()``, with an expired SSO login named by the exact command that renews it."""
    try:
        return work()
    except SsoLoginNeeded:
        from ecr_helper import source

        command = source.sso_login_command(profile, os.environ)
        raise SsoLoginNeeded(f"the AWS SSO login has expired: run `{command}`") from None


def fetch_token(
    settings: RegistrySettings,
    quick: bool = False,
    sessions: Callable[[str | None], Any] | None = None,
) -> Token:
    """:func:`ecr_helper.ecr.fetch_token` within :data:`FETCH_DEADLINE` (quick: 3 s);
    ``sessions`` gives the source session of a profile (the daemon shares them)."""
    from ecr_helper import ecr

    return within(
        QUICK_DEADLINE if quick else FETCH_DEADLINE,
        lambda: _sso_hint(
            settings.source_profile,
            lambda: ecr.fetch_token(settings, quick, sessions=sessions),
        ),
        f"fetching the token of registry {settings.registry_id} from AWS",
    )


def assume_for(settings: RegistrySettings) -> None:
    """Assume every hop of the registry's chain (doctor), within :data:`FETCH_DEADLINE`."""
    from ecr_helper import aws

    within(
        FETCH_DEADLINE,
        lambda: _sso_hint(settings.source_profile, lambda: aws.assume_for(settings)),
        f"assuming the role chain of registry {settings.registry_id}",
    )


def caller_identity(region: str, profile: str | None) -> str:
    """GetCallerIdentity of the source credentials, within :data:`FETCH_DEADLINE`."""
    from ecr_helper import aws

    return within(
        FETCH_DEADLINE,
        lambda: _sso_hint(profile, lambda: aws.caller_identity(region, profile)),
        "GetCallerIdentity",
    )


def source_credentials(profile: str | None) -> Any:
    """What boto3's chain finds as source credentials (``.method`` names the provider),
    within :data:`FETCH_DEADLINE`."""
    from ecr_helper import aws, log
    from ecr_helper.errors import NoCredentialsError

    def load() -> Any:
        credentials = aws.session(profile).get_credentials()
        if credentials is None:
            raise NoCredentialsError(
                "no AWS credentials found: set AWS_PROFILE or source_profile, configure "
                "~/.aws, or run where a role is attached (instance profile, task role)"
            )
        frozen = credentials.get_frozen_credentials()
        log.register_secret(frozen.secret_key)
        log.register_secret(frozen.token)
        return credentials

    return within(
        FETCH_DEADLINE,
        lambda: _sso_hint(
            profile, lambda: aws.call(load, "sts", "its region", "finding credentials")
        ),
        "finding the source credentials",
    )
