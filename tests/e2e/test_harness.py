"""Proves the e2e harness with a stand-in credential helper.

The docker CLI (not dockerd) runs ``docker-credential-NAME`` from its own
PATH; skopeo does the same from a containers-auth.json ``credHelpers`` entry.
Both write the bare registry host, ``127.0.0.1:PORT`` with no newline, to
the helper's stdin.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e import harness
from tests.e2e.conftest import DEFAULT_PASSWORD, DEFAULT_USER, RegistryFactory

e2e = pytest.mark.e2e


def _push_image(
    docker: harness.DockerClient, reg: harness.Registry, repo: str = "team/app", tag: str = "1"
) -> str:
    ref = reg.ref(repo, tag)
    local = f"xecr-e2e/{repo}:{tag}"
    harness.make_tiny_image(docker, local, content=f"{reg.host} {repo}\n".encode())
    docker.run("tag", local, ref)
    docker.run("push", ref, timeout=120)
    return ref


# -- the harness itself, no tools needed ------------------------------------


def test_require_tool_skips_without_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        harness.require_tool("xecr-no-such-tool-anywhere")
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception):
        harness.require_tool("xecr-no-such-tool-anywhere")


def test_require_tool_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="xecr-no-such-tool-anywhere"):
        harness.require_tool("xecr-no-such-tool-anywhere")


def test_require_tool_finds_installed_tool() -> None:
    assert harness.require_tool("sh").endswith("/sh")


def test_tiny_tarball_is_a_one_file_tar(tmp_path: Path) -> None:
    import io
    import tarfile

    data = harness.tiny_tarball(b"abc")
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = tar.getnames()
        member = tar.extractfile("hello.txt")
        assert member is not None
        assert member.read() == b"abc"
    assert names == ["hello.txt"]
    assert harness.tiny_tarball(b"abc") == data  # reproducible


@pytest.mark.slow
def test_stub_helper_answers_get(tmp_path: Path) -> None:
    stub = harness.make_stub_helper(tmp_path / "bin", username="u", password="p")
    done = harness.run([str(stub.path), "get"], input="127.0.0.1:5000", timeout=30)
    assert json.loads(done.stdout) == {
        "ServerURL": "127.0.0.1:5000",
        "Username": "u",
        "Secret": "p",
    }
    assert stub.calls() == [harness.HelperCall("get", "127.0.0.1:5000")]
    missing = harness.make_stub_helper(tmp_path / "bin", name="none", username="u", password=None)
    done = harness.run([str(missing.path), "get"], input="h", check=False, timeout=30)
    assert done.returncode == 1
    assert "credentials not found" in done.stdout


@pytest.mark.slow
def test_xecr_shim_runs_this_checkout(tmp_path: Path) -> None:
    shim = harness.make_xecr_helper(tmp_path / "bin")
    assert shim.name == "docker-credential-xecr"
    done = harness.run([str(shim), "version"], check=False, timeout=30)
    assert "xecr" in done.stdout + done.stderr


# -- real components ---------------------------------------------------------


@e2e
def test_dockerd_is_private(dockerd: harness.Dockerd, docker_cli: harness.DockerClient) -> None:
    info = json.loads(docker_cli.run("info", "--format", "{{json .}}").stdout)
    assert info["DockerRootDir"] == str(dockerd.data_root)
    assert info["Driver"] == "vfs"
    assert "127.0.0.0/8" in info["RegistryConfig"]["InsecureRegistryCIDRs"]
    assert len(str(dockerd.sock)) < 100
    # dockerd 20.10's trust key went to our folder, not /etc/docker/key.json.
    assert (dockerd.short_dir / "key.json").exists()


@e2e
def test_registry_requires_basic_auth(registry: harness.Registry) -> None:
    assert registry.host.startswith("127.0.0.1:")
    assert registry.get("/v2/") == 401
    assert registry.get("/v2/", auth=(DEFAULT_USER, "wrong")) == 401
    assert registry.get("/v2/", auth=(DEFAULT_USER, DEFAULT_PASSWORD)) == 200


@e2e
def test_push_rmi_pull_through_credential_helper(
    docker_cli: harness.DockerClient, registry: harness.Registry, e2e_bin: Path
) -> None:
    stub = harness.make_stub_helper(e2e_bin, username=DEFAULT_USER, password=DEFAULT_PASSWORD)
    docker_cli.write_config(cred_helpers={registry.host: "stub"})

    ref = _push_image(docker_cli, registry)
    assert stub.get_calls() == [registry.host]
    tags = registry.get("/v2/team/app/tags/list", auth=(DEFAULT_USER, DEFAULT_PASSWORD))
    assert tags == 200

    docker_cli.run("rmi", ref, "xecr-e2e/team/app:1")
    assert not docker_cli.image_exists(ref)
    docker_cli.run("pull", ref, timeout=120)
    assert docker_cli.image_exists(ref)

    # Exactly the host, no scheme, no path, no trailing newline.
    assert stub.get_calls() == [registry.host, registry.host]
    assert {c.action for c in stub.calls()} == {"get"}
    # docker never stored the secret in its own config.
    assert "auths" not in docker_cli.read_config() or not docker_cli.read_config()["auths"]
    docker_cli.run("rmi", ref)


@e2e
def test_wrong_password_fails_push(
    docker_cli: harness.DockerClient, registry: harness.Registry, e2e_bin: Path
) -> None:
    stub = harness.make_stub_helper(e2e_bin, username=DEFAULT_USER, password="not-the-password")
    docker_cli.write_config(cred_helpers={registry.host: "stub"})
    local = "xecr-e2e/wrong:1"
    ref = registry.ref("team/app", "1")
    harness.make_tiny_image(docker_cli, local)
    docker_cli.run("tag", local, ref)

    done = docker_cli.run("push", ref, check=False, timeout=120)

    assert done.returncode != 0
    assert "unauthorized" in (done.stdout + done.stderr).lower()
    assert stub.get_calls() == [registry.host]
    docker_cli.run("rmi", ref, local)


@e2e
def test_two_registries_two_helpers(
    docker_cli: harness.DockerClient, registry_factory: RegistryFactory, e2e_bin: Path
) -> None:
    """Each host goes to its own helper, with its own credentials."""
    reg_a = registry_factory(username="alice", password="pw-a")
    reg_b = registry_factory(username="bob", password="pw-b")
    stub_a = harness.make_stub_helper(e2e_bin, name="a", username="alice", password="pw-a")
    stub_b = harness.make_stub_helper(e2e_bin, name="b", username="bob", password="pw-b")
    docker_cli.write_config(cred_helpers={reg_a.host: "a", reg_b.host: "b"})

    ref_a = _push_image(docker_cli, reg_a, "team/a")
    ref_b = _push_image(docker_cli, reg_b, "team/b")

    assert stub_a.get_calls() == [reg_a.host]
    assert stub_b.get_calls() == [reg_b.host]
    docker_cli.run("rmi", ref_a, ref_b, "xecr-e2e/team/a:1", "xecr-e2e/team/b:1")


@e2e
@pytest.mark.parametrize("use_env", [False, True], ids=["authfile-flag", "REGISTRY_AUTH_FILE"])
def test_skopeo_uses_cred_helpers_from_auth_file(
    docker_cli: harness.DockerClient,
    registry: harness.Registry,
    skopeo: harness.SkopeoClient,
    e2e_bin: Path,
    use_env: bool,
) -> None:
    stub = harness.make_stub_helper(e2e_bin, username=DEFAULT_USER, password=DEFAULT_PASSWORD)
    docker_cli.write_config(cred_helpers={registry.host: "stub"})
    ref = _push_image(docker_cli, registry)
    docker_calls = len(stub.calls())
    skopeo.write_auth(cred_helpers={registry.host: "stub"})

    done = skopeo.inspect(ref, use_env=use_env)

    info = json.loads(done.stdout)
    assert info["Name"] == f"{registry.host}/team/app"
    assert info["RepoTags"] == ["1"]
    skopeo_calls = stub.calls()[docker_calls:]
    assert skopeo_calls, "skopeo did not run the credential helper"
    assert {c.action for c in skopeo_calls} == {"get"}
    assert {c.stdin for c in skopeo_calls} == {registry.host}
    docker_cli.run("rmi", ref, "xecr-e2e/team/app:1")


@e2e
def test_skopeo_wrong_password_fails(
    docker_cli: harness.DockerClient,
    registry: harness.Registry,
    skopeo: harness.SkopeoClient,
    e2e_bin: Path,
) -> None:
    harness.make_stub_helper(e2e_bin, username=DEFAULT_USER, password=DEFAULT_PASSWORD)
    docker_cli.write_config(cred_helpers={registry.host: "stub"})
    ref = _push_image(docker_cli, registry)
    bad = harness.make_stub_helper(e2e_bin, name="bad", username=DEFAULT_USER, password="nope")
    skopeo.write_auth(cred_helpers={registry.host: "bad"})

    done = skopeo.inspect(ref, check=False)

    assert done.returncode != 0
    assert "unauthorized" in done.stderr.lower()
    assert bad.get_calls() and set(bad.get_calls()) == {registry.host}
    docker_cli.run("rmi", ref, "xecr-e2e/team/app:1")
