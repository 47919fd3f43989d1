"""Docker's credential-helper protocol: ``get``, ``list``, ``store``, ``erase``
and ``version``, over byte streams.

This is the path of every ``docker pull``: with a cached token it runs on
``sys``, ``os``, ``json`` and ``re`` alone. boto3 is imported (through
:func:`fetch`) only when AWS must be called.
"""

from __future__ import annotations

import json
import time

from ecr_helper import __version__
from ecr_helper.errors import InputError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import BinaryIO

    from ecr_helper.config import Config, RegistrySettings
    from ecr_helper.credentials import Token

# Docker sends one host name; anything longer is not an address.
MAX_INPUT = 64 * 1024
VERBS = ("get", "list", "store", "erase", "version")


def fetch(settings: RegistrySettings, quick: bool) -> Token:
    """The real fetch: import boto3 only now, after the cache has missed."""
    from ecr_helper import aws

    return aws.fetch_token(settings, quick=quick)


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


def _resolve(address: str, env: Mapping[str, str]) -> tuple[Config, RegistrySettings]:
    from ecr_helper import config

    loaded = config.load(env)
    return loaded, loaded.resolve(address)


def get_token(
    address: str,
    env: Mapping[str, str],
    fetcher: Callable[[RegistrySettings, bool], Token] = fetch,
    clock: Callable[[], float] = time.time,
) -> tuple[RegistrySettings, Token]:
    """The settings and a servable token for a registry address."""
    from ecr_helper import cache, refresh

    loaded, settings = _resolve(address, env)
    store = cache.open_cache(loaded, env)
    token = refresh.obtain(settings, store, cache.cache_key(settings, env), fetcher, clock)
    return settings, token


def get(
    stdin: BinaryIO | None,
    env: Mapping[str, str],
    fetcher: Callable[[RegistrySettings, bool], Token] = fetch,
    clock: Callable[[], float] = time.time,
) -> str:
    address = read_input(stdin)
    _, token = get_token(address, env, fetcher, clock)
    answer = {"ServerURL": address.strip(), "Username": token.username, "Secret": token.secret}
    return json.dumps(answer) + "\n"


def list_(env: Mapping[str, str]) -> str:
    """Every registry xecr serves: configured hosts and hosts with a cached token."""
    from ecr_helper import cache, config

    loaded = config.load(env)
    hosts = {host: "AWS" for host in loaded.hosts()}
    for token in cache.open_cache(loaded, env).entries().values():
        hosts.setdefault(token.registry, token.username)
    return json.dumps(hosts) + "\n"


def store(stdin: BinaryIO | None) -> str:
    """Accept and ignore: ECR tokens come from AWS, not from ``docker login``."""
    read_input(stdin)
    return ""


def erase(stdin: BinaryIO | None, env: Mapping[str, str]) -> str:
    """Forget the cached token of one registry."""
    from ecr_helper import cache

    address = read_input(stdin)
    loaded, settings = _resolve(address, env)
    cache.open_cache(loaded, env).delete(cache.cache_key(settings, env))
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
