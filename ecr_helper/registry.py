"""Registry addresses: what clients pass, and which hosts are Amazon ECR.

Docker, skopeo and podman pass ``host``, ``host:443``, ``host/v2/`` or
``https://host/...``, in any letter case, and the keys of ``list`` come back
to ``get``. :func:`normalize` reduces all of them to one host key.
:func:`parse_ecr_host` recognises ECR's own host names in every partition and
takes the registry id and region from them; look-alikes never match because
the whole host is matched, anchored, against an explicit list of domains.
:func:`is_public_host` recognises ECR Public's two host names, and
:func:`is_region` every region name AWS has published, partition by partition.
"""

from __future__ import annotations

from ecr_helper._frozen import Frozen
from ecr_helper.errors import InputError

# Domain suffix -> partition. The standard partition also holds GovCloud.
_DOMAINS = {
    "amazonaws.com": "aws",
    "amazonaws.com.cn": "aws-cn",
    "on.aws": "aws",
    "on.amazonwebservices.com.cn": "aws-cn",
    "c2s.ic.gov": "aws-iso",
    "sc2s.sgov.gov": "aws-iso-b",
    "cloud.adc-e.uk": "aws-iso-e",
    "csp.hci.ic.gov": "aws-iso-f",
    # The European Sovereign Cloud. AWS documents no dual-stack registry
    # domain for it, so none is accepted.
    "amazonaws.eu": "aws-eusc",
}
_DUALSTACK_DOMAINS = frozenset({"on.aws", "on.amazonwebservices.com.cn"})

# Hosts and regions are checked by hand, not with regular expressions:
# compiling patterns costs the cached `get` more than the check itself.
_KINDS = (
    ("dkr.ecr.", False, False),
    ("dkr.ecr-fips.", False, True),
    ("dkr-ecr.", True, False),
    ("dkr-ecr-fips.", True, True),
)
_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.-")

# Each partition's region names, as botocore's partitions.json states them
# (``regionRegex``): the leading labels, then exactly one word and a number.
# ``^(us|eu|ap|sa|ca|me|af|il|mx)\-\w+\-\d+$`` is the "aws" row, and so on;
# tests/test_regions.py holds this table against botocore's data.
PARTITION_REGIONS: dict[str, tuple[str, ...]] = {
    "aws": ("us-", "eu-", "ap-", "sa-", "ca-", "me-", "af-", "il-", "mx-"),
    "aws-cn": ("cn-",),
    "aws-us-gov": ("us-gov-",),
    "aws-iso": ("us-iso-",),
    "aws-iso-b": ("us-isob-",),
    "aws-iso-e": ("eu-isoe-",),
    "aws-iso-f": ("us-isof-",),
    "aws-eusc": ("eusc-de-",),
}
_REGION_PREFIXES = tuple(
    (prefix, partition) for partition, rows in PARTITION_REGIONS.items() for prefix in rows
)

# ECR Public: one registry for the world, its token always from us-east-1.
PUBLIC_HOST = "public.ecr.aws"
PUBLIC_HOSTS = frozenset({PUBLIC_HOST, "ecr-public.aws.com"})  # the second is dual-stack
PUBLIC_REGION = "us-east-1"

MAX_ADDRESS = 4096


class EcrHost(Frozen):
    """An ECR registry host name, taken apart."""

    __slots__ = ("host", "registry_id", "region", "partition", "fips", "dualstack")
    host: str
    registry_id: str
    region: str
    partition: str
    fips: bool
    dualstack: bool

    def __init__(
        self,
        host: str,
        registry_id: str,
        region: str,
        partition: str,
        fips: bool = False,
        dualstack: bool = False,
    ) -> None:
        self._set(
            host=host,
            registry_id=registry_id,
            region=region,
            partition=partition,
            fips=fips,
            dualstack=dualstack,
        )


def normalize(address: str) -> str:
    """Reduce a client's registry address to a lower-case ``host`` or ``host:port``.

    ``:443`` is dropped (it is what ``https://`` means). Raises
    :class:`InputError` for an empty, oversized or non-ASCII address.
    """
    text = address.strip()
    if not text:
        raise InputError(
            "no registry address given (expected a host such as "
            "111111111111.dkr.ecr.us-east-1.amazonaws.com)"
        )
    if len(text) > MAX_ADDRESS:
        raise InputError(f"registry address longer than {MAX_ADDRESS} characters")
    if not text.isascii():
        # Checked before folding case: "\u212a" (KELVIN SIGN) lowers to "k".
        raise InputError("registry address is not ASCII (write an IDN host as punycode)")
    text = text.lower()
    _, sep, rest = text.partition("://")
    if sep:
        text = rest
    host = text.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    if host.endswith(":443") and host.count(":") == 1:
        host = host[:-4]
    return host


def is_host(host: str) -> bool:
    """True when ``host`` is syntactically a host name with an optional port."""
    name, sep, port = host.partition(":")
    if sep and not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
        return False
    return (
        bool(name)
        and set(name) <= _HOST_CHARS
        and name[0] not in ".-"
        and name[-1] not in ".-"
        and ".." not in name
    )


def parse_ecr_host(host: str) -> EcrHost | None:
    """Take an ECR host apart, or return None when ``host`` is not one.

    ``host`` must already be normalized; any port left on it means "not ECR".
    The whole host must be ``<12 digits>.<dkr.ecr|dkr-ecr>[-fips].<region>.<domain>``
    with a domain from the known list, so look-alikes never match.
    """
    registry_id, _, rest = host.partition(".")
    if not is_registry_id(registry_id):
        return None
    domain = next((d for d in _DOMAINS if rest.endswith("." + d)), None)
    if domain is None:
        return None
    middle = rest[: -len(domain) - 1]
    kind = next((k for k in _KINDS if middle.startswith(k[0])), None)
    if kind is None:
        return None
    prefix, dualstack, fips = kind
    region = middle[len(prefix) :]
    expected = _DOMAINS[domain]
    if not is_region(region) or dualstack != (domain in _DUALSTACK_DOMAINS):
        return None
    partition = region_partition(region)
    # The domain fixes the partition; the region must belong to it (GovCloud
    # regions live under the standard amazonaws.com domain).
    if partition != expected and not (expected == "aws" and partition == "aws-us-gov"):
        return None
    return EcrHost(
        host=host,
        registry_id=registry_id,
        region=region,
        partition=partition,
        fips=fips,
        dualstack=dualstack,
    )


def misnumbered_id(host: str) -> str | None:
    """Why ``host`` (normalized) is not the ECR host it looks like: its first label,
    the account id, has a number of digits other than 12. None for any other host."""
    label, dot, rest = host.partition(".")
    if not dot or len(label) == 12 or not (label.isascii() and label.isdigit()):
        return None
    if parse_ecr_host(f"{'0' * 12}.{rest}") is None:
        return None
    return f"{label} has {len(label)} digits, but an ECR host starts with a 12-digit account id"


def _region_of(text: str) -> str | None:
    """The partition whose region pattern ``text`` matches, if any.

    The patterns never overlap: each fixes how many labels a name has.
    """
    for prefix, partition in _REGION_PREFIXES:
        if not text.startswith(prefix):
            continue
        word, dash, number = text[len(prefix) :].partition("-")
        if (
            dash
            and word.isascii()
            and word.isalpha()
            and word.islower()
            and number.isascii()
            and number.isdigit()
            and len(number) <= 2
        ):
            return partition
    return None


def region_partition(region: str) -> str:
    """The AWS partition a region belongs to ("aws" for a name no partition claims)."""
    return _region_of(region) or "aws"


def is_region(text: str) -> bool:
    """True for a region name of a known partition: ``us-east-1``, ``eusc-de-east-1``.

    Placeholders that merely look like one (``lala-land-1``, ``aws-region-1``)
    are refused, as botocore's own region patterns refuse them.
    """
    return _region_of(text) is not None


def is_public_host(host: str) -> bool:
    """True for ECR Public's host names (``host`` already normalized)."""
    return host in PUBLIC_HOSTS


def canonical_host(host: str) -> str:
    """The config section and cache key a normalized host shares with its other names:
    both of ECR Public's names are ``public.ecr.aws``; every other host is itself."""
    return PUBLIC_HOST if host in PUBLIC_HOSTS else host


def is_registry_id(text: str) -> bool:
    return len(text) == 12 and text.isascii() and text.isdigit()


def ecr_host_for(registry_id: str, region: str) -> str:
    """The canonical ECR host of a registry id in a region."""
    partition = region_partition(region)
    domain = {
        "aws-cn": "amazonaws.com.cn",
        "aws-iso": "c2s.ic.gov",
        "aws-iso-b": "sc2s.sgov.gov",
        "aws-iso-e": "cloud.adc-e.uk",
        "aws-iso-f": "csp.hci.ic.gov",
        "aws-eusc": "amazonaws.eu",
    }.get(partition, "amazonaws.com")
    return f"{registry_id}.dkr.ecr.{region}.{domain}"
