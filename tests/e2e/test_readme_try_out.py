"""The README's "Try it end to end without AWS", run as written: the loopback AWS
stand-in started the way its first block says (``python -m tests.fakeaws --port N``),
then every later shell block, in order, in one ``bash`` as a person types them, against
the session's private dockerd (``DOCKER_HOST``, which a CI runner's Docker needs no
more than). The only changes are the two ports (4566 and 5000 become free ones).

It checks what the section promises: a one-file image pushed and pulled through xecr
with nothing downloaded, the ``xecr:`` line and ``status``'s reason for a denied role,
and that the clean-up block leaves nothing behind: no temporary folder, no registry,
no image, and nothing written to the person's own Docker or xecr settings.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e import harness

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

README = Path(__file__).resolve().parents[2] / "README.md"
ROOT = README.parent
ROLE = "arn:aws:iam::111111111111:role/ecr-pull"
MARK = "@@ block {} done @@"


def _section() -> str:
    text = README.read_text()
    start = text.index("## Try it end to end without AWS")
    return text[start : text.index("\n## ", start + 1)]


def _blocks(section: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", section, re.DOTALL)


@pytest.fixture
def standalone_fake() -> Iterator[str]:
    """The stand-in as the README's first block starts it (on a free port); yields the
    URL it prints."""
    [first] = [b for b in _blocks(_section()) if "python -m tests.fakeaws" in b]
    [command] = [line for line in first.splitlines() if "python -m tests.fakeaws" in line]
    argv = command.split("#")[0].split()
    assert argv == ["python", "-m", "tests.fakeaws", "--port", "4566"]
    proc = subprocess.Popen(
        [sys.executable, *argv[1:-1], "0"],
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


def test_the_readme_blocks_keep_to_a_private_folder_and_pull_nothing() -> None:
    section = _section()
    typed = "\n".join(_blocks(section))
    assert "docker pull busybox" not in section and "busybox" not in typed
    assert "docker import" in typed
    exports = re.search(r"export DOCKER_CONFIG=(\S+) XECR_CONFIG=(\S+)", typed)
    assert exports is not None
    assert all(value.startswith('"$TRY/') for value in exports.groups())
    assert 'rm -rf "$TRY"' in typed and "/tmp/xecr-try" not in typed


def test_the_readme_try_out_runs_as_written(
    standalone_fake: str, dockerd: harness.Dockerd, tmp_path: Path, isolated_env: Path
) -> None:
    harness.require_tool("docker-registry")
    harness.require_tool("htpasswd")
    harness.require_tool("curl")
    fake_host = standalone_fake.removeprefix("http://")
    registry_port = harness.free_port()
    host = f"127.0.0.1:{registry_port}"
    blocks = [b for b in _blocks(_section()) if "python -m tests.fakeaws" not in b]
    script = "".join(
        block.replace("127.0.0.1:4566", fake_host).replace("127.0.0.1:5000", host)
        + f"echo '{MARK.format(i)}'\n"
        for i, block in enumerate(blocks)
    )
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    own_docker_config = Path(os.environ["DOCKER_CONFIG"])
    bin_dir = Path(shutil.which("xecr") or sys.executable).parent
    env = harness.client_env(
        path_prepend=[bin_dir, Path(dockerd.cli).parent],
        extra={"DOCKER_HOST": dockerd.host, "TMPDIR": str(tmp)},
    )
    # Its own session: whatever the blocks leave running (a registry the clean-up
    # block failed to stop) is stopped with the group, by its id.
    proc = subprocess.Popen(
        ["bash", "-c", script],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = proc.communicate(timeout=600)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)
    parts = re.split(r"@@ block \d+ done @@\n", output)
    assert len(parts) == len(blocks) + 1, output
    _setup, _registry, push_pull, fault, cleanup, _ = parts

    assert f"Downloaded newer image for {host}/try/tiny" in push_pull, push_pull
    assert re.search(rf"^{re.escape(host)}\s.*\sfresh$", push_pull, re.MULTILINE), push_pull

    [line] = [x for x in fault.splitlines() if x.startswith("xecr: ")]
    assert line.startswith(f"xecr: {host}: AssumeRole denied for {ROLE}"), fault
    assert f"{host}: last fetch failed " in fault and "AssumeRole denied" in fault, fault
    assert re.search(r"^FAIL assume role: AssumeRole denied", fault, re.MULTILINE), fault

    # The clean-up block left nothing: no folder, no registry, no image.
    assert list(tmp.iterdir()) == [], cleanup
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", registry_port), 2):
        pass
    docker = dockerd.client(tmp_path / "check-config")
    assert not docker.image_exists(f"{host}/try/tiny")
    # Nothing of the person's own: Docker's config, xecr's config, cache and log.
    assert not (own_docker_config / "config.json").exists()
    assert not (isolated_env / ".config" / "xecr").exists()
    assert not (isolated_env / ".cache" / "xecr").exists()
    assert not (isolated_env / ".local" / "state" / "xecr").exists()
