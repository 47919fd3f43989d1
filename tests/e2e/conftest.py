"""Fixtures for the real-components tests.

``dockerd`` is one private daemon for the whole session; registries, docker
CLIs and skopeo are per test. A missing tool skips these tests on a
developer's machine and fails them when ``CI`` is set (``harness.require_tool``).
Every process is stopped in a finalizer, whether the test passed or not.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e import harness

DEFAULT_USER = "e2e-user"
DEFAULT_PASSWORD = "e2e-password-0"

RegistryFactory = Callable[..., harness.Registry]


@pytest.fixture(scope="session")
def dockerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[harness.Dockerd]:
    """One private dockerd for the session (vfs, no bridge, own containerd)."""
    harness.require_tool("dockerd")
    harness.require_tool("containerd")
    harness.require_tool("docker")
    harness.require_root()
    daemon = harness.start_dockerd(tmp_path_factory.mktemp("dockerd"))
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture
def registry_factory(tmp_path: Path) -> Iterator[RegistryFactory]:
    """``registry_factory(username=..., password=...)`` starts another
    htpasswd docker-registry on 127.0.0.1; all are stopped after the test."""
    harness.require_tool("docker-registry")
    harness.require_tool("htpasswd")
    started: list[harness.Registry] = []

    def start(username: str = DEFAULT_USER, password: str = DEFAULT_PASSWORD) -> harness.Registry:
        reg = harness.start_registry(
            tmp_path / f"registry-{len(started)}", username=username, password=password
        )
        started.append(reg)
        return reg

    try:
        yield start
    finally:
        for reg in reversed(started):
            reg.stop()


@pytest.fixture
def registry(registry_factory: RegistryFactory) -> harness.Registry:
    """A registry with the user ``DEFAULT_USER`` / ``DEFAULT_PASSWORD``."""
    return registry_factory()


@pytest.fixture
def e2e_bin(tmp_path: Path) -> Path:
    """A folder put first on PATH for the docker CLI and skopeo: drop
    ``docker-credential-*`` programs here."""
    path = tmp_path / "e2e-bin"
    path.mkdir()
    return path


@pytest.fixture
def docker_cli(dockerd: harness.Dockerd, tmp_path: Path, e2e_bin: Path) -> harness.DockerClient:
    """The docker CLI against the session daemon, with a private DOCKER_CONFIG
    (``tmp_path/docker-config``) and ``e2e_bin`` first on PATH."""
    return dockerd.client(tmp_path / "docker-config", path_prepend=[e2e_bin])


@pytest.fixture
def skopeo(tmp_path: Path, e2e_bin: Path) -> harness.SkopeoClient:
    """skopeo with a private auth file and registries.conf, ``e2e_bin`` first on PATH."""
    return harness.make_skopeo(tmp_path / "skopeo", path_prepend=[e2e_bin])
