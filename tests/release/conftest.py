"""The artifacts `scripts/release.sh` built into ``dist/`` (or ``$XECR_DIST``).

Without them these tests skip on a developer's machine, and fail in CI, which
builds them first (``.ci/run``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.e2e import harness

REPO = Path(__file__).resolve().parents[2]


def version() -> str:
    text = (REPO / "ecr_helper" / "__init__.py").read_text()
    found = re.search(r'^__version__ = "([^"]+)"', text, re.M)
    assert found
    return found.group(1)


@pytest.fixture(scope="session")
def dist() -> Path:
    folder = Path(os.environ.get("XECR_DIST", REPO / "dist"))
    if not (folder / "SHA256SUMS").is_file():
        harness.unavailable(f"no release artifacts in {folder}: run ./scripts/release.sh")
    return folder


def artifact(dist: Path, pattern: str) -> Path:
    found = sorted(dist.glob(pattern.format(version=version())))
    assert len(found) == 1, f"expected one {pattern} in {dist}, found {found}"
    return found[0]


# The real-client fixtures (a private dockerd, htpasswd registries) serve these tests too.
from tests.e2e.conftest import dockerd, registry_factory  # noqa: E402, F401
