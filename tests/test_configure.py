"""ecr_helper.setup.configure: the TOML edit keeps everything else, and Docker's config too."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from ecr_helper import config
from ecr_helper.errors import ConfigError, UsageError
from ecr_helper.setup import configure
from tests.helpers import (
    CENTRAL,
    CENTRAL_HOST,
    CONFIG,
    PULL_ROLE,
    XECR,
    Result,
    assert_one_line_failure,
    run,
)
from tests.test_isolation import NOBODY, as_root_with, hand_over, hostile_home, require_root

HUB_ROLE = "arn:aws:iam::333333333333:role/hub"

COMMENTED = f"""\
# xecr config, kept by hand  -- this comment must survive
[defaults]
region = "us-east-1"   # home region
role_session_name = "dev-laptop"

# the mirror team's registry
[registries."mirror.example.com"]
registry_id = "444444444444"  # their account
region = "eu-west-1"

[registries."{CENTRAL_HOST}"]
# pull role in the registry account
role_arn = "{PULL_ROLE}"
"""


def _env() -> dict[str, str]:
    return dict(os.environ)


def _user_file(home: Path) -> Path:
    return home / ".config" / "xecr" / "config.toml"


def _docker_file(home: Path) -> Path:
    return home / ".docker" / "config.json"


def test_new_registry_creates_the_file_and_routes_docker(isolated_env: Path) -> None:
    result = configure.configure(
        configure.Request(CENTRAL_HOST, role_arns=(PULL_ROLE,), external_id="fleet-1"), _env()
    )
    path = _user_file(isolated_env)
    assert result.config_path == str(path)
    assert result.config_action == "added"
    assert result.lines() == [
        f'config: added [registries."{CENTRAL_HOST}"] to {path}',
        f'docker: credHelpers["{CENTRAL_HOST}"] = "xecr" in {_docker_file(isolated_env)}',
    ]
    settings = config.load(_env()).resolve(CENTRAL_HOST)
    assert settings.configured
    assert settings.role_arns == (PULL_ROLE,)
    assert settings.external_id == "fleet-1"
    assert settings.registry_id == CENTRAL
    # An ECR host already says its registry id and region: they are not written.
    assert "registry_id" not in path.read_text()
    assert json.loads(_docker_file(isolated_env).read_text()) == {
        "credHelpers": {CENTRAL_HOST: "xecr"}
    }
    assert stat.S_IMODE(_docker_file(isolated_env).stat().st_mode) == 0o600


def test_comments_and_other_sections_are_kept(
    isolated_env: Path, write_config: Callable[[str], Path]
) -> None:
    path = write_config(COMMENTED)
    configure.configure(
        configure.Request(
            "registry.example.net",
            registry_id="555555555555",
            region="us-west-2",
            role_arns=(HUB_ROLE,),
        ),
        _env(),
    )
    text = path.read_text()
    assert text.startswith(COMMENTED)  # nothing before the new section changed
    assert '[registries."registry.example.net"]' in text
    loaded = config.load(_env())
    assert loaded.hosts() == ["mirror.example.com", CENTRAL_HOST, "registry.example.net"]
    assert loaded.resolve("registry.example.net").registry_id == "555555555555"
    assert loaded.resolve("registry.example.net").role_session_name == "dev-laptop"


def test_update_sets_only_the_given_keys_and_keeps_comments(
    isolated_env: Path, write_config: Callable[[str], Path]
) -> None:
    path = write_config(COMMENTED)
    result = configure.configure(
        configure.Request(CENTRAL_HOST, role_arns=(HUB_ROLE, PULL_ROLE), external_id="x-1"),
        _env(),
    )
    assert result.config_action == "updated"
    assert result.changed_keys == ("role_arn", "external_id")
    assert result.lines()[0] == (
        f'config: updated [registries."{CENTRAL_HOST}"] in {path} (role_arn, external_id)'
    )
    text = path.read_text()
    for line in (
        "# xecr config, kept by hand  -- this comment must survive",
        "# pull role in the registry account",
        'region = "us-east-1"   # home region',
        'registry_id = "444444444444"  # their account',
    ):
        assert line in text
    settings = config.load(_env()).resolve(CENTRAL_HOST)
    assert settings.role_arns == (HUB_ROLE, PULL_ROLE)
    assert settings.external_id == "x-1"


def test_running_twice_changes_nothing(
    isolated_env: Path, write_config: Callable[[str], Path]
) -> None:
    path = write_config(COMMENTED)
    request = configure.Request(CENTRAL_HOST, role_arns=(PULL_ROLE,), external_id="fleet-1")
    first = configure.configure(request, _env())
    assert first.config_action == "updated" and first.docker_changed
    before = (
        path.read_bytes(),
        path.stat().st_ino,
        _docker_file(isolated_env).read_bytes(),
        _docker_file(isolated_env).stat().st_ino,
    )
    second = configure.configure(request, _env())
    assert second.config_action is None and not second.docker_changed
    assert second.lines() == ["nothing to change"]
    after = (
        path.read_bytes(),
        path.stat().st_ino,
        _docker_file(isolated_env).read_bytes(),
        _docker_file(isolated_env).stat().st_ino,
    )
    assert after == before


def test_a_section_spelled_differently_is_updated_not_duplicated(
    isolated_env: Path, write_config: Callable[[str], Path]
) -> None:
    path = write_config(
        f'[registries."HTTPS://{CENTRAL_HOST.upper()}:443"]\nrole_arn = "{HUB_ROLE}"\n'
    )
    result = configure.configure(configure.Request(CENTRAL_HOST, role_arns=(PULL_ROLE,)), _env())
    assert result.config_action == "updated"
    assert path.read_text().count("[registries.") == 1
    assert config.load(_env()).resolve(CENTRAL_HOST).role_arns == (PULL_ROLE,)


def test_alias_needs_registry_id_and_region(isolated_env: Path) -> None:
    with pytest.raises(UsageError) as caught:
        configure.configure(configure.Request("mirror.example.com", registry_id=CENTRAL), _env())
    assert "give --region" in str(caught.value) and "--registry-id" not in str(caught.value)
    assert "[defaults] region" in str(caught.value)
    with pytest.raises(UsageError) as caught:
        configure.configure(configure.Request("mirror.example.com", region="eu-west-1"), _env())
    assert "give --registry-id" in str(caught.value) and "--region" not in str(caught.value)
    with pytest.raises(UsageError, match=r"give --registry-id .* and --region"):
        configure.configure(configure.Request("mirror.example.com"), _env())
    assert not _user_file(isolated_env).exists()
    assert not _docker_file(isolated_env).exists()
    configure.configure(
        configure.Request("Mirror.Example.com", registry_id=CENTRAL, region="eu-west-1"), _env()
    )
    settings = config.load(_env()).resolve("mirror.example.com")
    assert (settings.registry_id, settings.region, settings.partition) == (
        CENTRAL,
        "eu-west-1",
        "aws",
    )


def test_an_alias_takes_the_defaults_region_without_region(
    isolated_env: Path, write_config: Callable[[str], Path]
) -> None:
    write_config('[defaults]\nregion = "eu-central-1"\n')
    configure.configure(configure.Request("mirror.example.com", registry_id=CENTRAL), _env())
    settings = config.load(_env()).resolve("mirror.example.com")
    assert (settings.registry_id, settings.region) == (CENTRAL, "eu-central-1")
    assert "region" not in config.load(_env()).registries["mirror.example.com"]


def test_another_registrys_broken_section_does_not_block_configure(
    isolated_env: Path, write_config: Callable[[str], Path]
) -> None:
    broken = f'[registries."{CENTRAL_HOST}"]\nrole_arm = "{PULL_ROLE}"\n'
    path = write_config(broken)
    configure.configure(
        configure.Request("mirror.example.com", registry_id=CENTRAL, region="eu-west-1"), _env()
    )
    assert path.read_text().startswith(broken)
    loaded = config.load(_env())
    assert loaded.resolve("mirror.example.com").region == "eu-west-1"
    with pytest.raises(ConfigError, match="role_arm"):
        loaded.resolve(CENTRAL_HOST)


def test_configure_can_fix_a_broken_section_it_edits(
    isolated_env: Path, write_config: Callable[[str], Path]
) -> None:
    write_config(f'[registries."{CENTRAL_HOST}"]\nrole_arn = "ecr-pull"\n')
    configure.configure(configure.Request(CENTRAL_HOST, role_arns=(PULL_ROLE,)), _env())
    assert config.load(_env()).resolve(CENTRAL_HOST).role_arn == PULL_ROLE


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (configure.Request(CENTRAL_HOST, registry_id="999999999999"), "contradicts"),
        (configure.Request(CENTRAL_HOST, region="eu-west-1"), "contradicts"),
        (configure.Request(CENTRAL_HOST, registry_id="12"), "12-digit"),
        (configure.Request("mirror.example.com", registry_id=CENTRAL, region="mars"), "region"),
        (configure.Request("not a host!"), "not a registry host"),
        (configure.Request(""), "no registry address"),
        (
            configure.Request(CENTRAL_HOST, role_arns=("arn:aws:iam::1:role/x",)),
            "role_arn.*not an IAM role ARN",
        ),
        (configure.Request(CENTRAL_HOST, external_id="!"), "external_id"),
    ],
)
def test_bad_options_are_usage_errors_and_write_nothing(
    isolated_env: Path,
    write_config: Callable[[str], Path],
    request_: configure.Request,
    message: str,
) -> None:
    path = write_config(COMMENTED)
    with pytest.raises(UsageError, match=message):
        configure.configure(request_, _env())
    assert path.read_text() == COMMENTED
    assert not _docker_file(isolated_env).exists()


def test_a_broken_config_is_named_and_left_alone(
    isolated_env: Path, write_config: Callable[[str], Path]
) -> None:
    path = write_config('[registries."x.example.com"\nrole_arn = 1\n')
    with pytest.raises(ConfigError, match="not valid TOML") as caught:
        configure.configure(configure.Request(CENTRAL_HOST), _env())
    assert caught.value.path == str(path)
    path.write_text("[defaults]\nbogus = 1\n")
    with pytest.raises(ConfigError, match=r"defaults\.bogus"):
        configure.configure(configure.Request(CENTRAL_HOST), _env())
    assert path.read_text() == "[defaults]\nbogus = 1\n"


def test_docker_config_keeps_every_other_key_and_its_mode(isolated_env: Path) -> None:
    docker = _docker_file(isolated_env)
    docker.parent.mkdir()
    original = {
        "auths": {"ghcr.io": {"auth": "dXNlcjpwYXNz"}, CENTRAL_HOST: {}},
        "credHelpers": {"gcr.io": "gcloud", CENTRAL_HOST: "ecr-login"},
        "credsStore": "desktop",
        "psFormat": "table {{.ID}}",
        "plugins": {"buildx": {"enabled": "true"}},
    }
    docker.write_text(json.dumps(original))
    docker.chmod(0o640)
    result = configure.configure(configure.Request(CENTRAL_HOST), _env())
    assert result.docker_previous == "ecr-login"
    assert result.lines()[-1].endswith(f'{docker} (was "ecr-login")')
    document = json.loads(docker.read_text())
    expected = json.loads(json.dumps(original))
    expected["credHelpers"][CENTRAL_HOST] = "xecr"
    assert document == expected
    assert stat.S_IMODE(docker.stat().st_mode) == 0o640


def test_system_flag_edits_the_machine_wide_file(isolated_env: Path) -> None:
    result = configure.configure(
        configure.Request(CENTRAL_HOST, role_arns=(PULL_ROLE,), system=True, docker=False),
        _env(),
    )
    system_file = Path(os.environ["XECR_SYSTEM_CONFIG"])
    assert result.config_path == str(system_file)
    assert stat.S_IMODE(system_file.stat().st_mode) == 0o644
    assert not _user_file(isolated_env).exists()
    assert result.docker_path is None and not _docker_file(isolated_env).exists()
    loaded = config.load(_env())
    assert loaded.system and loaded.path == str(system_file)


def test_a_new_user_file_notes_that_it_hides_the_machine_wide_one(isolated_env: Path) -> None:
    configure.configure(configure.Request(CENTRAL_HOST, system=True, docker=False), _env())
    result = configure.configure(
        configure.Request("222222222222.dkr.ecr.us-east-1.amazonaws.com", docker=False), _env()
    )
    assert result.shadowed_system == os.environ["XECR_SYSTEM_CONFIG"]
    assert result.lines()[-1].startswith("note: ")


def test_xecr_config_names_the_file_to_edit(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = isolated_env / "elsewhere" / "xecr.toml"
    monkeypatch.setenv("XECR_CONFIG", str(target))
    result = configure.configure(configure.Request(CENTRAL_HOST, docker=False), _env())
    assert result.config_path == str(target)
    assert config.load(_env()).hosts() == [CENTRAL_HOST]
    assert not _user_file(isolated_env).exists()


def test_a_symlinked_config_stays_a_symlink(isolated_env: Path) -> None:
    real = isolated_env / "dotfiles" / "xecr.toml"
    real.parent.mkdir()
    real.write_text("# managed by my dotfiles\n")
    link = _user_file(isolated_env)
    link.parent.mkdir(parents=True)
    link.symlink_to(real)
    configure.configure(configure.Request(CENTRAL_HOST, docker=False), _env())
    assert link.is_symlink()
    assert real.read_text().startswith("# managed by my dotfiles\n")
    assert CENTRAL_HOST in real.read_text()


def test_edit_is_pure_text_in_text_out() -> None:
    text, action, changed = configure.edit(
        "", "mem.toml", CENTRAL_HOST, {"role_arn": PULL_ROLE}, False
    )
    assert action == "added" and changed == ("role_arn",)
    assert text == f'[registries."{CENTRAL_HOST}"]\nrole_arn = "{PULL_ROLE}"\n'
    again = configure.edit(text, "mem.toml", CENTRAL_HOST, {"role_arn": PULL_ROLE}, False)
    assert again == (text, None, ())


# ---------------------------------------------------------------------------
# Big and odd files, through the installed `xecr configure` (issue 20, item 8)
# ---------------------------------------------------------------------------

BOUND = 20.0
MEMORY = 512 << 20
NEW_HOST = "222222222222.dkr.ecr.us-east-1.amazonaws.com"
NEW_ROLE = "arn:aws:iam::222222222222:role/ecr-pull"


def _limit_memory() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))


def _configure(*args: str, env: dict[str, str] | None = None) -> Result:
    """`xecr configure NEW_HOST --role-arn NEW_ROLE`, bounded in time and memory."""
    return run(
        [XECR, "configure", *(args or (NEW_HOST, "--role-arn", NEW_ROLE))],
        timeout=BOUND,
        env=env,
        preexec_fn=_limit_memory,
    )


def _padded(size: int) -> bytes:
    """A valid config of exactly ``size`` bytes: the standard one, then comment lines."""
    head = CONFIG.encode()
    line = b"# " + b"x" * 97 + b"\n"
    body = head + line * ((size - len(head)) // len(line))
    return body + b"#" * (size - len(body) - 1) + b"\n"


@pytest.mark.slow
def test_configure_never_writes_a_config_get_refuses(
    isolated_env: Path, write_config: Callable[[str], Path]
) -> None:
    path = write_config("")
    original = _padded(config.MAX_CONFIG - 100)
    path.write_bytes(original)
    assert config.load(_env()).hosts() == [CENTRAL_HOST]  # get reads it

    result = _configure()

    assert_one_line_failure(result, str(path), "larger than 1024 KiB", stream="stderr")
    assert "added" not in result.out
    assert path.read_bytes() == original
    assert config.load(_env()).hosts() == [CENTRAL_HOST]
    assert not _docker_file(isolated_env).exists()


@pytest.mark.slow
def test_a_huge_config_is_refused_without_reading_it_all(
    isolated_env: Path, write_config: Callable[[str], Path]
) -> None:
    # 14.5 MB took 27.7 s and 645 MB, then was written back past get's limit.
    path = write_config("")
    original = _padded(14_500_000)
    path.write_bytes(original)
    result = _configure()
    assert_one_line_failure(result, str(path), "larger than 1024 KiB", stream="stderr")
    assert path.read_bytes() == original


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _not_utf8(path: Path) -> None:
    path.write_bytes(b'\xff\xfe{"credHelpers": {}}')


def _nested(path: Path) -> None:
    path.write_text('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}")


def _too_big(path: Path) -> None:
    path.write_text(json.dumps({"auths": {"x": "a" * (2 << 20)}}))


def _a_folder(path: Path) -> None:
    path.mkdir()


ODD_DOCKER_FILES: dict[str, tuple[Callable[[Path], None], str]] = {
    "a FIFO": (_fifo, "not a regular file"),
    "not UTF-8": (_not_utf8, "not UTF-8 text"),
    "nested 100000 deep": (_nested, "nested too deeply"),
    "2 MiB": (_too_big, "larger than 1024 KiB"),
    "a folder": (_a_folder, "not a regular file"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(ODD_DOCKER_FILES))
def test_an_odd_docker_config_is_one_line_and_nothing_is_written(
    case: str, isolated_env: Path
) -> None:
    make, says = ODD_DOCKER_FILES[case]
    docker = _docker_file(isolated_env)
    docker.parent.mkdir()
    make(docker)
    before = docker.lstat()
    result = _configure()
    assert_one_line_failure(result, str(docker), says, stream="stderr")
    assert "internal error" not in result.err
    after = docker.lstat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    # Docker's file is read first: xecr's config is not changed either.
    assert not _user_file(isolated_env).exists()


@pytest.mark.slow
def test_a_symlinked_docker_config_is_updated_where_it_points(isolated_env: Path) -> None:
    real = isolated_env / "dotfiles" / "docker.json"
    real.parent.mkdir()
    real.write_text(json.dumps({"auths": {"ghcr.io": {"auth": "dXNlcjpwYXNz"}}}))
    real.chmod(0o640)
    link = _docker_file(isolated_env)
    link.parent.mkdir()
    link.symlink_to(os.path.relpath(real, link.parent))
    result = _configure()
    assert result.returncode == 0, result.err
    assert link.is_symlink() and link.resolve() == real
    assert json.loads(real.read_text()) == {
        "auths": {"ghcr.io": {"auth": "dXNlcjpwYXNz"}},
        "credHelpers": {NEW_HOST: "xecr"},
    }
    assert stat.S_IMODE(real.stat().st_mode) == 0o640
    assert [p.name for p in link.parent.iterdir()] == ["config.json"]


# -- root with her HOME (`sudo -E xecr configure`) ---------------------------------------


def _owner(path: Path) -> tuple[int, int, int]:
    info = path.lstat()
    return info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)


@pytest.mark.slow
@pytest.mark.parametrize("folders", ["exist", "missing"])
def test_sudo_e_leaves_her_files_hers(tmp_path: Path, folders: str) -> None:
    require_root()
    home = hostile_home(tmp_path)
    if folders == "missing":
        (home / ".config" / "xecr").rmdir()
        (home / ".config").rmdir()
    docker = home / ".docker" / "config.json"
    docker.write_text(json.dumps({"credsStore": "desktop"}))
    docker.chmod(0o644)
    hand_over(home)

    result = _configure(env=as_root_with(home))

    assert result.returncode == 0, result.err
    assert _owner(docker) == (NOBODY, NOBODY, 0o644)
    assert json.loads(docker.read_text())["credHelpers"] == {NEW_HOST: "xecr"}
    ours = home / ".config" / "xecr" / "config.toml"
    assert NEW_ROLE in ours.read_text()
    assert _owner(ours) == (NOBODY, NOBODY, 0o600)
    assert _owner(ours.parent)[:2] == (NOBODY, NOBODY)
    assert _owner(ours.parent.parent)[:2] == (NOBODY, NOBODY)


@pytest.mark.slow
def test_sudo_e_never_follows_her_symlink_to_a_file_of_roots(tmp_path: Path) -> None:
    require_root()
    roots = tmp_path / "root-docker.json"
    roots.write_text('{"credsStore": "pass"}')
    roots.chmod(0o600)
    home = hostile_home(tmp_path)
    (home / ".docker" / "config.json").symlink_to(roots)
    hand_over(home)
    # Root's own log folder, so the one line on stderr is the refusal.
    result = _configure(env={**as_root_with(home), "XECR_LOG_DIR": str(tmp_path / "log")})
    assert_one_line_failure(result, "refused: a symlink owned by uid 65534", stream="stderr")
    assert roots.read_text() == '{"credsStore": "pass"}'
