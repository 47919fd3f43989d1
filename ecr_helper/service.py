"""The one use case behind every front door: a servable token for a registry.

The Docker helper verbs, the kubelet mode, ``xecr login``/``logout``/
``get-login-password``, ``status``, ``doctor`` and the daemon each open a
:class:`Service`, the config in force and its token cache opened once per call
(the cache folder is checked once), and ask it for what they need. None of
them imports another front door.

This module is on the cached ``get``'s path: it imports the config, the cache
and the refresh policy, and boto3 only through :func:`fetch`, once the cache
has missed.
"""

from __future__ import annotations

import time

from ecr_helper import config, refresh
from ecr_helper.cache import cache_key, file_cache, is_pod_key, open_cache

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from ecr_helper.cache.base import TokenCache
    from ecr_helper.config import Config, RegistrySettings
    from ecr_helper.token import Token

    Fetch = Callable[[RegistrySettings, bool], Token]
    Clock = Callable[[], float]


def fetch(settings: RegistrySettings, quick: bool) -> Token:
    """The real fetch, bounded as a whole: import boto3 only now, after the cache has missed."""
    from ecr_helper import deadline

    return deadline.fetch_token(settings, quick=quick)


class Service:
    """The config in force, its token cache and the cache folder, for one call.

    ``fetch`` and ``clock`` are the AWS call and the time source (tests pass
    fakes). :meth:`open` is the way in; the constructor takes parts already
    opened (the daemon keeps its own across reloads).
    """

    __slots__ = ("env", "config", "store", "folder", "_fetch", "_clock")

    def __init__(
        self,
        env: Mapping[str, str],
        loaded: Config,
        store: TokenCache,
        folder: str,
        fetch: Fetch = fetch,
        clock: Clock = time.time,
    ) -> None:
        self.env = env
        self.config = loaded
        self.store = store
        self.folder = folder
        self._fetch = fetch
        self._clock = clock

    @classmethod
    def open(
        cls, env: Mapping[str, str], *, fetch: Fetch = fetch, clock: Clock = time.time
    ) -> Service:
        """Read the config in force (through its parsed copy) and open its cache."""
        source = config.config_source(env)
        files = file_cache(env, source[1])
        loaded = config.load(env, files, source)
        store = open_cache(loaded, env, files)
        assert files.folder is not None
        return cls(env, loaded, store, files.folder, fetch, clock)

    def settings(self, address: str) -> RegistrySettings:
        """A registry's settings; :class:`~ecr_helper.errors.NotOurRegistry` if not ours."""
        return self.config.resolve(address)

    def key(self, settings: RegistrySettings) -> str:
        """The cache key of ``settings``' token for this environment's identity."""
        return cache_key(settings, self.env, self.store.machine)

    def cached(self, settings: RegistrySettings) -> Token | None:
        """What the cache holds for ``settings``, servable or not (status)."""
        return self.store.read(self.key(settings))

    def token(self, settings: RegistrySettings) -> Token:
        """A token that may be served now: cached, refreshed or fetched (single flight)."""
        return refresh.obtain(
            settings,
            self.store,
            self.key(settings),
            self._fetch,
            self._clock,
            daemon_running=self._daemon_running,
        )

    def token_for(self, address: str) -> tuple[RegistrySettings, Token]:
        """The settings and a servable token for a client's registry address."""
        settings = self.settings(address)
        return settings, self.token(settings)

    def renew(self, settings: RegistrySettings) -> Token:
        """A new token now, whatever the cache holds, stored for ``get`` (login, daemon)."""
        return refresh.renew(
            settings, self.store, self.key(settings), self._fetch, clock=self._clock
        )

    def forget(self, settings: RegistrySettings) -> bool:
        """Remove ``settings``' cached token; whether there was one.

        The token is its identity's for the region: every registry that
        shares it (:meth:`siblings`) loses it too."""
        return self.store.delete(self.key(settings))

    def siblings(self, settings: RegistrySettings) -> list[str]:
        """The other configured registries served the same token (same cache key)."""
        key = self.key(settings)
        found = []
        for host in self.config.hosts():
            if self.config.error_for(host) is not None:
                continue
            other = self.settings(host)
            if other.host != settings.host and self.key(other) == key:
                found.append(other.host)
        return found

    def pod_entries(self, settings: RegistrySettings) -> dict[str, Token]:
        """The tokens fetched as pods' roles (kubelet mode) beside ``settings``' own,
        by key: theirs start with half of its key."""
        key = self.key(settings)
        return {k: t for k, t in self.store.entries().items() if is_pod_key(k, key)}

    def forget_pods(self, settings: RegistrySettings) -> int:
        """Remove every pod-role token beside ``settings``' own; how many there were."""
        return sum(self.store.delete(key) for key in self.pod_entries(settings))

    def daemon_pid(self) -> int | None:
        """The pid of the daemon keeping this cache folder fresh, else None (-1: unknown)."""
        from ecr_helper.daemon import lock

        return lock.is_running(self.folder)

    def _daemon_running(self) -> bool:
        return bool(self.daemon_pid())
