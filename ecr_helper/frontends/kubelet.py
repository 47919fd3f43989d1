"""The kubelet's image credential provider protocol (``docker-credential-xecr kubelet``).

The kubelet writes a ``CredentialProviderRequest`` (``credentialprovider.kubelet.k8s.io``,
v1, v1beta1 or v1alpha1: every version the kubelet still accepts for providers)
naming one image on stdin and reads a ``CredentialProviderResponse`` in the same
version from stdout (it rejects any other): ``auth`` maps the image's registry
host to a username and password, ``cacheKeyType`` ``Registry`` lets one answer
serve every image of that host, and ``cacheDuration`` (a Go duration) ends at the
token's refresh point, so the kubelet asks again while the token it holds is
still valid. Tokens come from the same cache and refresh rules as ``get``, so
the registries of one region behind one identity share one token: the
kubelet's requests for two of them make one AWS call, the second request being
served from the cache. One *answer* cannot cover them safely: the kubelet
looks a cached answer up by the image's key (``Image``, ``Registry`` or
``Global``), so extra ``auth`` entries under ``Registry`` are never consulted
for another host, and a ``Global`` answer would be served for every image
``matchImages`` sends here, whatever its registry's role, region or account
(which the config lets differ), with no second run to fetch the right token.
An error line names the image's registry host.

An image whose host xecr does not serve (a broad ``matchImages`` sends Docker Hub
images here too) gets a valid response without ``auth``, exit 0, as the API asks
("set this field to null if no valid credentials can be returned"): the kubelet
then pulls without credentials and, for :data:`NOT_OURS_CACHE`, does not run the
plugin again for that host.

A request that carries the pod's ``serviceAccountToken`` (KEP-4412) is served as
the role its service account's annotation names (:mod:`ecr_helper.service_account`,
:mod:`ecr_helper.pod_role`), cached per service account; without the annotation,
as the node, or refused when ``XECR_KUBELET_UNANNOTATED=refuse``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any, BinaryIO

from ecr_helper import refresh, service_account
from ecr_helper import stdin as bounded
from ecr_helper._frozen import Frozen
from ecr_helper.cache import pod_prefix
from ecr_helper.config import RegistrySettings
from ecr_helper.errors import InputError, NotOurRegistry, XecrError
from ecr_helper.human import go_duration
from ecr_helper.service import Service
from ecr_helper.service_account import KubeletOptions, PodRole
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
GetPodToken = Callable[[str, Mapping[str, str], PodRole, Callable[[], float]], Token]


class Request(Frozen):
    """One CredentialProviderRequest. ``repr`` never shows the pod's token."""

    __slots__ = ("version", "image", "token", "annotations")
    _hidden = ("token",)
    version: str
    image: str
    token: str
    annotations: dict[str, Any]

    def __init__(
        self,
        version: str,
        image: str,
        token: str = "",
        annotations: dict[str, Any] | None = None,
    ) -> None:
        self._set(version=version, image=image, token=token, annotations=annotations or {})


def service_token(host: str, env: Mapping[str, str]) -> tuple[RegistrySettings, Token]:
    """The token ``get`` would serve for ``host``: same config, cache and refresh rules."""
    return Service.open(env).token_for(host)


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


def _whole(data: bytes) -> bool:
    """True once ``data`` is one whole JSON document (or can never become one)."""
    try:
        json.loads(data)
    except RecursionError:
        return True  # nested too deeply: more input will not help
    except ValueError:
        return False
    return True


def read_request(stdin: BinaryIO | None) -> Request:
    """A CredentialProviderRequest of at most 64 KiB.

    Answered as soon as a whole JSON object has arrived, even if the kubelet
    keeps stdin open."""
    data = bounded.read(stdin, MAX_INPUT, _whole, 0.0, "a CredentialProviderRequest")
    if len(data) > MAX_INPUT:
        raise InputError(f"CredentialProviderRequest longer than {MAX_INPUT} bytes")
    try:
        request = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise InputError("stdin is not a JSON CredentialProviderRequest") from None
    except RecursionError:
        raise InputError(
            "stdin is not a CredentialProviderRequest: JSON nested too deeply"
        ) from None
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
    token = request.get("serviceAccountToken") or ""
    annotations = request.get("serviceAccountAnnotations") or {}
    if not isinstance(token, str):
        raise InputError("the CredentialProviderRequest's serviceAccountToken is not a string")
    if not isinstance(annotations, dict):
        raise InputError("the CredentialProviderRequest's serviceAccountAnnotations is not a map")
    return Request(str(version), image.strip(), token.strip(), annotations)


def respond(
    version: str,
    image: str,
    env: Mapping[str, str],
    get_token: GetToken = service_token,
    clock: Callable[[], float] = time.time,
    *,
    pod: PodRole | None = None,
    until: float | None = None,
    get_pod_token: GetPodToken | None = None,
) -> dict[str, Any]:
    """The CredentialProviderResponse for one image, as ``pod``'s role when given.

    An image whose host is neither ECR nor configured gets a response without
    ``auth`` and no AWS call is made for it. The answer's cacheDuration never
    runs past ``until``.
    """
    host = image_host(image)
    if host is None:
        return _no_credentials(version)
    try:
        if pod is None:
            _, token = get_token(host, env)
        else:
            token = (get_pod_token or pod_token)(host, env, pod, clock)
    except NotOurRegistry:
        return _no_credentials(version)
    except XecrError as exc:
        # The kubelet logs the line with the image's pull: name the registry in it.
        exc.registry = host
        if not str(exc).startswith(f"{host}: "):
            exc.args = (f"{host}: {exc}", *exc.args[1:])
        raise
    return _answer(version, host, token, clock, until)


def _answer(
    version: str,
    host: str,
    token: Token,
    clock: Callable[[], float],
    until: float | None = None,
) -> dict[str, Any]:
    # The kubelet's cache key already holds the service account (both cacheTypes),
    # so "Registry" never lets one service account's answer serve another's pods.
    ends = refresh.refresh_at(token) if until is None else min(until, refresh.refresh_at(token))
    return {
        "apiVersion": version,
        "kind": RESPONSE_KIND,
        "cacheKeyType": "Registry",
        "cacheDuration": go_duration(ends - clock()),
        "auth": {host: {"username": token.username, "password": token.secret}},
    }


def _no_credentials(version: str) -> dict[str, Any]:
    return {
        "apiVersion": version,
        "kind": RESPONSE_KIND,
        "cacheKeyType": "Registry",
        "cacheDuration": NOT_OURS_CACHE,
    }


def pod_key(base: str, pod: PodRole) -> str:
    """The cache key of ``pod``'s token beside the node's ``base`` key.

    It starts with half of ``base``: ``logout HOST``, ``erase`` and ``status`` find
    every service account's entry of a token by that prefix
    (:meth:`ecr_helper.service.Service.pod_entries`) without knowing the accounts."""
    prefix = pod_prefix(base)
    return prefix + service_account.cache_key(base, pod)[: len(base) - len(prefix)]


def pod_token(host: str, env: Mapping[str, str], pod: PodRole, clock: Callable[[], float]) -> Token:
    """A servable token for ``host`` fetched as the pod's role, cached per service account
    (and shared, like the node's, by the registries of one region and chain)."""
    service = Service.open(env, clock=clock)
    settings = service.settings(host)
    key = pod_key(service.key(settings), pod)

    def fetch(settings: RegistrySettings, quick: bool) -> Token:
        from ecr_helper import deadline, pod_role

        token = deadline.within(
            deadline.QUICK_DEADLINE if quick else deadline.FETCH_DEADLINE,
            lambda: pod_role.fetch_token(settings, pod, quick, clock),
            f"fetching the token of {settings.host} ({settings.subject}) as the pod's role",
        )
        # Named for `xecr status`: the service account and the role it pulls as.
        return Token(
            token.username,
            token.secret,
            token.issued_at,
            token.expires_at,
            token.registry,
            token.registry_id,
            token.region,
            token.role_arn or pod.role_arn,
            pod.account.label,
        )

    return refresh.obtain(
        settings,
        service.store,
        key,
        fetch,
        clock,
        daemon_running=lambda: bool(service.daemon_pid()),
    )


def respond_to(
    request: Request,
    env: Mapping[str, str],
    get_token: GetToken = service_token,
    clock: Callable[[], float] = time.time,
    get_pod_token: GetPodToken = pod_token,
) -> dict[str, Any]:
    """The response for a request, as the pod's role when its service account names one."""
    options = KubeletOptions.from_env(env)
    version, image = request.version, request.image
    if not request.token:
        if options.role_annotation in request.annotations:
            raise InputError(
                f"the service account is annotated {options.role_annotation} but the request "
                "carries no serviceAccountToken: set tokenAttributes in the kubelet's "
                "CredentialProviderConfig"
            )
        if options.unannotated == "refuse":
            raise InputError(
                "the request carries no service account token (a pod without a service "
                "account, or no tokenAttributes in the kubelet's CredentialProviderConfig) "
                f"and {service_account.UNANNOTATED_VAR}=refuse"
            )
        return respond(version, image, env, get_token, clock)
    account, pod = service_account.pod_role(request.token, request.annotations, options, clock())
    # cacheType Token: the kubelet keys its cache by this token, so the answer must not
    # outlive it.
    until = account.expires_at if options.cache_type == "Token" else None
    if pod is None and options.unannotated == "refuse":
        raise InputError(
            f"service account {account.label} has no {options.role_annotation} annotation "
            f"and {service_account.UNANNOTATED_VAR}=refuse: annotate it with the role "
            "its pods pull as"
        )
    return respond(
        version, image, env, get_token, clock, pod=pod, until=until, get_pod_token=get_pod_token
    )


def run(
    stdin: BinaryIO | None,
    env: Mapping[str, str],
    get_token: GetToken = service_token,
    clock: Callable[[], float] = time.time,
) -> str:
    """Read the request, answer with the response as one line of JSON."""
    request = read_request(stdin)
    return json.dumps(respond_to(request, env, get_token, clock)) + "\n"
