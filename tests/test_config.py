"""ecr_helper.config: the configuration contract, which file is in force, errors that name
the file and the key, and the parsed JSON copy that spares the cached ``get`` a TOML parse."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings

from ecr_helper import config, config_schema, paths, securefile
from ecr_helper.cache import file_cache
from ecr_helper.errors import ConfigError, NotOurRegistry
from tests.helpers import CENTRAL, CENTRAL_HOST, PULL_ROLE
from tests.strategies import TARGETS

ALIAS = "registry.example.com"
HOP = "arn:aws:iam::333333333333:role/hop"
OTHER_ROLE = "arn:aws:iam::444444444444:role/other"

FULL = f"""
[defaults]
region = "eu-west-1"
role_arn = "{PULL_ROLE}"
external_id = "ext-1234"
role_session_name = "xecr-ci"
source_profile = "central"
duration_seconds = 3600
cache = "file"

[registries."{CENTRAL_HOST}"]
role_arn = "{OTHER_ROLE}"
duration_seconds = 900

[registries."{ALIAS}"]
registry_id = "{CENTRAL}"
region = "us-west-2"

[registries."mirror.example.com:5000"]
registry_id = "222222222222"
role_arn = ["{HOP}", "{PULL_ROLE}"]
external_id = "other-ext"
"""


def env() -> dict[str, str]:
    return dict(os.environ)


@pytest.fixture
def loaded(write_config: Callable[[str], Path]) -> config.Config:
    write_config(FULL)
    return config.load(env())


# -- the contract --------------------------------------------------------------------------


def test_an_unlisted_ecr_host_inherits_every_default(loaded: config.Config) -> None:
    host = "999999999999.dkr.ecr.ap-south-1.amazonaws.com"
    settings_ = loaded.resolve(f"https://{host}/v2/")
    assert settings_ == config.RegistrySettings(
        host=host,
        registry_id="999999999999",
        region="ap-south-1",  # the host's region wins over [defaults] region
        partition="aws",
        role_arns=(PULL_ROLE,),
        external_id="ext-1234",
        role_session_name="xecr-ci",
        source_profile="central",
        duration_seconds=3600,
        configured=False,
    )
    assert settings_.role_arn == PULL_ROLE
    assert loaded.cache_backend == "file"


def test_a_registry_table_overrides_the_defaults(loaded: config.Config) -> None:
    settings_ = loaded.resolve(CENTRAL_HOST.upper() + ":443")
    assert settings_.host == CENTRAL_HOST
    assert settings_.role_arns == (OTHER_ROLE,)
    assert settings_.duration_seconds == 900
    assert settings_.external_id == "ext-1234"  # not overridden: inherited
    assert settings_.source_profile == "central"
    assert settings_.region == "us-east-1"
    assert settings_.configured


def test_an_alias_takes_registry_id_and_region_from_its_table(loaded: config.Config) -> None:
    for address in (ALIAS, f"https://{ALIAS.upper()}/v2/", f"{ALIAS}:443"):
        settings_ = loaded.resolve(address)
        assert settings_.host == ALIAS
        assert settings_.registry_id == CENTRAL
        assert settings_.region == "us-west-2"
        assert settings_.partition == "aws"
        assert settings_.role_arns == (PULL_ROLE,)
        assert settings_.configured


def test_a_role_chain_is_a_list_in_order(loaded: config.Config) -> None:
    settings_ = loaded.resolve("mirror.example.com:5000")
    assert settings_.role_arns == (HOP, PULL_ROLE)
    assert settings_.role_arn == PULL_ROLE  # the last hop carries the external id
    assert settings_.external_id == "other-ext"
    assert settings_.region == "eu-west-1"  # from [defaults]
    assert settings_.registry_id == "222222222222"
    # the alias is on port 5000; the same name without it is not configured
    with pytest.raises(NotOurRegistry):
        loaded.resolve("mirror.example.com")


def test_hosts_are_listed_in_file_order(loaded: config.Config) -> None:
    assert loaded.hosts() == [CENTRAL_HOST, ALIAS, "mirror.example.com:5000"]


def test_an_alias_in_china_gets_the_china_partition(write_config: Callable[[str], Path]) -> None:
    write_config(f'[registries."cn.example"]\nregistry_id = "{CENTRAL}"\nregion = "cn-north-1"\n')
    assert config.load(env()).resolve("cn.example").partition == "aws-cn"


def test_an_alias_may_take_its_region_from_the_defaults(
    write_config: Callable[[str], Path],
) -> None:
    write_config(
        f'[defaults]\nregion = "us-gov-west-1"\n[registries."{ALIAS}"]\nregistry_id = "{CENTRAL}"\n'
    )
    settings_ = config.load(env()).resolve(ALIAS)
    assert (settings_.region, settings_.partition) == ("us-gov-west-1", "aws-us-gov")


def test_an_ecr_host_table_may_repeat_its_own_id_and_region(
    write_config: Callable[[str], Path],
) -> None:
    write_config(
        f'[registries."{CENTRAL_HOST}"]\nregistry_id = "{CENTRAL}"\nregion = "us-east-1"\n'
    )
    assert config.load(env()).resolve(CENTRAL_HOST).registry_id == CENTRAL


def test_no_file_means_plain_ecr_with_no_roles() -> None:
    loaded = config.load(env())
    assert loaded.path is None and not loaded.system
    assert loaded.hosts() == []
    assert loaded.cache_backend == "file"
    settings_ = loaded.resolve(CENTRAL_HOST)
    assert settings_.role_arns == () and settings_.role_arn is None
    assert settings_.external_id is None and settings_.duration_seconds is None
    assert not settings_.configured


@pytest.mark.parametrize(
    "address", ["docker.io", "ghcr.io", f"evil.example/{CENTRAL_HOST}", "registry.example.com"]
)
def test_other_hosts_are_not_ours(address: str) -> None:
    with pytest.raises(NotOurRegistry) as caught:
        config.load(env()).resolve(address)
    assert str(caught.value) == "credentials not found in native keychain"
    assert caught.value.address == address


# -- errors name the file and the key ------------------------------------------------------

R = f'registries."{CENTRAL_HOST}"'
A = f'registries."{ALIAS}"'
BAD = [
    # (document, key)
    ("colour = 1", "colour"),
    ("[default]\nregion = 'us-east-1'", "default"),
    ("defaults = 5", "defaults"),
    ("registries = 5", "registries"),
    ("registries = ['x']", "registries"),
    (f"[registries]\n'{ALIAS}' = 5", A),
    ("[defaults]\nregoin = 'us-east-1'", "defaults.regoin"),
    ("[defaults]\nregistry_id = '111111111111'", "defaults.registry_id"),
    (f"[{R}]\ncache = 'none'", f"{R}.cache"),
    (f"[{R}]\nbogus = 1", f"{R}.bogus"),
    # wrong types
    ("[defaults]\nregion = 5", "defaults.region"),
    ("[defaults]\nregion = ['us-east-1']", "defaults.region"),
    ("[defaults]\nexternal_id = 1234", "defaults.external_id"),
    ("[defaults]\nsource_profile = true", "defaults.source_profile"),
    ("[defaults]\nrole_session_name = 2024-01-01", "defaults.role_session_name"),
    ("[defaults]\nduration_seconds = '3600'", "defaults.duration_seconds"),
    ("[defaults]\nduration_seconds = 3600.0", "defaults.duration_seconds"),
    ("[defaults]\nduration_seconds = true", "defaults.duration_seconds"),
    ("[defaults]\nrole_arn = 5", "defaults.role_arn"),
    (f"[defaults]\nrole_arn = ['{PULL_ROLE}', 5]", "defaults.role_arn"),
    (f"[defaults]\nrole_arn = {{ arn = '{PULL_ROLE}' }}", "defaults.role_arn"),
    # bad values
    ("[defaults]\ncache = 'redis'", "defaults.cache"),
    ("[defaults]\nsource_profile = '  '", "defaults.source_profile"),
    ("[defaults]\nexternal_id = 'x'", "defaults.external_id"),
    ("[defaults]\nexternal_id = 'has space'", "defaults.external_id"),
    ("[defaults]\nrole_session_name = 'a'", "defaults.role_session_name"),
    (f"[defaults]\nrole_session_name = '{'a' * 65}'", "defaults.role_session_name"),
    (f"[{A}]\nregistry_id = '11111111111'\nregion = 'us-east-1'", f"{A}.registry_id"),
    (f"[{A}]\nregistry_id = 111111111111\nregion = 'us-east-1'", f"{A}.registry_id"),
    # an alias needs a registry id and a region
    (f"[{A}]\nregion = 'us-east-1'", f"{A}.registry_id"),
    (f"[{A}]\nregistry_id = '{CENTRAL}'", f"{A}.region"),
    # an ECR host's table may not contradict the host
    (f"[{R}]\nregistry_id = '222222222222'", f"{R}.registry_id"),
    (f"[{R}]\nregion = 'eu-west-1'", f"{R}.region"),
    # host names
    ('[registries."bad host"]', 'registries."bad host"'),
    ('[registries.""]', 'registries.""'),
    ('[registries."https://"]', 'registries."https://"'),
    ('[registries."under_score.example"]', 'registries."under_score.example"'),
    (
        f'[registries."{CENTRAL_HOST}"]\n[registries."{CENTRAL_HOST.upper()}:443"]',
        f'registries."{CENTRAL_HOST.upper()}:443"',
    ),
]
BAD_ARNS = [
    "arn:aws:iam::22222222222:role/short-id",
    "arn:aws:iam::2222222222222:role/long-id",
    "arn:aws:iam::222222222222:user/not-a-role",
    "arn:aws:sts::222222222222:assumed-role/ecr-pull/session",
    "arn:aws:iam::222222222222:role/",
    "arn:aws:iam::222222222222:role/with space",
    "arn:aws-moon:iam::222222222222:role/x",
    "ecr-pull",
    "",
]
BAD_REGIONS = ["us_east_1", "US-EAST-1", "useast1", "", "us-east-1 ", "us-east"]
BAD_DURATIONS = [0, -1, 899, 43201, 10**9]


def _first_error() -> ConfigError:
    """The error of the file as a whole, else the first broken section's (raised when its
    host is resolved)."""
    try:
        loaded = config.load(env())
    except ConfigError as exc:
        return exc
    for host in loaded.hosts():
        try:
            loaded.resolve(host)
        except ConfigError as exc:
            return exc
    raise AssertionError("no config error")


def _assert_names(error: ConfigError, path: Path, key: str) -> None:
    assert error.key == key
    assert error.path == str(path)
    text = str(error)
    assert str(path) in text and key in text
    assert "\n" not in text and "Traceback" not in text


@pytest.mark.parametrize(("document", "key"), BAD)
def test_errors_name_the_file_and_the_key(
    write_config: Callable[[str], Path], document: str, key: str
) -> None:
    path = write_config(document)
    _assert_names(_first_error(), path, key)


SECTION_ERRORS = [(doc, key) for doc, key in BAD if key.startswith('registries."')]
FILE_ERRORS = [(doc, key) for doc, key in BAD if not key.startswith('registries."')]
GOOD_ALIAS = f'[registries."good.example.com"]\nregistry_id = "{CENTRAL}"\nregion = "us-east-1"\n'


@pytest.mark.parametrize(("document", "key"), SECTION_ERRORS)
def test_a_broken_section_fails_only_its_registry(
    write_config: Callable[[str], Path], document: str, key: str
) -> None:
    path = write_config(f"{document}\n{GOOD_ALIAS}")
    loaded = config.load(env())  # the file as a whole still loads
    assert loaded.resolve("good.example.com").registry_id == CENTRAL
    assert "good.example.com" in loaded.hosts()
    broken = [h for h in loaded.hosts() if loaded.error_for(h) is not None]
    assert broken, "the broken section is listed"
    for host in broken:
        with pytest.raises(ConfigError) as caught:
            loaded.resolve(host)
        _assert_names(caught.value, path, caught.value.key)
        assert caught.value.key.startswith('registries."')
    # The cached copy keeps the broken section as it is.
    again = config.load(env())
    assert again.broken == loaded.broken


@pytest.mark.parametrize(("document", "key"), FILE_ERRORS)
def test_an_error_outside_the_sections_fails_the_whole_file(
    write_config: Callable[[str], Path], document: str, key: str
) -> None:
    # (a document that redefines [registries] cannot hold another section)
    path = write_config(document if "registries" in document else f"{document}\n{GOOD_ALIAS}")
    with pytest.raises(ConfigError) as caught:
        config.load(env())
    _assert_names(caught.value, path, key)


def test_a_broken_ecr_section_does_not_fall_back_to_the_defaults(
    write_config: Callable[[str], Path],
) -> None:
    """A typo in an ECR host's own section must not quietly assume the defaults' role."""
    path = write_config(f'[defaults]\nrole_arn = "{OTHER_ROLE}"\n[{R}]\nrole_arm = "{PULL_ROLE}"\n')
    loaded = config.load(env())
    with pytest.raises(ConfigError) as caught:
        loaded.resolve(f"https://{CENTRAL_HOST.upper()}/v2/")
    _assert_names(caught.value, path, f"{R}.role_arm")
    # Another ECR host, with no section, still takes the defaults.
    assert loaded.resolve("333333333333.dkr.ecr.us-east-1.amazonaws.com").role_arn == OTHER_ROLE


def test_two_sections_for_one_host_break_that_host(write_config: Callable[[str], Path]) -> None:
    write_config(f'[{R}]\nrole_arn = "{PULL_ROLE}"\n[registries."{CENTRAL_HOST.upper()}"]\n')
    loaded = config.load(env())
    with pytest.raises(ConfigError, match="names the same host as another entry"):
        loaded.resolve(CENTRAL_HOST)
    assert loaded.hosts() == [CENTRAL_HOST]


def test_validate_stays_strict(write_config: Callable[[str], Path]) -> None:
    with pytest.raises(ConfigError) as caught:
        config_schema.validate({"registries": {ALIAS: {"bogus": 1}}}, "/x.toml")
    assert caught.value.key == f"{A}.bogus"


@pytest.mark.parametrize("arn", BAD_ARNS)
@pytest.mark.parametrize("where", ["defaults", R])
def test_bad_role_arns(write_config: Callable[[str], Path], arn: str, where: str) -> None:
    path = write_config(f"[{where}]\nrole_arn = {json.dumps(arn)}\n")
    _assert_names(_first_error(), path, f"{where}.role_arn")
    # one bad hop in a chain is enough
    path = write_config(f"[{where}]\nrole_arn = [{json.dumps(PULL_ROLE)}, {json.dumps(arn)}]\n")
    _assert_names(_first_error(), path, f"{where}.role_arn")


@pytest.mark.parametrize("region", BAD_REGIONS)
def test_bad_regions(write_config: Callable[[str], Path], region: str) -> None:
    path = write_config(f"[defaults]\nregion = {json.dumps(region)}\n")
    with pytest.raises(ConfigError) as caught:
        config.load(env())
    _assert_names(caught.value, path, "defaults.region")


@pytest.mark.parametrize("seconds", BAD_DURATIONS)
def test_duration_out_of_range(write_config: Callable[[str], Path], seconds: int) -> None:
    path = write_config(f"[{R}]\nduration_seconds = {seconds}\n")
    _assert_names(_first_error(), path, f"{R}.duration_seconds")


@pytest.mark.parametrize("seconds", [900, 43200])
def test_duration_bounds_are_accepted(write_config: Callable[[str], Path], seconds: int) -> None:
    write_config(f"[defaults]\nduration_seconds = {seconds}\n")
    assert config.load(env()).resolve(CENTRAL_HOST).duration_seconds == seconds


def test_invalid_toml_names_the_file(write_config: Callable[[str], Path]) -> None:
    path = write_config("[defaults\nregion = ")
    with pytest.raises(ConfigError) as caught:
        config.load(env())
    assert caught.value.key == "" and caught.value.path == str(path)
    assert str(caught.value).startswith(f"config error in {path}: not valid TOML")


def test_an_unreadable_config_names_the_file(write_config: Callable[[str], Path]) -> None:
    path = write_config("")
    path.unlink()
    path.mkdir()  # a folder where the file should be
    with pytest.raises(ConfigError) as caught:
        config.load(env())
    assert caught.value.path == str(path) and str(path) in str(caught.value)


def test_an_oversized_registry_key_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        config_schema.validate({"registries": {"a" * 5000: {}}}, "/etc/xecr/config.toml")
    assert caught.value.key.startswith("registries.")


def test_a_doubled_default_port_is_refused_not_mangled(
    write_config: Callable[[str], Path],
) -> None:
    """'h:443:443' once became 'h:443' in the file and 'h' on resolve: list showed a host
    that get could not serve. It is not a host name, so the file is refused."""
    write_config(
        f'[registries."{ALIAS}:443:443"]\nregistry_id = "{CENTRAL}"\nregion = "us-east-1"\n'
    )
    assert "not a registry host name" in str(_first_error())


def test_every_accepted_host_resolves(write_config: Callable[[str], Path]) -> None:
    write_config(f'[registries."{ALIAS}:443"]\nregistry_id = "{CENTRAL}"\nregion = "us-east-1"\n')
    loaded = config.load(env())
    for host in loaded.hosts():
        assert loaded.resolve(host).host == host


def test_an_error_is_one_line_even_for_a_key_with_a_newline(
    write_config: Callable[[str], Path],
) -> None:
    path = write_config('[registries."bad\\nhost"]\nregistry_id = "111111111111"\n')
    error = _first_error()
    assert "\n" not in str(error)
    assert f'{path}: registries."bad\\nhost"' in str(error)


# -- which file is in force ----------------------------------------------------------------


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_the_user_file_is_used_alone_over_the_system_file(
    write_config: Callable[[str], Path],
) -> None:
    system = _write(
        Path(os.environ["XECR_SYSTEM_CONFIG"]),
        f'[defaults]\nrole_arn = "{OTHER_ROLE}"\n'
        f'[registries."{ALIAS}"]\nregistry_id = "{CENTRAL}"\nregion = "us-east-1"\n',
    )
    user = write_config('[defaults]\nregion = "eu-west-1"\n')
    assert config.config_source(env()) == (str(user), False)
    loaded = config.load(env())
    assert loaded.path == str(user) and not loaded.system
    assert loaded.resolve(CENTRAL_HOST).role_arns == ()  # nothing merged from /etc
    with pytest.raises(NotOurRegistry):
        loaded.resolve(ALIAS)
    user.unlink()
    assert config.config_source(env()) == (str(system), True)
    loaded = config.load(env())
    assert loaded.system and loaded.resolve(ALIAS).role_arns == (OTHER_ROLE,)


def test_xecr_config_names_the_one_file(
    write_config: Callable[[str], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(f'[defaults]\nrole_arn = "{OTHER_ROLE}"\n')
    explicit = _write(tmp_path / "explicit.toml", f'[defaults]\nrole_arn = "{PULL_ROLE}"\n')
    monkeypatch.setenv("XECR_CONFIG", str(explicit))
    loaded = config.load(env())
    assert loaded.path == str(explicit) and not loaded.system
    assert loaded.resolve(CENTRAL_HOST).role_arns == (PULL_ROLE,)


def test_a_missing_xecr_config_is_an_error(
    write_config: Callable[[str], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config("")  # a user file exists, but XECR_CONFIG is what was asked for
    missing = tmp_path / "nowhere" / "config.toml"
    monkeypatch.setenv("XECR_CONFIG", str(missing))
    with pytest.raises(ConfigError) as caught:
        config.load(env())
    assert caught.value.path == str(missing)
    assert str(missing) in str(caught.value) and "XECR_CONFIG" in str(caught.value)


# -- the parsed JSON copy ------------------------------------------------------------------


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Records every real TOML parse; the cache folder exists, so copies are kept."""
    securefile.ensure_dir(paths.cache_dir(env(), False))
    seen: list[str] = []
    real = config.parse_file

    def counting(path: str, system: bool = False) -> config.Config:
        seen.append(path)
        return real(path, system)

    monkeypatch.setattr(config, "parse_file", counting)
    yield seen


def load_copied() -> config.Config:
    """Load as every front door does: with the file cache's folder holding the copy."""
    return config.load(env(), file_cache(env(), False))


def _copies() -> list[Path]:
    return sorted(Path(paths.cache_dir(env(), False)).glob("config-*.json"))


def test_the_parsed_copy_is_reused_while_the_file_is_unchanged(
    write_config: Callable[[str], Path], parses: list[str]
) -> None:
    path = write_config(FULL)
    first = load_copied()
    assert parses == [str(path)]
    [copy] = _copies()
    assert copy.stat().st_mode & 0o777 == 0o600
    for _ in range(3):
        again = load_copied()
        assert (again.defaults, again.registries) == (first.defaults, first.registries)
        assert again.resolve("mirror.example.com:5000") == first.resolve("mirror.example.com:5000")
    assert parses == [str(path)]


def test_a_changed_file_is_parsed_again(
    write_config: Callable[[str], Path], parses: list[str]
) -> None:
    write_config('[defaults]\nregion = "eu-west-1"\n')
    load_copied()
    write_config('[defaults]\nregion = "ap-southeast-2"\n')
    assert load_copied().defaults["region"] == "ap-southeast-2"
    assert len(parses) == 2


def test_a_same_size_edit_is_parsed_again(
    write_config: Callable[[str], Path], parses: list[str]
) -> None:
    path = write_config('[defaults]\nregion = "eu-west-1"\n')
    load_copied()
    # Step past the file system's timestamp granularity (coarse clocks tick every few ms).
    time.sleep(0.02)
    with path.open("r+") as handle:  # in place: same inode, same size
        handle.write('[defaults]\nregion = "eu-west-2"\n')
    assert load_copied().defaults["region"] == "eu-west-2"
    assert len(parses) == 2


def test_a_replaced_file_with_the_old_times_is_parsed_again(
    write_config: Callable[[str], Path], parses: list[str], tmp_path: Path
) -> None:
    path = write_config('[defaults]\nregion = "eu-west-1"\n')
    load_copied()
    before = path.stat()
    fresh = _write(tmp_path / "new.toml", '[defaults]\nregion = "eu-west-2"\n')
    os.utime(fresh, ns=(before.st_atime_ns, before.st_mtime_ns))
    os.replace(fresh, path)  # an editor's save: new inode, same size and mtime
    assert load_copied().defaults["region"] == "eu-west-2"
    assert len(parses) == 2


@pytest.mark.parametrize(
    "damage",
    [
        b"",
        b"{not json",
        b"\xff\xfe\x00garbage",
        b"[]",
        b"null",
        b'{"v": 1}',
        "truncate",
        "wrong version",
        "wrong stat type",
        "other path",
        "registries not a table",
    ],
)
def test_a_damaged_copy_is_a_miss(
    write_config: Callable[[str], Path], parses: list[str], damage: bytes | str
) -> None:
    write_config(FULL)
    good = load_copied()
    [copy] = _copies()
    raw = copy.read_bytes()
    body = json.loads(raw)
    if damage == "truncate":
        data = raw[: len(raw) // 2]
    elif damage == "wrong version":
        data = json.dumps({**body, "v": 99}).encode()
    elif damage == "wrong stat type":
        data = json.dumps({**body, "stat": "yesterday"}).encode()
    elif damage == "other path":
        data = json.dumps({**body, "path": "/elsewhere.toml"}).encode()
    elif damage == "registries not a table":
        data = json.dumps({k: v for k, v in body.items() if k != "registries"}).encode()
    else:
        assert isinstance(damage, bytes)
        data = damage
    securefile.write_atomic(str(copy), data)
    again = load_copied()
    assert (again.defaults, again.registries) == (good.defaults, good.registries)
    assert len(parses) == 2
    assert json.loads(copy.read_bytes()) == body  # healed by the parse


def test_an_unsafe_copy_is_ignored(write_config: Callable[[str], Path], parses: list[str]) -> None:
    write_config(FULL)
    load_copied()
    [copy] = _copies()
    copy.chmod(0o666)  # others could have written it: not trusted
    load_copied()
    assert len(parses) == 2


def test_the_first_load_writes_the_copy(write_config: Callable[[str], Path]) -> None:
    write_config(FULL)
    load_copied()
    [copy] = _copies()
    assert Path(paths.cache_dir(env(), False)).stat().st_mode & 0o777 == 0o700
    assert json.loads(copy.read_bytes())["registries"][ALIAS]["registry_id"] == CENTRAL


def test_an_unsafe_cache_folder_means_no_copy(
    write_config: Callable[[str], Path], parses: list[str]
) -> None:
    folder = Path(paths.cache_dir(env(), False))
    folder.chmod(0o777)
    write_config(FULL)
    first = load_copied()
    again = load_copied()
    assert (again.defaults, again.registries) == (first.defaults, first.registries)
    assert _copies() == [] and len(parses) == 2


# -- property ------------------------------------------------------------------------------


@pytest.mark.slow
@settings(max_examples=250, deadline=None)
@given(TARGETS["config_validate"].strategy)
def test_validate_raises_only_config_error(doc: dict[str, object]) -> None:
    TARGETS["config_validate"].check(doc)


@pytest.mark.parametrize("mode", [0o664, 0o646])
def test_a_machine_wide_config_others_may_write_is_refused(tmp_path: Path, mode: int) -> None:
    """Root's daemon acts on /etc/xecr/config.toml: a user able to edit it could steer it."""
    system = Path(os.environ["XECR_SYSTEM_CONFIG"])
    system.parent.mkdir(parents=True)
    system.write_text(f'[registries."{CENTRAL_HOST}"]\n')
    system.chmod(mode)
    with pytest.raises(ConfigError, match="owned by root and writable by root only"):
        load_copied()
    system.chmod(0o644)
    assert load_copied().system
