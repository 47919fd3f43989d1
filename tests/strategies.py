"""Hypothesis strategies and property targets shared by the tests and ``fuzz/run.py``.

Each target is a strategy plus a check that raises AssertionError when a
property is broken. ``tests/test_*.py`` run them with a few hundred examples;
``fuzz/run.py`` runs the very same pairs for as long as it is asked to, so a
failure found by the fuzzer reproduces in the test suite unchanged.

The checks restate the contract from the outside (an explicit table of ECR
domains and their partitions, independent of ``ecr_helper.registry``'s own
tables), so a mistake in the module is not mirrored here.
"""

from __future__ import annotations

import json
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from ecr_helper import config as config_mod
from ecr_helper import config_schema
from ecr_helper.errors import ConfigError, InputError
from ecr_helper.frontends import docker
from ecr_helper.registry import (
    ecr_host_for,
    is_host,
    is_region,
    is_registry_id,
    normalize,
    parse_ecr_host,
    region_partition,
)
from ecr_helper.token import Token

# ECR's registry domains and the partitions whose regions may sit under each
# (GovCloud regions use the standard domain). Written out here on purpose.
ECR_DOMAINS: dict[str, frozenset[str]] = {
    "amazonaws.com": frozenset({"aws", "aws-us-gov"}),
    "amazonaws.com.cn": frozenset({"aws-cn"}),
    "on.aws": frozenset({"aws", "aws-us-gov"}),
    "on.amazonwebservices.com.cn": frozenset({"aws-cn"}),
    "c2s.ic.gov": frozenset({"aws-iso"}),
    "sc2s.sgov.gov": frozenset({"aws-iso-b"}),
    "cloud.adc-e.uk": frozenset({"aws-iso-e"}),
    "csp.hci.ic.gov": frozenset({"aws-iso-f"}),
    "amazonaws.eu": frozenset({"aws-eusc"}),
}
DUALSTACK_DOMAINS = frozenset({"on.aws", "on.amazonwebservices.com.cn"})
LOOKALIKE_DOMAINS = (
    "amazonaws.com.evil.example",
    "amazonaws.com.",
    "amazonaws.co",
    "xamazonaws.com",
    "amazonaws-com",
    "evil.example",
    "on.aws.evil.example",
    "amazonaws.com.cn.evil",
    "ic.gov",
    "aws",
)
REGIONS = (
    "us-east-1",
    "eu-west-1",
    "ap-southeast-2",
    "ca-central-1",
    "il-central-1",
    "cn-north-1",
    "cn-northwest-1",
    "us-gov-west-1",
    "us-gov-east-1",
    "us-iso-east-1",
    "us-isob-east-1",
    "eu-isoe-west-1",
    "us-isof-south-1",
    "eusc-de-east-1",
)
ROLE_ARNS = (
    "arn:aws:iam::222222222222:role/ecr-pull",
    "arn:aws:iam::333333333333:role/path/to/hop",
    "arn:aws-cn:iam::444444444444:role/cn-pull",
    "arn:aws-us-gov:iam::555555555555:role/gov+pull=x,y.z@w-v",
)
BAD_ROLE_ARNS = (
    "arn:aws:iam::22222222222:role/short-id",
    "arn:aws:iam::222222222222:user/not-a-role",
    "arn:aws:sts::222222222222:assumed-role/x/y",
    "role/ecr-pull",
    "arn:aws:iam::222222222222:role/",
    "arn:aws:iam::222222222222:role/sp ace",
    "",
)


@dataclass(frozen=True)
class Target:
    """A property: ``check`` must hold for every value ``strategy`` draws."""

    name: str
    strategy: st.SearchStrategy[Any]
    check: Callable[[Any], None]


# -- building blocks ---------------------------------------------------------------------

registry_ids = st.integers(0, 10**12 - 1).map(lambda n: f"{n:012d}")
wrong_ids = st.one_of(
    st.integers(0, 10**11 - 1).map(lambda n: f"{n:011d}"),
    st.integers(0, 10**13 - 1).map(lambda n: f"{n:013d}"),
    st.integers(0, 10**10).map(str),
    st.integers(0, 10**11 - 1).map(lambda n: f"{n:011d}a"),
)
_words = st.sampled_from(("east", "west", "north", "south", "central", "southeast", "gov", "iso"))
# Region names as AWS's partitions define them (botocore's regionRegex: the
# partition's leading labels, one word, a number): future regions included.
valid_regions = st.one_of(
    st.sampled_from(REGIONS),
    st.builds(
        lambda prefix, word, n: f"{prefix}{word}-{n}",
        st.sampled_from(
            (
                *("us-", "eu-", "ap-", "sa-", "ca-", "me-", "af-", "il-", "mx-"),
                *("us-gov-", "cn-", "us-iso-", "us-isob-", "eu-isoe-", "us-isof-", "eusc-de-"),
            )
        ),
        _words,
        st.integers(0, 99),
    ),
)
# ... and near misses: several words, unknown prefixes, placeholders peers test with.
regions = st.one_of(
    valid_regions,
    st.builds(
        lambda prefix, words, n: f"{prefix}-{'-'.join(words)}-{n}",
        st.sampled_from(("us", "eu", "ap", "sa", "me", "af", "cn", "il", "mx", "zz", "eusc")),
        st.lists(_words, min_size=1, max_size=3),
        st.integers(0, 99),
    ),
    st.sampled_from(("lala-land-1", "aws-region-1", "us-ts-region", "eusc-fr-east-1")),
)
_kinds = st.sampled_from(
    ("dkr.ecr", "dkr-ecr", "dkr.ecr-fips", "dkr-ecr-fips", "dkr.ecr.fips", "ecr", "dkr_ecr", "dkr")
)
_domains = st.sampled_from((*ECR_DOMAINS, *LOOKALIKE_DOMAINS))
_PARTITION_DOMAINS = {
    "aws": ("amazonaws.com", "on.aws"),
    "aws-us-gov": ("amazonaws.com", "on.aws"),
    "aws-cn": ("amazonaws.com.cn", "on.amazonwebservices.com.cn"),
    "aws-iso": ("c2s.ic.gov",),
    "aws-iso-b": ("sc2s.sgov.gov",),
    "aws-iso-e": ("cloud.adc-e.uk",),
    "aws-iso-f": ("csp.hci.ic.gov",),
    "aws-eusc": ("amazonaws.eu",),
}
_EDITS = ("insert", "delete", "replace", "upper", "swapcase")


def _mutate(text: str, draw: st.DrawFn) -> str:
    """Half the time one random edit: insert, delete or replace a character, or change case."""
    if draw(st.booleans()) or not text:
        return text
    how = draw(st.sampled_from(_EDITS))
    if how == "upper":
        return text.upper()
    if how == "swapcase":
        return text.swapcase()
    at = draw(st.integers(0, len(text) - 1))
    char = draw(st.one_of(st.sampled_from(".-:/@_0aZK\u212a "), st.characters()))
    if how == "insert":
        return text[:at] + char + text[at:]
    if how == "delete":
        return text[:at] + text[at + 1 :]
    return text[:at] + char + text[at + 1 :]


@st.composite
def ecr_like_hosts(draw: st.DrawFn) -> str:
    """Host names built from ECR's parts, right and wrong, sometimes mutated: a third are
    real ECR hosts, a third have ECR's shape with any region under any ECR domain (often
    from another partition), a third mix every part freely."""
    shape = draw(st.sampled_from(("valid", "cross-partition", "free")))
    if shape == "free":
        registry_id = draw(st.one_of(registry_ids, wrong_ids))
        host = f"{registry_id}.{draw(_kinds)}.{draw(regions)}.{draw(_domains)}"
        return _mutate(host, draw)
    region = draw(regions)
    if shape == "valid":
        domain = draw(st.sampled_from(_PARTITION_DOMAINS[region_partition(region)]))
    else:
        domain = draw(st.sampled_from(tuple(ECR_DOMAINS)))
    kind = "dkr-ecr" if domain in DUALSTACK_DOMAINS else "dkr.ecr"
    fips = draw(st.sampled_from(("", "-fips")))
    return _mutate(f"{draw(registry_ids)}.{kind}{fips}.{region}.{domain}", draw)


# How clients write a host (benign) and how look-alikes hide one (hostile).
BENIGN_FORMS = (
    "{h}",
    "{h}:443",
    "https://{h}",
    "https://{h}/v2/",
    "HTTPS://{h}:443/V2/",
    " {h}\n",
    "{h}/v2/repo/manifests/latest?x=1#f",
    "http://{h}:443/",
    "{h}?q",
    "{h}#f",
    "oci://{h}",
)
HOSTILE_FORMS = (
    "user@{h}",
    "a:b@{h}",
    "https://user@{h}/",
    "evil.example/{h}",
    "https://evil.example/{h}",
    "{h}:5000",
    "{h}:",
    "{h}:0443",
    "{h}.evil.example",
    "evil.{h}",
    "x{h}",
    "//{h}",
    "{h}.",
    "{h}\\",
    "{h} x",
    "{h}%2f",
    "{h}@evil.example",
)


@st.composite
def addresses(draw: st.DrawFn) -> str:
    """What a client might pass as a registry address, and what an attacker might."""
    if draw(st.integers(0, 4)) == 4:
        return draw(st.text(max_size=80))
    forms = BENIGN_FORMS if draw(st.booleans()) else HOSTILE_FORMS
    text = draw(st.sampled_from(forms)).format(h=draw(ecr_like_hosts()))
    return _mutate(text, draw)


# -- registry targets --------------------------------------------------------------------


def check_normalize(address: str) -> None:
    """normalize raises nothing but InputError; its result is lower-case and bare, and a
    host name stays what it is when normalized again (``list`` keys come back to ``get``).

    """
    try:
        host = normalize(address)
    except InputError:
        return
    assert host == host.lower()
    assert "/" not in host
    if is_host(host):
        assert not host.endswith(":443")
        assert normalize(host) == host


def check_parse(address: str) -> None:
    """Whatever parse_ecr_host accepts is, character for character, an ECR host."""
    try:
        host = normalize(address)
    except InputError:
        return
    ecr = parse_ecr_host(host)
    if ecr is None:
        return
    assert ecr.host == host
    assert host.isascii() and host == host.lower()
    assert not set(host) & set(":/@?#% \t\n"), host
    domains = [d for d in ECR_DOMAINS if host.endswith("." + d)]
    assert domains, f"{host!r} does not end in an ECR domain"
    domain = max(domains, key=len)
    assert ecr.partition in ECR_DOMAINS[domain], (host, ecr.partition)
    assert ecr.dualstack == (domain in DUALSTACK_DOMAINS)
    assert is_registry_id(ecr.registry_id) and host.startswith(ecr.registry_id + ".")
    assert (
        is_region(ecr.region)
        and f".{ecr.region}.{domain}" == host[-len(domain) - len(ecr.region) - 2 :]
    )
    assert region_partition(ecr.region) == ecr.partition
    kind = host[len(ecr.registry_id) + 1 : -len(domain) - len(ecr.region) - 2]
    expected_kind = ("dkr-ecr" if ecr.dualstack else "dkr.ecr") + ("-fips" if ecr.fips else "")
    assert kind == expected_kind, (host, kind)
    if not ecr.fips and not ecr.dualstack:
        assert ecr_host_for(ecr.registry_id, ecr.region) == host
    # A parsed host is already normal: the keys of `list` come back to `get`.
    assert normalize(host) == host


def check_round_trip(pair: tuple[str, str]) -> None:
    """ecr_host_for builds hosts that parse back to the same id, region and partition,
    in every form a client may write them."""
    registry_id, region = pair
    host = ecr_host_for(registry_id, region)
    for form in (host, host.upper(), f"{host}:443", f"https://{host}/v2/", f" {host}\n"):
        assert normalize(form) == host, form
    ecr = parse_ecr_host(host)
    assert ecr is not None, host
    assert (ecr.registry_id, ecr.region, ecr.partition) == (
        registry_id,
        region,
        region_partition(region),
    )
    assert not ecr.fips and not ecr.dualstack


# -- config target -----------------------------------------------------------------------

_toml_scalars = st.one_of(
    st.text(max_size=20),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.datetimes(),
    st.dates(),
    st.times(),
)
toml_values = st.recursive(
    _toml_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(max_size=12), inner, max_size=4),
    ),
    max_leaves=12,
)
_value_for: dict[str, st.SearchStrategy[Any]] = {
    "region": st.one_of(st.sampled_from(REGIONS), st.sampled_from(("", "US-EAST-1", "useast1"))),
    "registry_id": st.one_of(registry_ids, wrong_ids),
    "role_arn": st.one_of(
        st.sampled_from(ROLE_ARNS + BAD_ROLE_ARNS),
        st.lists(st.sampled_from(ROLE_ARNS + BAD_ROLE_ARNS), max_size=3),
        st.lists(st.one_of(st.sampled_from(ROLE_ARNS), st.integers()), max_size=3),
    ),
    "external_id": st.one_of(st.text(max_size=12), st.sampled_from(("ext-1234", "x", ""))),
    "role_session_name": st.one_of(st.text(max_size=70), st.sampled_from(("xecr-ci", "a"))),
    "source_profile": st.sampled_from(("default", "central", "", "  ")),
    "duration_seconds": st.one_of(
        st.sampled_from((899, 900, 3600, 43200, 43201, 0, -1, True)), st.integers()
    ),
    "cache": st.sampled_from(("file", "keyring", "none", "redis", "")),
}
_setting_keys = st.sampled_from((*_value_for, "unknown", "Region", "role_arns"))


@st.composite
def _settings_tables(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 9)) == 9:
        return draw(toml_values)
    keys = draw(st.lists(_setting_keys, max_size=5, unique=True))
    return {
        key: draw(st.one_of(_value_for[key], toml_values) if key in _value_for else toml_values)
        for key in keys
    }


_registry_names = st.one_of(
    st.builds(ecr_host_for, registry_ids, st.sampled_from(REGIONS)),
    ecr_like_hosts(),
    st.sampled_from(
        (
            "registry.example",
            "public.ecr.aws",
            "https://ECR-PUBLIC.aws.com:443/v2/",
            "REGISTRY.example:443",
            "reg.example:5000",
            "https://reg.example/v2/",
            "",
            " ",
            "a b",
            "bad_host",
            "host:99999",
            "https://",
        )
    ),
    st.text(max_size=30),
)


_valid_value: dict[str, st.SearchStrategy[Any]] = {
    "region": st.sampled_from(REGIONS),
    "registry_id": registry_ids,
    "role_arn": st.one_of(
        st.sampled_from(ROLE_ARNS), st.lists(st.sampled_from(ROLE_ARNS), min_size=1, max_size=3)
    ),
    "external_id": st.sampled_from(("ext-1234", "a:b/c=d,e@f", "x" * 1224)),
    "role_session_name": st.sampled_from(("xecr-ci", "a@b.c", "s" * 64)),
    "source_profile": st.sampled_from(("default", "central")),
    "duration_seconds": st.integers(900, 43200),
    "cache": st.sampled_from(config_schema.CACHE_BACKENDS),
}
_ALIASES = ("registry.example", "registry.example:5000", "mirror.internal", "10.0.0.1:8443")


@st.composite
def _valid_table(draw: st.DrawFn, allowed: tuple[str, ...]) -> dict[str, Any]:
    keys = draw(st.lists(st.sampled_from(allowed), max_size=4, unique=True))
    return {key: draw(_valid_value[key]) for key in keys}


@st.composite
def _near_valid_documents(draw: st.DrawFn) -> dict[str, Any]:
    """A valid configuration, then at most one thing wrong with it."""
    defaults = draw(_valid_table(tuple(k for k in config_schema.DEFAULT_KEYS if k != "region")))
    if draw(st.booleans()):
        defaults["region"] = draw(_valid_value["region"])
    registries: dict[str, Any] = {}
    for _ in range(draw(st.integers(0, 3))):
        table = draw(_valid_table(config_schema.REGISTRY_KEYS[2:]))
        if draw(st.booleans()):
            host = ecr_host_for(draw(registry_ids), draw(st.sampled_from(REGIONS)))
        else:
            host = draw(st.sampled_from(_ALIASES))
            table["registry_id"] = draw(registry_ids)
            if draw(st.booleans()):
                table["region"] = draw(_valid_value["region"])
        registries[host] = table
    doc: dict[str, Any] = {"defaults": defaults, "registries": registries}
    tables = [defaults, *registries.values()]
    damage = draw(
        st.sampled_from(("none", "drop", "replace", "bad value", "bad region", "unknown key"))
    )
    # Aliases depend on the most rules (their own id, a region here or in [defaults]).
    aliases = [t for h, t in registries.items() if h in _ALIASES]
    prefer_alias: bool = draw(st.booleans())
    table = draw(st.sampled_from(aliases if aliases and prefer_alias else tables))
    if damage == "drop" and table:
        vital = [k for k in ("registry_id", "region") if k in table and table in aliases]
        prefer_vital: bool = draw(st.booleans())
        del table[draw(st.sampled_from(vital if vital and prefer_vital else sorted(table)))]
    elif damage == "replace" and table:
        table[draw(st.sampled_from(sorted(table)))] = draw(toml_values)
    elif damage == "bad value":
        key = draw(st.sampled_from(tuple(_value_for)))
        table[key] = draw(_value_for[key])
    elif damage == "bad region":
        table["region"] = draw(st.sampled_from(("", "US-EAST-1", "useast1", "us-east", "-1-")))
    elif damage == "unknown key":
        table[draw(_setting_keys)] = draw(toml_values)
    return doc


@st.composite
def _free_documents(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    if draw(st.booleans()):
        doc["defaults"] = draw(_settings_tables())
    if draw(st.integers(0, 4)) < 4:
        if draw(st.integers(0, 9)) == 9:
            doc["registries"] = draw(toml_values)
        else:
            doc["registries"] = draw(
                st.dictionaries(_registry_names, _settings_tables(), max_size=4)
            )
    if draw(st.integers(0, 9)) == 9:
        doc[draw(st.text(max_size=10))] = draw(toml_values)
    return doc


# Parsed-TOML-shaped documents: half near the contract, half far from it.
config_documents = st.one_of(_near_valid_documents(), _free_documents())


def check_validate(doc: dict[str, Any]) -> None:
    """validate raises nothing but ConfigError (naming the file), and every host it
    accepts resolves to settings for that very host."""
    path = "/fuzz/config.toml"
    try:
        defaults, registries = config_schema.validate(doc, path)
    except ConfigError as exc:
        assert exc.path == path
        assert str(exc).startswith(f"config error in {path}"), str(exc)
        assert "\n" not in str(exc) and "\r" not in str(exc), str(exc)
        return
    loaded = config_mod.Config(path, False, defaults, registries)
    json.dumps([defaults, registries])  # the parsed copy must be storable as JSON
    for host in registries:
        settings = loaded.resolve(host)
        assert settings.host == host
        assert settings.configured
        if settings.public:
            assert settings.registry_id == "" and settings.region == "us-east-1", settings
        else:
            assert is_registry_id(settings.registry_id), settings
        assert is_region(settings.region), settings


# -- token and stdin targets -------------------------------------------------------------

_json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=10),
)
json_values = st.recursive(
    _json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
_finite = st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers())
_field_values: dict[str, st.SearchStrategy[Any]] = {
    "v": st.sampled_from((0, 1, 2, "1", None, 1.0, [])),
    "issued_at": st.one_of(_finite, st.booleans(), json_values),
    "expires_at": st.one_of(
        st.floats(-5000.0, 5000.0, allow_nan=False), _finite, st.booleans(), json_values
    ),
    "secret": st.one_of(st.sampled_from(("", " ", "x")), json_values),
    "role_arn": st.one_of(st.none(), st.sampled_from(ROLE_ARNS), json_values),
}


@st.composite
def cache_entries(draw: st.DrawFn) -> Any:
    """Cache entry bodies: valid ones with fields dropped or replaced, and junk."""
    if draw(st.integers(0, 4)) == 4:
        return draw(json_values)
    body: dict[str, Any] = {
        "v": 1,
        "username": "AWS",
        "secret": "s3cr3t-value",
        "issued_at": 1000.0,
        "expires_at": 2000.0,
        "registry": "111111111111.dkr.ecr.us-east-1.amazonaws.com",
        "registry_id": "111111111111",
        "region": "us-east-1",
        "role_arn": None,
    }
    for field in draw(st.lists(st.sampled_from(tuple(body)), max_size=3, unique=True)):
        if draw(st.integers(0, 3)) == 3:
            del body[field]
        else:
            body[field] = draw(_field_values.get(field, json_values))
    return body


def check_token_entry(body: Any) -> None:
    """Token.from_json never raises, and what it accepts is a servable token."""
    token = Token.from_json(body)
    if token is None:
        return
    assert isinstance(token.secret, str) and token.secret
    assert isinstance(token.username, str)
    assert token.expires_at > token.issued_at
    assert token.role_arn is None or isinstance(token.role_arn, str)
    # repr does not depend on the secret at all
    assert repr(token) == repr(Token.from_json(body, secret="some-other-secret"))
    assert Token.from_json(json.loads(json.dumps(token.to_json()))) == token


def check_stdin(data: bytes) -> None:
    """read_input returns all of stdin (to EOF) as text or raises InputError: nothing else."""
    import io

    try:
        text = docker.read_input(io.BytesIO(data))
    except InputError:
        assert len(data) > docker.MAX_INPUT or not _is_utf8(data)
        return
    assert text.encode("utf-8") == data


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


stdin_bytes = st.one_of(
    st.binary(max_size=200),
    st.text(alphabet=string.printable, max_size=200).map(str.encode),
    st.text(max_size=50).map(str.encode),
    # around the size limit, with the line ending (or not) at the edge
    st.builds(
        lambda size, tail, rest: b"a" * size + tail + rest,
        st.integers(docker.MAX_INPUT - 3, docker.MAX_INPUT + 1),
        st.sampled_from((b"", b"\n", b"\xff", b"\xc3\xa9")),
        st.sampled_from((b"", b"more", b"\xff")),
    ),
)

TARGETS: dict[str, Target] = {
    target.name: target
    for target in (
        Target("normalize", addresses(), check_normalize),
        Target("parse_ecr_host", addresses(), check_parse),
        Target("ecr_host_round_trip", st.tuples(registry_ids, valid_regions), check_round_trip),
        Target("config_validate", config_documents, check_validate),
        Target("token_from_json", cache_entries(), check_token_entry),
        Target("stdin", stdin_bytes, check_stdin),
    )
}
