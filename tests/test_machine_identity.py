"""The machine-wide identity, through the installed executables: a docker-group user
with her own HOME is served what root's daemon keeps for /etc/xecr/config.toml, with
no AWS call and with AWS unreachable, and nothing she writes is ever served as it.

The reader runs as a second Unix user (uid 65534, as the hostile-HOME tests of
tests/test_isolation.py use) through ``setpriv``. Without a docker group on the
machine, each process runs in its own mount namespace where one is bind-mounted
over /etc/group, so the machine's group file is never changed.
"""

from __future__ import annotations

import grp
import os
import shutil
import socket
import stat
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from ecr_helper import cache
from ecr_helper.service import Service
from tests.e2e.harness import unavailable
from tests.fakeaws import FakeAws
from tests.helpers import ANSWER, CENTRAL_HOST, CONFIG, HELPER, XECR, Result, installed, run

NOBODY = 65534  # the second user (nobody's uid), whatever the passwd file says


def closed_url() -> str:
    """A loopback URL nothing listens on: AWS unreachable, refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class Machine:
    """A world-traversable stand-in for /etc/xecr and /var/cache/xecr, and the
    docker group (the machine's, else one bind-mounted over /etc/group)."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.config = base / "etc" / "config.toml"
        self.cache = base / "cache"
        self.group_file: Path | None = None
        try:
            self.gid = grp.getgrnam("docker").gr_gid
        except KeyError:
            self.gid = _free_gid()
            self.group_file = base / "group"
            text = Path("/etc/group").read_text()
            self.group_file.write_text(text + ("" if text.endswith("\n") else "\n"))
            with self.group_file.open("a") as handle:
                handle.write(f"docker:x:{self.gid}:\n")
            self.group_file.chmod(0o644)

    def command(self, args: Sequence[str], as_user: bool = False) -> list[str]:
        """``args`` run as root, or as the second user in the docker group."""
        if as_user:
            args = [
                shutil.which("setpriv") or "setpriv",
                f"--reuid={NOBODY}",
                f"--regid={NOBODY}",
                f"--groups={self.gid}",
                "--",
                *args,
            ]
        if self.group_file is None:
            return list(args)
        mount = 'mount --bind "$0" /etc/group && exec "$@"'
        return ["unshare", "--mount", "sh", "-c", mount, str(self.group_file), *args]

    def env(self, home: Path, endpoint: str) -> dict[str, str]:
        """An environment with HOME ``home``, its own XDG folders and no AWS file paths."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("XDG_")
            and k not in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "DOCKER_CONFIG")
        }
        env.update(
            HOME=str(home),
            AWS_ENDPOINT_URL=endpoint,
            XECR_SYSTEM_CONFIG=str(self.config),
            XECR_SYSTEM_CACHE_DIR=str(self.cache),
        )
        return env


def _free_gid() -> int:
    for gid in range(60000, 65000):
        try:
            grp.getgrgid(gid)
        except KeyError:
            return gid
    unavailable("no free group id for a stand-in docker group")


@pytest.fixture
def machine() -> Iterator[Machine]:
    if os.geteuid() != 0:
        unavailable("needs root: the daemon runs as root and the reader as a second user")
    if shutil.which("setpriv") is None:
        unavailable("needs setpriv (util-linux), to run the reader as a second user")
    # pytest's tmp folders are closed to other users; this one is traversable.
    base = Path(tempfile.mkdtemp(prefix="xecr-machine-"))
    try:
        base.chmod(0o755)
        made = Machine(base)
        if made.group_file is not None and shutil.which("unshare") is None:
            unavailable("no docker group, and no unshare to stand one in")
        made.config.parent.mkdir(mode=0o755)
        made.config.write_text(CONFIG)
        made.config.chmod(0o644)
        made.cache.mkdir(mode=0o700)  # as the unit's ExecStartPre makes it: root's alone
        yield made
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _home(base: Path, name: str, uid: int) -> Path:
    home = base / name
    home.mkdir(mode=0o700)
    os.chown(home, uid, uid)
    return home


def _run(machine: Machine, args: list[str], env: dict[str, str], as_user: bool) -> Result:
    stdin = f"{CENTRAL_HOST}\n".encode() if args[-1] == "get" else b""
    return run(machine.command([installed(args[0]), *args[1:]], as_user), stdin, env=env)


@pytest.mark.slow
def test_a_docker_group_user_with_her_own_home_is_served_the_daemons_token(
    machine: Machine, fake_aws: FakeAws
) -> None:
    root_home = _home(machine.base, "root-home", 0)
    done = _run(machine, [XECR, "daemon", "--once"], machine.env(root_home, fake_aws.url), False)
    assert done.returncode == 0, (done.out, done.err)
    info = machine.cache.stat()
    assert (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid) == (0o750, 0, machine.gid)
    assert fake_aws.calls("GetAuthorizationToken") == 1
    fake_aws.reset()

    her_home = _home(machine.base, "her-home", NOBODY)
    for endpoint in (fake_aws.url, closed_url()):
        result = _run(machine, [HELPER, "get"], machine.env(her_home, endpoint), True)
        assert result.returncode == 0, (endpoint, result.out, result.err)
        assert result.answer() == ANSWER
        assert result.stderr == b""
        assert fake_aws.counts() == {}, endpoint

    # She never writes into the machine-wide folder; nothing there is hers.
    assert all(p.stat().st_uid == 0 for p in machine.cache.iterdir())


@pytest.mark.slow
def test_an_entry_she_planted_is_never_served_as_the_machine_identity(
    machine: Machine, fake_aws: FakeAws
) -> None:
    """Her own folder named as the machine-wide cache (she sets her environment):
    what she writes there is never served, to her or to root, as the daemon's."""
    root_home = _home(machine.base, "root-home", 0)
    her_home = _home(machine.base, "her-home", NOBODY)
    hers = machine.base / "her-cache"
    hers.mkdir(mode=0o750)
    os.chown(hers, NOBODY, machine.gid)
    env = {**machine.env(her_home, fake_aws.url), "XECR_SYSTEM_CACHE_DIR": str(hers)}
    for _ in range(2):
        result = _run(machine, [HELPER, "get"], env, True)
        assert result.returncode == 0, (result.out, result.err)
        assert result.answer() == ANSWER
    assert fake_aws.calls("GetAuthorizationToken") == 2  # nothing of hers served to her
    assert not [p for p in hers.iterdir() if p.name.startswith("token-")]
    fake_aws.reset()
    # Root reading the same folder: not root's, so refused; root fetches for itself.
    env = {**machine.env(root_home, fake_aws.url), "XECR_SYSTEM_CACHE_DIR": str(hers)}
    result = _run(machine, [HELPER, "get"], env, False)
    assert result.returncode == 0, (result.out, result.err)
    assert fake_aws.calls("GetAuthorizationToken") == 1


# -- the key: the machine's identity in the machine-wide cache only ---------------------------


def _users(tmp_path: Path) -> tuple[dict[str, str], dict[str, str]]:
    root = dict(os.environ)
    her = {
        **root,
        "HOME": str(tmp_path / "her"),
        "AWS_CONFIG_FILE": str(tmp_path / "her" / ".aws" / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "her" / ".aws" / "credentials"),
        "AWS_ACCESS_KEY_ID": "AKIAFAKEFAKEFAKE0002",
        "AWS_PROFILE": "hers",
    }
    return root, her


def _system_config() -> None:
    path = Path(os.environ["XECR_SYSTEM_CONFIG"])
    path.parent.mkdir(parents=True)
    path.write_text(CONFIG)
    path.chmod(0o644)


def test_the_machine_wide_cache_keys_by_the_machines_identity(tmp_path: Path) -> None:
    _system_config()
    root, her = _users(tmp_path)
    opened = Service.open(root)
    assert opened.store.machine
    settings = opened.settings(CENTRAL_HOST)
    assert opened.key(settings) == Service.open(her).key(settings)
    assert opened.key(settings) == cache.cache_key(settings, root, machine=True)
    assert opened.key(settings) != cache.cache_key(settings, root)
    values = {name: getattr(settings, name) for name in settings.__slots__}
    profiled = type(settings)(**{**values, "source_profile": "ci"})
    assert cache.cache_key(profiled, root, machine=True) != opened.key(settings)


def test_a_user_config_or_cache_keeps_per_user_keys(
    tmp_path: Path, write_config: Callable[[str], Path]
) -> None:
    _system_config()
    root, her = _users(tmp_path)
    # The machine-wide config with a cache of one's own (XECR_CACHE_DIR): per user.
    for env in (root, her):
        env["XECR_CACHE_DIR"] = str(tmp_path / "own-cache")
    opened = Service.open(root)
    assert not opened.store.machine
    settings = opened.settings(CENTRAL_HOST)
    assert opened.key(settings) == cache.cache_key(settings, root)
    assert opened.key(settings) != Service.open(her).key(settings)
    # A user's config: per user, as ever.
    write_config(CONFIG)
    for env in (root, her):
        del env["XECR_CACHE_DIR"]
    opened = Service.open(root)
    assert not opened.store.machine
    assert opened.key(settings) == cache.cache_key(settings, root)
