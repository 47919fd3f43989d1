"""Shared fixtures: every test runs in its own HOME, XDG folders, Docker config
and fake AWS identity, and can never reach real AWS or instance metadata."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fakeaws import FakeAws
from tests.helpers import CONFIG

# Variables that could point a test at a real account, a real profile or a
# real user's files. They are removed before each test and set to safe values.
_AWS_VARS = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_STS",
    "AWS_ENDPOINT_URL_ECR",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    "XECR_CONFIG",
    "XECR_CACHE_DIR",
    "XECR_LOG_DIR",
    "XECR_SYSTEM_CONFIG",
    "XECR_SYSTEM_CACHE_DIR",
    "XECR_LOG_LEVEL",
)


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private home for one test: HOME, XDG_*, DOCKER_CONFIG and AWS files."""
    home = tmp_path / "home"
    home.mkdir()
    for var in _AWS_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".local" / "state"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("DOCKER_CONFIG", str(home / ".docker"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(home / ".aws" / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / ".aws" / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFAKEFAKEFAKE0001")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "fake-secret-key-for-tests-only")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    # Until a test asks for the fake, any AWS call goes to a closed loopback
    # port (discard), never to the real endpoints.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    # The system config must never be the real /etc/xecr in a test.
    monkeypatch.setenv("XECR_SYSTEM_CONFIG", str(tmp_path / "etc" / "xecr" / "config.toml"))
    monkeypatch.setenv("XECR_SYSTEM_CACHE_DIR", str(tmp_path / "var" / "cache" / "xecr"))
    (tmp_path / "run").mkdir(mode=0o700)
    yield home


@pytest.fixture(autouse=True)
def fast_tests_start_no_process(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A test that is neither ``slow`` nor ``e2e`` may not start a process: that is
    what keeps ``pytest -m "not slow and not e2e"`` fast. Mark it, or fake the process."""
    if request.node.get_closest_marker("slow") or request.node.get_closest_marker("e2e"):
        return
    name = request.node.nodeid

    def refuse(self: subprocess.Popen[bytes], *args: object, **kwargs: object) -> None:
        raise AssertionError(f"{name} starts a process: mark it @pytest.mark.slow")

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)


@pytest.fixture(scope="session")
def fake_aws_server() -> Iterator[FakeAws]:
    """One loopback fake AWS for the session; tests reset it through ``fake_aws``."""
    with FakeAws() as server:
        yield server


@pytest.fixture
def fake_aws(fake_aws_server: FakeAws, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAws]:
    """The fake, reset, with ``AWS_ENDPOINT_URL`` pointing at it and 12-hour tokens."""
    FakeAws.reset_state()  # moto's repositories and policies are process-global
    fake_aws_server.reset()
    fake_aws_server.clear_faults()
    fake_aws_server.token_ttl = 43200.0
    if not fake_aws_server.running:
        fake_aws_server.come_up()
    monkeypatch.setenv("AWS_ENDPOINT_URL", fake_aws_server.url)
    yield fake_aws_server
    fake_aws_server.clear_faults()
    if not fake_aws_server.running:
        fake_aws_server.come_up()


@pytest.fixture
def write_config(isolated_env: Path) -> Callable[[str], Path]:
    """Write the user's xecr config.toml and return its path."""

    def write(text: str) -> Path:
        path = isolated_env / ".config" / "xecr" / "config.toml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    return write


@pytest.fixture
def configured(write_config: Callable[[str], Path], fake_aws: FakeAws) -> FakeAws:
    """The standard config (the central registry through the pull role) and the fake AWS."""
    write_config(CONFIG)
    return fake_aws


@pytest.fixture
def log_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """xecr's log file for this test alone (the log module attaches one handler per
    process): the handlers and level in place are set aside and restored after."""
    import logging

    from ecr_helper import log

    monkeypatch.setenv("XECR_LOG_DIR", str(tmp_path / "log"))
    logger = logging.getLogger(log.LOGGER)
    saved = logger.handlers[:]
    for handler in saved:
        logger.removeHandler(handler)
    level = logger.level
    monkeypatch.setattr(log, "_configured", False)
    yield tmp_path / "log" / "xecr.log"
    for handler in logger.handlers[:]:
        handler.close()
        logger.removeHandler(handler)
    for handler in saved:
        logger.addHandler(handler)
    logger.setLevel(level)
