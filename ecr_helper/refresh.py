"""When a token is served, refreshed or refused, and the single-flight fetch.

The windows are relative to each token's own lifetime, in the manner of
botocore's ``RefreshableCredentials``:

* fresh: before half its lifetime; served as it is;
* refresh due: past half-life; refreshed (unless another process already is,
  or a daemon keeps this cache), and if that fails the cached token, still
  valid, is served;
* expired: less than ``min(5 min, 10 % of lifetime)`` left; never served.

:func:`obtain` re-checks the cache after taking the per-key lock, so of N
processes that find the cache cold exactly one calls AWS. Correctness never
rests on the lock: when it cannot be had in time, the caller fetches anyway.
"""

from __future__ import annotations

import time

from ecr_helper.errors import AwsError, CacheError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from ecr_helper.cache.base import TokenCache
    from ecr_helper.config import RegistrySettings
    from ecr_helper.token import Token

    Fetch = Callable[[RegistrySettings, bool], Token]
    DaemonRunning = Callable[[], bool]

FRESH = "fresh"
REFRESH_DUE = "refresh due"
EXPIRED = "expired"
NONE = "none"

MANDATORY_CAP = 300.0
MANDATORY_FRACTION = 0.10
ADVISORY_FRACTION = 0.5
# Two cores starting two dozen Pythons is slow: waiters must outlast the winner.
LOCK_WAIT = 30.0


def refresh_at(token: Token) -> float:
    """When the token passes half its lifetime."""
    return token.issued_at + ADVISORY_FRACTION * token.lifetime


def usable_until(token: Token) -> float:
    """The last moment the token may be handed out."""
    return token.expires_at - min(MANDATORY_CAP, MANDATORY_FRACTION * token.lifetime)


def state(token: Token | None, now: float) -> str:
    if token is None:
        return NONE
    if now >= usable_until(token) or now < token.issued_at - 300:
        # A token "issued" far in the future means the clock jumped back:
        # its times cannot be trusted.
        return EXPIRED
    if now >= refresh_at(token):
        return REFRESH_DUE
    return FRESH


def obtain(
    settings: RegistrySettings,
    cache: TokenCache,
    key: str,
    fetch: Fetch,
    clock: Callable[[], float] = time.time,
    lock_wait: float = LOCK_WAIT,
    daemon_running: DaemonRunning | None = None,
) -> Token:
    """A token that may be served now, from the cache or from AWS.

    ``daemon_running`` says whether a daemon keeps this cache fresh; then a
    token past half-life is served as it is (the daemon refreshes it).
    """
    cached = cache.read(key)
    current = state(cached, clock())
    if current == FRESH and cached is not None:
        return cached
    if current == REFRESH_DUE and cached is not None:
        return _refresh_early(settings, cache, key, fetch, clock, cached, daemon_running)
    waiting_since = clock()
    with cache.lock(key, lock_wait) as held:
        if held:
            again = cache.read(key)
            if again is not None and state(again, clock()) in (FRESH, REFRESH_DUE):
                return again
            # The process we queued behind has just failed: share its answer
            # instead of making every waiting pull pay another full timeout.
            failure = cache.failure_since(key, waiting_since, clock())
            if failure is not None:
                raise AwsError(failure)
        else:
            _warn(
                f"lock for {settings.host} not had (timed out after {lock_wait:.0f}s, or "
                "the cache folder is not writable); fetching anyway"
            )
        try:
            token = fetch(settings, False)
        except AwsError as exc:
            if held:
                cache.note_failure(key, str(exc), clock())
            raise
        _store(cache, key, token)
        return token


def _refresh_early(
    settings: RegistrySettings,
    cache: TokenCache,
    key: str,
    fetch: Fetch,
    clock: Callable[[], float],
    cached: Token,
    daemon_running: DaemonRunning | None,
) -> Token:
    if daemon_running is not None and daemon_running():
        # The daemon refreshes it (at half-life plus jitter) or is retrying
        # through an outage: a pull must not wait on AWS meanwhile.
        return cached
    with cache.lock(key, 0.0) as held:
        if not held:
            return cached  # someone else is refreshing it
        again = cache.read(key)
        if again is not None and state(again, clock()) == FRESH:
            return again
        try:
            token = fetch(settings, True)
        except AwsError as exc:
            _warn(f"early refresh of {settings.host} failed, serving the cached token: {exc}")
            if state(cached, clock()) != EXPIRED:
                return cached
            raise
        _store(cache, key, token)
        return token


def _store(cache: TokenCache, key: str, token: Token) -> None:
    try:
        cache.write(key, token)
    except CacheError as exc:
        _warn(f"token not cached: {exc}")


def _warn(message: str) -> None:
    from ecr_helper import log

    log.warning(message)


def renew(
    settings: RegistrySettings,
    cache: TokenCache,
    key: str,
    fetch: Fetch,
    lock_wait: float = LOCK_WAIT,
    clock: Callable[[], float] = time.time,
) -> Token:
    """Fetch a new token now, whatever the cache holds, and store it (login, daemon).

    Failures are noted and shared as :func:`obtain`'s are: a renew queued behind a
    fetch that failed fails at once with its error instead of paying a second timeout."""
    waiting_since = clock()
    with cache.lock(key, lock_wait) as held:
        failure = cache.failure_since(key, waiting_since, clock()) if held else None
        if failure is not None:
            raise AwsError(failure)
        try:
            token = fetch(settings, False)
        except AwsError as exc:
            if held:
                cache.note_failure(key, str(exc), clock())
            raise
        _store(cache, key, token)
        return token
