"""The daemon's refreshes: one scheduler thread and a few fetch threads.

However many registries are configured, the daemon runs one scheduler and
:data:`FETCH_THREADS` fetch threads, and one worker per distinct token
(registries of one identity and region share one:
:func:`ecr_helper.daemon.worker.shared`). The scheduler sleeps on the monotonic
clock until the soonest token is due (and at most
:data:`ecr_helper.daemon.schedule.MAX_SLEEP`, so a step of the wall clock is
noticed within seconds), then queues every token that is due
(:meth:`~ecr_helper.daemon.worker.Worker.is_due`); a fetch thread takes the
next one and runs its :meth:`~ecr_helper.daemon.worker.Worker.step`. A
token is never queued twice, and a fetch's own deadline starts when a
thread takes it, not while it waits in the queue. Cold, N distinct tokens
cost N fetches run :data:`FETCH_THREADS` at a time, not N threads and N
sessions at once, and three registries behind one identity cost one.

The scheduler promises :class:`Liveness` to be back after each sleep; each
fetch makes its own promise (the worker's).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterable

from ecr_helper import log
from ecr_helper.daemon import schedule
from ecr_helper.daemon.liveness import Liveness
from ecr_helper.daemon.worker import WAIT_MARGIN, Clocks, Wait, Worker

# Enough to fetch a thousand registries in a minute or two at a few hundred
# ms each, few enough that their sessions, sockets and CPU stay small.
FETCH_THREADS = 4
SCHEDULER = "xecr-scheduler"
_IDLE, _QUEUED, _RUNNING = "idle", "queued", "running"


def _event_wait(wake: threading.Event, seconds: float) -> bool:
    return wake.wait(seconds)


class Pool:
    """Runs the workers' steps when they are due until :meth:`stop`."""

    def __init__(
        self,
        clocks: Clocks,
        wait: Wait | None = None,
        *,
        liveness: Liveness | None = None,
        threads: int = FETCH_THREADS,
    ) -> None:
        self._clocks = clocks
        self._wait: Wait = wait or _event_wait
        self._liveness = liveness
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._state: dict[Worker, str] = {}
        self._queue: queue.SimpleQueue[Worker | None] = queue.SimpleQueue()
        self.threads = [
            threading.Thread(target=self._schedule, name=SCHEDULER, daemon=True),
            *(
                threading.Thread(target=self._fetch, name=f"xecr-pool-{n}", daemon=True)
                for n in range(max(1, threads))
            ),
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def add(self, worker: Worker) -> None:
        with self._lock:
            self._state[worker] = _IDLE
        self._wake.set()

    def remove(self, worker: Worker) -> None:
        """Stop ``worker``; a step in flight ends on its own and is not run again."""
        worker.stop()
        with self._lock:
            self._state.pop(worker, None)

    def workers(self) -> Iterable[Worker]:
        with self._lock:
            return list(self._state)

    def stop(self, grace: float) -> bool:
        """Stop every thread; True when all ended within ``grace`` seconds."""
        self._stop.set()
        self._wake.set()
        for worker in self.workers():
            self.remove(worker)
        for _ in self.threads[1:]:
            self._queue.put(None)
        if self._liveness is not None:
            self._liveness.forget(SCHEDULER)
        deadline = time.monotonic() + grace
        for thread in self.threads:
            if thread.ident is not None:
                thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self.threads)

    def _schedule(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            pause = self._dispatch()
            if pause is None:
                # Every registry is queued or fetching: wait for one to come back.
                self._promise(schedule.MAX_SLEEP + WAIT_MARGIN)
                self._wake.wait(schedule.MAX_SLEEP)
                continue
            self._promise(pause + WAIT_MARGIN)
            if pause > 0:
                self._wait(self._wake, pause)

    def _dispatch(self) -> float | None:
        """Queue every idle registry that is due; the pause until the next one is
        (at most MAX_SLEEP), or None when none is idle."""
        wall, mono = self._clocks.wall(), self._clocks.monotonic()
        pause: float | None = None
        with self._lock:
            for worker, state in self._state.items():
                if state != _IDLE:
                    continue
                if worker.is_due(wall, mono):
                    self._state[worker] = _QUEUED
                    self._queue.put(worker)
                    continue
                left = schedule.sleep_for(worker.remaining(wall, mono))
                pause = left if pause is None else min(pause, left)
        return pause

    def _fetch(self) -> None:
        while True:
            worker = self._queue.get()
            if worker is None or self._stop.is_set():
                return
            with self._lock:
                if self._state.get(worker) != _QUEUED:
                    continue  # removed by a reload while it waited
                self._state[worker] = _RUNNING
            try:
                worker.step()
            except Exception:  # a bug in one step must not end the thread
                log.exception_debug(f"refresh of {worker.target.label} failed")
            with self._lock:
                if worker in self._state:
                    self._state[worker] = _IDLE
            self._wake.set()

    def _promise(self, within: float) -> None:
        if self._liveness is not None and not self._stop.is_set():
            self._liveness.promise(SCHEDULER, within)
