"""ecr_helper.service: the one use case every front door calls, with fakes at the fetch."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from ecr_helper import securefile
from ecr_helper.config import RegistrySettings
from ecr_helper.daemon import lock
from ecr_helper.errors import NotOurRegistry
from ecr_helper.service import Service
from ecr_helper.token import Token
from tests.helpers import CENTRAL, CENTRAL_HOST, PULL_ROLE, token_of

NOW = 1_800_000_000.0
CONFIG = (
    f'[defaults]\nregion = "us-east-1"\n[registries."{CENTRAL_HOST}"]\nrole_arn = "{PULL_ROLE}"\n'
)


class Fetch:
    def __init__(self) -> None:
        self.calls: list[tuple[str, bool]] = []

    def __call__(self, settings: RegistrySettings, quick: bool) -> Token:
        self.calls.append((settings.host, quick))
        return token_of(settings, f"fetched-{len(self.calls)}", NOW, 43200.0)


@pytest.fixture
def fetch(write_config: Callable[[str], Path]) -> Fetch:
    write_config(CONFIG)
    return Fetch()


def opened(fetch: Fetch, now: float = NOW) -> Service:
    return Service.open(dict(os.environ), fetch=fetch, clock=lambda: now)


def test_a_cold_token_is_fetched_once_then_served_from_the_cache(fetch: Fetch) -> None:
    settings, first = opened(fetch).token_for(CENTRAL_HOST)
    assert (settings.registry_id, settings.role_arn) == (CENTRAL, PULL_ROLE)
    assert first.secret == "fetched-1"
    _, again = opened(fetch, NOW + 60).token_for(f"https://{CENTRAL_HOST}/v2/")
    assert again == first
    assert fetch.calls == [(CENTRAL_HOST, False)]


def test_renew_fetches_whatever_the_cache_holds_and_forget_removes_it(fetch: Fetch) -> None:
    service = opened(fetch)
    settings = service.settings(CENTRAL_HOST)
    service.token(settings)
    assert service.renew(settings).secret == "fetched-2"
    assert service.cached(settings) is not None and service.cached(settings).secret == "fetched-2"
    assert service.forget(settings) is True
    assert service.cached(settings) is None
    assert service.forget(settings) is False


def test_a_host_that_is_not_ours_never_reaches_the_fetch(fetch: Fetch) -> None:
    with pytest.raises(NotOurRegistry):
        opened(fetch).token_for("registry.example.com")
    assert fetch.calls == []


def test_the_cache_folder_is_checked_once_per_call(
    fetch: Fetch, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened(fetch).token_for(CENTRAL_HOST)  # the parsed copy and the token are now cached
    checks: list[str] = []
    real = securefile.ensure_dir

    def counting(path: str, mode: int = 0o700, gid: int | None = None) -> None:
        checks.append(path)
        real(path, mode, gid)

    monkeypatch.setattr(securefile, "ensure_dir", counting)
    service = opened(fetch, NOW + 60)
    service.token_for(CENTRAL_HOST)
    assert checks == [service.folder]


def test_a_token_past_half_life_is_left_to_a_running_daemon(fetch: Fetch) -> None:
    service = opened(fetch)
    service.token_for(CENTRAL_HOST)
    later = NOW + 30000.0  # past half-life, before the end of the serve window
    held = lock.acquire_instance(service.folder)
    try:
        assert opened(fetch, later).daemon_pid() == os.getpid()
        assert opened(fetch, later).token_for(CENTRAL_HOST)[1].secret == "fetched-1"
        assert fetch.calls == [(CENTRAL_HOST, False)]
    finally:
        held.release()
    assert opened(fetch, later).daemon_pid() is None
    assert opened(fetch, later).token_for(CENTRAL_HOST)[1].secret == "fetched-2"
    assert fetch.calls[-1] == (CENTRAL_HOST, True)  # the quick early refresh
