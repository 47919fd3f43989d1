"""ecr_helper.registry: every address form clients send, ECR hosts in every partition,
look-alikes that must never be taken for ECR, and hypothesis properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from ecr_helper.errors import InputError
from ecr_helper.registry import (
    MAX_ADDRESS,
    PUBLIC_HOST,
    EcrHost,
    canonical_host,
    ecr_host_for,
    is_host,
    is_public_host,
    is_region,
    is_registry_id,
    normalize,
    parse_ecr_host,
    region_partition,
)
from tests.strategies import TARGETS

ID = "111111111111"
HOST = f"{ID}.dkr.ecr.us-east-1.amazonaws.com"

# address -> (host, region, partition, fips, dualstack)
ECR_ADDRESSES = {
    HOST: (HOST, "us-east-1", "aws", False, False),
    f"{HOST}:443": (HOST, "us-east-1", "aws", False, False),
    f"https://{HOST}": (HOST, "us-east-1", "aws", False, False),
    f"https://{HOST}/v2/": (HOST, "us-east-1", "aws", False, False),
    f"https://{HOST}:443/v2/": (HOST, "us-east-1", "aws", False, False),
    f"http://{HOST}/": (HOST, "us-east-1", "aws", False, False),
    f"{HOST}/v2/team/app/manifests/latest": (HOST, "us-east-1", "aws", False, False),
    f"{HOST}?x=1": (HOST, "us-east-1", "aws", False, False),
    f"  {HOST}\n": (HOST, "us-east-1", "aws", False, False),
    HOST.upper(): (HOST, "us-east-1", "aws", False, False),
    f"HTTPS://{HOST.upper()}:443/V2/": (HOST, "us-east-1", "aws", False, False),
    f"{ID}.dkr.ecr.eu-west-1.amazonaws.com": (
        f"{ID}.dkr.ecr.eu-west-1.amazonaws.com",
        "eu-west-1",
        "aws",
        False,
        False,
    ),
    # FIPS
    f"{ID}.dkr.ecr-fips.us-east-1.amazonaws.com": (
        f"{ID}.dkr.ecr-fips.us-east-1.amazonaws.com",
        "us-east-1",
        "aws",
        True,
        False,
    ),
    f"{ID}.dkr.ecr-fips.us-gov-west-1.amazonaws.com": (
        f"{ID}.dkr.ecr-fips.us-gov-west-1.amazonaws.com",
        "us-gov-west-1",
        "aws-us-gov",
        True,
        False,
    ),
    # China
    f"{ID}.dkr.ecr.cn-north-1.amazonaws.com.cn": (
        f"{ID}.dkr.ecr.cn-north-1.amazonaws.com.cn",
        "cn-north-1",
        "aws-cn",
        False,
        False,
    ),
    f"https://{ID}.DKR.ECR.CN-NORTHWEST-1.AMAZONAWS.COM.CN:443": (
        f"{ID}.dkr.ecr.cn-northwest-1.amazonaws.com.cn",
        "cn-northwest-1",
        "aws-cn",
        False,
        False,
    ),
    # dual-stack
    f"{ID}.dkr-ecr.us-east-1.on.aws": (
        f"{ID}.dkr-ecr.us-east-1.on.aws",
        "us-east-1",
        "aws",
        False,
        True,
    ),
    f"{ID}.dkr-ecr-fips.us-east-1.on.aws": (
        f"{ID}.dkr-ecr-fips.us-east-1.on.aws",
        "us-east-1",
        "aws",
        True,
        True,
    ),
    f"{ID}.dkr-ecr.us-gov-east-1.on.aws": (
        f"{ID}.dkr-ecr.us-gov-east-1.on.aws",
        "us-gov-east-1",
        "aws-us-gov",
        False,
        True,
    ),
    f"{ID}.dkr-ecr.cn-north-1.on.amazonwebservices.com.cn": (
        f"{ID}.dkr-ecr.cn-north-1.on.amazonwebservices.com.cn",
        "cn-north-1",
        "aws-cn",
        False,
        True,
    ),
    # GovCloud
    f"{ID}.dkr.ecr.us-gov-west-1.amazonaws.com": (
        f"{ID}.dkr.ecr.us-gov-west-1.amazonaws.com",
        "us-gov-west-1",
        "aws-us-gov",
        False,
        False,
    ),
    # ISO partitions
    f"{ID}.dkr.ecr.us-iso-east-1.c2s.ic.gov": (
        f"{ID}.dkr.ecr.us-iso-east-1.c2s.ic.gov",
        "us-iso-east-1",
        "aws-iso",
        False,
        False,
    ),
    f"{ID}.dkr.ecr.us-isob-east-1.sc2s.sgov.gov": (
        f"{ID}.dkr.ecr.us-isob-east-1.sc2s.sgov.gov",
        "us-isob-east-1",
        "aws-iso-b",
        False,
        False,
    ),
    f"{ID}.dkr.ecr.eu-isoe-west-1.cloud.adc-e.uk": (
        f"{ID}.dkr.ecr.eu-isoe-west-1.cloud.adc-e.uk",
        "eu-isoe-west-1",
        "aws-iso-e",
        False,
        False,
    ),
    f"{ID}.dkr.ecr.us-isof-south-1.csp.hci.ic.gov": (
        f"{ID}.dkr.ecr.us-isof-south-1.csp.hci.ic.gov",
        "us-isof-south-1",
        "aws-iso-f",
        False,
        False,
    ),
    # the European Sovereign Cloud
    f"https://{ID}.DKR.ECR.EUSC-DE-EAST-1.AMAZONAWS.EU:443/v2/": (
        f"{ID}.dkr.ecr.eusc-de-east-1.amazonaws.eu",
        "eusc-de-east-1",
        "aws-eusc",
        False,
        False,
    ),
    f"{ID}.dkr.ecr-fips.eusc-de-east-1.amazonaws.eu": (
        f"{ID}.dkr.ecr-fips.eusc-de-east-1.amazonaws.eu",
        "eusc-de-east-1",
        "aws-eusc",
        True,
        False,
    ),
}

LOOKALIKES = [
    # an ECR host as a prefix of someone else's domain
    f"{HOST}.evil.example",
    f"https://{HOST}.evil.example/v2/",
    f"{ID}.dkr.ecr.us-east-1.amazonaws.com.cn.evil.example",
    f"{HOST}.",
    f"evil.{HOST}",
    f"x{HOST}",
    # wrong registry ids
    "11111111111.dkr.ecr.us-east-1.amazonaws.com",
    "1111111111111.dkr.ecr.us-east-1.amazonaws.com",
    "11111111111a.dkr.ecr.us-east-1.amazonaws.com",
    ".dkr.ecr.us-east-1.amazonaws.com",
    # the host hidden in a path, a query or behind userinfo
    f"evil.example/{HOST}",
    f"https://evil.example/{HOST}",
    f"https://evil.example/v2/{HOST}/",
    f"evil.example?{HOST}",
    f"user@{HOST}",
    f"https://user:password@{HOST}/v2/",
    f"{HOST}@evil.example",
    # other ports mean another service
    f"{HOST}:5000",
    f"{HOST}:80",
    f"{HOST}:4443",
    f"{HOST}:0443",
    f"{HOST}:",
    # region and domain from different partitions
    f"{ID}.dkr.ecr.cn-north-1.amazonaws.com",
    f"{ID}.dkr.ecr.us-east-1.amazonaws.com.cn",
    f"{ID}.dkr.ecr.us-gov-west-1.amazonaws.com.cn",
    f"{ID}.dkr.ecr.us-iso-east-1.amazonaws.com",
    f"{ID}.dkr.ecr.us-east-1.c2s.ic.gov",
    f"{ID}.dkr.ecr.us-iso-east-1.sc2s.sgov.gov",
    f"{ID}.dkr.ecr.us-isob-east-1.c2s.ic.gov",
    f"{ID}.dkr-ecr.cn-north-1.on.aws",
    f"{ID}.dkr-ecr.us-east-1.on.amazonwebservices.com.cn",
    f"{ID}.dkr.ecr.eusc-de-east-1.amazonaws.com",
    f"{ID}.dkr.ecr.eu-central-1.amazonaws.eu",
    f"{ID}.dkr-ecr.eusc-de-east-1.on.aws",
    # EUSC has no documented dual-stack registry name
    f"{ID}.dkr-ecr.eusc-de-east-1.amazonaws.eu",
    f"{ID}.dkr-ecr.eusc-de-east-1.api.amazonwebservices.eu",
    f"{ID}.dkr.ecr.eusc-de-east-1.amazonaws.eu.evil.example",
    # placeholder regions
    f"{ID}.dkr.ecr.lala-land-1.amazonaws.com",
    f"{ID}.dkr.ecr.eusc-fr-east-1.amazonaws.eu",
    # the dual-stack label with the IPv4 domain and the other way round
    f"{ID}.dkr-ecr.us-east-1.amazonaws.com",
    f"{ID}.dkr-ecr-fips.us-east-1.amazonaws.com",
    f"{ID}.dkr.ecr.us-east-1.on.aws",
    # other near misses
    f"{ID}.ecr.us-east-1.amazonaws.com",
    f"{ID}.dkr.ecr.fips.us-east-1.amazonaws.com",
    f"{ID}.dkr.ecr.useast1.amazonaws.com",
    f"{ID}.dkr.ecr.us-east-1.amazonaws.co",
    f"{ID}.dkr.ecr.us-east-1.xamazonaws.com",
    f"{ID}.dkr.ecr.us-east-1.amazonaws\u0441om",  # Cyrillic es
    f"{ID}.dkr.ecr.us-east-1.amаzonaws.com",  # Cyrillic a  # noqa: RUF001
    "public.ecr.aws",
    "docker.io",
    "registry-1.docker.io",
    "ghcr.io",
    "localhost:5000",
    "127.0.0.1:5000",
    "https://",
    "/v2/",
]


@pytest.mark.parametrize("address", list(ECR_ADDRESSES))
def test_every_address_form_of_an_ecr_host(address: str) -> None:
    host, region, partition, fips, dualstack = ECR_ADDRESSES[address]
    assert normalize(address) == host
    assert parse_ecr_host(normalize(address)) == EcrHost(
        host=host,
        registry_id=ID,
        region=region,
        partition=partition,
        fips=fips,
        dualstack=dualstack,
    )


@pytest.mark.parametrize("address", LOOKALIKES)
def test_lookalikes_are_not_ecr(address: str) -> None:
    assert parse_ecr_host(normalize(address)) is None


@pytest.mark.parametrize(
    ("address", "host"),
    [
        ("registry.example.com", "registry.example.com"),
        ("REGISTRY.Example.COM:443", "registry.example.com"),
        ("https://registry.example.com:5000/v2/", "registry.example.com:5000"),
        ("registry.example.com:5000", "registry.example.com:5000"),
        ("\tregistry.example.com/v2/x#frag\n", "registry.example.com"),
        ("https://", ""),
    ],
)
def test_normalize_other_hosts(address: str, host: str) -> None:
    assert normalize(address) == host


@pytest.mark.parametrize("address", ["", "   ", "\n", "\t \r\n"])
def test_normalize_refuses_an_empty_address(address: str) -> None:
    with pytest.raises(InputError, match="no registry address") as caught:
        normalize(address)
    assert "\n" not in str(caught.value)


def test_normalize_refuses_an_oversized_address() -> None:
    assert normalize("a" * MAX_ADDRESS) == "a" * MAX_ADDRESS
    with pytest.raises(InputError, match=str(MAX_ADDRESS)):
        normalize("a" * (MAX_ADDRESS + 1))
    # surrounding blanks are not counted
    assert normalize(" " * 10 + "a" * MAX_ADDRESS + "\n") == "a" * MAX_ADDRESS


def test_a_port_on_the_host_means_not_ecr() -> None:
    assert parse_ecr_host(f"{HOST}:443") is None  # parse expects a normalized host


def test_normalize_is_idempotent_for_doubled_default_port() -> None:
    # Only a lone ":443" is the default port; a doubled one is not a host at all.
    once = normalize("registry.example.com:443:443")
    assert normalize(once) == once
    assert not is_host(once)


@pytest.mark.parametrize(
    ("region", "partition", "host"),
    [
        ("us-east-1", "aws", f"{ID}.dkr.ecr.us-east-1.amazonaws.com"),
        ("ap-southeast-2", "aws", f"{ID}.dkr.ecr.ap-southeast-2.amazonaws.com"),
        ("us-gov-west-1", "aws-us-gov", f"{ID}.dkr.ecr.us-gov-west-1.amazonaws.com"),
        ("cn-north-1", "aws-cn", f"{ID}.dkr.ecr.cn-north-1.amazonaws.com.cn"),
        ("us-iso-east-1", "aws-iso", f"{ID}.dkr.ecr.us-iso-east-1.c2s.ic.gov"),
        ("us-isob-east-1", "aws-iso-b", f"{ID}.dkr.ecr.us-isob-east-1.sc2s.sgov.gov"),
        ("eu-isoe-west-1", "aws-iso-e", f"{ID}.dkr.ecr.eu-isoe-west-1.cloud.adc-e.uk"),
        ("us-isof-south-1", "aws-iso-f", f"{ID}.dkr.ecr.us-isof-south-1.csp.hci.ic.gov"),
        ("eusc-de-east-1", "aws-eusc", f"{ID}.dkr.ecr.eusc-de-east-1.amazonaws.eu"),
    ],
)
def test_partitions_and_canonical_hosts(region: str, partition: str, host: str) -> None:
    assert region_partition(region) == partition
    assert ecr_host_for(ID, region) == host
    parsed = parse_ecr_host(host)
    assert parsed is not None and parsed.partition == partition


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("us-east-1", True),
        ("us-gov-west-1", True),
        ("ap-northeast-12", True),
        ("eusc-de-east-1", True),
        ("lala-land-1", False),
        ("aws-region-1", False),
        ("US-EAST-1", False),
        ("us_east_1", False),
        ("useast1", False),
        ("us-east-123", False),
        ("us-east", False),
        ("", False),
        ("us-east-1\n", False),
    ],
)
def test_is_region(text: str, ok: bool) -> None:
    assert is_region(text) is ok


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("111111111111", True),
        ("000000000000", True),
        ("11111111111", False),
        ("1111111111111", False),
        ("11111111111a", False),
        ("١١١١١١١١١١١١", False),  # Arabic-Indic digits are digits to str.isdigit  # noqa: RUF001
        ("111111111111\n", False),
        ("", False),
    ],
)
def test_is_registry_id(text: str, ok: bool) -> None:
    assert is_registry_id(text) is ok


@pytest.mark.parametrize(
    "address",
    [
        "public.ecr.aws",
        "PUBLIC.ECR.AWS",
        "public.ecr.aws:443",
        "https://public.ecr.aws/v2/nginx/nginx/manifests/latest",
        "http://public.ecr.aws/",
        "ecr-public.aws.com",
        "https://ECR-Public.AWS.com:443/amazonlinux",
        " ecr-public.aws.com\n",
    ],
)
def test_ecr_public_in_every_address_form(address: str) -> None:
    host = normalize(address)
    assert is_public_host(host)
    assert canonical_host(host) == PUBLIC_HOST
    # ECR Public is not a private registry host: it has no registry id or region.
    assert parse_ecr_host(host) is None


@pytest.mark.parametrize(
    "address",
    [
        "public.ecr.aws:5000",
        "public.ecr.aws.evil.example",
        "evil.public.ecr.aws",
        "xpublic.ecr.aws",
        "ecr.aws",
        "public.ecr.aws.",
        "ecr-public.aws.com.cn",
        "ecr-public.aws",
        "evil.example/public.ecr.aws",
        "user@public.ecr.aws",
        "123456789123.dkr.ecr.us-west-2.amazonaws.com/public.ecr.aws/foo",
    ],
)
def test_ecr_public_lookalikes(address: str) -> None:
    host = normalize(address)
    assert not is_public_host(host)
    assert canonical_host(host) == host


def test_ecr_host_is_immutable_and_comparable() -> None:
    parsed = parse_ecr_host(HOST)
    assert parsed is not None
    with pytest.raises(AttributeError):
        parsed.registry_id = "222222222222"
    assert parsed == parse_ecr_host(HOST)
    assert hash(parsed) == hash(parse_ecr_host(HOST))


# -- properties (the same targets fuzz/run.py runs much longer) ---------------------------


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(TARGETS["normalize"].strategy)
def test_normalize_raises_only_input_error(address: str) -> None:
    TARGETS["normalize"].check(address)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(TARGETS["parse_ecr_host"].strategy)
def test_parse_accepts_only_hosts_in_an_ecr_domain(address: str) -> None:
    TARGETS["parse_ecr_host"].check(address)


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(TARGETS["ecr_host_round_trip"].strategy)
def test_ecr_host_for_round_trips(pair: tuple[str, str]) -> None:
    TARGETS["ecr_host_round_trip"].check(pair)
