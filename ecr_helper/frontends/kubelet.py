"""The kubelet's image credential provider protocol (``docker-credential-xecr kubelet``).

The kubelet writes a ``CredentialProviderRequest`` (``credentialprovider.kubelet.k8s.io``,
v1, v1beta1 or v1alpha1: every version the kubelet still accepts for providers)
naming one image on stdin and reads a ``CredentialProviderResponse`` in the same
version from stdout (it rejects any other): ``auth`` maps the image's registry
host to a username and password, ``cacheKeyType`` ``Registry`` lets one answer
serve every image of that host, and ``cacheDuration`` (a Go duration) ends at the
token's refresh point, so the kubelet asks again while the token it holds is
still valid. Tokens come from the same cache and refresh rules as ``get``.

An image whose host xecr does not serve (a broad ``matchImages`` sends Docker Hub
images here too) gets a valid response without ``auth``, exit 0, as the API asks
("set this field to null if no valid credentials can be returned"): the kubelet
then pulls without credentials and, for :data:`NOT_OURS_CACHE`, does not run the
plugin again for that host.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any, BinaryIO

from ecr_helper import refresh
from ecr_helper.config import RegistrySettings
from ecr_helper.errors import InputError, NotOurRegistry
from ecr_helper.service import Service
from ecr_helper.token import Token

GROUP = "credentialprovider.kubelet.k8s.io"
API_VERSIONS = (f"{GROUP}/v1", f"{GROUP}/v1beta1", f"{GROUP}/v1alpha1")
# Long enough to spare the kubelet a run per pull, short enough that a
# registry configured later is served soon.
NOT_OURS_CACHE = "10m0s"
REQUEST_KIND = "CredentialProviderRequest"
RESPONSE_KIND = "CredentialProviderResponse"
MAX_INPUT = 64 * 1024

GetToken = Callable[[str, Mapping[str, str]], tuple[RegistrySettings, Token]]


def service_token(host: str, env: Mapping[str, str]) -> tuple[RegistrySettings, Token]:
    """The token ``get`` would serve for ``host``: same config, cache and refresh rules."""
    return Service.open(env).token_for(host)


def go_duration(seconds: float) -> str:
    """Whole seconds as Go's ``time.Duration.String`` writes them: ``5h59m30s``, ``0s``."""
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def image_host(image: str) -> str | None:
    """The registry host of an image reference as written, or None for Docker Hub.

    Docker's rule: the first path component is a host only when it has a dot,
    a colon or is ``localhost``; ``nginx`` and ``library/nginx`` are Docker Hub.
    """
    first, slash, _ = image.strip().partition("/")
    if not slash or not first:
        return None
    if "." not in first and ":" not in first and first != "localhost":
        return None
    return first


def read_request(stdin: BinaryIO) -> tuple[str, str]:
    """(apiVersion, image) from a CredentialProviderRequest of at most 64 KiB."""
    data = stdin.read(MAX_INPUT + 1)
    if len(data) > MAX_INPUT:
        raise InputError(f"CredentialProviderRequest longer than {MAX_INPUT} bytes")
    try:
        request = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise InputError("stdin is not a JSON CredentialProviderRequest") from None
    if not isinstance(request, dict):
        raise InputError("stdin is not a JSON CredentialProviderRequest object")
    version = request.get("apiVersion")
    if version not in API_VERSIONS:
        raise InputError(
            f"unsupported apiVersion {version!r} (expected {API_VERSIONS[0]}): "
            "set apiVersion in the kubelet's CredentialProviderConfig"
        )
    kind = request.get("kind", REQUEST_KIND)
    if kind != REQUEST_KIND:
        raise InputError(f"unexpected kind {kind!r} (expected {REQUEST_KIND})")
    image = request.get("image")
    if not isinstance(image, str) or not image.strip():
        raise InputError("the CredentialProviderRequest names no image")
    return str(version), image.strip()


def respond(
    version: str,
    image: str,
    env: Mapping[str, str],
    get_token: GetToken = service_token,
    clock: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """The CredentialProviderResponse for one image.

    An image whose host is neither ECR nor configured gets a response without
    ``auth`` and no AWS call is made for it.
    """
    host = image_host(image)
    if host is None:
        return _no_credentials(version)
    try:
        _, token = get_token(host, env)
    except NotOurRegistry:
        return _no_credentials(version)
    return {
        "apiVersion": version,
        "kind": RESPONSE_KIND,
        "cacheKeyType": "Registry",
        "cacheDuration": go_duration(refresh.refresh_at(token) - clock()),
        "auth": {host: {"username": token.username, "password": token.secret}},
    }


def _no_credentials(version: str) -> dict[str, Any]:
    return {
        "apiVersion": version,
        "kind": RESPONSE_KIND,
        "cacheKeyType": "Registry",
        "cacheDuration": NOT_OURS_CACHE,
    }


def run(
    stdin: BinaryIO,
    env: Mapping[str, str],
    get_token: GetToken = service_token,
    clock: Callable[[], float] = time.time,
) -> str:
    """Read the request, answer with the response as one line of JSON."""
    version, image = read_request(stdin)
    return json.dumps(respond(version, image, env, get_token, clock)) + "\n"
