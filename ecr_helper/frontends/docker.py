"""Docker's credential-helper protocol: ``get``, ``list``, ``store``, ``erase``
and ``version``, over byte streams.

This is the path of every ``docker pull``: the verbs read stdin, ask
:class:`~ecr_helper.service.Service` and write the protocol's answer. With a
cached token it runs on the standard library's builtins alone; boto3 is
imported (through :func:`ecr_helper.service.fetch`) only when AWS must be called.
"""

from __future__ import annotations

import time

from ecr_helper import __version__, _cjson, service
from ecr_helper.errors import NO_SERVER_URL, InputError, NotOurRegistry, XecrError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import BinaryIO

    from ecr_helper.config import RegistrySettings
    from ecr_helper.token import Token

# Docker sends one host name; anything longer is not an address.
MAX_INPUT = 64 * 1024
VERBS = ("get", "list", "store", "erase", "version")


def read_input(stdin: BinaryIO | None) -> str:
    """Everything on stdin up to EOF, at most :data:`MAX_INPUT` bytes of UTF-8.

    As Docker's own helpers do, the input is read to EOF (Docker writes the
    address and closes stdin). A caller that writes nothing, or writes and
    then keeps stdin open, cannot hang the helper (:mod:`ecr_helper.stdin`):
    after a complete line xecr waits :data:`LINE_GRACE` for more.
    """
    from ecr_helper import stdin as bounded

    data = bounded.read(
        stdin, MAX_INPUT, lambda d: d.endswith(b"\n"), LINE_GRACE, "a registry host"
    )
    if len(data) > MAX_INPUT:
        raise InputError(
            f"input on stdin is longer than {MAX_INPUT} bytes; expected a registry host"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("input on stdin is not UTF-8 text; expected a registry host") from None


LINE_GRACE = 1.0


def get(
    stdin: BinaryIO | None,
    env: Mapping[str, str],
    fetcher: Callable[[RegistrySettings, bool], Token] = service.fetch,
    clock: Callable[[], float] = time.time,
) -> str:
    address = _address(stdin)
    try:
        _, token = service.Service.open(env, fetch=fetcher, clock=clock).token_for(address)
    except NotOurRegistry:
        raise
    except XecrError as exc:
        # From here on the host is one xecr answers for (or the config that
        # would say so is broken): name it, so the CLI can say why on stderr.
        exc.registry = _host(address)
        raise
    answer = {"ServerURL": address.strip(), "Username": token.username, "Secret": token.secret}
    return _cjson.dumps(answer) + "\n"


def _address(stdin: BinaryIO | None) -> str:
    """The address on stdin; an empty one answers as docker-credential-helpers does."""
    address = read_input(stdin)
    if not address.strip():
        raise InputError(NO_SERVER_URL)
    return address


def _host(address: str) -> str:
    from ecr_helper.registry import normalize

    try:
        return normalize(address)
    except InputError:
        return address.strip()[:200]


def list_(env: Mapping[str, str]) -> str:
    """Every registry xecr serves: configured hosts and hosts with a cached token
    (a shared token names the host it was fetched for; its siblings are configured)."""
    opened = service.Service.open(env)
    hosts = {host: "AWS" for host in opened.config.hosts()}
    for token in opened.store.entries().values():
        hosts.setdefault(token.registry, token.username)
    return _cjson.dumps(hosts) + "\n"


def store(stdin: BinaryIO | None) -> str:
    """Accept and ignore: ECR tokens come from AWS, not from ``docker login``."""
    read_input(stdin)
    return ""


def erase(stdin: BinaryIO | None, env: Mapping[str, str]) -> str:
    """Forget the cached token of one registry: the token its identity holds for
    the region (so for the registries sharing it too) and the pod-role tokens
    the kubelet mode fetched beside it."""
    address = _address(stdin)
    opened = service.Service.open(env)
    settings = opened.settings(address)
    opened.forget(settings)
    opened.forget_pods(settings)
    return ""


def version() -> str:
    return f"docker-credential-xecr {__version__}\n"


def run(verb: str, stdin: BinaryIO | None, env: Mapping[str, str]) -> str:
    """Answer one protocol verb; raises :class:`~ecr_helper.errors.XecrError` on failure."""
    if verb == "get":
        return get(stdin, env)
    if verb == "list":
        return list_(env)
    if verb == "store":
        return store(stdin)
    if verb == "erase":
        return erase(stdin, env)
    return version()
