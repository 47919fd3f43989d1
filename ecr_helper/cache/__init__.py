"""The token cache: choosing a backend (:func:`open_cache`) and keying entries.

Backends: :mod:`.file` (the default; also keeps the parsed config copy),
:mod:`.keyring` (secrets in the OS keyring, imported only when asked for) and
the null backend of :mod:`.base`. Keys: :mod:`.key`. On the cached ``get``'s
path: nothing here imports more than the file backend needs.
"""

from __future__ import annotations

from ecr_helper.cache.base import TokenCache
from ecr_helper.cache.file import FileCache, file_cache
from ecr_helper.cache.key import cache_key
from ecr_helper.errors import CacheError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from ecr_helper.config import Config

__all__ = ["FileCache", "TokenCache", "cache_key", "file_cache", "open_cache"]


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
