"""The login daemon: keeps the token of every configured registry fresh in the
cache that ``get`` reads, so no pull waits on STS and ECR, and pulls keep
working through a short AWS or network outage.

One worker thread per registry: it fetches at start, then refreshes at the
time :mod:`ecr_helper.schedule` gives, re-reading the cache first (a ``get``
or ``xecr login`` may have refreshed it already). AWS errors never stop a
worker: it logs one line and retries with backoff. Workers are daemon threads
so that a stop is never held up by a fetch in flight (writes are atomic).

One daemon per cache folder (:mod:`ecr_helper.instance`). Signals
belong to the CLI, which turns them into ``STOP``/``RELOAD`` commands on the
queue :meth:`Daemon.serve` reads.
"""

from __future__ import annotations

import logging
import os
import queue
import random
import stat
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ecr_helper import (
    cache,
    config,
    dockerconfig,
    instance,
    log,
    paths,
    protocol,
    refresh,
    schedule,
    securefile,
)
from ecr_helper.config import Config, RegistrySettings
from ecr_helper.credentials import Token
from ecr_helper.errors import XecrError

Fetch = Callable[[RegistrySettings, bool], Token]

STOP = "stop"
RELOAD = "reload"
# How long a stop waits for workers busy in a fetch before leaving them be.
STOP_GRACE = 2.0


@dataclass(frozen=True)
class Target:
    """One configured registry: its settings and its cache key."""

    settings: RegistrySettings
    key: str

    @property
    def host(self) -> str:
        return self.settings.host


@dataclass(frozen=True)
class Outcome:
    """The result of refreshing one registry once."""

    host: str
    registry_id: str
    token: Token | None
    error: str | None = None


@dataclass(frozen=True)
class OnceResult:
    """What ``xecr daemon --once`` did: one outcome per registry, and the sink's failure."""

    outcomes: tuple[Outcome, ...]
    sink_error: str | None = None

    @property
    def ok(self) -> bool:
        return self.sink_error is None and all(o.token is not None for o in self.outcomes)


# -- configuration and cache ----------------------------------------------------------


def targets(loaded: Config, env: Mapping[str, str]) -> dict[str, Target]:
    """Every registry host of the config, in file order, with its cache key.

    A broken section is left out with a warning: the other registries stay fresh."""
    found: dict[str, Target] = {}
    for host in loaded.hosts():
        error = loaded.error_for(host)
        if error is not None:
            log.warning(f"skipping {host}: {error}")
            continue
        settings = loaded.resolve(host)
        found[settings.host] = Target(settings, cache.cache_key(settings, env))
    return found


def cache_folder(loaded: Config, env: Mapping[str, str]) -> str:
    """The folder of the token cache ``get`` reads under this config."""
    return paths.cache_dir(env, loaded.system)


def open_store(loaded: Config, env: Mapping[str, str]) -> cache.TokenCache:
    """The cache ``get`` reads; an error when there is none to keep tokens in."""
    if loaded.cache_backend == "none":
        raise XecrError(
            f'{loaded.path}: [defaults] cache = "none" leaves the daemon nowhere to keep '
            "tokens for `get`; remove that setting"
        )
    store = cache.open_cache(loaded, env)
    if store.name == "none":
        raise XecrError(
            f"the token cache in {cache_folder(loaded, env)} cannot be used safely "
            f"(details in {log.log_file(env)}); check its owner and mode"
        )
    if isinstance(store, cache.FileCache):
        _share_machine_folder(store)
    return store


def _share_machine_folder(store: cache.FileCache) -> None:
    """As root, give the machine-wide folder the docker group and mode 0750.

    The folder may predate the docker group (installed later in the same
    boot script) or have been made by a unit's ``mkdir``: without this its
    members would never be served the tokens this daemon keeps fresh.
    """
    if not store.machine or store.gid is None or os.geteuid() != 0 or store.folder is None:
        return
    try:
        info = os.lstat(store.folder)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != 0:
            return  # open_cache refuses such a folder; nothing of ours to repair
        if info.st_gid != store.gid:
            os.chown(store.folder, 0, store.gid, follow_symlinks=False)
        if stat.S_IMODE(info.st_mode) != store.dir_mode:
            Path(store.folder).chmod(store.dir_mode)
    except OSError as exc:
        log.warning(f"cannot share {store.folder} with the docker group: {exc.strerror}")


# -- one registry's worker ------------------------------------------------------------------


class _Worker:
    """Keeps one registry's token fresh until stopped."""

    def __init__(
        self,
        target: Target,
        store: cache.TokenCache,
        fetch: Fetch,
        clock: Callable[[], float],
        rand: Callable[[], float],
        publish: Callable[[Target, Token], None],
    ) -> None:
        self.target = target
        self._store = store
        self._fetch = fetch
        self._clock = clock
        self._rand = rand
        self._publish = publish
        self._stop = threading.Event()
        self.failures = 0
        self.thread = threading.Thread(target=self._run, name=f"xecr-{target.host}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _read(self) -> Token | None:
        try:
            return self._store.read(self.target.key)
        except XecrError:
            return None

    def _run(self) -> None:
        due = self._clock()  # fetch every registry at once on start
        basis: float | None = None  # issued_at of the token `due` was planned from
        lifetime: float | None = None
        started = False
        while not self._stop.is_set():
            now = self._clock()
            cached = self._read()
            if cached is not None:
                lifetime = lifetime or cached.lifetime
                if (
                    started
                    and cached.issued_at != basis
                    and refresh.state(cached, now) == refresh.FRESH
                ):
                    # Someone else refreshed it: plan from their token, fetch nothing.
                    due, basis, lifetime = (
                        schedule.next_refresh(cached, self._rand),
                        cached.issued_at,
                        cached.lifetime,
                    )
                    self._recovered("another process refreshed it")
                    self._publish(self.target, cached)
            if now < due:
                self._stop.wait(schedule.sleep_for(due, now))
                continue
            started = True
            token, reason = self._attempt()
            if token is None:
                self.failures += 1
                now = self._clock()
                due = schedule.retry_at(now, self.failures, lifetime, self._rand)
                settings = self.target.settings
                log.warning(
                    f"refresh of {settings.host} (registry {settings.registry_id}) "
                    f"failed (attempt {self.failures}, next try in {due - now:.1f}s): "
                    f"{reason}"
                )
                continue
            due, basis, lifetime = (
                schedule.next_refresh(token, self._rand),
                token.issued_at,
                token.lifetime,
            )
            self._recovered(
                f"after {self.failures} failed attempt" + ("s" if self.failures > 1 else "")
            )
            log.info(
                f"refreshed {self.target.host} (registry {self.target.settings.registry_id})"
                f": valid {token.lifetime:.0f}s, next refresh in "
                f"{max(0.0, due - self._clock()):.0f}s"
            )
            self._publish(self.target, token)

    def _attempt(self) -> tuple[Token | None, str]:
        """A new token, or None and the one-line reason it could not be had."""
        try:
            return refresh.renew(
                self.target.settings, self._store, self.target.key, self._fetch
            ), ""
        except XecrError as exc:
            return None, str(exc)
        except Exception as exc:  # nothing may stop the daemon
            logging.getLogger(log.LOGGER).debug(f"refresh of {self.target.host}", exc_info=True)
            return None, f"unexpected {type(exc).__name__} (details at DEBUG in the log)"

    def _recovered(self, how: str) -> None:
        if self.failures:
            log.info(f"{self.target.host}: token fresh again {how}")
            self.failures = 0


# -- the daemon -------------------------------------------------------------------------------


class Daemon:
    """The long-running daemon. :meth:`open`, then :meth:`serve` until ``STOP``."""

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        fetch: Fetch = protocol.fetch,
        clock: Callable[[], float] = time.time,
        rand: Callable[[], float] = random.random,
        docker_config_dir: str | None = None,
    ) -> None:
        self.env = env
        self._fetch = fetch
        self._clock = clock
        self._rand = rand
        self._sink = dockerconfig.DockerConfigSink(docker_config_dir) if docker_config_dir else None
        self._workers: dict[str, _Worker] = {}
        self._lock: instance.InstanceLock | None = None
        self.config: Config = Config()
        self.store: cache.TokenCache = cache.TokenCache()
        self.folder = ""
        self.targets: dict[str, Target] = {}

    def open(self) -> None:
        """Load the config, open the cache and take the folder's lock."""
        self.config = config.load(self.env)
        self.targets = targets(self.config, self.env)
        self.store = open_store(self.config, self.env)
        self.folder = self.store.folder or cache_folder(self.config, self.env)
        mode, gid, dir_mode = 0o600, None, 0o700
        if isinstance(self.store, cache.FileCache):
            mode, gid, dir_mode = self.store.file_mode, self.store.gid, self.store.dir_mode
        securefile.ensure_dir(self.folder, dir_mode, gid)
        self._lock = instance.acquire_instance(self.folder, mode, gid)

    def close(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def start(self) -> None:
        if not self.targets:
            log.warning(
                f"no registries configured in {self.config.path or 'any config file'}; "
                "waiting for a reload (SIGHUP)"
            )
        if self._sink is not None:
            self._sink.set_hosts(self.targets)
        for target in self.targets.values():
            self._start_worker(target)

    def _start_worker(self, target: Target) -> None:
        worker = _Worker(target, self.store, self._fetch, self._clock, self._rand, self._publish)
        self._workers[target.host] = worker
        worker.start()

    def _publish(self, target: Target, token: Token) -> None:
        if self._sink is not None:
            self._sink.put({target.host: token})

    def reload(self) -> None:
        """Apply the config as it is now: start added registries, stop removed ones."""
        try:
            loaded = config.load(self.env)
            fresh = targets(loaded, self.env)
        except XecrError as exc:
            log.warning(f"reload failed, keeping the previous config: {exc}")
            return
        if (
            cache_folder(loaded, self.env) != cache_folder(self.config, self.env)
            or loaded.cache_backend != self.config.cache_backend
        ):
            log.warning(
                f"reload: {loaded.path} now asks for another token cache; "
                "restart the daemon to use it (keeping the previous config)"
            )
            return
        self.config = loaded
        for host, worker in list(self._workers.items()):
            if fresh.get(host) != worker.target:
                worker.stop()
                del self._workers[host]
        if self._sink is not None:
            self._sink.set_hosts(fresh)
        for host, target in fresh.items():
            if host not in self._workers:
                self._start_worker(target)
        added = sorted(set(fresh) - set(self.targets))
        removed = sorted(set(self.targets) - set(fresh))
        self.targets = fresh
        log.info(
            f"reloaded {loaded.path}: {len(fresh)} registries"
            + (f", added {', '.join(added)}" if added else "")
            + (f", removed {', '.join(removed)}" if removed else "")
        )

    def stop(self, grace: float = STOP_GRACE) -> bool:
        """Stop every worker; True when all ended within ``grace`` seconds."""
        workers = list(self._workers.values())
        self._workers.clear()
        for worker in workers:
            worker.stop()
        deadline = time.monotonic() + grace
        for worker in workers:
            worker.thread.join(max(0.0, deadline - time.monotonic()))
        return not any(worker.thread.is_alive() for worker in workers)

    def serve(self, commands: queue.SimpleQueue[str], poll: float = 0.5) -> bool:
        """Run until ``STOP`` arrives on ``commands``; ``RELOAD`` reloads the config.

        Returns whether every worker ended in time (see :meth:`stop`).
        """
        self.start()
        try:
            while True:
                try:
                    command = commands.get(timeout=poll)
                except queue.Empty:
                    continue
                if command == STOP:
                    break
                if command == RELOAD:
                    self.reload()
        finally:
            ended = self.stop()
            self.close()
        return ended


def run_once(
    env: Mapping[str, str],
    *,
    fetch: Fetch = protocol.fetch,
    docker_config_dir: str | None = None,
) -> OnceResult:
    """Refresh every configured registry now, all at once (``xecr daemon --once``)."""
    loaded = config.load(env)
    found = targets(loaded, env)
    broken = [
        Outcome(host, "", None, str(error))
        for host in loaded.hosts()
        if (error := loaded.error_for(host)) is not None
    ]
    if not found and not broken:
        raise XecrError(
            f"no registries configured in {loaded.path or 'any config file'} (see `xecr configure`)"
        )
    store = open_store(loaded, env)
    results: dict[str, Outcome] = {}

    def one(target: Target) -> None:
        settings = target.settings
        try:
            token = refresh.renew(settings, store, target.key, fetch)
        except Exception as exc:  # that registry's failure
            reason = (
                str(exc)
                if isinstance(exc, XecrError)
                else (f"unexpected {type(exc).__name__}; details in {log.log_file(env)}")
            )
            log.exception_debug(f"refresh of {settings.host} failed: {reason}")
            results[target.host] = Outcome(settings.host, settings.registry_id, None, reason)
        else:
            results[target.host] = Outcome(settings.host, settings.registry_id, token)

    threads = [threading.Thread(target=one, args=(t,), daemon=True) for t in found.values()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    outcomes = (*(results[host] for host in found), *broken)
    sink_error = None
    if docker_config_dir:
        sink = dockerconfig.DockerConfigSink(docker_config_dir, found)
        tokens = {o.host: o.token for o in outcomes if o.token is not None}
        sink_error = sink.put(tokens) if tokens else None
    return OnceResult(outcomes, sink_error)
