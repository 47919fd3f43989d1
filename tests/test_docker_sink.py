"""ecr_helper.daemon.docker_sink: ``xecr daemon --write-docker-config DIR`` puts tokens
only where no one else reads or swaps them: ``DIR`` is a folder of the daemon's user
(or root's) that only its owner may change, never a symlink; ``config.json`` is
written 0600 whatever mode it had. A ``DIR`` that is not stops the daemon at start
(one line, exit 1, no AWS call); one that turns unsafe later is refused at each
write while the daemon keeps serving (issue 20, item 3)."""

from __future__ import annotations

import base64
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from ecr_helper.daemon.docker_sink import DockerConfigSink
from ecr_helper.errors import XecrError
from tests.fakeaws import FakeAws
from tests.helpers import (
    CENTRAL_HOST,
    CONFIG,
    XECR,
    assert_one_line_failure,
    make_token,
    run,
)
from tests.test_isolation import NOBODY, require_root

SECRET = "sink-secret-0123456789"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def _auths(path: Path) -> dict[str, object]:
    auths: dict[str, object] = json.loads(path.read_text())["auths"]
    return auths


def _folder(tmp_path: Path, mode: int = 0o700) -> Path:
    folder = tmp_path / "sink"
    folder.mkdir()
    folder.chmod(mode)
    return folder


def test_the_file_is_0600_and_keeps_every_other_key(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    path = folder / "config.json"
    path.write_text(json.dumps({"auths": {"ghcr.io": {"auth": "dXNlcjpwYXNz"}}, "x": 1}))
    path.chmod(0o666)
    sink = DockerConfigSink(str(folder), [CENTRAL_HOST])
    assert sink.put({CENTRAL_HOST: make_token(SECRET)}) is None
    assert _mode(path) == 0o600
    document = json.loads(path.read_text())
    assert document["x"] == 1 and set(document["auths"]) == {"ghcr.io", CENTRAL_HOST}
    auth = base64.b64decode(document["auths"][CENTRAL_HOST]["auth"]).decode()
    assert auth == f"AWS:{SECRET}"


def test_a_missing_folder_is_made_0700(tmp_path: Path) -> None:
    folder = tmp_path / "made" / "sink"
    sink = DockerConfigSink(str(folder), [CENTRAL_HOST])
    assert _mode(folder) == 0o700
    assert sink.put({CENTRAL_HOST: make_token(SECRET)}) is None
    assert _mode(folder / "config.json") == 0o600


def test_a_folder_others_may_list_but_not_change_is_accepted(tmp_path: Path) -> None:
    folder = _folder(tmp_path, 0o755)
    sink = DockerConfigSink(str(folder), [CENTRAL_HOST])
    assert sink.put({CENTRAL_HOST: make_token(SECRET)}) is None
    assert _mode(folder / "config.json") == 0o600


def _symlinked(tmp_path: Path) -> tuple[Path, Path]:
    elsewhere = _folder(tmp_path)
    link = tmp_path / "link"
    link.symlink_to(elsewhere)
    return link, elsewhere


def _writable_by(mode: int) -> Callable[[Path], tuple[Path, Path]]:
    def make(tmp_path: Path) -> tuple[Path, Path]:
        folder = _folder(tmp_path, mode)
        return folder, folder

    return make


def _a_file(tmp_path: Path) -> tuple[Path, Path]:
    path = tmp_path / "sink"
    path.write_text("")
    return path, tmp_path


UNSAFE_FOLDERS: dict[str, tuple[Callable[[Path], tuple[Path, Path]], str]] = {
    "a symlink": (_symlinked, "it is a symlink"),
    "group-writable": (_writable_by(0o770), "mode 0770 lets others in (run `chmod go-w"),
    "world-writable": (_writable_by(0o777), "mode 0777 lets others in"),
    "sticky /tmp-like": (_writable_by(0o1777), "mode 1777 lets others in"),
    "a file": (_a_file, "not a folder"),
}


@pytest.mark.parametrize("case", list(UNSAFE_FOLDERS))
def test_an_unsafe_folder_is_refused_when_the_sink_is_made(tmp_path: Path, case: str) -> None:
    make, says = UNSAFE_FOLDERS[case]
    folder, real = make(tmp_path)
    with pytest.raises(XecrError, match=r"refusing folder .*" + says.replace("(", r"\(")) as caught:
        DockerConfigSink(str(folder), [CENTRAL_HOST])
    assert str(folder) in str(caught.value) and "\n" not in str(caught.value)
    assert not (real / "config.json").exists()


def test_a_folder_of_another_user_is_refused(tmp_path: Path) -> None:
    require_root()
    folder = _folder(tmp_path, 0o755)
    os.chown(folder, NOBODY, NOBODY)
    with pytest.raises(XecrError, match="owned by uid 65534, not by you or root"):
        DockerConfigSink(str(folder), [CENTRAL_HOST])
    assert not (folder / "config.json").exists()


def _link_elsewhere(path: Path) -> Path:
    target = path.parent.parent / "elsewhere.json"
    target.write_text("{}")
    path.symlink_to(target)
    return target


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _folder_named_config(path: Path) -> Path:
    path.mkdir()
    return path


ODD_FILES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "a symlink": (_link_elsewhere, "refused: it is a symlink"),
    "a FIFO": (_fifo, "refused: not a regular file"),
    "a folder": (_folder_named_config, "refused: not a regular file"),
}


@pytest.mark.parametrize("case", list(ODD_FILES))
def test_a_config_json_that_is_not_a_regular_file_is_refused(tmp_path: Path, case: str) -> None:
    make, says = ODD_FILES[case]
    folder = _folder(tmp_path)
    touched = make(folder / "config.json")
    before = touched.lstat()
    with pytest.raises(XecrError, match=says):
        DockerConfigSink(str(folder), [CENTRAL_HOST])
    after = touched.lstat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_a_folder_that_turns_unsafe_is_refused_at_each_write_and_the_sink_goes_on(
    tmp_path: Path,
) -> None:
    folder = _folder(tmp_path)
    sink = DockerConfigSink(str(folder), [CENTRAL_HOST])
    folder.chmod(0o777)
    failure = sink.put({CENTRAL_HOST: make_token(SECRET)})
    assert failure is not None and "lets others in" in failure and "\n" not in failure
    assert SECRET not in failure
    assert not (folder / "config.json").exists()
    folder.chmod(0o700)
    assert sink.put({CENTRAL_HOST: make_token(SECRET)}) is None
    assert set(_auths(folder / "config.json")) == {CENTRAL_HOST}


# ---------------------------------------------------------------------------
# Through the installed `xecr daemon`, as root with a folder of hers
# ---------------------------------------------------------------------------


@pytest.fixture
def configured(write_config: Callable[[str], Path], fake_aws: FakeAws) -> FakeAws:
    write_config(CONFIG)
    return fake_aws


def _her_folder(tmp_path: Path) -> tuple[Path, bytes]:
    """Her folder, with her world-writable config.json in it."""
    folder = tmp_path / "hers"
    folder.mkdir(mode=0o755)
    path = folder / "config.json"
    original = b'{"auths": {}}\n'
    path.write_bytes(original)
    path.chmod(0o666)
    os.chown(folder, NOBODY, NOBODY)
    os.chown(path, NOBODY, NOBODY)
    return folder, original


@pytest.mark.slow
@pytest.mark.parametrize("once", [True, False], ids=["--once", "serving"])
def test_the_daemon_refuses_her_folder_at_start(
    configured: FakeAws, tmp_path: Path, once: bool
) -> None:
    require_root()
    folder, original = _her_folder(tmp_path)
    args = [XECR, "daemon", *(["--once"] if once else []), "--write-docker-config", str(folder)]
    result = run(args, timeout=30)
    assert_one_line_failure(result, str(folder), "owned by uid 65534", stream="stderr")
    assert configured.counts() == {}
    assert (folder / "config.json").read_bytes() == original
    assert _mode(folder / "config.json") == 0o666


@pytest.mark.slow
@pytest.mark.parametrize("once", [True, False], ids=["--once", "serving"])
def test_the_daemon_refuses_a_symlinked_folder_at_start(
    configured: FakeAws, tmp_path: Path, once: bool
) -> None:
    link, elsewhere = _symlinked(tmp_path)
    (elsewhere / "config.json").write_text("{}")
    args = [XECR, "daemon", *(["--once"] if once else []), "--write-docker-config", str(link)]
    result = run(args, timeout=30)
    assert_one_line_failure(result, str(link), "it is a symlink", stream="stderr")
    assert configured.counts() == {}
    assert (elsewhere / "config.json").read_text() == "{}"


@pytest.mark.slow
def test_the_daemon_writes_0600_over_a_looser_file(configured: FakeAws, tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    path = folder / "config.json"
    path.write_text('{"credsStore": "pass"}')
    path.chmod(0o644)
    result = run([XECR, "daemon", "--once", "--write-docker-config", str(folder)], timeout=60)
    assert result.returncode == 0, result.err
    assert _mode(path) == 0o600
    assert json.loads(path.read_text())["credsStore"] == "pass"
    assert set(_auths(path)) == {CENTRAL_HOST}


# -- ECR Public under both its names (issue 21, item 6) ---------------------------------

PUBLIC_NAMES = {"public.ecr.aws", "ecr-public.aws.com"}


def test_ecr_public_is_written_and_removed_under_both_names(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    path = folder / "config.json"
    sink = DockerConfigSink(str(folder), ["public.ecr.aws", CENTRAL_HOST])
    token = make_token(SECRET, host="public.ecr.aws", registry_id="", role=None)
    assert sink.put({"public.ecr.aws": token, CENTRAL_HOST: make_token()}) is None
    auths = _auths(path)
    assert set(auths) == PUBLIC_NAMES | {CENTRAL_HOST}
    assert auths["public.ecr.aws"] == auths["ecr-public.aws.com"]
    sink.set_hosts([CENTRAL_HOST])  # public.ecr.aws dropped from the config
    assert set(_auths(path)) == {CENTRAL_HOST}


@pytest.mark.slow
def test_the_daemon_writes_both_ecr_public_names(
    write_config: Callable[[str], Path], fake_aws: FakeAws, tmp_path: Path
) -> None:
    write_config('[registries."public.ecr.aws"]\n')
    folder = _folder(tmp_path)
    result = run([XECR, "daemon", "--once", "--write-docker-config", str(folder)], timeout=60)
    assert result.returncode == 0, result.err
    auths = _auths(folder / "config.json")
    assert set(auths) == PUBLIC_NAMES
    for name in PUBLIC_NAMES:
        entry = auths[name]
        assert isinstance(entry, dict)
        user, password = base64.b64decode(entry["auth"]).decode().split(":", 1)
        assert user == "AWS" and password.startswith("ecr-public-")
