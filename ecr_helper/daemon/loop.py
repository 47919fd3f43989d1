"""The login daemon: keeps the token of every configured registry fresh in the
cache that ``get`` reads, so no pull waits on STS and ECR, and pulls keep
working through a short AWS or network outage.

One :class:`~ecr_helper.daemon.worker.Worker` per distinct token: registries
whose settings give one cache key (one identity and region, see
:func:`ecr_helper.cache.cache_key`) share one token, refreshed once per cycle
for all of them (:func:`~ecr_helper.daemon.worker.shared`). The workers are
run by one scheduler and a few fetch threads (:mod:`ecr_helper.daemon.pool`),
whatever the number of registries; the fetches share one AWS session per source
identity (:mod:`ecr_helper.daemon.clients`). One daemon per cache folder
(:mod:`ecr_helper.daemon.lock`). Signals belong to the CLI, which turns them
into ``STOP``/``RELOAD`` commands on the queue :meth:`Daemon.serve` reads.

Observers (:class:`Observer`) hear which tokens the daemon keeps (each named
by its registries, ``a,b``: :attr:`~ecr_helper.daemon.worker.Target.label`)
and how each refresh ended: the systemd reporter always (a no-op without
``NOTIFY_SOCKET``), the metrics when ``--listen`` is given. :meth:`Daemon.views`
is the snapshot they and ``/healthz`` read; the command loop ticks the
reporter, which is what sends READY, STATUS and the watchdog ping.
"""

from __future__ import annotations

import os
import queue
import random
import stat
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ecr_helper import human, log
from ecr_helper.cache import FileCache, TokenCache
from ecr_helper.daemon import lock
from ecr_helper.daemon.clients import SharedSessions
from ecr_helper.daemon.docker_sink import DockerConfigSink
from ecr_helper.daemon.health import RegistryView
from ecr_helper.daemon.liveness import Liveness
from ecr_helper.daemon.pool import FETCH_THREADS, Pool
from ecr_helper.daemon.systemd import SystemdReporter
from ecr_helper.daemon.worker import REFRESH_BOUND, Clocks, Fetch, Target, Wait, Worker, shared
from ecr_helper.errors import XecrError
from ecr_helper.service import Service
from ecr_helper.token import Token

STOP = "stop"
RELOAD = "reload"
# How long a stop waits for fetch threads busy in a fetch before leaving them be.
STOP_GRACE = 2.0


@dataclass(frozen=True)
class RefreshOutcome:
    """The result of refreshing one registry once."""

    host: str
    registry_id: str
    token: Token | None
    error: str | None = None


class Observer(Protocol):
    """Hears what the daemon does; called from worker threads, so it must be thread-safe."""

    def track(self, hosts: Iterable[str]) -> None:
        """These are the tokens kept now, by label (at start and after each reload)."""

    def refreshed(self, host: str, ok: bool) -> None:
        """A refresh of the token labelled ``host`` ended, with a token or not."""


@dataclass(frozen=True)
class OnceResult:
    """What ``xecr daemon --once`` did: one outcome per registry, and the sink's failure."""

    outcomes: tuple[RefreshOutcome, ...]
    sink_error: str | None = None

    @property
    def ok(self) -> bool:
        return self.sink_error is None and all(o.token is not None for o in self.outcomes)


# -- configuration and cache ----------------------------------------------------------


def targets(opened: Service) -> dict[str, Target]:
    """Every registry host of the config, in file order, with its cache key.

    A broken section is left out with a warning: the other registries stay fresh."""
    found: dict[str, Target] = {}
    for host in opened.config.hosts():
        error = opened.config.error_for(host)
        if error is not None:
            log.warning(f"skipping {host}: {error}")
            continue
        settings = opened.settings(host)
        found[settings.host] = Target(settings, opened.key(settings), (settings.host,))
    return found


def open_store(opened: Service) -> TokenCache:
    """The cache ``get`` reads; an error when there is none to keep tokens in."""
    loaded = opened.config
    if loaded.cache_backend == "none":
        raise XecrError(
            f'{loaded.path}: [defaults] cache = "none" leaves the daemon nowhere to keep '
            "tokens for `get`; remove that setting"
        )
    store = opened.store
    if store.name == "none":
        raise XecrError(
            f"the token cache in {opened.folder} cannot be used safely "
            f"(details in {log.log_file(opened.env)}); check its owner and mode"
        )
    if isinstance(store, FileCache):
        _share_machine_folder(store)
    return store


def _share_machine_folder(store: FileCache) -> None:
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


# -- the daemon -------------------------------------------------------------------------------


class Daemon:
    """The long-running daemon. :meth:`open`, then :meth:`serve` until ``STOP``.

    ``clock`` is the wall clock (token times), ``monotonic`` the clock waits are
    planned on; a test that injects a fake ``clock`` alone has it drive both.
    ``fetch`` defaults to the real one on sessions shared per source identity.
    """

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        fetch: Fetch | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] | None = None,
        rand: Callable[[], float] = random.random,
        wait: Wait | None = None,
        docker_config_dir: str | None = None,
        refresh_bound: float = REFRESH_BOUND,
        threads: int = FETCH_THREADS,
    ) -> None:
        self.env = env
        self.sessions = SharedSessions()
        self._fetch = fetch or self.sessions.fetch
        self._clock = clock
        if monotonic is None:
            monotonic = time.monotonic if clock is time.time else clock
        self._clocks = Clocks(clock, monotonic)
        self._rand = rand
        self._sink = DockerConfigSink(docker_config_dir) if docker_config_dir else None
        self._workers: dict[str, Worker] = {}  # by cache key: one per distinct token
        self._lock: lock.InstanceLock | None = None
        self.service: Service | None = None
        self.store: TokenCache = TokenCache()
        self.folder = ""
        self.targets: dict[str, Target] = {}
        self.liveness = Liveness()
        self._pool = Pool(self._clocks, wait, liveness=self.liveness, threads=threads)
        self._refresh_bound = refresh_bound
        self.reporter = SystemdReporter(env, self.liveness, self.views, clock)
        self._observers: list[Observer] = [self.reporter]

    def observe(self, observer: Observer) -> None:
        """Tell ``observer`` about the registries and every refresh, from :meth:`start` on."""
        self._observers.append(observer)

    def views(self) -> list[RegistryView]:
        """Each configured registry's cached token and refresh state, now."""
        found = []
        workers = dict(self._workers)
        for host, target in list(self.targets.items()):
            try:
                token = self.store.read(target.key)
            except XecrError:
                token = None
            worker = workers.get(target.key)
            failures, due = (worker.failures, worker.due) if worker else (0, None)
            found.append(RegistryView(host, token, failures, due))
        return found

    def _track(self, hosts: Iterable[str]) -> None:
        labels = list(hosts)  # read once: every observer hears the same labels
        for observer in self._observers:
            observer.track(labels)

    def _refreshed(self, host: str, ok: bool) -> None:
        for observer in self._observers:
            observer.refreshed(host, ok)

    @property
    def config_path(self) -> str | None:
        return self.service.config.path if self.service is not None else None

    def open(self) -> None:
        """Load the config, open the cache and take the folder's lock."""
        opened = Service.open(self.env, fetch=self._fetch, clock=self._clock)
        self.targets = targets(opened)
        self.store = open_store(opened)
        self.service = opened
        self.folder = opened.folder
        mode, gid = 0o600, None
        if isinstance(self.store, FileCache):
            mode, gid = self.store.file_mode, self.store.gid
        # open_store has prepared (made and checked) the folder.
        self._lock = lock.acquire_instance(self.folder, mode, gid)

    def close(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def start(self) -> None:
        if not self.targets:
            log.warning(
                f"no registries configured in {self.config_path or 'any config file'}; "
                "waiting for a reload (SIGHUP)"
            )
        if self._sink is not None:
            self._sink.set_hosts(self.targets)
        tokens = shared(self.targets)
        self._track(t.label for t in tokens.values())
        for target in tokens.values():
            self._start_worker(target)
        self._pool.start()

    def _start_worker(self, target: Target) -> None:
        worker = Worker(
            target,
            self.store,
            self._fetch,
            self._clocks,
            self._rand,
            self._publish,
            liveness=self.liveness,
            report=self._refreshed,
            refresh_bound=self._refresh_bound,
        )
        self._workers[target.key] = worker
        self._pool.add(worker)

    def _publish(self, target: Target, token: Token) -> None:
        if self._sink is not None:
            self._sink.put(dict.fromkeys(target.registries, token))

    def reload(self) -> None:
        """Apply the config as it is now: start added registries, stop removed ones."""
        try:
            opened = Service.open(self.env, fetch=self._fetch, clock=self._clock)
            fresh = targets(opened)
        except XecrError as exc:
            log.warning(f"reload failed, keeping the previous config: {exc}")
            return
        loaded = opened.config
        assert self.service is not None
        if (
            opened.folder != self.service.folder
            or loaded.cache_backend != self.service.config.cache_backend
        ):
            log.warning(
                f"reload: {loaded.path} now asks for another token cache; "
                "restart the daemon to use it (keeping the previous config)"
            )
            return
        added = sorted(set(fresh) - set(self.targets))
        removed = sorted(set(self.targets) - set(fresh))
        self.targets = fresh
        # Said and recorded before anything is changed, so whoever sees a change
        # (the sink's file, a token) also finds the new targets and this line.
        log.info(
            f"reloaded {loaded.path}: {human.count(len(fresh), 'registry')}"
            + (f", added {', '.join(added)}" if added else "")
            + (f", removed {', '.join(removed)}" if removed else "")
        )
        tokens = shared(fresh)
        self._track(t.label for t in tokens.values())
        self.service = Service(self.env, loaded, self.store, self.folder, self._fetch, self._clock)
        # The AWS files may have changed with the config: fresh sessions from now on.
        self.sessions.clear()
        for key, worker in list(self._workers.items()):
            if tokens.get(key) != worker.target:
                self._pool.remove(worker)
                del self._workers[key]
        if self._sink is not None:
            self._sink.set_hosts(fresh)
        for key, target in tokens.items():
            if key not in self._workers:
                self._start_worker(target)

    def stop(self, grace: float = STOP_GRACE) -> bool:
        """Stop the scheduler and the fetch threads; True when all ended within ``grace``
        seconds."""
        self._workers.clear()
        return self._pool.stop(grace)

    def serve(self, commands: queue.SimpleQueue[str], poll: float = 0.5) -> bool:
        """Run until ``STOP`` arrives on ``commands``; ``RELOAD`` reloads the config.

        Returns whether every thread ended in time (see :meth:`stop`).
        """
        self.start()
        poll = min(poll, self.reporter.poll)
        try:
            while True:
                self.reporter.tick()
                try:
                    command = commands.get(timeout=poll)
                except queue.Empty:
                    continue
                if command == STOP:
                    self.reporter.stopping()
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
    fetch: Fetch | None = None,
    docker_config_dir: str | None = None,
) -> OnceResult:
    """Refresh every distinct token now, :data:`FETCH_THREADS` at a time
    (``xecr daemon --once``), on sessions shared per source identity: one
    outcome per registry, registries that share a token sharing its outcome."""
    opened = Service.open(env, fetch=fetch or SharedSessions().fetch)
    found = targets(opened)
    broken = [
        RefreshOutcome(host, "", None, str(error))
        for host in opened.config.hosts()
        if (error := opened.config.error_for(host)) is not None
    ]
    if not found and not broken:
        raise XecrError(
            f"no registries configured in {opened.config.path or 'any config file'} "
            "(see `xecr configure`)"
        )
    open_store(opened)
    results: dict[str, RefreshOutcome] = {}

    def one(target: Target) -> None:
        settings = target.settings
        token: Token | None = None
        reason: str | None = None
        try:
            token = opened.renew(settings)
        except Exception as exc:  # that token's failure
            reason = (
                str(exc)
                if isinstance(exc, XecrError)
                else (f"unexpected {type(exc).__name__}; details in {log.log_file(env)}")
            )
            log.exception_debug(f"refresh of {target.label} failed: {reason}")
        for host in target.registries:
            registry_id = found[host].settings.registry_id
            results[host] = RefreshOutcome(host, registry_id, token, reason)

    with ThreadPoolExecutor(FETCH_THREADS, thread_name_prefix="xecr-once") as threads:
        list(threads.map(one, shared(found).values()))
    outcomes = (*(results[host] for host in found), *broken)
    sink_error = None
    if docker_config_dir:
        sink = DockerConfigSink(docker_config_dir, found)
        tokens = {o.host: o.token for o in outcomes if o.token is not None}
        sink_error = sink.put(tokens) if tokens else None
    return OnceResult(outcomes, sink_error)
