"""The registry-host tables other projects test, transcribed, run through xecr's parser
and through the installed ``docker-credential-xecr get`` against the loopback fake.

Every case names the peer's test file and the commit it was read at (the last commit
that changed that file when it was read). ``peer`` is the peer's own verdict; where
xecr gives another, ``differs`` says why xecr is right, and the test checks that the
two verdicts really differ (so a note cannot outlive the disagreement it explains).
Image references (with a repository, tag or digest) are checked as Docker's helper
sees them (the whole reference as the address) and as the kubelet plugin sees them
(its registry host).
"""

# One case per line reads as the table it is.
# ruff: noqa: E501

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from ecr_helper.errors import NOT_FOUND
from ecr_helper.frontends import kubelet
from ecr_helper.registry import is_public_host, normalize, parse_ecr_host
from tests.fakeaws import FakeAws
from tests.helpers import get

ACCEPTS = "accepts"
REJECTS = "rejects"

PLACEHOLDER = (
    "a placeholder region: no AWS partition has it, so no AWS endpoint could answer; "
    "xecr answers not-found without an AWS call"
)
DKR_ECR_DUALSTACK = (
    "the IPv4 label dkr.ecr on a dual-stack domain: AWS's dual-stack registry names are "
    "dkr-ecr.REGION.on.aws and dkr-ecr.REGION.on.amazonwebservices.com.cn"
)
NOT_ECR = (
    "registry.k8s.io is not an ECR registry: handing it an ECR token would send an AWS "
    "credential to a third party; xecr answers not-found"
)
IMAGE_SYNTAX = (
    "the peer validates a whole image reference; a credential helper is asked for a "
    "registry, and this one's host is a valid ECR host"
)


@dataclass(frozen=True)
class Want:
    """What xecr must make of an address: ``kind`` is "ecr", "public" or "none"."""

    kind: str
    registry_id: str = ""
    region: str = ""
    partition: str = ""
    fips: bool = False
    dualstack: bool = False


def ecr(
    registry_id: str,
    region: str,
    partition: str = "aws",
    fips: bool = False,
    dualstack: bool = False,
) -> Want:
    return Want("ecr", registry_id, region, partition, fips, dualstack)


PUBLIC = Want("public", "", "us-east-1", "aws")
NONE = Want("none")


@dataclass(frozen=True)
class Case:
    address: str
    want: Want
    peer: str
    source: str
    differs: str = ""

    @property
    def ours(self) -> bool:
        return self.want.kind != "none"


# awslabs/amazon-ecr-credential-helper, ecr-login/api/client_test.go, TestExtractRegistry,
# at commit 72dfb228f066002bcaba4badac55037ebc53009d.
GO = "amazon-ecr-credential-helper@72dfb228 ecr-login/api/client_test.go TestExtractRegistry"
# kubernetes/cloud-provider-aws, cmd/ecr-credential-provider/main_test.go,
# at commit 32e84a3c532299d7a8e2f6f0c48272403a899551.
K8S = "cloud-provider-aws@32e84a3c cmd/ecr-credential-provider/main_test.go"
# fluxcd/pkg, auth/aws/provider_test.go, TestProvider_ParseArtifactRepository,
# at commit 1923cf3bf285e4e75ee32da5048c6f3b38b871f6.
FLUX = "fluxcd/pkg@1923cf3b auth/aws/provider_test.go TestProvider_ParseArtifactRepository"
# awslabs/amazon-ecr-containerd-resolver, ecr/ref_test.go, TestParseImageURIValid and
# TestParseImageURIInvalid, at commit 9bba6fdc6f014226278483820e14df8985468f39.
RESOLVER = "amazon-ecr-containerd-resolver@9bba6fdc ecr/ref_test.go TestParseImageURI*"
# docker/login-action, __tests__/aws.test.ts (isECR, isPubECR, getRegion,
# getRegistriesData), at commit fdfb31da7cb99ae0a27218a6ebe11f815430b7dc.
LOGIN = "docker/login-action@fdfb31da __tests__/aws.test.ts"
# awslabs/amazon-eks-ami, nodeadm/internal/kubelet/image-credential-provider.go, the
# kubelet's matchImages (globs instantiated below), at commit
# 76ba007db6733e8d1c627b9110a823d6fb52fec3.
EKS = "amazon-eks-ami@76ba007d nodeadm/internal/kubelet/image-credential-provider.go"

ID = "123456789012"
CN = "210987654321"
K = "123456789123"
F = "012345678901"
D = "557238627320"
R = "777777777777"

CASES: tuple[Case, ...] = (
    # -- amazon-ecr-credential-helper TestExtractRegistry
    Case(f"https://{ID}.dkr.ecr.us-east-1.amazonaws.com/v2/blah/blah", ecr(ID, "us-east-1"), ACCEPTS, GO),
    Case(f"{ID}.dkr.ecr.us-west-2.amazonaws.com", ecr(ID, "us-west-2"), ACCEPTS, GO),
    Case(f"{ID}.dkr-ecr.us-west-2.on.aws", ecr(ID, "us-west-2", dualstack=True), ACCEPTS, GO),
    Case(f"{ID}.dkr-ecr-fips.us-west-2.on.aws", ecr(ID, "us-west-2", fips=True, dualstack=True), ACCEPTS, GO),
    Case(f"{CN}.dkr.ecr.cn-north-1.amazonaws.com.cn/foo", ecr(CN, "cn-north-1", "aws-cn"), ACCEPTS, GO),
    Case(f"{CN}.dkr.ecr.cn-north-1.on.amazonwebservices.com.cn", NONE, ACCEPTS, GO, DKR_ECR_DUALSTACK),
    Case(f"{CN}.dkr.ecr.us-iso-east-1.c2s.ic.gov", ecr(CN, "us-iso-east-1", "aws-iso"), ACCEPTS, GO),
    Case(f"{ID}.dkr.ecr.us-isob-east-1.sc2s.sgov.gov", ecr(ID, "us-isob-east-1", "aws-iso-b"), ACCEPTS, GO),
    Case(f"{ID}.dkr.ecr.eu-isoe-west-1.cloud.adc-e.uk", ecr(ID, "eu-isoe-west-1", "aws-iso-e"), ACCEPTS, GO),
    Case(f"{ID}.dkr.ecr.us-isof-east-1.csp.hci.ic.gov", ecr(ID, "us-isof-east-1", "aws-iso-f"), ACCEPTS, GO),
    Case(f"{ID}.dkr-ecr.us-gov-east-1.on.aws", ecr(ID, "us-gov-east-1", "aws-us-gov", dualstack=True), ACCEPTS, GO),
    Case(f"{ID}.dkr.ecr-fips.us-gov-west-1.amazonaws.com", ecr(ID, "us-gov-west-1", "aws-us-gov", fips=True), ACCEPTS, GO),
    Case(f"{ID}.dkr-ecr-fips.us-gov-east-1.on.aws", ecr(ID, "us-gov-east-1", "aws-us-gov", True, True), ACCEPTS, GO),
    Case(f"{ID}.dkr.ecr.eusc-de-east-1.amazonaws.eu", ecr(ID, "eusc-de-east-1", "aws-eusc"), ACCEPTS, GO),
    Case("https://public.ecr.aws", PUBLIC, ACCEPTS, GO),
    Case("https://ecr-public.aws.com", PUBLIC, ACCEPTS, GO),
    Case("public.ecr.aws", PUBLIC, ACCEPTS, GO),
    Case("ecr-public.aws.com", PUBLIC, ACCEPTS, GO),
    Case("https://public.ecr.aws/amazonlinux", PUBLIC, ACCEPTS, GO),
    Case("https://ecr-public.aws.com/amazonlinux", PUBLIC, ACCEPTS, GO),
    Case(".dkr.ecr.not-real.amazonaws.com", NONE, REJECTS, GO),
    Case("not.ecr.io", NONE, REJECTS, GO),
    Case(f"https://{ID}.dkr.ecr.us-west-2.amazonaws.com.fake.example.com/image:latest", NONE, REJECTS, GO),
    Case(f"{ID}.dkr.ecr.us-west-2.amazonaws.com.fake.example.com", NONE, REJECTS, GO),
    Case(f"{ID}.dkr.ecr-fips.us-gov-west-1.amazonaws.com.fake.example.com", NONE, REJECTS, GO),
    Case(f"{CN}.dkr.ecr.cn-north-1.amazonaws.com.cn.fake.example.com.cn", NONE, REJECTS, GO),
    Case(f"{CN}.dkr.ecr.cn-north-1.on.aws.com.cn", NONE, REJECTS, GO),
    Case("https://public.ecr.aws.fake.example.com", NONE, REJECTS, GO),
    Case("public.ecr.aws.fake.example.com", NONE, REJECTS, GO),
    # -- cloud-provider-aws Test_GetCredentials_Private, Test_GetCredentials_Public
    Case(f"{K}.dkr.ecr.us-west-2.amazonaws.com", ecr(K, "us-west-2"), ACCEPTS, K8S),
    Case(f"{K}.dkr.ecr.us-west-2.amazonaws.com/public.ecr.aws/foo:latest", ecr(K, "us-west-2"), ACCEPTS, K8S),
    Case("registry.k8s.io/foo:latest", NONE, ACCEPTS, K8S, NOT_ECR),
    Case("ecr-public.aws.com", PUBLIC, ACCEPTS, K8S),
    # -- cloud-provider-aws Test_parseHostFromImageReference, Test_parseRegionFromECRPrivateHost
    Case(f"{K}.dkr.ecr.us-west-2.amazonaws.com/foo/bar:1.0", ecr(K, "us-west-2"), ACCEPTS, K8S),
    Case("http://foobar", NONE, REJECTS, K8S),
    Case(f"{K}.dkr.ecr.cn-north-1.amazonaws.com.cn", ecr(K, "cn-north-1", "aws-cn"), ACCEPTS, K8S),
    Case(f"{K}.dkr.ecr.us-gov-east-1.amazonaws.com", ecr(K, "us-gov-east-1", "aws-us-gov"), ACCEPTS, K8S),
    Case(f"{K}.dkr.ecr.us-iso-east-1.c2s.ic.gov", ecr(K, "us-iso-east-1", "aws-iso"), ACCEPTS, K8S),
    Case(f"{K}.dkr.ecr.eusc-de-east-1.amazonaws.eu", ecr(K, "eusc-de-east-1", "aws-eusc"), ACCEPTS, K8S),
    Case(f"{K}.dkr-ecr.us-west-2.on.aws", ecr(K, "us-west-2", dualstack=True), ACCEPTS, K8S),
    Case(f"{K}.dkr-ecr-fips.us-west-2.on.aws", ecr(K, "us-west-2", fips=True, dualstack=True), ACCEPTS, K8S),
    Case(f"{K}.dkr-ecr.cn-north-1.on.amazonwebservices.com.cn", ecr(K, "cn-north-1", "aws-cn", dualstack=True), ACCEPTS, K8S),
    Case(f"{K}.dkr-ecr.us-gov-east-1.on.aws", ecr(K, "us-gov-east-1", "aws-us-gov", dualstack=True), ACCEPTS, K8S),
    Case(f"{K}.dkr-ecr-fips.us-gov-east-1.on.aws", ecr(K, "us-gov-east-1", "aws-us-gov", True, True), ACCEPTS, K8S),
    Case("foobar", NONE, REJECTS, K8S),
    # -- cloud-provider-aws TestRegistryPatternMatch
    Case(f"{ID}.dkr.ecr.lala-land-1.amazonaws.com", NONE, ACCEPTS, K8S, PLACEHOLDER),
    Case(f"{ID}.dkr.ecr-fips.lala-land-1.amazonaws.com", NONE, ACCEPTS, K8S, PLACEHOLDER),
    Case(f"{ID}.dkr.ecr.lala-land-1.amazonaws.com.cn", NONE, ACCEPTS, K8S, PLACEHOLDER),
    Case(f"{ID}.dkr.ecr.eusc-de-east-1.amazonaws.eu", ecr(ID, "eusc-de-east-1", "aws-eusc"), ACCEPTS, K8S),
    Case(f"{ID}.dkr.ecr-fips.eusc-de-east-1.amazonaws.eu", ecr(ID, "eusc-de-east-1", "aws-eusc", fips=True), ACCEPTS, K8S),
    Case("1234567890123.dkr.ecr.lala-land-1.amazonaws.com", NONE, REJECTS, K8S),
    Case("12345678901.dkr.ecr.lala-land-1.amazonaws.com", NONE, REJECTS, K8S),
    Case("12345678901A.dkr.ecr.lala-land-1.amazonaws.com", NONE, REJECTS, K8S),
    Case(f"{ID}.dkr.ecr.lala-land-1!.amazonaws.com", NONE, REJECTS, K8S),
    Case(f"{ID}.dkr.ecr.#lala-land-1.amazonaws.com", NONE, REJECTS, K8S),
    Case(f"{ID}.dkr.ecr.lala-land-1.amazonaws.hacker.com", NONE, REJECTS, K8S),
    Case(f"{ID}.dkr.ecr.lala-land-1.hacker.com", NONE, REJECTS, K8S),
    Case(f"{ID}.dkr.ecr.lala-land-1.amazonaws.lol", NONE, REJECTS, K8S),
    Case(f"{ID}.dog.ecr.lala-land-1.amazonaws.com", NONE, REJECTS, K8S),
    Case(f"{ID}.dkr.cat.lala-land-1.amazonaws.com", NONE, REJECTS, K8S),
    Case(f"{ID}.dkr.cat.lala-land-1.awsamazon.com", NONE, REJECTS, K8S),
    Case(f"{ID}.lala-land-1.amazonaws.com", NONE, REJECTS, K8S),
    Case(f"{ID}.dkr.ecr.us-iso-east-1.c2s.ic.gov", ecr(ID, "us-iso-east-1", "aws-iso"), ACCEPTS, K8S),
    Case(f"{ID}.dkr.ecr.us-isob-east-1.sc2s.sgov.gov", ecr(ID, "us-isob-east-1", "aws-iso-b"), ACCEPTS, K8S),
    Case(f"{ID}.dkr.ecr.eu-isoe-west-1.cloud.adc-e.uk", ecr(ID, "eu-isoe-west-1", "aws-iso-e"), ACCEPTS, K8S),
    Case(f"{ID}.dkr.ecr.us-isof-east-1.csp.hci.ic.gov", ecr(ID, "us-isof-east-1", "aws-iso-f"), ACCEPTS, K8S),
    Case(f"{ID}.dkr.ecr.us-iso-east-1.amazonaws.gov", NONE, REJECTS, K8S),
    Case(f"{ID}.dkr-ecr.lala-land-1.on.aws", NONE, ACCEPTS, K8S, PLACEHOLDER),
    Case(f"{ID}.dkr-ecr-fips.lala-land-1.on.aws", NONE, ACCEPTS, K8S, PLACEHOLDER),
    Case(f"{ID}.dkr-ecr.lala-land-1.on.amazonwebservices.com.cn", NONE, ACCEPTS, K8S, PLACEHOLDER),
    # -- fluxcd/pkg TestProvider_ParseArtifactRepository
    Case(f"{F}.dkr.ecr.eusc-de-east-1.amazonaws.eu/foo:v1", ecr(F, "eusc-de-east-1", "aws-eusc"), ACCEPTS, FLUX),
    Case(f"{F}.dkr.ecr.eusc-de-east-1.amazonaws.eu/foo", ecr(F, "eusc-de-east-1", "aws-eusc"), ACCEPTS, FLUX),
    Case(f"{F}.dkr.ecr.eusc-de-east-1.amazonaws.eu", ecr(F, "eusc-de-east-1", "aws-eusc"), ACCEPTS, FLUX),
    Case(f"{F}.dkr.ecr.eusc-de-east-1.amazonaws.eu/v2/part/part", ecr(F, "eusc-de-east-1", "aws-eusc"), ACCEPTS, FLUX),
    Case(f"{F}.dkr.ecr.us-east-1.amazonaws.com/foo:v1", ecr(F, "us-east-1"), ACCEPTS, FLUX),
    Case(f"{F}.dkr.ecr.us-east-1.amazonaws.com/foo", ecr(F, "us-east-1"), ACCEPTS, FLUX),
    Case(f"{F}.dkr.ecr.us-east-1.amazonaws.com", ecr(F, "us-east-1"), ACCEPTS, FLUX),
    Case(f"{F}.dkr.ecr.us-east-1.amazonaws.com/v2/part/part", ecr(F, "us-east-1"), ACCEPTS, FLUX),
    Case(f"{F}.dkr.ecr.cn-north-1.amazonaws.com.cn/foo", ecr(F, "cn-north-1", "aws-cn"), ACCEPTS, FLUX),
    Case(f"{F}.dkr.ecr-fips.us-gov-west-1.amazonaws.com", ecr(F, "us-gov-west-1", "aws-us-gov", fips=True), ACCEPTS, FLUX),
    Case(f"{F}.dkr.ecr.us-secret-region.sc2s.sgov.gov", NONE, ACCEPTS, FLUX, PLACEHOLDER),
    Case(f"{F}.dkr.ecr-fips.us-ts-region.c2s.ic.gov", NONE, ACCEPTS, FLUX, PLACEHOLDER),
    Case(f"{F}.dkr.ecr.uk-region.cloud.adc-e.uk", NONE, ACCEPTS, FLUX, PLACEHOLDER),
    Case(f"{F}.dkr.ecr.us-ts-region.csp.hci.ic.gov", NONE, ACCEPTS, FLUX, PLACEHOLDER),
    Case(f"{D}.dkr-ecr.us-west-2.on.aws/foo:v1", ecr(D, "us-west-2", dualstack=True), ACCEPTS, FLUX),
    Case(f"{D}.dkr-ecr.us-west-2.on.aws/foo", ecr(D, "us-west-2", dualstack=True), ACCEPTS, FLUX),
    Case(f"{D}.dkr-ecr.us-west-2.on.aws", ecr(D, "us-west-2", dualstack=True), ACCEPTS, FLUX),
    Case(f"{D}.dkr-ecr.eu-central-1.on.aws/v2/part/part", ecr(D, "eu-central-1", dualstack=True), ACCEPTS, FLUX),
    Case("gcr.io/foo/bar:baz", NONE, REJECTS, FLUX),
    Case("public.ecr.aws/foo/bar", PUBLIC, ACCEPTS, FLUX),
    # -- amazon-ecr-containerd-resolver TestParseImageURIValid
    Case(f"{R}.dkr.ecr.us-west-2.amazonaws.com/my_image:latest", ecr(R, "us-west-2"), ACCEPTS, RESOLVER),
    Case(f"{R}.dkr.ecr.us-west-2.amazonaws.com/foo/bar/my_image:latest", ecr(R, "us-west-2"), ACCEPTS, RESOLVER),
    Case(
        f"{R}.dkr.ecr.us-west-2.amazonaws.com/my_image@sha256:"
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ecr(R, "us-west-2"),
        ACCEPTS,
        RESOLVER,
    ),
    Case(f"{R}.dkr.ecr.cn-north-1.amazonaws.com.cn/my_image:latest", ecr(R, "cn-north-1", "aws-cn"), ACCEPTS, RESOLVER),
    Case(f"{R}.dkr.ecr.us-gov-west-1.amazonaws.com/my_image:latest", ecr(R, "us-gov-west-1", "aws-us-gov"), ACCEPTS, RESOLVER),
    Case(f"{R}.dkr.ecr.us-gov-east-1.amazonaws.com/my_image:latest", ecr(R, "us-gov-east-1", "aws-us-gov"), ACCEPTS, RESOLVER),
    # -- amazon-ecr-containerd-resolver TestParseImageURIInvalid
    Case("dkr.ecr.us-west-2.amazonaws.com", NONE, REJECTS, RESOLVER),
    Case(f"{R}.dkr.ecr.amazonaws.com/", NONE, REJECTS, RESOLVER),
    Case("docker.io/library/hello-world", NONE, REJECTS, RESOLVER),
    Case(f"{R}.dkr.ecr.us-west-2.amazonaws.com/", ecr(R, "us-west-2"), REJECTS, RESOLVER, IMAGE_SYNTAX),
    Case(f"{R}.dkr.ecr.us-west-2.amazonaws.com/repo-name@", ecr(R, "us-west-2"), REJECTS, RESOLVER, IMAGE_SYNTAX),
    Case(f"{R}.dkr.ecr.us-west-2.amazonaws.com/repo-name:", ecr(R, "us-west-2"), REJECTS, RESOLVER, IMAGE_SYNTAX),
    Case(f"{R}.dkr.ecr.us-west-2.amazonaws.com/:", ecr(R, "us-west-2"), REJECTS, RESOLVER, IMAGE_SYNTAX),
    Case(f"{R}.dkr.ecr.us-west-2.amazonaws.com/repo-name@sha256:", ecr(R, "us-west-2"), REJECTS, RESOLVER, IMAGE_SYNTAX),
    # -- docker/login-action isECR, isPubECR, getRegion, getRegistriesData
    Case("registry.gitlab.com", NONE, REJECTS, LOGIN),
    Case("gcr.io", NONE, REJECTS, LOGIN),
    Case(f"{F}.dkr.ecr.eu-west-3.amazonaws.com", ecr(F, "eu-west-3"), ACCEPTS, LOGIN),
    Case("876820548815.dkr.ecr.cn-north-1.amazonaws.com.cn", ecr("876820548815", "cn-north-1", "aws-cn"), ACCEPTS, LOGIN),
    Case("390948362332.dkr.ecr.cn-northwest-1.amazonaws.com.cn", ecr("390948362332", "cn-northwest-1", "aws-cn"), ACCEPTS, LOGIN),
    Case(f"{F}.dkr-ecr.eu-north-1.on.aws", ecr(F, "eu-north-1", dualstack=True), ACCEPTS, LOGIN),
    Case(f"{F}.dkr.ecr.eusc-de-east-1.amazonaws.eu", ecr(F, "eusc-de-east-1", "aws-eusc"), ACCEPTS, LOGIN),
    Case("public.ecr.aws", PUBLIC, ACCEPTS, LOGIN),
    Case("ecr-public.aws.com", PUBLIC, ACCEPTS, LOGIN),
    Case(f"{F}.dkr.ecr.aws-region-1.amazonaws.com", NONE, ACCEPTS, LOGIN, PLACEHOLDER),
    # -- amazon-eks-ami matchImages, each glob given an account and a region of its partition
    Case(f"{ID}.dkr.ecr.eu-west-1.amazonaws.com", ecr(ID, "eu-west-1"), ACCEPTS, EKS),
    Case(f"{ID}.dkr-ecr.eu-west-1.on.aws", ecr(ID, "eu-west-1", dualstack=True), ACCEPTS, EKS),
    Case(f"{ID}.dkr.ecr.cn-northwest-1.amazonaws.com.cn", ecr(ID, "cn-northwest-1", "aws-cn"), ACCEPTS, EKS),
    Case(f"{ID}.dkr-ecr.cn-northwest-1.on.amazonwebservices.com.cn", ecr(ID, "cn-northwest-1", "aws-cn", dualstack=True), ACCEPTS, EKS),
    Case(f"{ID}.dkr.ecr-fips.us-east-2.amazonaws.com", ecr(ID, "us-east-2", fips=True), ACCEPTS, EKS),
    Case(f"{ID}.dkr-ecr-fips.us-east-2.on.aws", ecr(ID, "us-east-2", fips=True, dualstack=True), ACCEPTS, EKS),
    Case(f"{ID}.dkr.ecr.us-iso-west-1.c2s.ic.gov", ecr(ID, "us-iso-west-1", "aws-iso"), ACCEPTS, EKS),
    Case(f"{ID}.dkr.ecr.us-isob-west-1.sc2s.sgov.gov", ecr(ID, "us-isob-west-1", "aws-iso-b"), ACCEPTS, EKS),
    Case(f"{ID}.dkr.ecr.eu-isoe-west-1.cloud.adc-e.uk/app:1", ecr(ID, "eu-isoe-west-1", "aws-iso-e"), ACCEPTS, EKS),
    Case(f"{ID}.dkr.ecr.us-isof-south-1.csp.hci.ic.gov", ecr(ID, "us-isof-south-1", "aws-iso-f"), ACCEPTS, EKS),
    Case(f"{ID}.dkr.ecr.eusc-de-east-1.amazonaws.eu/app:1", ecr(ID, "eusc-de-east-1", "aws-eusc"), ACCEPTS, EKS),
    Case("public.ecr.aws/eks-distro/kubernetes/pause:3.9", PUBLIC, ACCEPTS, EKS),
    Case("ecr-public.aws.com/eks-distro/kubernetes/pause:3.9", PUBLIC, ACCEPTS, EKS),
)  # fmt: skip


def _id(case: Case) -> str:
    return f"{case.source.split('@')[0]}:{case.address}"


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_the_verdict_agrees_with_the_peer_unless_a_reason_is_given(case: Case) -> None:
    peer_says_ours = case.peer == ACCEPTS
    if case.differs:
        assert case.ours != peer_says_ours, f"xecr no longer differs: drop the note ({case})"
    else:
        assert case.ours == peer_says_ours, f"xecr differs from {case.source} with no reason"


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_through_the_parser(case: Case) -> None:
    host = normalize(case.address)
    parsed = parse_ecr_host(host)
    want = case.want
    if want.kind == "public":
        assert is_public_host(host) and parsed is None
    elif want.kind == "none":
        assert parsed is None and not is_public_host(host)
    else:
        assert parsed is not None, host
        assert (
            parsed.registry_id,
            parsed.region,
            parsed.partition,
            parsed.fips,
            parsed.dualstack,
        ) == (want.registry_id, want.region, want.partition, want.fips, want.dualstack)
    if "://" not in case.address and "/" in case.address:
        # An image reference: the kubelet plugin keys its answer by the host written.
        assert kubelet.image_host(case.address) == case.address.split("/", 1)[0]


def _unique_addresses() -> list[Case]:
    seen: dict[str, Case] = {}
    for case in CASES:
        seen.setdefault(case.address, case)
    return list(seen.values())


@pytest.mark.slow
@pytest.mark.parametrize("case", _unique_addresses(), ids=_id)
def test_through_the_installed_get(case: Case, fake_aws: FakeAws) -> None:
    done = get(case.address, timeout=60)
    want = case.want
    if want.kind == "none":
        assert (done.returncode, done.out, done.err) == (1, NOT_FOUND + "\n", "")
        assert fake_aws.counts() == {}, "no AWS call for a registry that is not ours"
        return
    assert done.returncode == 0, (done.out, done.err)
    answer = json.loads(done.out)
    assert answer["ServerURL"] == case.address.strip()
    assert answer["Username"] == "AWS"
    [request] = fake_aws.requests("GetAuthorizationToken")
    assert request.region == want.region  # the token is asked for in the host's region
    if want.kind == "public":
        assert request.service == "ecr-public"
        assert answer["Secret"] == "ecr-public-123456789012-auth-token"
    else:
        assert request.service == "ecr"
        # The caller's token, whichever registry: the fake's base keys are 123456789012's.
        assert "registryIds" not in request.params
        assert answer["Secret"] == "123456789012-auth-token"
