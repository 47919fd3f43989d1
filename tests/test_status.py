"""ecr_helper.setup.status: rows of configured and cached registries, countdowns, JSON, daemon."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from ecr_helper import paths
from ecr_helper.daemon import lock
from ecr_helper.service import Service
from ecr_helper.setup import status
from ecr_helper.token import Token
from tests.fakeaws import FakeAws
from tests.helpers import (
    CENTRAL,
    CENTRAL_HOST,
    HELPER,
    PULL_ROLE,
    XECR,
    assert_no_secrets,
    known_secrets,
    run,
)

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
        'region = "eu-central-1"\n'  # not OTHER_HOST's region: no token to share
    )
    env = dict(os.environ)
    _put(env, CENTRAL_HOST, _token(CENTRAL_HOST, CENTRAL, "us-east-1", NOW - 60, role=PULL_ROLE))
    _put(env, OTHER_HOST, _token(OTHER_HOST, "222222222222", "eu-west-1", NOW - 43000))
    opened = _open(env)
    found = status.rows(opened, NOW)
    assert [r.registry for r in found] == [CENTRAL_HOST, "mirror.example.com", OTHER_HOST]
    central, mirror, other = found
    assert central == status.Row(
        CENTRAL_HOST,
        CENTRAL,
        "us-east-1",
        PULL_ROLE,
        NOW - 60 + 43200,
        "fresh",
        True,
        role_arns=(PULL_ROLE,),
    )
    assert (
        mirror.registry_id,
        mirror.region,
        mirror.expires_at,
        mirror.state,
        mirror.configured,
    ) == ("444444444444", "eu-central-1", None, "none", True)
    assert (other.state, other.configured, other.role_arn) == ("expired", False, None)
    assert central.to_json() == {
        "registry": CENTRAL_HOST,
        "registry_id": CENTRAL,
        "region": "us-east-1",
        "role_arn": PULL_ROLE,
        "role_arns": [PULL_ROLE],
        "external_id_set": False,
        "expires_at": status.iso(NOW - 60 + 43200),
        "state": "fresh",
        "configured": True,
        "error": None,
        "last_failure": None,
        "shares_token_with": [],
        "service_account": None,
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
        "EXTERNAL",
        "ID",
        "EXPIRES",
        "STATE",
    ]
    assert lines[1].split() == [
        CENTRAL_HOST,
        CENTRAL,
        "us-east-1",
        PULL_ROLE,
        "-",
        "in",
        "11h59m",
        "fresh",
    ]
    assert lines[2].split() == [OTHER_HOST, "222222222222", "eu-west-1", "-", "-", "-", "none"]
    assert lines[0].index("STATE") == lines[1].index("fresh")  # columns line up
    assert lines[-1] == "daemon: running (pid 4242)"


HOP = "arn:aws:iam::333333333333:role/hop"


def test_status_shows_the_whole_chain_and_whether_an_external_id_is_set(
    write_config: Callable[[str], Path],
) -> None:
    write_config(
        f'[registries."{CENTRAL_HOST}"]\nrole_arn = ["{HOP}", "{PULL_ROLE}"]\n'
        'external_id = "secret-ish-ext-id"\n'
    )
    env = dict(os.environ)
    [row] = status.rows(_open(env), NOW)
    assert row.role_arns == (HOP, PULL_ROLE) and row.external_id
    text = status.table([row], status.DaemonState(None), NOW)
    assert f"{HOP} -> {PULL_ROLE}" in text
    assert re.split(r"\s{2,}", text.splitlines()[1])[4] == "set"
    assert "secret-ish-ext-id" not in text
    assert row.to_json()["role_arns"] == [HOP, PULL_ROLE]
    assert row.to_json()["external_id_set"] is True


@pytest.mark.parametrize(
    ("issued", "expires", "state"),
    [
        # 1 s left: valid, but inside the last 5 minutes, so never served
        (NOW - 43199, "in 1s", "past its serve window"),
        (NOW - 43200 - 125, "2m5s ago", "expired"),
        (NOW - 30000, "in 3h40m", "refresh due"),
    ],
)
def test_an_unservable_token_says_when_or_why_never_1s_expired(
    write_config: Callable[[str], Path], issued: float, expires: str, state: str
) -> None:
    write_config(f'[registries."{CENTRAL_HOST}"]\n')
    env = dict(os.environ)
    _put(env, CENTRAL_HOST, _token(CENTRAL_HOST, CENTRAL, "us-east-1", issued))
    [row] = status.rows(_open(env), NOW)
    line = status.table([row], status.DaemonState(None), NOW).splitlines()[1]
    assert re.split(r"\s{2,}", line)[-2:] == [expires, state]
    assert not re.search(r"\b1s\s+expired", line)


def test_a_broken_section_is_shown_and_the_others_still_are(
    write_config: Callable[[str], Path],
) -> None:
    path = write_config(
        '[registries."mirror.example.com"]\nregistry_id = "444444444444"\nregoin = "eu-west-1"\n'
        f'[registries."{CENTRAL_HOST}"]\nrole_arn = "{PULL_ROLE}"\n'
    )
    env = dict(os.environ)
    _put(env, CENTRAL_HOST, _token(CENTRAL_HOST, CENTRAL, "us-east-1", NOW - 60))
    found = status.rows(_open(env), NOW)
    assert [(r.registry, r.state) for r in found] == [
        (CENTRAL_HOST, "fresh"),
        ("mirror.example.com", "config error"),
    ]
    error = found[1].error
    assert error is not None and str(path) in error
    assert 'registries."mirror.example.com".regoin' in error
    assert found[1].to_json()["error"] == error
    lines = status.table(found, status.DaemonState(None), NOW).splitlines()
    assert lines[2].split()[-2:] == ["config", "error"]
    assert lines[3] == f"mirror.example.com: {error}"


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


# -- why a token is missing: the last failed fetch (issue 21, item 2) -------------------

DENIED = f"AssumeRole denied for {PULL_ROLE} (AccessDenied); check its trust policy"


def _note(env: dict[str, str], host: str, at: float, error: str = DENIED) -> None:
    opened = _open(env)
    opened.store.note_failure(opened.key(opened.settings(host)), error, at)


def test_a_failed_fetch_is_shown_with_when_and_why(write_config: Callable[[str], Path]) -> None:
    write_config(f'[registries."{CENTRAL_HOST}"]\nrole_arn = "{PULL_ROLE}"\n')
    env = dict(os.environ)
    _note(env, CENTRAL_HOST, NOW - 125)
    [row] = status.rows(_open(env), NOW)
    assert (row.state, row.failed_at, row.failure) == ("none", NOW - 125, DENIED)
    assert row.to_json()["last_failure"] == {"at": status.iso(NOW - 125), "error": DENIED}
    text = status.table([row], status.DaemonState(None), NOW)
    assert f"{CENTRAL_HOST}: last fetch failed 2m5s ago ({status.iso(NOW - 125)}): {DENIED}\n" in (
        text
    )


def test_a_failure_after_the_cached_token_is_shown_beside_it(
    write_config: Callable[[str], Path],
) -> None:
    write_config(f'[registries."{CENTRAL_HOST}"]\n')
    env = dict(os.environ)
    _put(env, CENTRAL_HOST, _token(CENTRAL_HOST, CENTRAL, "us-east-1", NOW - 43000))
    _note(env, CENTRAL_HOST, NOW - 10)
    [row] = status.rows(_open(env), NOW)
    assert (row.state, row.failure) == ("expired", DENIED)


def test_a_fetch_that_succeeded_since_hides_the_failure(
    write_config: Callable[[str], Path],
) -> None:
    write_config(f'[registries."{CENTRAL_HOST}"]\n')
    env = dict(os.environ)
    _note(env, CENTRAL_HOST, NOW - 120)
    _put(env, CENTRAL_HOST, _token(CENTRAL_HOST, CENTRAL, "us-east-1", NOW - 60))
    [row] = status.rows(_open(env), NOW)
    assert (row.state, row.failed_at, row.failure) == ("fresh", None, None)
    assert row.to_json()["last_failure"] is None
    assert "last fetch failed" not in status.table([row], status.DaemonState(None), NOW)


def test_a_reason_spanning_lines_is_one_line_in_the_table(
    write_config: Callable[[str], Path],
) -> None:
    write_config(f'[registries."{CENTRAL_HOST}"]\n')
    env = dict(os.environ)
    _note(env, CENTRAL_HOST, NOW - 5, "cannot reach AWS STS\nin us-east-1\x1b[31m")
    text = status.table(status.rows(_open(env), NOW), status.DaemonState(None), NOW)
    [line] = [x for x in text.splitlines() if "last fetch failed" in x]
    assert line.endswith("cannot reach AWS STS in us-east-1\\x1b[31m")


@pytest.mark.slow
@pytest.mark.parametrize(
    "failing",
    [(XECR, "login"), (XECR, "daemon", "--once"), (HELPER, "get")],
    ids=["login", "daemon", "get"],
)
def test_status_says_why_a_fetch_failed_until_one_succeeds(
    write_config: Callable[[str], Path], fake_aws: FakeAws, failing: tuple[str, ...]
) -> None:
    write_config(f'[registries."{CENTRAL_HOST}"]\nrole_arn = "{PULL_ROLE}"\n')
    fake_aws.fail("AssumeRole", "access_denied")
    denied = run(list(failing), CENTRAL_HOST.encode())
    assert denied.returncode == 1
    [shown] = json.loads(run([XECR, "status", "--json"]).out)
    assert shown["state"] == "none"
    failure = shown["last_failure"]
    assert failure["error"].startswith(f"AssumeRole denied for {PULL_ROLE}")
    assert datetime.fromisoformat(failure["at"]).utcoffset() == timedelta(0)
    table = run([XECR, "status"]).out
    assert f"{CENTRAL_HOST}: last fetch failed " in table and "AssumeRole denied" in table
    assert_no_secrets(known_secrets(fake_aws), outputs=[(denied.out + denied.err + table).encode()])

    fake_aws.clear_faults()
    assert run([XECR, "login"]).returncode == 0
    [shown] = json.loads(run([XECR, "status", "--json"]).out)
    assert (shown["state"], shown["last_failure"]) == ("fresh", None)
    assert "last fetch failed" not in run([XECR, "status"]).out


# -- one token per identity and region (issue 22); pod-role entries (issue 21, item 5) ------

SIBLING_HOST = "333333333333.dkr.ecr.us-east-1.amazonaws.com"


def test_registries_of_one_identity_and_region_show_one_shared_token(
    write_config: Callable[[str], Path],
) -> None:
    write_config(
        f'[defaults]\nregion = "us-east-1"\nrole_arn = "{PULL_ROLE}"\n'
        f'[registries."{CENTRAL_HOST}"]\n[registries."{SIBLING_HOST}"]\n'
        '[registries."alias.example.com"]\nregistry_id = "444444444444"\n'
        f'[registries."{OTHER_HOST}"]\n'  # another region: its own token
    )
    env = dict(os.environ)
    _put(env, CENTRAL_HOST, _token(CENTRAL_HOST, CENTRAL, "us-east-1", NOW - 60, role=PULL_ROLE))
    found = {r.registry: r for r in status.rows(_open(env), NOW)}
    assert found[SIBLING_HOST].state == found["alias.example.com"].state == "fresh"
    assert found[SIBLING_HOST].expires_at == found[CENTRAL_HOST].expires_at
    assert found[CENTRAL_HOST].shares == (SIBLING_HOST, "alias.example.com")
    assert found[SIBLING_HOST].to_json()["shares_token_with"] == [
        CENTRAL_HOST,
        "alias.example.com",
    ]
    assert (found[OTHER_HOST].state, found[OTHER_HOST].shares) == ("none", ())
    text = status.table(list(found.values()), status.DaemonState(None), NOW)
    assert (
        f"one token (one identity and region) serves {CENTRAL_HOST}, {SIBLING_HOST}, "
        "alias.example.com\n" in text
    )


def test_pod_role_tokens_are_listed_under_their_registry_never_their_secret(
    write_config: Callable[[str], Path],
) -> None:
    from ecr_helper.frontends.kubelet import pod_key
    from ecr_helper.service_account import PodRole, ServiceAccount

    write_config(f'[registries."{CENTRAL_HOST}"]\nrole_arn = "{PULL_ROLE}"\n')
    env = dict(os.environ)
    opened = _open(env)
    base = opened.key(opened.settings(CENTRAL_HOST))
    team_role = "arn:aws:iam::555555555555:role/team-a"
    for name in ("builder", "deployer"):
        pod = PodRole(ServiceAccount("team-a", name, uid=name), team_role, "jwt")
        token = Token(
            "AWS", "pod-secret-value", NOW - 60, NOW + 3000, CENTRAL_HOST, CENTRAL, "us-east-1",
            PULL_ROLE, f"team-a/{name}",
        )  # fmt: skip
        opened.store.write(pod_key(base, pod), token)
    # ECR Public, unconfigured: a pod-role token there is shown too, not as "none".
    public = opened.settings("public.ecr.aws")
    pod = PodRole(ServiceAccount("team-b", "web"), team_role, "jwt")
    opened.store.write(
        pod_key(opened.key(public), pod),
        Token("AWS", "pod-secret-2", NOW - 60, NOW + 3000, "public.ecr.aws", "", "us-east-1",
              team_role, "team-b/web"),
    )  # fmt: skip
    found = status.rows(_open(env), NOW)
    listed = [(r.registry, r.service_account, r.state) for r in found]
    assert listed == [
        (CENTRAL_HOST, None, "none"),
        (CENTRAL_HOST, "team-a/builder", "fresh"),
        (CENTRAL_HOST, "team-a/deployer", "fresh"),
        ("public.ecr.aws", None, "none"),
        ("public.ecr.aws", "team-b/web", "fresh"),
    ]
    assert found[1].to_json()["service_account"] == "team-a/builder"
    assert found[4].role_arn == team_role
    text = status.table(found, status.DaemonState(None), NOW)
    assert f"{CENTRAL_HOST} as pod team-a/deployer" in text
    assert "pod-secret" not in text and "pod-secret" not in str([r.to_json() for r in found])
