"""Shared fixtures: every test runs in its own HOME, XDG folders, Docker config
and fake AWS identity, and can never reach real AWS or instance metadata."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

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
    # The system config must never be the real /etc/xecr in a test.
    monkeypatch.setenv("XECR_SYSTEM_CONFIG", str(tmp_path / "etc" / "xecr" / "config.toml"))
    (tmp_path / "run").mkdir(mode=0o700)
    yield home

