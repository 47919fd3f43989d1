"""ecr_helper.registry's region table held against botocore's own partition data.

xecr keeps its table by hand (the cached ``get`` must not load botocore), so
these tests are what keep it true: every region botocore lists is a region
to xecr, in the same partition; every partition's pattern (``regionRegex``)
is the prefix list xecr has for it; every partition has an ECR registry
domain xecr knows. A botocore upgrade that adds a region with a new prefix,
or a new partition, fails here until the table is updated.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import botocore
import pytest

from ecr_helper.registry import (
    PARTITION_REGIONS,
    ecr_host_for,
    is_region,
    parse_ecr_host,
    region_partition,
)

DATA = Path(botocore.__file__).parent / "data"


def _load(name: str) -> Any:
    return json.loads((DATA / name).read_text())


PARTITIONS: list[dict[str, Any]] = _load("partitions.json")["partitions"]
ENDPOINTS: list[dict[str, Any]] = _load("endpoints.json")["partitions"]


def _published() -> list[tuple[str, str]]:
    """(region, partition) for every region botocore names in either file.

    ``aws-global`` and the like are endpoint aliases, not regions.
    """
    found: set[tuple[str, str]] = set()
    for part in PARTITIONS:
        found.update((r, part["id"]) for r in part["regions"] if not r.endswith("-global"))
    for part in ENDPOINTS:
        found.update((r, part["partition"]) for r in part["regions"])
    return sorted(found)


def _prefixes(region_regex: str) -> tuple[str, ...]:
    """The leading labels a ``regionRegex`` such as ``^(us|eu)\\-\\w+\\-\\d+$`` allows."""
    match = re.fullmatch(r"\^(.*)\\-\\w\+\\-\\d\+\$", region_regex)
    assert match, f"a regionRegex of a new shape: {region_regex}"
    head = match[1].replace("\\-", "-")
    alternatives = re.fullmatch(r"(.*?)\(([a-z|]+)\)", head)
    if alternatives:
        stem, choices = alternatives.groups()
        return tuple(f"{stem}{choice}-" for choice in choices.split("|"))
    assert re.fullmatch(r"[a-z-]+", head), head
    return (f"{head}-",)


@pytest.mark.parametrize(("region", "partition"), _published())
def test_every_published_region_is_a_region_of_its_partition(region: str, partition: str) -> None:
    assert is_region(region), region
    assert region_partition(region) == partition
    host = ecr_host_for("111111111111", region)
    parsed = parse_ecr_host(host)
    assert parsed is not None, host
    assert (parsed.region, parsed.partition) == (region, partition)


@pytest.mark.parametrize("part", PARTITIONS, ids=lambda p: str(p["id"]))
def test_each_partition_pattern_is_xecrs_prefix_list(part: dict[str, Any]) -> None:
    assert part["id"] in PARTITION_REGIONS, f"botocore has a partition xecr lacks: {part['id']}"
    assert sorted(_prefixes(part["regionRegex"])) == sorted(PARTITION_REGIONS[part["id"]])


def test_xecr_has_no_partition_botocore_lacks() -> None:
    assert set(PARTITION_REGIONS) == {p["id"] for p in PARTITIONS}


@pytest.mark.parametrize("part", PARTITIONS, ids=lambda p: str(p["id"]))
def test_each_partition_has_a_registry_domain(part: dict[str, Any]) -> None:
    """The registry host sits under the partition's DNS suffix (dkr.ecr.REGION.SUFFIX)."""
    regions = [r for r in part["regions"] if not r.endswith("-global")]
    assert regions
    suffix = part["outputs"]["dnsSuffix"]
    for region in regions:
        assert ecr_host_for("111111111111", region) == f"111111111111.dkr.ecr.{region}.{suffix}"


@pytest.mark.parametrize(
    ("text", "partition"),
    [
        ("eusc-de-east-1", "aws-eusc"),
        ("eusc-de-west-2", "aws-eusc"),  # a future EUSC region: the pattern, not the list
        ("mx-central-1", "aws"),
        ("ap-southeast-7", "aws"),
        ("us-gov-east-1", "aws-us-gov"),
        ("us-isob-west-1", "aws-iso-b"),
    ],
)
def test_regions_by_pattern(text: str, partition: str) -> None:
    assert is_region(text)
    assert region_partition(text) == partition


@pytest.mark.parametrize(
    "text",
    [
        # placeholders in peers' tests (see tests/test_peer_hosts.py)
        "lala-land-1",
        "aws-region-1",
        "us-secret-region",
        "us-ts-region",
        "uk-region",
        "not-real",
        # right shape, no such partition or too many words
        "eusc-fr-east-1",
        "eusc-east-1",
        "zz-east-1",
        "us-east-east-1",
        "EUSC-DE-EAST-1",
    ],
)
def test_placeholders_are_not_regions(text: str) -> None:
    assert not is_region(text)
