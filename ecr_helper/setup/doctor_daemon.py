"""``xecr doctor``'s daemon check: not only whether a daemon runs, but whether it
keeps the tokens fresh.

A running daemon is a warning when, for a registry it keeps, the last refresh
failed (the failure note :func:`ecr_helper.refresh.renew` leaves in the cache
for a fetch that failed, newer than the cached token) or the cached token is
past the latest moment the daemon would have refreshed it (half-life plus the
largest jitter, :mod:`ecr_helper.daemon.schedule`). Each names the registry and
the reason. Read from the cache the daemon writes; nothing is changed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from ecr_helper import config, refresh
from ecr_helper.cache import cache_key, open_cache
from ecr_helper.cache.base import TokenCache
from ecr_helper.daemon import lock, schedule
from ecr_helper.errors import XecrError
from ecr_helper.setup import status
from ecr_helper.setup.checks import Check
from ecr_helper.token import Token

# A refresh under way (the worker bounds one at 90 s) is not late.
GRACE = 120.0
FAILED = "failed"
LATE = "past its refresh point and not renewed"


def refresh_deadline(token: Token) -> float:
    """The latest time the daemon plans to refresh ``token``: half-life plus the
    largest jitter."""
    return refresh.refresh_at(token) + schedule.JITTER_FRACTION * token.lifetime


def trouble(
    store: TokenCache, settings: config.RegistrySettings, key: str, now: float
) -> str | None:
    """Why the daemon is not keeping ``settings``' token fresh, or None when it is."""
    token = store.read(key)
    # A note older than the token was a failure the daemon has since recovered from.
    failure = store.failure_since(key, token.issued_at if token else float("-inf"))
    if failure is not None:
        return f"the last refresh of {settings.host} {FAILED}: {failure}"
    if token is not None and now > refresh_deadline(token) + GRACE:
        late = status.countdown(now - refresh_deadline(token))
        state = refresh.state(token, now)
        return f"the token of {settings.host} is {late} past its refresh point and not renewed" + (
            " (expired: pulls ask AWS themselves)" if state == refresh.EXPIRED else ""
        )
    return None


def daemon_check(
    loaded: config.Config,
    env: Mapping[str, str],
    folder: str,
    hosts: Iterable[str],
    clock: Callable[[], float],
) -> Check:
    """PASS for a daemon keeping ``hosts`` fresh, WARN for one that is not or for none."""
    pid = lock.is_running(folder)
    running = status.DaemonState(pid).line().removeprefix("daemon: ")
    if not pid:
        return Check(
            "daemon",
            False,
            "not running",
            "optional: `xecr daemon` keeps tokens fresh ahead of pulls",
            warning_only=True,
        )
    if loaded.cache_backend == "none":
        return Check("daemon", True, running)
    try:
        store = open_cache(loaded, env)
    except XecrError as exc:  # a cache that cannot be read says nothing about the daemon
        return Check("daemon", True, f"{running} (its tokens not checked: {exc})")
    now = clock()
    found = [reason for host in hosts if (reason := _trouble_of(loaded, env, store, host, now))]
    if not found:
        return Check("daemon", True, running)
    hint = "the daemon retries with backoff and its log says each attempt"
    if any(LATE in reason for reason in found):
        # A registry added after the daemon started is not among its own.
        reload = f"kill -HUP {pid}" if pid > 0 else "SIGHUP"
        hint += f"; a daemon started before a registry was configured takes it on reload ({reload})"
    if any(FAILED in reason for reason in found):
        hint += "; the checks above show which link fails"
    return Check("daemon", False, f"{running}, but " + "; ".join(found), hint, warning_only=True)


def _trouble_of(
    loaded: config.Config, env: Mapping[str, str], store: TokenCache, host: str, now: float
) -> str | None:
    try:
        settings = loaded.resolve(host)
        return trouble(store, settings, cache_key(settings, env, store.machine), now)
    except XecrError:
        return None  # a broken section or an unreadable entry: reported elsewhere
