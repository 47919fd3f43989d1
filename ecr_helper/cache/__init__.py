"""The token cache: choosing a backend (:func:`open_cache`) and the cache key.

Backends: :mod:`.file` (the default; also keeps the parsed config copy),
:mod:`.keyring` (secrets in the OS keyring, imported only when asked for) and
the null backend of :mod:`.base`. The key (:func:`cache_key`) says which token
a ``get`` in this environment may be served. An ECR token is the caller's:
GetAuthorizationToken answers one token valid for every registry of its region
the principal may read (``registryIds`` is deprecated and changes nothing), so
the key is the identity, not the registry: the service (ECR or ECR Public),
partition, region, role chain, external id, session name, session duration
and source identity (every input that selects one:
:func:`ecr_helper.source.key_inputs`). Registries that resolve to the same key
share one entry, fetched, cached and refreshed once; two roles, two external
ids or two source identities never share one. It is computed from the
settings and the environment alone, with no AWS call and no file read. In the machine-wide cache the
source identity is the machine's (root's, :func:`ecr_helper.source.machine_key_inputs`),
the same for every reader, so a docker-group user is served what root's
daemon keeps; that cache takes entries from root only. On the cached ``get``'s
path: nothing here imports more than the file backend needs.
"""

from __future__ import annotations

from ecr_helper import _cjson, source
from ecr_helper.cache.base import TokenCache
from ecr_helper.cache.file import FileCache, digest, file_cache
from ecr_helper.errors import CacheError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from ecr_helper.config import Config, RegistrySettings

__all__ = [
    "FileCache",
    "TokenCache",
    "cache_key",
    "file_cache",
    "is_pod_key",
    "open_cache",
    "pod_prefix",
    "token_inputs",
]

# 3: the key names the identity and region, no longer the registry (issue 22).
# Entries under version 2 keys are never read again: a first get may fetch once.
KEY_VERSION = "3"


def cache_key(settings: RegistrySettings, env: Mapping[str, str], machine: bool = False) -> str:
    """The key of ``settings``' token for the identity ``env`` selects.

    ``machine``: the key in the machine-wide cache, where the identity is
    root's whatever ``env`` says (see the module docstring). The endpoint is
    left out on purpose: a ``get`` that cannot reach AWS must still find what
    the daemon fetched.
    """
    if machine:
        identity = source.machine_key_inputs(settings.source_profile)
    else:
        identity = source.key_inputs(settings.source_profile, env, digest)
    parts = [KEY_VERSION, *token_inputs(settings), identity]
    return digest(_cjson.dumps(parts))[:32]


def pod_prefix(key: str) -> str:
    """What the key of every pod-role token beside ``key``'s own starts with (kubelet
    mode, :func:`ecr_helper.frontends.kubelet.pod_key`): its first half, so
    ``logout``, ``erase`` and ``status`` find them without knowing the accounts."""
    return key[: len(key) // 2]


def is_pod_key(candidate: str, key: str) -> bool:
    """Whether ``candidate`` is the key of a pod-role token beside ``key``'s own."""
    return candidate != key and candidate.startswith(pod_prefix(key))


def token_inputs(settings: RegistrySettings) -> list[object]:
    """What decides the token AWS answers besides the source identity.

    Not the host nor the registry id: ECR's token is valid for every registry
    of its region the caller may read. The session name changes the principal
    (``assumed-role/ROLE/SESSION``) and the duration the credentials the token
    rests on, so both are in.
    """
    return [
        settings.service,
        settings.partition,
        settings.region,
        list(settings.role_arns),
        settings.external_id or "",
        settings.role_session_name or "",
        settings.duration_seconds or 0,
    ]


def open_cache(
    config: Config, env: Mapping[str, str], files: FileCache | None = None
) -> TokenCache:
    """The backend the configuration asks for, falling back as documented.

    ``files`` is the file cache already prepared for this config (the service
    prepares it once per call); else one is made here. A folder that cannot be
    used safely yields the null backend (uncached, with one warning in the
    log) rather than a failure.
    """
    backend = config.cache_backend
    if backend == "none":
        return TokenCache()
    if files is None:
        files = file_cache(env, config.system)
    try:
        files.prepare()
    except CacheError as exc:
        from ecr_helper import log

        log.warning(f"token cache disabled: {exc}")
        return TokenCache()
    if backend == "keyring":
        from ecr_helper.cache.keyring import open_keyring_cache

        return open_keyring_cache(files)
    return files
