"""packaging/kubernetes/credential-provider-config.yaml: its ``matchImages`` send the
kubelet to xecr for every registry host xecr serves (every partition, dual-stack, FIPS,
ECR Public), cover the EKS AMI's own list, and hold no pattern that serves nothing.

The kubelet matches an image against a pattern label by label (the same number of
domain labels, each matched as a glob; a ``*`` never spans a dot), then the port, then
the path as a prefix; :func:`matches` does the same for hosts.
"""

from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path

import botocore
import pytest

from ecr_helper.registry import PUBLIC_HOSTS, is_public_host, parse_ecr_host

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "packaging" / "kubernetes" / "credential-provider-config.yaml"

# awslabs/amazon-eks-ami, nodeadm/internal/kubelet/image-credential-provider.go,
# generateImageCredentialProviderConfig (with ecr-public.aws.com, added for kubelet
# 1.32+), at commit 76ba007db6733e8d1c627b9110a823d6fb52fec3.
EKS_MATCH_IMAGES = (
    "*.dkr.ecr.*.amazonaws.com",
    "*.dkr-ecr.*.on.aws",
    "*.dkr.ecr.*.amazonaws.com.cn",
    "*.dkr-ecr.*.on.amazonwebservices.com.cn",
    "*.dkr.ecr-fips.*.amazonaws.com",
    "*.dkr-ecr-fips.*.on.aws",
    "*.dkr.ecr.*.c2s.ic.gov",
    "*.dkr.ecr.*.sc2s.sgov.gov",
    "*.dkr.ecr.*.cloud.adc-e.uk",
    "*.dkr.ecr.*.csp.hci.ic.gov",
    "*.dkr.ecr.*.amazonaws.eu",
    "public.ecr.aws",
    "ecr-public.aws.com",
)
KINDS = ("dkr.ecr", "dkr.ecr-fips", "dkr-ecr", "dkr-ecr-fips")
DOMAINS = (
    "amazonaws.com",
    "amazonaws.com.cn",
    "on.aws",
    "on.amazonwebservices.com.cn",
    "c2s.ic.gov",
    "sc2s.sgov.gov",
    "cloud.adc-e.uk",
    "csp.hci.ic.gov",
    "amazonaws.eu",
    "api.amazonwebservices.eu",
    "amazonaws.gov",
)


def match_images() -> list[str]:
    """The ``matchImages`` list of the packaged config (a flat YAML list of strings)."""
    lines = CONFIG.read_text().splitlines()
    start = lines.index("    matchImages:") + 1
    found: list[str] = []
    for line in lines[start:]:
        item = re.fullmatch(r'      - "([^"]+)"', line)
        if item is None:
            break
        found.append(item[1])
    assert found
    return found


def matches(pattern: str, host: str) -> bool:
    """Whether the kubelet sends an image on ``host`` to a provider with ``pattern``."""
    globs, labels = pattern.split("."), host.split(".")
    return len(globs) == len(labels) and all(
        fnmatch.fnmatchcase(label, glob) for glob, label in zip(globs, labels, strict=True)
    )


def _published_regions() -> list[str]:
    data = json.loads((Path(botocore.__file__).parent / "data" / "partitions.json").read_text())
    return sorted(
        region
        for part in data["partitions"]
        for region in part["regions"]
        if not region.endswith("-global")
    )


def _candidates() -> list[str]:
    """Every host of the registry-host shape over every published region and domain."""
    return [
        f"123456789012.{kind}.{region}.{domain}"
        for region in _published_regions()
        for kind in KINDS
        for domain in DOMAINS
    ]


def test_every_host_xecr_serves_is_sent_to_it() -> None:
    patterns = match_images()
    served = [h for h in _candidates() if parse_ecr_host(h) is not None] + sorted(PUBLIC_HOSTS)
    assert len(served) > 100
    missed = [h for h in served if not any(matches(p, h) for p in patterns)]
    assert not missed, missed


@pytest.mark.parametrize("pattern", EKS_MATCH_IMAGES)
def test_the_eks_ami_patterns_are_all_there(pattern: str) -> None:
    assert pattern in match_images()


@pytest.mark.parametrize("pattern", match_images())
def test_every_pattern_is_for_hosts_xecr_serves(pattern: str) -> None:
    """No dead pattern: each one sends the kubelet some host xecr serves. (A glob cannot
    tell partitions apart, so cross-partition hosts it also matches get a one-line refusal
    from the plugin; see test_frontend_kubelet.)"""
    hit = [h for h in _candidates() + sorted(PUBLIC_HOSTS) if matches(pattern, h)]
    served = [h for h in hit if parse_ecr_host(h) is not None or is_public_host(h)]
    assert served, f"{pattern} matches no host xecr serves"


@pytest.mark.parametrize(
    ("pattern", "host", "expected"),
    [
        ("*.dkr.ecr.*.amazonaws.com", "1.dkr.ecr.us-east-1.amazonaws.com", True),
        ("*.dkr.ecr.*.amazonaws.com", "1.dkr.ecr.us-east-1.amazonaws.com.cn", False),
        ("*.dkr.ecr.*.amazonaws.com", "1.dkr.ecr.a.b.amazonaws.com", False),
        ("public.ecr.aws", "public.ecr.aws", True),
        ("public.ecr.aws", "x.public.ecr.aws", False),
    ],
)
def test_matches_counts_labels_as_the_kubelet_does(pattern: str, host: str, expected: bool) -> None:
    assert matches(pattern, host) is expected
