"""Isolation between users, identities and processes, through the installed executables:
a homoglyph host is not ECR, parallel ``xecr configure`` runs lose nothing, root with
another user's HOME writes nothing through her symlinks and runs none of her commands,
and a starting daemon outwaits probes of its lock."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from ecr_helper.daemon import lock
from ecr_helper.errors import AlreadyRunning, XecrError
from tests.e2e.harness import unavailable
from tests.fakeaws import FakeAws
from tests.helpers import (
    CENTRAL_HOST,
    CONFIG,
    PULL_ROLE,
    XECR,
    assert_answers,
    assert_one_line_failure,
    get,
    installed,
    run,
)

pytestmark = pytest.mark.slow

NOBODY = 65534  # another user's uid (nobody's), whatever the passwd file says


@pytest.fixture
def configured(write_config: Callable[[str], Path], fake_aws: FakeAws) -> FakeAws:
    write_config(CONFIG)
    return fake_aws


# -- Unicode homoglyphs ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "111111111111.d\u212ar.ecr.us-east-1.amazonaws.com",  # KELVIN SIGN lowers to "k"
        "111111111111.dkr.ecr.us-east-1.amazonaws.\u0441om",  # Cyrillic es
        "\u0131" + CENTRAL_HOST[1:],  # dotless i (upper-cases to I)
    ],
)
def test_a_homoglyph_host_is_not_ecr(configured: FakeAws, host: str) -> None:
    result = get(host)
    assert result.returncode == 1
    assert result.out == "credentials not found in native keychain\n"
    assert configured.counts() == {}


# -- parallel configure -------------------------------------------------------------------------


def test_ten_parallel_configure_runs_keep_all_ten_registries(
    isolated_env: Path, tmp_path: Path
) -> None:
    hosts = [f"{100000000000 + n}.dkr.ecr.us-east-1.amazonaws.com" for n in range(10)]
    procs = [
        subprocess.Popen(
            [installed(XECR), "configure", host, "--role-arn", PULL_ROLE],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for host in hosts
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, (out, err)
    import tomllib

    config = tomllib.loads((isolated_env / ".config" / "xecr" / "config.toml").read_text())
    assert sorted(config["registries"]) == sorted(hosts)
    docker = json.loads((isolated_env / ".docker" / "config.json").read_text())
    assert docker["credHelpers"] == dict.fromkeys(hosts, "xecr")


# -- root with another user's HOME ----------------------------------------------------------------


def require_root() -> None:
    if os.geteuid() != 0:
        unavailable("needs root, to act on a second user's files")


def hostile_home(tmp_path: Path) -> Path:
    """Her HOME, every folder and file in it hers (uid nobody), as `sudo -E` keeps it."""
    home = tmp_path / "her"
    for folder in (".config/xecr", ".local/state/xecr/log", ".aws", ".cache", ".docker"):
        (home / folder).mkdir(parents=True, exist_ok=True)
    return home


def hand_over(home: Path) -> None:
    for folder, dirs, files in os.walk(home):
        os.chown(folder, NOBODY, NOBODY, follow_symlinks=False)
        for name in dirs + files:
            os.chown(os.path.join(folder, name), NOBODY, NOBODY, follow_symlinks=False)


def as_root_with(home: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("XDG_") and k not in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")
    }
    env.update(HOME=str(home), DOCKER_CONFIG=str(home / ".docker"), XECR_LOG_LEVEL="DEBUG")
    return env


def her_credential_process(home: Path, tmp_path: Path, profile: str) -> Path:
    marker = tmp_path / "her-command-ran"
    script = home / "steal.py"
    script.write_text(f"import pathlib; pathlib.Path({str(marker)!r}).write_text('ran')\n")
    (home / ".aws" / "config").write_text(
        f"[{profile}]\ncredential_process = {sys.executable} {script}\nregion = us-east-1\n"
    )
    return marker


def test_root_with_her_home_writes_nothing_through_her_symlinked_log(
    fake_aws: FakeAws, tmp_path: Path
) -> None:
    require_root()
    secret_file = tmp_path / "root-only"
    secret_file.write_text("root's\n")
    secret_file.chmod(0o600)
    home = hostile_home(tmp_path)
    (home / ".local/state/xecr/log/xecr.log").symlink_to(secret_file)
    hand_over(home)
    # Root's own config (XECR_CONFIG kept by sudo -E): a role to assume, so there is
    # something to log at DEBUG.
    config = tmp_path / "root-config.toml"
    config.write_text(CONFIG)
    result = get(env={**as_root_with(home), "XECR_CONFIG": str(config)})
    assert_answers_except_stderr(result)
    assert secret_file.read_text() == "root's\n"
    assert result.err.count("\n") == 1 and "not logging to" in result.err
    assert "owned by uid 65534" in result.err


def test_root_refuses_a_symlinked_or_foreign_log_file_in_its_own_folder(
    configured: FakeAws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_root()
    monkeypatch.setenv("XECR_LOG_LEVEL", "DEBUG")
    folder = tmp_path / "log"
    folder.mkdir(mode=0o700)
    target = tmp_path / "root-only"
    target.write_text("")
    (folder / "xecr.log").symlink_to(target)
    result = get(env={**os.environ, "XECR_LOG_DIR": str(folder)})
    assert_answers_except_stderr(result)
    assert target.read_text() == ""
    assert result.err.count("\n") == 1 and "it is a symlink" in result.err
    (folder / "xecr.log").unlink()
    (folder / "xecr.log").write_text("")
    os.chown(folder / "xecr.log", NOBODY, NOBODY)
    (Path(os.environ["HOME"]) / ".cache" / "xecr").rename(tmp_path / "cache-aside")  # a miss
    result = get(env={**os.environ, "XECR_LOG_DIR": str(folder)})
    assert_answers_except_stderr(result)
    assert result.err.count("\n") == 1 and "owned by uid 65534" in result.err
    assert (folder / "xecr.log").read_text() == ""


def assert_answers_except_stderr(result: object) -> None:
    from tests.helpers import ANSWER, Result

    assert isinstance(result, Result)
    assert result.returncode == 0, (result.out, result.err)
    assert result.answer() == ANSWER
    assert "Traceback" not in result.err


def test_root_with_her_home_reads_not_her_config_nor_runs_her_commands(
    fake_aws: FakeAws, tmp_path: Path
) -> None:
    require_root()
    home = hostile_home(tmp_path)
    marker = her_credential_process(home, tmp_path, "profile hers")
    (home / ".config/xecr/config.toml").write_text(
        textwrap.dedent(f"""\
            [defaults]
            region = "us-east-1"
            source_profile = "hers"

            [registries."{CENTRAL_HOST}"]
            role_arn = "{PULL_ROLE}"
        """)
    )
    hand_over(home)
    result = get(env=as_root_with(home))
    line = failure_line(result.out)
    assert "config.toml" in line and "refused: owned by uid 65534" in line
    assert_log_refused(result.err)
    assert not marker.exists()
    assert fake_aws.counts() == {}
    done = run([installed(XECR), "status"], env=as_root_with(home))
    assert done.returncode == 1
    [line, *_] = [x for x in done.err.splitlines() if "config.toml" in x]
    assert "refused: owned by uid 65534" in line and "Traceback" not in done.err


def failure_line(text: str) -> str:
    assert text.endswith("\n") and text.count("\n") == 1, text
    return text.strip()


def assert_log_refused(err: str) -> None:
    """Her log folder refused in at most one line on stderr (beside the pull-time
    line that repeats the failure for Docker's user)."""
    lines = err.splitlines()
    refusals = [x for x in lines if "not logging to" in x]
    assert len(refusals) <= 1, err
    for line in refusals:
        assert "owned by uid 65534" in line, err
    others = [x for x in lines if x not in refusals]
    assert len(others) <= 1 and all(x.startswith(f"xecr: {CENTRAL_HOST}: ") for x in others), err


def test_root_with_her_home_ignores_her_aws_config(fake_aws: FakeAws, tmp_path: Path) -> None:
    # No xecr config at all: an ECR host is served with defaults, from the AWS chain,
    # which would read her ~/.aws/config and run her credential_process as root.
    require_root()
    home = hostile_home(tmp_path)
    marker = her_credential_process(home, tmp_path, "default")
    hand_over(home)
    env = as_root_with(home)
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        env.pop(key, None)
    result = get(env=env)
    line = failure_line(result.out)
    assert "refusing AWS file" in line and "owned by uid 65534" in line
    assert_log_refused(result.err)
    assert not marker.exists()
    assert fake_aws.calls("AssumeRole") == 0


def test_a_config_others_may_write_is_refused(configured: FakeAws, isolated_env: Path) -> None:
    path = isolated_env / ".config" / "xecr" / "config.toml"
    path.chmod(0o666)
    result = get()
    assert_one_line_failure(result, str(path), "lets others write it", "chmod go-w")
    assert configured.counts() == {}
    path.chmod(0o644)
    assert_answers(get())


# -- a starting daemon outwaits probes -------------------------------------------------


def test_a_starting_daemon_outwaits_probes_holding_the_shared_lock(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    folder.mkdir(mode=0o700)
    # A daemon ran and ended: its pid stays in the file.
    (folder / lock.LOCK_NAME).write_text("999999\n")
    (folder / lock.LOCK_NAME).chmod(0o600)
    probe = textwrap.dedent(f"""\
        import sys, time
        from ecr_helper.daemon import lock
        end = time.monotonic() + 60
        print("ready", flush=True)
        while time.monotonic() < end:
            lock.is_running({str(folder)!r})
    """)
    probes = [
        subprocess.Popen([sys.executable, "-c", probe], stdout=subprocess.PIPE) for _ in range(2)
    ]
    try:
        for proc in probes:
            assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        for _ in range(20):
            held = lock.acquire_instance(str(folder))
            held.release()
    finally:
        for proc in probes:
            proc.kill()
            proc.wait()


def test_a_lock_held_by_something_else_does_not_name_a_dead_pid(tmp_path: Path) -> None:
    import fcntl

    folder = tmp_path / "cache"
    folder.mkdir(mode=0o700)
    path = folder / lock.LOCK_NAME
    path.write_text("999999\n")
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)  # a local user holding a probe's lock for ever
        with pytest.raises(XecrError) as caught:
            lock.acquire_instance(str(folder), wait=0.2)
        assert not isinstance(caught.value, AlreadyRunning)
        assert "not by a daemon" in str(caught.value) and "999999 in it has ended" in str(
            caught.value
        )
    finally:
        os.close(fd)
    lock.acquire_instance(str(folder)).release()
