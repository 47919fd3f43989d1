"""botocore's customer data is never loaded, through the installed executables.

botocore reads ``~/.aws/models`` (and the folders ``AWS_DATA_PATH`` names)
before its own data: an endpoint rule set there decides where signed requests
go. A rule set for ``sts`` and ``ecr`` pointing at a loopback listener must
receive nothing, whoever's HOME it is in (root's with another user's HOME
included); the fake AWS serves the calls.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakeaws import FakeAws
from tests.helpers import ANSWER, CENTRAL_HOST, CONFIG, XECR, assert_answers, get, run

pytestmark = pytest.mark.slow

NOBODY = 65534  # another user's uid (nobody's), whatever the passwd file says
API_VERSIONS = {"sts": "2011-06-15", "ecr": "2015-09-21"}


class Listener:
    """A loopback listener that records every connection and answers nothing."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.received: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(1.0)
                try:
                    self.received.append(conn.recv(65536))
                except OSError:
                    self.received.append(b"")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    made = Listener()
    yield made
    made.close()


def plant_models(folder: Path, url: str) -> None:
    """Endpoint rule sets for sts and ecr that send every request to ``url``."""
    rule_set = {
        "version": "1.0",
        "parameters": {
            "Region": {"builtIn": "AWS::Region", "required": False, "type": "String"},
        },
        "rules": [
            {
                "conditions": [],
                "endpoint": {"url": url, "properties": {}, "headers": {}},
                "type": "endpoint",
            }
        ],
    }
    for service, version in API_VERSIONS.items():
        path = folder / service / version / "endpoint-rule-set-1.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(rule_set))


def assert_served_by_the_fake(fake: FakeAws, listener: Listener, roles: int = 1) -> None:
    assert listener.received == []
    assert fake.calls("AssumeRole") == roles
    assert fake.calls("GetAuthorizationToken") == roles


def test_rule_sets_in_the_home_models_folder_are_not_loaded(
    configured: FakeAws, listener: Listener, isolated_env: Path
) -> None:
    plant_models(isolated_env / ".aws" / "models", listener.url)
    assert_answers(get())
    assert_served_by_the_fake(configured, listener)
    done = run([XECR, "login"])
    assert done.returncode == 0, (done.out, done.err)
    assert_served_by_the_fake(configured, listener, roles=2)


def test_aws_data_path_is_ignored(configured: FakeAws, listener: Listener, tmp_path: Path) -> None:
    plant_models(tmp_path / "data", listener.url)
    assert_answers(get(extra_env={"AWS_DATA_PATH": str(tmp_path / "data")}))
    assert_served_by_the_fake(configured, listener)


def test_root_with_her_home_sends_nothing_where_her_models_say(
    fake_aws: FakeAws, listener: Listener, tmp_path: Path
) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root, to act with a second user's files")
    home = tmp_path / "her"
    plant_models(home / ".aws" / "models", listener.url)
    for folder, dirs, files in os.walk(home):
        os.chown(folder, NOBODY, NOBODY)
        for name in dirs + files:
            os.chown(os.path.join(folder, name), NOBODY, NOBODY)
    config = tmp_path / "root-config.toml"  # root's own config (XECR_CONFIG kept by sudo -E)
    config.write_text(CONFIG)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("XDG_") and k not in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")
    }
    env.update(HOME=str(home), DOCKER_CONFIG=str(home / ".docker"), XECR_CONFIG=str(config))
    env["XECR_LOG_DIR"] = str(tmp_path / "root-log")
    env["XECR_CACHE_DIR"] = str(tmp_path / "root-cache")
    result = get(env=env)
    assert result.returncode == 0, (result.out, result.err)
    assert result.answer() == ANSWER
    assert_served_by_the_fake(fake_aws, listener)
    done = run([XECR, "login", CENTRAL_HOST], env=env)
    assert done.returncode == 0, (done.out, done.err)
    assert_served_by_the_fake(fake_aws, listener, roles=2)
