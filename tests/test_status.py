"""ecr_helper.setup.status: rows of configured and cached registries, countdowns, JSON, daemon."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from ecr_helper import paths
from ecr_helper.daemon import lock
from ecr_helper.service import Service
from ecr_helper.setup import status
from ecr_helper.token import Token
from tests.helpers import CENTRAL, CENTRAL_HOST, PULL_ROLE

NOW = 1_800_000_000.0
OTHER_HOST = "222222222222.dkr.ecr.eu-west-1.amazonaws.com"


def _token(
    host: str,
    registry_id: str,
    region: str,
    issued: float,
    life: float = 43200.0,
    role: str | None = None,
) -> Token:
    return Token(
        "AWS", "s3cret-password-value", issued, issued + life, host, registry_id, region, role
    )


def _open(env: dict[str, str]) -> Service:
    return Service.open(env)


def _put(env: dict[str, str], host: str, token: Token) -> None:
    opened = _open(env)
    opened.store.write(opened.key(opened.settings(host)), token)


@pytest.fixture
def no_daemon_module(monkeypatch: pytest.MonkeyPatch) -> Callable[[int | None], list[str]]:
    """Stand in for the instance lock probe with a fixed answer; returns the folders asked."""
    seen: list[str] = []

    def install(pid: int | None) -> list[str]:
        def is_running(folder: str) -> int | None:
            seen.append(folder)
            return pid

        monkeypatch.setattr(lock, "is_running", is_running)
        return seen

    return install


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (43199.9, "11h59m"),
        (43200, "12h0m"),
        (3600, "1h0m"),
        (3599, "59m59s"),
        (250, "4m10s"),
        (59.9, "59s"),
        (0, "0s"),
        (-125, "-2m5s"),
    ],
)
def test_countdown(seconds: float, text: str) -> None:
    assert status.countdown(seconds) == text


def test_iso_has_a_utc_offset() -> None:
    text = status.iso(NOW)
    assert text == "2027-01-15T08:00:00+00:00"
    assert text is not None and datetime.fromisoformat(text).utcoffset() == timedelta(0)
    assert status.iso(None) is None


def test_configured_registries_first_with_their_cached_state(
    write_config: Callable[[str], Path],
) -> None:
    write_config(
        f'[registries."{CENTRAL_HOST}"]\nrole_arn = "{PULL_ROLE}"\n'
        '[registries."mirror.example.com"]\nregistry_id = "444444444444"\n'
        'region = "eu-west-1"\n'
    )
    env = dict(os.environ)
    _put(env, CENTRAL_HOST, _token(CENTRAL_HOST, CENTRAL, "us-east-1", NOW - 60, role=PULL_ROLE))
    _put(env, OTHER_HOST, _token(OTHER_HOST, "222222222222", "eu-west-1", NOW - 43000))
    opened = _open(env)
    found = status.rows(opened, NOW)
    assert [r.registry for r in found] == [CENTRAL_HOST, "mirror.example.com", OTHER_HOST]
    central, mirror, other = found
    assert central == status.Row(
        CENTRAL_HOST, CENTRAL, "us-east-1", PULL_ROLE, NOW - 60 + 43200, "fresh", True
    )
    assert (
        mirror.registry_id,
        mirror.region,
        mirror.expires_at,
        mirror.state,
        mirror.configured,
    ) == ("444444444444", "eu-west-1", None, "none", True)
    assert (other.state, other.configured, other.role_arn) == ("expired", False, None)
    assert central.to_json() == {
        "registry": CENTRAL_HOST,
        "registry_id": CENTRAL,
        "region": "us-east-1",
        "role_arn": PULL_ROLE,
        "expires_at": status.iso(NOW - 60 + 43200),
        "state": "fresh",
        "configured": True,
    }
    assert mirror.to_json()["expires_at"] is None


def test_states_follow_the_refresh_rules(write_config: Callable[[str], Path]) -> None:
    write_config(f'[registries."{CENTRAL_HOST}"]\n')
    env = dict(os.environ)
    for issued, expected in (
        (NOW - 100, "fresh"),
        (NOW - 30000, "refresh due"),
        (NOW - 43000, "expired"),
    ):
        _put(env, CENTRAL_HOST, _token(CENTRAL_HOST, CENTRAL, "us-east-1", issued))
        opened = _open(env)
        assert status.rows(opened, NOW)[0].state == expected


def test_a_token_of_another_identity_is_not_shown_as_ours(
    write_config: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = dict(os.environ)
    _put(env, OTHER_HOST, _token(OTHER_HOST, "222222222222", "eu-west-1", NOW - 10))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFAKEFAKEFAKE0002")
    env = dict(os.environ)
    opened = _open(env)
    [row] = status.rows(opened, NOW)
    assert (row.registry, row.state, row.expires_at) == (OTHER_HOST, "none", None)


def test_a_cached_alias_no_longer_configured_shows_what_is_on_disk(
    write_config: Callable[[str], Path],
) -> None:
    path = write_config(
        '[registries."mirror.example.com"]\nregistry_id = "444444444444"\nregion = "eu-west-1"\n'
    )
    env = dict(os.environ)
    _put(
        env,
        "mirror.example.com",
        _token("mirror.example.com", "444444444444", "eu-west-1", NOW - 10),
    )
    path.write_text("")
    opened = _open(env)
    [row] = status.rows(opened, NOW)
    assert (row.registry, row.registry_id, row.state, row.configured) == (
        "mirror.example.com",
        "444444444444",
        "fresh",
        False,
    )


def test_table_lists_columns_countdown_and_daemon(write_config: Callable[[str], Path]) -> None:
    write_config(
        f'[registries."{CENTRAL_HOST}"]\nrole_arn = "{PULL_ROLE}"\n[registries."{OTHER_HOST}"]\n'
    )
    env = dict(os.environ)
    _put(env, CENTRAL_HOST, _token(CENTRAL_HOST, CENTRAL, "us-east-1", NOW - 60))
    opened = _open(env)
    text = status.table(status.rows(opened, NOW), status.DaemonState(4242), NOW)
    lines = text.splitlines()
    assert lines[0].split() == [
        "REGISTRY",
        "REGISTRY",
        "ID",
        "REGION",
        "ROLE",
        "EXPIRES",
        "IN",
        "STATE",
    ]
    assert lines[1].split() == [CENTRAL_HOST, CENTRAL, "us-east-1", PULL_ROLE, "11h59m", "fresh"]
    assert lines[2].split() == [OTHER_HOST, "222222222222", "eu-west-1", "-", "-", "none"]
    assert lines[0].index("STATE") == lines[1].index("fresh")  # columns line up
    assert lines[-1] == "daemon: running (pid 4242)"


def test_empty_table_says_how_to_start() -> None:
    text = status.table([], status.DaemonState(None), NOW)
    assert "xecr configure" in text
    assert text.endswith("daemon: not running\n")


def test_daemon_status_asks_the_instance_lock(
    no_daemon_module: Callable[[int | None], list[str]],
) -> None:
    seen = no_daemon_module(77)
    opened = _open(dict(os.environ))
    assert status.DaemonState(opened.daemon_pid()) == status.DaemonState(77)
    assert seen == [opened.folder]
    no_daemon_module(None)
    assert status.DaemonState(opened.daemon_pid()).line() == "daemon: not running"
    no_daemon_module(-1)
    assert status.DaemonState(opened.daemon_pid()).line() == "daemon: running (pid unknown)"


def test_collect_reads_the_config_cache_and_daemon(
    write_config: Callable[[str], Path],
    no_daemon_module: Callable[[int | None], list[str]],
) -> None:
    write_config(f'[registries."{CENTRAL_HOST}"]\n')
    seen = no_daemon_module(None)
    found, daemon = status.collect(dict(os.environ), lambda: NOW)
    assert [r.registry for r in found] == [CENTRAL_HOST]
    assert daemon == status.DaemonState(None)
    folder = paths.cache_dir(os.environ, False)
    assert seen == [folder]
