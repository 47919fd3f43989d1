"""Issue 7 point 3, through the installed ``docker-credential-xecr`` against the
loopback fake: every AWS fault gives one line naming what to check (the role
ARN, the registry id), within the documented bounds, and none of them stops a
``get`` that holds a valid cached token.

Bounds (see SECURITY.md): a ``get`` that must fetch ends within
:data:`BOUND` (20 s: three attempts of at most 2 s to connect or 4 s to read,
plus botocore's backoff); a ``get`` serving a cached token past its half-life
makes one quick refresh attempt (1 s connect, 2 s read, no retry) and ends
within :data:`QUICK_BOUND` (5 s) whatever AWS does.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fakeaws import FakeAws
from tests.helpers import (
    CENTRAL,
    PULL_ROLE,
    Result,
    assert_answers,
    assert_one_line_failure,
    cache_folder,
    get,
    log_text,
    scan,
    token_entries,
    warm_entry,
)

# Every test here starts the installed executables (or a shell script).
pytestmark = pytest.mark.slow

BOUND = 20.0
QUICK_BOUND = 5.0
REGISTRY = f"registry {CENTRAL}"

# name: (action, kind, words the line must hold, attempts botocore makes)
FAULTS: dict[str, tuple[str, str, tuple[str, ...], int]] = {
    "AccessDenied on AssumeRole": (
        "AssumeRole",
        "access_denied",
        ("AssumeRole denied", PULL_ROLE, "trust policy"),
        1,
    ),
    "AccessDenied on GetAuthorizationToken": (
        "GetAuthorizationToken",
        "access_denied",
        ("GetAuthorizationToken denied", REGISTRY, PULL_ROLE),
        1,
    ),
    "ExpiredToken on AssumeRole": (
        "AssumeRole",
        "expired_token",
        ("ExpiredToken", PULL_ROLE, "source credentials"),
        1,
    ),
    "ExpiredToken on GetAuthorizationToken": (
        "GetAuthorizationToken",
        "expired_token",
        ("ExpiredTokenException", REGISTRY),
        1,
    ),
    "invalid client token": (
        "AssumeRole",
        "invalid_client_token",
        ("InvalidClientTokenId", PULL_ROLE),
        1,
    ),
    "throttled on every attempt": ("GetAuthorizationToken", "throttle", ("throttled", REGISTRY), 3),
    "5xx on every attempt": ("AssumeRole", "server_error", ("InternalFailure", PULL_ROLE), 3),
    "503 on every attempt": (
        "GetAuthorizationToken",
        "unavailable",
        ("ServiceUnavailableException", REGISTRY),
        3,
    ),
}


def _entry(home: Path) -> Path:
    [entry] = token_entries(cache_folder(home))
    return entry


@pytest.mark.parametrize("name", list(FAULTS))
def test_a_fault_on_a_cold_cache_is_one_clear_line(
    name: str, configured: FakeAws, isolated_env: Path, tmp_path: Path
) -> None:
    action, kind, words, attempts = FAULTS[name]
    configured.fail(action, kind)
    result = get(timeout=BOUND + 10)
    line = assert_one_line_failure(result, *words)
    assert result.elapsed < BOUND
    assert configured.calls(action) == attempts
    assert token_entries(cache_folder(isolated_env)) == [], "a failure was cached"
    assert f"WARNING get: {line}" in log_text(isolated_env)
    scan(configured, tmp_path, [result])


TRANSIENT = {
    "throttled twice on AssumeRole": ("AssumeRole", "throttle", 2),
    "throttled twice on GetAuthorizationToken": ("GetAuthorizationToken", "throttle", 2),
    "5xx twice": ("GetAuthorizationToken", "server_error", 2),
    "503 once": ("AssumeRole", "unavailable", 1),
}


@pytest.mark.parametrize("name", list(TRANSIENT))
def test_a_transient_fault_is_retried_then_succeeds(
    name: str, configured: FakeAws, isolated_env: Path, tmp_path: Path
) -> None:
    action, kind, times = TRANSIENT[name]
    configured.fail(action, kind, times=times)
    result = get(timeout=BOUND + 10)
    assert_answers(result)
    assert result.elapsed < BOUND
    requests = configured.requests(action)
    assert len(requests) == times + 1, "not retried (or retried too often)"
    stamps = [r.time for r in requests]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    assert len(token_entries(cache_folder(isolated_env))) == 1
    scan(configured, tmp_path, [result], [result])


def test_connection_refused_is_one_clear_line(
    configured: FakeAws, isolated_env: Path, tmp_path: Path
) -> None:
    configured.go_down()
    result = get(timeout=BOUND + 10)
    assert_one_line_failure(result, "cannot reach AWS STS in us-east-1", "AWS_ENDPOINT_URL")
    assert result.elapsed < BOUND
    assert token_entries(cache_folder(isolated_env)) == []
    scan(configured, tmp_path, [result])


def _side_by_side(runs: dict[str, Callable[[], Result]]) -> dict[str, Result]:
    results: dict[str, Result] = {}

    def one(name: str) -> None:
        results[name] = runs[name]()

    threads = [threading.Thread(target=one, args=(name,)) for name in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert set(results) == set(runs), "a get never returned"
    return results


def test_an_endpoint_that_never_answers_ends_within_the_bound(
    configured: FakeAws, isolated_env: Path, tmp_path: Path
) -> None:
    """Hangs on AssumeRole and on GetAuthorizationToken, run side by side (each
    against its own fake, since faults are per fake, and with its own cache, so
    neither waits for the other's lock) to keep the test short."""
    configured.fail("AssumeRole", "hang")
    other_cache = tmp_path / "other-cache"
    with FakeAws() as other:
        other.fail("GetAuthorizationToken", "hang")
        results = _side_by_side(
            {
                "sts": lambda: get(timeout=BOUND + 10),
                "ecr": lambda: get(
                    timeout=BOUND + 10,
                    extra_env={"AWS_ENDPOINT_URL": other.url, "XECR_CACHE_DIR": str(other_cache)},
                ),
            }
        )
        other.clear_faults()
        ecr_attempts = other.calls("GetAuthorizationToken")
    assert_one_line_failure(results["sts"], "AWS STS in us-east-1 did not answer in time")
    assert_one_line_failure(results["ecr"], "AWS ECR in us-east-1 did not answer in time")
    for result in results.values():
        assert 4.0 < result.elapsed < BOUND, result.elapsed  # hung at least one read timeout
    assert configured.calls("AssumeRole") == 3 and ecr_attempts == 3
    assert token_entries(cache_folder(isolated_env)) == []
    assert token_entries(other_cache) == []
    scan(configured, tmp_path, list(results.values()))


def test_parallel_gets_during_a_hang_each_end_within_the_bound(
    configured: FakeAws, tmp_path: Path
) -> None:
    configured.fail("AssumeRole", "hang")
    results = _side_by_side({name: lambda: get(timeout=60) for name in ("first", "second")})
    for result in results.values():
        assert_one_line_failure(result, "did not answer in time")
    assert max(r.elapsed for r in results.values()) < BOUND, [r.elapsed for r in results.values()]


# ---------------------------------------------------------------------------
# With a valid cached token, no fault stops a get
# ---------------------------------------------------------------------------

QUICK_FAILURES = {kind for _, kind, _, attempts in FAULTS.values() if attempts == 1}
CACHED_FAULTS: dict[str, tuple[str | None, str]] = {
    **{name: (action, kind) for name, (action, kind, _, _) in FAULTS.items()},
    "connection refused": (None, "down"),
    "hang on AssumeRole": ("AssumeRole", "hang"),
    "hang on GetAuthorizationToken": ("GetAuthorizationToken", "hang"),
}


def _inject(fake: FakeAws, action: str | None, kind: str) -> None:
    if kind == "down":
        fake.go_down()
    else:
        fake.fail(action, kind)


def _age(entry: Path, *, served_for: float, left: float) -> bytes:
    """Rewrite the entry as if issued ``served_for`` s ago with ``left`` s to go."""
    body = json.loads(entry.read_bytes())
    now = time.time()
    body["issued_at"], body["expires_at"] = now - served_for, now + left
    data = json.dumps(body).encode()
    tmp = entry.with_name(entry.name + ".test")
    tmp.write_bytes(data)
    tmp.chmod(0o600)
    tmp.replace(entry)
    return data


@pytest.mark.parametrize("name", list(CACHED_FAULTS))
def test_a_valid_cached_token_is_served_through_any_fault(
    name: str, configured: FakeAws, isolated_env: Path, tmp_path: Path
) -> None:
    action, kind = CACHED_FAULTS[name]
    entry, [warm] = warm_entry(isolated_env)
    _inject(configured, action, kind)
    before = configured.counts()

    fresh = get(timeout=QUICK_BOUND + 10)  # before half-life: AWS is not even asked
    assert_answers(fresh)
    assert fresh.elapsed < QUICK_BOUND
    assert configured.counts() == before

    # Past half-life: one quick refresh attempt fails, the cached token is served.
    aged = _age(entry, served_for=3600, left=3000)
    due = get(timeout=QUICK_BOUND + 10)
    assert_answers(due)
    assert due.elapsed < QUICK_BOUND, due.elapsed
    if action is not None:
        assert configured.calls(action) == before.get(action, 0) + 1, "no refresh was attempted"
    assert entry.read_bytes() == aged, "a failed refresh changed the cached entry"
    assert "failed, serving the cached" in log_text(isolated_env)
    results = [warm, fresh, due]

    if kind in ("down", *QUICK_FAILURES):  # the slow cold paths have their own tests above
        _age(entry, served_for=43000, left=100)  # inside the last 5 minutes: never served
        expired = get(timeout=BOUND + 10)
        assert_one_line_failure(expired)
        assert expired.elapsed < BOUND
        results.append(expired)
    scan(configured, tmp_path, results, [warm, fresh, due])


def test_past_half_life_for_real_a_hung_refresh_serves_the_cached_token(
    configured: FakeAws, isolated_env: Path, tmp_path: Path
) -> None:
    """The same as above with the clock doing the ageing: 12 s tokens, a get
    just past 6 s while AWS hangs, then a get that refreshes once AWS is back."""
    configured.token_ttl = 12.0
    warm = get()
    assert_answers(warm)
    entry = _entry(isolated_env)
    issued = json.loads(entry.read_bytes())["issued_at"]
    time.sleep(max(0.0, issued + 6.2 - time.time()))
    configured.fail("AssumeRole", "hang")
    due = get(timeout=QUICK_BOUND + 10)
    assert_answers(due)
    assert due.elapsed < QUICK_BOUND, due.elapsed
    assert configured.calls("AssumeRole") == 2  # the warm fetch and the hung refresh
    assert json.loads(entry.read_bytes())["issued_at"] == issued
    configured.clear_faults()
    renewed = get()
    assert_answers(renewed)
    assert json.loads(entry.read_bytes())["issued_at"] > issued, "not refreshed once AWS was back"
    scan(configured, tmp_path, [warm, due, renewed], [warm, due, renewed])
