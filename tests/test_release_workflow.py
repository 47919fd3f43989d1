""".github/workflows/release.yml: what a maintainer switches on must build with the same
script as everyone, publish to PyPI without a stored secret, and sign what it attaches.
The workflow cannot run here; these checks read it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

WORKFLOW = Path(__file__).resolve().parent.parent / ".github" / "workflows" / "release.yml"
PYPI_ACTION = "pypa/gh-action-pypi-publish@release/v1"
SIGSTORE_ACTION = "sigstore/gh-action-sigstore-python@v3"


def _workflow() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text())
    return doc


def _jobs() -> dict[str, dict[str, Any]]:
    jobs: dict[str, dict[str, Any]] = _workflow()["jobs"]
    return jobs


def _steps_using(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [step for step in job.get("steps", []) if step.get("uses") == action]


def _job_using(action: str) -> dict[str, Any]:
    [job] = [job for job in _jobs().values() if _steps_using(job, action)]
    return job


def test_it_runs_on_version_tags_and_by_hand() -> None:
    doc = _workflow()
    triggers = doc.get("on", doc.get(True))  # YAML 1.1 reads a bare `on` as true
    assert triggers["push"]["tags"] == ["v*"]
    assert "workflow_dispatch" in triggers
    assert set(triggers) == {"push", "workflow_dispatch"}


def test_it_builds_with_the_release_script_on_both_architectures() -> None:
    [build] = [
        job
        for job in _jobs().values()
        if any("./scripts/release.sh" in step.get("run", "") for step in job["steps"])
    ]
    assert build["strategy"]["matrix"]["runner"] == ["ubuntu-latest", "ubuntu-24.04-arm"]
    assert build["runs-on"] == "${{ matrix.runner }}"
    [upload] = _steps_using(build, "actions/upload-artifact@v4")
    assert upload["with"]["path"] == "dist/"


def test_pypi_gets_the_wheel_and_sdist_by_trusted_publishing_only() -> None:
    job = _job_using(PYPI_ACTION)
    assert job["permissions"] == {"id-token": "write"}
    assert job["environment"]["name"] == "pypi"
    assert job["if"] == "startsWith(github.ref, 'refs/tags/v')"
    [publish] = _steps_using(job, PYPI_ACTION)
    assert set(publish.get("with", {})) <= {"packages-dir"}
    text = yaml.safe_dump(job)
    for secret in ("password", "token", "secrets."):
        assert secret not in text.replace("id-token", ""), secret
    moved = " ".join(step.get("run", "") for step in job["steps"])
    assert '"dist/xecr-$version-py3-none-any.whl" "dist/xecr-$version.tar.gz" pypi/' in moved


def test_every_artifact_is_signed_before_it_is_attached_to_the_release() -> None:
    job = _job_using(SIGSTORE_ACTION)
    assert job["permissions"] == {"contents": "write", "id-token": "write"}
    assert job["if"] == "startsWith(github.ref, 'refs/tags/v')"
    steps = job["steps"]
    [sign] = _steps_using(job, SIGSTORE_ACTION)
    assert sign["with"]["inputs"] == "./dist/*"
    [release] = [step for step in steps if "gh release create" in step.get("run", "")]
    assert steps.index(sign) < steps.index(release)
    # dist/* holds the artifacts, SHA256SUMS and, by then, each one's .sigstore.json.
    assert re.search(r"gh release create \S+ dist/\*", release["run"])


def test_each_job_asks_for_its_own_minimal_permissions() -> None:
    assert _workflow()["permissions"] == {}
    allowed = {"contents": {"read", "write"}, "id-token": {"write"}}
    for name, job in _jobs().items():
        assert "permissions" in job, name
        for scope, level in job["permissions"].items():
            assert level in allowed[scope], (name, scope)


def test_actions_are_pinned_by_major_version() -> None:
    for job in _jobs().values():
        for step in job["steps"]:
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@(release/)?v\d+", step["uses"]), step["uses"]
