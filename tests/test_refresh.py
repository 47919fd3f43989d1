"""ecr_helper.refresh: when a token is fresh, due for refresh or expired (for 12-hour and
10-second tokens, exactly at the boundaries), and what obtain() does in each state."""

from __future__ import annotations

import math
from pathlib import Path
from types import TracebackType

import pytest

from ecr_helper import refresh
from ecr_helper.cache import FileCache, TokenCache
from ecr_helper.config import RegistrySettings
from ecr_helper.errors import AwsError, CacheError, EndpointError
from ecr_helper.refresh import EXPIRED, FRESH, NONE, REFRESH_DUE
from ecr_helper.token import Token
from tests.helpers import CENTRAL, CENTRAL_HOST, PULL_ROLE

KEY = "k" * 32
SETTINGS = RegistrySettings(
    host=CENTRAL_HOST,
    registry_id=CENTRAL,
    region="us-east-1",
    partition="aws",
    role_arns=(PULL_ROLE,),
)
T0 = 1_800_000_000.0


def token(issued: float, lifetime: float, secret: str = "cached-secret") -> Token:
    return Token(
        "AWS", secret, issued, issued + lifetime, CENTRAL_HOST, CENTRAL, "us-east-1", PULL_ROLE
    )


def before(value: float) -> float:
    return math.nextafter(value, -math.inf)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Fetch:
    """A stand-in for aws.fetch_token: records (quick) per call, answers or raises."""

    def __init__(
        self,
        clock: Clock,
        lifetime: float = 43200.0,
        error: AwsError | None = None,
        advance: float = 0.0,
    ) -> None:
        self.clock = clock
        self.lifetime = lifetime
        self.error = error
        self.advance = advance
        self.calls: list[bool] = []

    def __call__(self, settings: RegistrySettings, quick: bool) -> Token:
        assert settings is SETTINGS
        self.calls.append(quick)
        self.clock.now += self.advance
        if self.error is not None:
            raise self.error
        return token(self.clock.now, self.lifetime, f"fetched-secret-{len(self.calls)}")


@pytest.fixture
def store(tmp_path: Path) -> FileCache:
    return FileCache(str(tmp_path / "cache"))


# -- the policy ----------------------------------------------------------------------------

# lifetime -> (half-life, mandatory margin = min(5 min, 10 %))
LIFETIMES = {
    "12 h": (43200.0, 21600.0, 300.0),
    "40 min": (2400.0, 1200.0, 240.0),
    "10 s": (10.0, 5.0, 1.0),
}


@pytest.mark.parametrize("name", list(LIFETIMES))
def test_windows(name: str) -> None:
    lifetime, half, margin = LIFETIMES[name]
    t = token(T0, lifetime)
    assert refresh.refresh_at(t) == T0 + half
    assert refresh.usable_until(t) == T0 + lifetime - margin
    expires = T0 + lifetime
    expected = [
        (T0, FRESH),
        (before(T0 + half), FRESH),
        (T0 + half, REFRESH_DUE),
        (before(expires - margin), REFRESH_DUE),
        (expires - margin, EXPIRED),
        (expires, EXPIRED),
        (expires + 1e6, EXPIRED),
    ]
    assert [(now, refresh.state(t, now)) for now, _ in expected] == expected


def test_no_token_is_none() -> None:
    assert refresh.state(None, T0) == NONE


def test_a_clock_that_jumped_back_makes_the_token_expired() -> None:
    t = token(T0, 43200.0)
    assert refresh.state(t, T0 - 299) == FRESH  # small skew between processes is fine
    assert refresh.state(t, T0 - 300) == FRESH
    assert refresh.state(t, before(T0 - 300)) == EXPIRED


# -- obtain() ------------------------------------------------------------------------------


def run(store: TokenCache, clock: Clock, fetch: Fetch, lock_wait: float = 5.0) -> Token:
    return refresh.obtain(SETTINGS, store, KEY, fetch, clock, lock_wait)


@pytest.mark.parametrize("lifetime", [43200.0, 10.0])
def test_a_fresh_token_is_served_without_a_fetch(store: FileCache, lifetime: float) -> None:
    cached = token(T0, lifetime)
    store.write(KEY, cached)
    clock = Clock(before(refresh.refresh_at(cached)))
    fetch = Fetch(clock)
    assert run(store, clock, fetch) == cached
    assert fetch.calls == []


@pytest.mark.parametrize("lifetime", [43200.0, 10.0])
def test_refresh_due_makes_one_quick_fetch(store: FileCache, lifetime: float) -> None:
    cached = token(T0, lifetime)
    store.write(KEY, cached)
    clock = Clock(refresh.refresh_at(cached))
    fetch = Fetch(clock, lifetime)
    served = run(store, clock, fetch)
    assert served.secret == "fetched-secret-1"
    assert fetch.calls == [True]
    assert store.read(KEY) == served
    assert run(store, clock, fetch) == served  # now fresh: no second fetch
    assert fetch.calls == [True]


@pytest.mark.parametrize("lifetime", [43200.0, 10.0])
def test_a_failed_refresh_serves_the_cached_token(store: FileCache, lifetime: float) -> None:
    cached = token(T0, lifetime)
    store.write(KEY, cached)
    clock = Clock(before(refresh.usable_until(cached)))
    fetch = Fetch(clock, error=EndpointError("cannot reach AWS STS in us-east-1"))
    assert run(store, clock, fetch) == cached
    assert fetch.calls == [True]
    assert store.read(KEY) == cached  # the failure was not cached
    assert run(store, clock, fetch) == cached
    assert fetch.calls == [True, True]  # and is tried again next time


def test_refresh_due_while_another_holds_the_lock_serves_the_cache(
    store: FileCache, tmp_path: Path
) -> None:
    cached = token(T0, 43200.0)
    store.write(KEY, cached)
    clock = Clock(refresh.refresh_at(cached) + 1)
    fetch = Fetch(clock)
    other = FileCache(str(tmp_path / "cache"))  # as another process would
    with other.lock(KEY, 1.0) as held:
        assert held
        assert run(store, clock, fetch) == cached
    assert fetch.calls == []


def test_an_expired_token_is_fetched_blocking(store: FileCache) -> None:
    cached = token(T0, 10.0)
    store.write(KEY, cached)
    clock = Clock(refresh.usable_until(cached))
    fetch = Fetch(clock, 10.0)
    served = run(store, clock, fetch)
    assert served.secret == "fetched-secret-1" and fetch.calls == [False]
    assert store.read(KEY) == served


def test_no_token_is_fetched_blocking(store: FileCache) -> None:
    clock = Clock(T0)
    fetch = Fetch(clock)
    served = run(store, clock, fetch)
    assert fetch.calls == [False] and store.read(KEY) == served


@pytest.mark.parametrize("lifetime", [43200.0, 10.0])
def test_an_expired_token_is_never_served_even_when_the_fetch_fails(
    store: FileCache, lifetime: float
) -> None:
    cached = token(T0, lifetime)
    store.write(KEY, cached)
    clock = Clock(refresh.usable_until(cached))
    error = EndpointError("cannot reach AWS STS in us-east-1")
    fetch = Fetch(clock, error=error)
    with pytest.raises(EndpointError) as caught:
        run(store, clock, fetch)
    assert caught.value is error
    assert fetch.calls == [False]
    assert store.read(KEY) == cached  # untouched: the failure is not cached
    clock.now += 0.001  # the next get, a moment later, asks AWS again
    with pytest.raises(EndpointError):
        run(store, clock, fetch)
    assert fetch.calls == [False, False]


def test_a_refresh_that_outlives_the_token_raises(store: FileCache) -> None:
    cached = token(T0, 10.0)
    store.write(KEY, cached)
    clock = Clock(before(refresh.usable_until(cached)))
    # The quick fetch takes long enough for the cached token to pass its last moment.
    fetch = Fetch(clock, error=EndpointError("AWS STS did not answer in time"), advance=0.5)
    with pytest.raises(EndpointError):
        run(store, clock, fetch)
    assert fetch.calls == [True]


def test_no_token_and_a_failed_fetch_raises_every_time(store: FileCache) -> None:
    clock = Clock(T0)
    fetch = Fetch(clock, error=AwsError("ECR GetAuthorizationToken failed (ServerException)"))
    for attempt in (1, 2, 3):
        with pytest.raises(AwsError):
            run(store, clock, fetch)
        assert len(fetch.calls) == attempt
        clock.now += 0.001  # each later get asks AWS again
    assert store.read(KEY) is None and store.entries() == {}


class _Racing(FileCache):
    """A cache in which another process stores a fresh token while we wait for the lock."""

    def __init__(self, folder: str, winner: Token) -> None:
        super().__init__(folder)
        self.winner = winner

    def lock(self, key: str, timeout: float) -> _WriteThenLock:  # type: ignore[override]
        return _WriteThenLock(self, key, timeout)


class _WriteThenLock:
    def __init__(self, racing: _Racing, key: str, timeout: float) -> None:
        self.racing, self.key, self.timeout = racing, key, timeout

    def __enter__(self) -> bool:
        FileCache.write(self.racing, self.key, self.racing.winner)
        self.inner = FileCache.lock(self.racing, self.key, self.timeout)
        return self.inner.__enter__()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.inner.__exit__(kind, exc, tb)


def test_after_the_lock_a_token_stored_meanwhile_is_served(tmp_path: Path) -> None:
    clock = Clock(T0)
    winner = token(T0, 43200.0, "the-winners-secret")
    racing = _Racing(str(tmp_path / "cache"), winner)
    fetch = Fetch(clock)
    assert run(racing, clock, fetch) == winner
    assert fetch.calls == []


def test_a_lock_not_had_in_time_fetches_anyway(store: FileCache, tmp_path: Path) -> None:
    clock = Clock(T0)
    fetch = Fetch(clock)
    with FileCache(str(tmp_path / "cache")).lock(KEY, 1.0) as held:
        assert held
        served = run(store, clock, fetch, lock_wait=0.2)
    assert fetch.calls == [False] and served.secret == "fetched-secret-1"


class _Unwritable(TokenCache):
    def write(self, key: str, token: Token) -> None:
        raise CacheError("cannot write /x: No space left on device")


def test_a_token_that_cannot_be_cached_is_still_served() -> None:
    clock = Clock(T0)
    fetch = Fetch(clock)
    assert run(_Unwritable(), clock, fetch).secret == "fetched-secret-1"


def test_without_a_cache_every_call_fetches() -> None:
    clock = Clock(T0)
    fetch = Fetch(clock)
    for _ in range(3):
        run(TokenCache(), clock, fetch)
    assert fetch.calls == [False, False, False]


def test_renew_fetches_even_when_fresh(store: FileCache) -> None:
    clock = Clock(T0)
    store.write(KEY, token(T0, 43200.0))
    fetch = Fetch(clock)
    renewed = refresh.renew(SETTINGS, store, KEY, fetch, lock_wait=1.0)
    assert fetch.calls == [False] and store.read(KEY) == renewed


def test_renew_failure_keeps_the_cached_token(store: FileCache) -> None:
    clock = Clock(T0)
    cached = token(T0, 43200.0)
    store.write(KEY, cached)
    fetch = Fetch(clock, error=AwsError("boom"))
    with pytest.raises(AwsError):
        refresh.renew(SETTINGS, store, KEY, fetch, lock_wait=1.0)
    assert store.read(KEY) == cached


def test_renew_notes_its_failure_on_the_clock_it_is_given(store: FileCache) -> None:
    clock = Clock(T0)  # T0 is not now: a note stamped by time.time() would fall outside
    fetch = Fetch(clock, error=AwsError("boom"))
    with pytest.raises(AwsError):
        refresh.renew(SETTINGS, store, KEY, fetch, lock_wait=1.0, clock=clock)
    assert store.failure_since(KEY, T0 - 1.0, T0 + 1.0) == "boom"


# -- waiting processes share the failure of the fetch they queued behind --------------------


class _FailsWhileWeWait(FileCache):
    """A cache in which the lock holder's fetch fails while we wait for the lock
    (the wait moves ``clock`` on by two seconds)."""

    def __init__(self, folder: str, clock: Clock | None = None) -> None:
        super().__init__(folder)
        self.clock = clock

    def lock(self, key: str, timeout: float) -> _NoteThenLock:  # type: ignore[override]
        return _NoteThenLock(self, key, timeout)


class _NoteThenLock:
    def __init__(self, cache: _FailsWhileWeWait, key: str, timeout: float) -> None:
        self.cache, self.key, self.timeout = cache, key, timeout

    def __enter__(self) -> bool:
        if self.cache.clock is not None:
            self.cache.clock.now += 2
        self.cache.note_failure(self.key, "AWS STS in us-east-1 did not answer in time", T0 + 1)
        self.inner = FileCache.lock(self.cache, self.key, self.timeout)
        return self.inner.__enter__()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.inner.__exit__(kind, exc, tb)


def test_a_waiter_fails_at_once_with_the_holders_failure(tmp_path: Path) -> None:
    clock = Clock(T0)
    fetch = Fetch(clock)
    with pytest.raises(AwsError, match="did not answer in time"):
        run(_FailsWhileWeWait(str(tmp_path / "cache"), clock), clock, fetch)
    assert fetch.calls == []  # no second full timeout for a pull queued behind the first


def test_a_note_from_before_the_clock_stepped_back_is_not_replayed(store: FileCache) -> None:
    # A fetch failed at T0 + 3600; then the clock was set back an hour. Every
    # get in that hour starts waiting "before" the note: it must ask AWS.
    store.note_failure(KEY, "AWS STS in us-east-1 did not answer in time", T0 + 3600)
    for step in range(3):
        clock = Clock(T0 + step * 60)
        fetch = Fetch(clock)
        assert run(store, clock, fetch).secret == "fetched-secret-1"
        assert fetch.calls == [False]
        store.delete(KEY)


def test_a_note_is_honoured_only_between_the_wait_and_now(store: FileCache) -> None:
    store.note_failure(KEY, "boom", T0)
    assert store.failure_since(KEY, T0 - 1, T0 + 1) == "boom"
    assert store.failure_since(KEY, T0 - 1, T0) == "boom"
    assert store.failure_since(KEY, T0 - 2, T0 - 1) is None
    assert store.failure_since(KEY, T0, T0 + 1) is None


def test_a_failure_from_before_we_waited_is_not_a_cached_failure(store: FileCache) -> None:
    clock = Clock(T0)
    store.note_failure(KEY, "AWS STS in us-east-1 did not answer in time", T0 - 1)
    fetch = Fetch(clock)
    assert run(store, clock, fetch).secret == "fetched-secret-1"
    assert fetch.calls == [False]


def test_the_lock_holder_leaves_a_note_of_its_failure(store: FileCache) -> None:
    clock = Clock(T0)
    fetch = Fetch(clock, error=EndpointError("cannot reach AWS STS in us-east-1"))
    with pytest.raises(EndpointError):
        run(store, clock, fetch)
    assert store.failure_since(KEY, T0 - 1) == "cannot reach AWS STS in us-east-1"
    assert store.failure_since(KEY, T0 + 1) is None


# -- a daemon keeps the cache ----------------------------------------------------------------


def test_refresh_due_is_left_to_a_running_daemon(store: FileCache) -> None:
    from ecr_helper.daemon import lock

    clock = Clock(T0 + 30000.0)  # past half-life of a 12 h token
    store.write(KEY, token(T0, 43200.0))
    assert store.folder is not None
    held = lock.acquire_instance(store.folder)
    try:
        fetch = Fetch(clock)
        running = lambda: bool(lock.is_running(str(store.folder)))  # noqa: E731 - Service's check
        served = refresh.obtain(SETTINGS, store, KEY, fetch, clock, 5.0, daemon_running=running)
        assert served.secret == "cached-secret"
        assert fetch.calls == []
    finally:
        held.release()
    fetch = Fetch(clock)
    assert run(store, clock, fetch).secret == "fetched-secret-1"  # no daemon: get refreshes
    assert fetch.calls == [True]
