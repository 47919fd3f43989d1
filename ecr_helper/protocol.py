"""Docker's credential-helper protocol: ``get``, ``list``, ``store``, ``erase``
and ``version``, over byte streams.

This is the path of every ``docker pull``: with a cached token it runs on
``sys``, ``os``, ``json`` and ``re`` alone. boto3 is imported (through
:func:`fetch`) only when AWS must be called.
"""

from __future__ import annotations

import json
import os
import time

from ecr_helper import __version__
from ecr_helper.errors import NO_SERVER_URL, InputError, NotOurRegistry, XecrError

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


def read_input(stdin: BinaryIO) -> str:
    """Everything on stdin up to EOF, at most :data:`MAX_INPUT` bytes of UTF-8.

    As Docker's own helpers do, the input is read to EOF (Docker writes the
    address and closes stdin). A caller that writes and then keeps stdin open
    cannot hang the helper: after a complete line xecr waits :data:`LINE_GRACE`
    for more, after a partial one :data:`EOF_WAIT`.
    """
    try:
        fd = stdin.fileno()
    except OSError:  # an in-memory stream (io.UnsupportedOperation)
        data = stdin.read(MAX_INPUT + 1)
    else:
        data = _read_fd(fd)
    if len(data) > MAX_INPUT:
        raise InputError(
            f"input on stdin is longer than {MAX_INPUT} bytes; expected a registry host"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("input on stdin is not UTF-8 text; expected a registry host") from None


LINE_GRACE = 1.0
EOF_WAIT = 10.0


def _read_fd(fd: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    blocking = os.get_blocking(fd)
    deadline: float | None = None
    try:
        while size <= MAX_INPUT:
            try:
                chunk = os.read(fd, MAX_INPUT + 1 - size)
            except BlockingIOError:
                chunk = None
            if chunk == b"":
                break
            if chunk:
                chunks.append(chunk)
                size += len(chunk)
                deadline = None
                # The first read may block (nothing written yet); later ones
                # must not wait forever for an EOF that never comes.
                os.set_blocking(fd, False)
                continue
            if deadline is None:
                wait = LINE_GRACE if chunks[-1].endswith(b"\n") else EOF_WAIT
                deadline = time.monotonic() + wait
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if chunks[-1].endswith(b"\n"):
                    break
                raise InputError(
                    f"stdin was not closed within {EOF_WAIT:.0f} s; expected a registry host"
                )
            import select

            select.select([fd], [], [], remaining)
    finally:
        try:
            os.set_blocking(fd, blocking)
        except OSError:
            pass
    return b"".join(chunks)


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
    stdin: BinaryIO,
    env: Mapping[str, str],
    fetcher: Callable[[RegistrySettings, bool], Token] = fetch,
    clock: Callable[[], float] = time.time,
) -> str:
    address = _address(stdin)
    try:
        _, token = get_token(address, env, fetcher, clock)
    except NotOurRegistry:
        raise
    except XecrError as exc:
        # From here on the host is one xecr answers for (or the config that
        # would say so is broken): name it, so the CLI can say why on stderr.
        exc.registry = _host(address)
        raise
    answer = {"ServerURL": address.strip(), "Username": token.username, "Secret": token.secret}
    return json.dumps(answer) + "\n"


def _address(stdin: BinaryIO) -> str:
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
    """Every registry xecr serves: configured hosts and hosts with a cached token."""
    from ecr_helper import cache, config

    loaded = config.load(env)
    hosts = {host: "AWS" for host in loaded.hosts()}
    for token in cache.open_cache(loaded, env).entries().values():
        hosts.setdefault(token.registry, token.username)
    return json.dumps(hosts) + "\n"


def store(stdin: BinaryIO) -> str:
    """Accept and ignore: ECR tokens come from AWS, not from ``docker login``."""
    read_input(stdin)
    return ""


def erase(stdin: BinaryIO, env: Mapping[str, str]) -> str:
    """Forget the cached token of one registry."""
    from ecr_helper import cache

    address = _address(stdin)
    loaded, settings = _resolve(address, env)
    cache.open_cache(loaded, env).delete(cache.cache_key(settings, env))
    return ""


def version() -> str:
    return f"docker-credential-xecr {__version__}\n"


def run(verb: str, stdin: BinaryIO, env: Mapping[str, str]) -> str:
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
