"""The README's "Try it end to end without AWS", followed as a person would: the loopback
AWS stand-in run by itself (``python -m tests.fakeaws``), the registry recipe taken from
the README's own text, ``xecr configure``, a push and a pull through real dockerd, then a
fault injected over the fake's HTTP control and the line ``docker pull`` shows for it.

The values the README states (the password the fake issues, the configure command, the
fault request) are read from the README, so a change to either side fails this test.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e import harness

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

README = Path(__file__).resolve().parents[2] / "README.md"
ROOT = README.parent


def _section() -> str:
    text = README.read_text()
    start = text.index("## Try it end to end without AWS")
    return text[start : text.index("\n## ", start + 1)]


def _blocks(section: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", section, re.DOTALL)


def _first_command(block: str) -> list[str]:
    """The block's first command as argv, continuation lines joined."""
    return block.replace("\\\n", " ").splitlines()[0].split()


@pytest.fixture
def standalone_fake(tmp_path: Path) -> Iterator[str]:
    """``python -m tests.fakeaws --port 0`` in its own process; yields the URL it prints."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakeaws", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()  # printed once listening
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", line), line
        yield line
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def test_the_readme_try_out_pushes_pulls_and_shows_a_denied_role(
    standalone_fake: str, dockerd: harness.Dockerd, tmp_path: Path, isolated_env: Path
) -> None:
    section = _section()
    assert "python -m tests.fakeaws --port 4566" in section
    # The password the README says the fake issues for 111111111111.
    password = "111111111111-auth-token"
    assert f"`{password}`" in section

    # The registry, from the README's own recipe (paths and port made private).
    registry_bin = harness.require_tool("docker-registry")
    htpasswd_bin = harness.require_tool("htpasswd")
    [yaml] = [
        b.split("<<'YAML'\n", 1)[1].split("YAML\n", 1)[0]
        for b in _blocks(section, "sh")
        if "<<'YAML'" in b
    ]
    assert f"htpasswd -Bbc htpasswd AWS {password}" in section
    work = tmp_path / "xecr-try"
    work.mkdir()
    harness.run([htpasswd_bin, "-Bbc", str(work / "htpasswd"), "AWS", password], timeout=30)
    port = harness.free_port()
    config = yaml.replace("/tmp/xecr-try", str(work)).replace("127.0.0.1:5000", f"127.0.0.1:{port}")
    (work / "registry.yml").write_text(config)
    registry = subprocess.Popen(
        [registry_bin, "serve", str(work / "registry.yml")],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _try_out(section, standalone_fake, dockerd, tmp_path, port, registry)
    finally:
        registry.terminate()
        registry.wait(timeout=20)


def _try_out(
    section: str,
    fake_url: str,
    dockerd: harness.Dockerd,
    tmp_path: Path,
    port: int,
    registry: subprocess.Popen[bytes],
) -> None:
    host = f"127.0.0.1:{port}"
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": fake_url,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "AKIAEXAMPLEEXAMPLE01",
        "AWS_SECRET_ACCESS_KEY": "not-a-real-secret",
        "AWS_EC2_METADATA_DISABLED": "true",
        "DOCKER_CONFIG": str(tmp_path / "docker-config"),
    }
    for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert name in section
    bin_dir = Path(shutil.which("xecr") or sys.executable).parent
    env["PATH"] = f"{bin_dir}:{env['PATH']}"

    [argv] = [_first_command(c) for c in _blocks(section, "sh") if c.startswith("xecr configure")]
    assert argv[:2] == ["xecr", "configure"] and argv[2] == "127.0.0.1:5000"
    argv[2] = host
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr

    docker = dockerd.client(tmp_path / "docker-config", path_prepend=[bin_dir], extra_env=env)
    assert docker.read_config()["credHelpers"] == {host: "xecr"}
    ref = f"{host}/try/tiny"
    harness.make_tiny_image(docker, "xecr-try/tiny:latest", content=b"tried without AWS\n")
    docker.run("tag", "xecr-try/tiny:latest", ref)
    docker.run("push", ref, timeout=120)
    docker.run("rmi", ref, "xecr-try/tiny:latest")
    docker.run("pull", ref, timeout=120)
    assert registry.poll() is None

    # The fault, sent as the README's curl sends it (form content type, JSON body).
    [body] = re.findall(r"curl -X POST -d '(\{.*?\})' \S+/_fake/fail", section)
    assert json.loads(body) == {"action": "AssumeRole", "kind": "access_denied"}
    request = urllib.request.Request(
        f"{fake_url}/_fake/fail",
        data=body.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 200
    done = subprocess.run(
        ["xecr", "logout"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    docker.run("rmi", ref)
    pulled = docker.run("pull", ref, check=False, timeout=120)
    assert pulled.returncode != 0
    output = pulled.stdout + pulled.stderr
    [line] = [x for x in output.splitlines() if x.startswith("xecr: ")]
    assert f"xecr: {host}: AssumeRole denied for arn:aws:iam::111111111111:role/ecr-pull" in line
