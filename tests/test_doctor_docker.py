"""ecr_helper.setup.doctor_docker: Docker's side as doctor checks it. A ``credHelpers`` entry
naming xecr whose ``docker-credential-xecr`` is not on the PATH is flagged, saying where an
install put it (issue 21, item 4); both names of ECR Public are known (item 6); the advice
for an alias host gives ``--region``, and an 11-digit "ECR host" is called a typo, not an
alias (item 8)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from ecr_helper.setup import doctor, doctor_docker
from tests.fakeaws import FakeAws
from tests.helpers import CENTRAL_HOST, HELPER, PULL_ROLE, XECR, installed, passing_probes, run

NOW = 1_800_000_000.0
SHORT_HOST = "11111111111.dkr.ecr.us-east-1.amazonaws.com"  # 11 digits


def _docker(home: Path, document: object) -> None:
    (home / ".docker").mkdir(exist_ok=True)
    (home / ".docker" / "config.json").write_text(json.dumps(document))


def _run(*registries: str) -> dict[str, doctor.Check]:
    checks = doctor.run(dict(os.environ), registries, passing_probes(NOW), lambda: NOW)
    return {c.name: c for c in checks}


@pytest.fixture
def helper_on_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A PATH holding a ``docker-credential-xecr`` (never run: only looked up)."""
    folder = tmp_path / "bin"
    folder.mkdir()
    exe = folder / doctor_docker.EXECUTABLE
    exe.write_text("#!/bin/sh\nexit 1\n")
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", str(folder))
    return exe


# -- item 4: a helper Docker cannot find --------------------------------------------------------


def test_a_helper_on_the_path_is_named(
    isolated_env: Path, write_config: Callable[[str], Path], helper_on_path: Path
) -> None:
    write_config(f'[registries."{CENTRAL_HOST}"]\n')
    _docker(isolated_env, {"credHelpers": {CENTRAL_HOST: "xecr"}})
    check = _run()["docker config"]
    assert check.ok and check.detail.endswith(f"(credHelpers), run as {helper_on_path}")


def test_a_helper_off_the_path_says_where_pipx_put_it(
    isolated_env: Path,
    write_config: Callable[[str], Path],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    write_config(f'[registries."{CENTRAL_HOST}"]\n')
    _docker(isolated_env, {"credHelpers": {CENTRAL_HOST: "xecr"}})
    pipx_bin = isolated_env / ".local" / "bin"
    pipx_bin.mkdir(parents=True)
    exe = pipx_bin / doctor_docker.EXECUTABLE
    exe.write_text("#!/bin/sh\nexit 1\n")
    exe.chmod(0o755)
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    check = _run()["docker config"]
    assert check.failed
    assert "docker-credential-xecr is not on PATH" in check.detail
    assert "no basic auth credentials" in check.detail
    assert f"it is in {pipx_bin} (pipx's bin folder)" in check.hint
    assert "pipx ensurepath" in check.hint
    assert not doctor.passed(list(_run().values()))


def test_a_helper_nowhere_says_to_install_it(
    isolated_env: Path, write_config: Callable[[str], Path], tmp_path: Path
) -> None:
    env = {"PATH": str(tmp_path), "HOME": str(isolated_env)}
    lookup = doctor_docker.find_helper(env, [(str(tmp_path), "nowhere")])
    assert lookup.found is None and lookup.elsewhere is None
    detail, hint = doctor_docker.missing_helper(lookup)
    assert "not on PATH" in detail and "pipx install xecr" in hint


def test_an_entry_outside_the_registries_asked_about_is_still_looked_up(
    isolated_env: Path,
    write_config: Callable[[str], Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_config(f'[registries."{CENTRAL_HOST}"]\n')
    _docker(isolated_env, {"credsStore": "xecr"})
    monkeypatch.setenv("PATH", str(tmp_path))
    named = _run("public.ecr.aws")
    assert named["docker config"].failed  # the registry asked about reports it ...
    assert "docker helper" not in named  # ... once
    _docker(isolated_env, {"credHelpers": {CENTRAL_HOST: "xecr"}})
    named = _run("public.ecr.aws")
    assert named["docker helper"].failed
    assert f"names xecr ({CENTRAL_HOST})" in named["docker helper"].detail


@pytest.mark.slow
def test_the_installed_doctor_flags_a_helper_off_the_path(
    isolated_env: Path, fake_aws: FakeAws, tmp_path: Path
) -> None:
    assert run([XECR, "configure", CENTRAL_HOST, "--role-arn", PULL_ROLE]).returncode == 0
    empty = tmp_path / "empty"
    empty.mkdir()
    # Run by its full path with a PATH that lacks it, as a shell without the venv would.
    done = run([installed(XECR), "doctor"], extra_env={"PATH": str(empty)}, timeout=60)
    assert done.returncode == 1, done.out
    [line] = [x for x in done.out.splitlines() if x.startswith("FAIL docker config")]
    assert "docker-credential-xecr is not on PATH, so Docker cannot run it" in line
    folder = os.path.dirname(installed(HELPER))
    assert f"it is in {folder} (the virtualenv xecr runs from)" in line
    # With the folder on the PATH it passes, naming what Docker will run.
    done = run([installed(XECR), "doctor"], extra_env={"PATH": folder}, timeout=60)
    assert done.returncode == 0, done.out
    assert f"to xecr (credHelpers), run as {installed(HELPER)}" in done.out


def test_the_virtualenv_is_a_place_looked_in(isolated_env: Path) -> None:
    places = doctor_docker.install_places({"HOME": str(isolated_env)})
    assert (str(isolated_env / ".local" / "bin"), "pipx's bin folder") in places
    assert (os.path.dirname(sys.executable), "the virtualenv xecr runs from") in places


# -- item 6: both names of ECR Public ------------------------------------------------------------


@pytest.mark.parametrize(
    ("routed", "word", "words"),
    [
        (("public.ecr.aws", "ecr-public.aws.com"), "PASS", "sends public.ecr.aws and ecr-public"),
        (("ecr-public.aws.com",), "WARN", "sends ecr-public.aws.com to xecr"),
        (("public.ecr.aws",), "WARN", "but not ecr-public.aws.com, ECR Public's other name"),
        ((), "FAIL", "does not send public.ecr.aws to xecr"),
    ],
)
def test_both_names_of_ecr_public_are_known(
    isolated_env: Path,
    write_config: Callable[[str], Path],
    helper_on_path: Path,
    routed: tuple[str, ...],
    word: str,
    words: str,
) -> None:
    write_config('[registries."public.ecr.aws"]\n')
    _docker(isolated_env, {"credHelpers": dict.fromkeys(routed, "xecr")})
    check = _run()["docker config"]
    assert check.line().startswith(f"{word} docker config: "), check.line()
    assert words in check.detail
    if word == "WARN":
        missing = next(h for h in doctor_docker.PUBLIC_NAMES if h not in routed)
        assert check.hint == f"run `xecr configure {missing}` if you pull by that name"


# -- item 8: the advice for hosts xecr does not serve ------------------------------------------


def test_an_unserved_alias_entry_is_advised_with_its_region(
    isolated_env: Path, write_config: Callable[[str], Path], helper_on_path: Path
) -> None:
    write_config(f'[registries."{CENTRAL_HOST}"]\n')
    _docker(isolated_env, {"credHelpers": {CENTRAL_HOST: "xecr", "mirror.example.com": "xecr"}})
    check = _run()["docker config [mirror.example.com]"]
    assert check.failed
    assert check.hint == (
        "remove that entry, or `xecr configure mirror.example.com --registry-id ID --region REGION`"
    )


def test_an_11_digit_host_is_a_typo_not_an_alias(
    isolated_env: Path, write_config: Callable[[str], Path], helper_on_path: Path
) -> None:
    write_config(f'[registries."{CENTRAL_HOST}"]\n')
    _docker(isolated_env, {"credHelpers": {CENTRAL_HOST: "xecr", SHORT_HOST: "xecr"}})
    named = _run()
    check = named[f"docker config [{SHORT_HOST}]"]
    assert "11111111111 has 11 digits, but an ECR host starts with a 12-digit account id" in (
        check.detail
    )
    assert "--registry-id" not in check.hint
    check = _run(SHORT_HOST)["registry"]
    assert check.detail == (
        f"'{SHORT_HOST}' is not an ECR host: 11111111111 has 11 digits, "
        "but an ECR host starts with a 12-digit account id"
    )
    assert "--registry-id" not in check.hint


@pytest.mark.slow
def test_the_installed_configure_says_account_ids_have_12_digits(isolated_env: Path) -> None:
    done = run([XECR, "configure", SHORT_HOST])
    assert done.returncode == 2, done.err
    assert done.err == (
        f"xecr configure: {SHORT_HOST} is not an ECR host: 11111111111 has 11 digits, "
        "but an ECR host starts with a 12-digit account id\n"
    )
    # 13 digits too; and an alias that merely starts with digits is still an alias.
    long_host = "1111111111111.dkr.ecr.us-east-1.amazonaws.com"
    assert "has 13 digits" in run([XECR, "configure", long_host]).err
    done = run([XECR, "configure", "123.example.com", "--no-docker"])
    assert "give --registry-id" in done.err and "digits" not in done.err
