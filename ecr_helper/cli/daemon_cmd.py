"""``xecr daemon [--once] [--write-docker-config DIR] [--listen HOST:PORT]``: the
login daemon's command.

Runs in the foreground (systemd and launchd supervise it) and owns what only a
program may own: signal handlers (SIGTERM and SIGINT stop, SIGHUP reloads),
the copy of the log on stderr for journald and launchd, and the exit. With
``--listen`` it also starts the metrics and health listener, importing
``prometheus_client`` only then.
"""

from __future__ import annotations

import argparse
import logging
import os
import queue
import signal
from datetime import UTC, datetime
from types import FrameType
from typing import TYPE_CHECKING, TextIO

from ecr_helper import human, log
from ecr_helper.daemon import loop
from ecr_helper.errors import UsageError

if TYPE_CHECKING:
    from ecr_helper.daemon.http import Listener


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "daemon",
        help="keep every configured registry's token fresh (runs in the foreground)",
        description="Fetch every configured registry's token now, then refresh each one "
        "past half its lifetime, so `get` is always served from the cache. "
        "SIGTERM/SIGINT stop it, SIGHUP reloads the config.",
    )
    p.add_argument(
        "--once",
        action="store_true",
        help="refresh every configured registry once, then exit "
        "(0 when all succeeded): for cron and boot scripts",
    )
    p.add_argument(
        "--write-docker-config",
        metavar="DIR",
        help="also keep `auths` entries for the configured registries in "
        "DIR/config.json, for tools that cannot run credential helpers",
    )
    p.add_argument(
        "--listen",
        metavar="HOST:PORT",
        help="serve GET /metrics (Prometheus) and GET /healthz on HOST:PORT "
        "(PORT or :PORT alone: 127.0.0.1)",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    sink: str | None = args.write_docker_config
    if sink is not None and not sink.strip():
        raise UsageError("--write-docker-config needs a folder")
    if sink is not None:
        from ecr_helper.daemon.docker_sink import check_folder

        check_folder(sink)  # a folder tokens must not go to stops the start, before any AWS call
    listen: tuple[str, int] | None = None
    if args.listen is not None:
        if args.once:
            raise UsageError("--listen serves a running daemon; it does not go with --once")
        from ecr_helper.daemon.http import parse_listen

        listen = parse_listen(args.listen)
    if args.once:
        return _once(sink, out, err)
    commands: queue.SimpleQueue[str] = queue.SimpleQueue()
    # Before anything slow: a supervisor's SIGTERM during start-up must still stop us cleanly.
    previous = _install_signals(commands)
    log.setup(os.environ)
    handler = _stderr_handler(err)
    listener: Listener | None = None
    try:
        service = loop.Daemon(os.environ, docker_config_dir=sink)
        service.open()
        if listen is not None:
            listener = _listen(service, *listen)
        log.info(
            f"started (pid {os.getpid()}): {human.count(len(service.targets), 'registry')}, "
            f"cache folder {service.folder}"
            + (f", /metrics and /healthz on {listener.url}" if listener else "")
        )
        ended = service.serve(commands)
        log.info("stopped")
    finally:
        if listener is not None:
            listener.close()
        logging.getLogger(log.LOGGER).removeHandler(handler)
        for signum, old in previous.items():
            signal.signal(signum, old)
    if not ended:
        # A worker is still inside an AWS call. Its writes are atomic, so leaving
        # now is safe, whereas finalizing the interpreter under a running thread
        # that may write to stderr can abort it.
        for h in logging.getLogger(log.LOGGER).handlers:
            h.flush()
        out.flush()
        err.flush()
        os._exit(0)
    return 0


def _listen(service: loop.Daemon, host: str, port: int) -> Listener:
    """Bind the listener before the first refresh, so a taken port fails the start."""
    from ecr_helper import aws
    from ecr_helper.daemon import http, metrics

    gauges = metrics.Metrics(service.views)
    service.observe(gauges)
    aws.SESSION_HOOKS.append(gauges.instrument)
    return http.Listener(host, port, http.routes(service.views, gauges.page)).start()


def _once(sink: str | None, out: TextIO, err: TextIO) -> int:
    result = loop.run_once(os.environ, docker_config_dir=sink)
    for outcome in result.outcomes:
        if outcome.token is not None:
            expires = datetime.fromtimestamp(outcome.token.expires_at, UTC)
            out.write(
                f"refreshed {outcome.host} "
                f"({f'registry {outcome.registry_id}' if outcome.registry_id else 'ECR Public'}), "
                f"token expires {expires.isoformat(timespec='seconds')}\n"
            )
        else:
            err.write(f"xecr daemon: {outcome.host}: {outcome.error}\n")
    if result.sink_error:
        err.write(f"xecr daemon: {result.sink_error}\n")
    return 0 if result.ok else 1


def _install_signals(
    commands: queue.SimpleQueue[str],
) -> dict[int, signal._HANDLER]:
    # SimpleQueue.put is safe in a signal handler: the handler does nothing else.
    def on_signal(signum: int, frame: FrameType | None) -> None:
        commands.put(loop.RELOAD if signum == getattr(signal, "SIGHUP", None) else loop.STOP)

    previous: dict[int, signal._HANDLER] = {}
    wanted = [signal.SIGTERM, signal.SIGINT]
    if hasattr(signal, "SIGHUP"):
        wanted.append(signal.SIGHUP)
    for signum in wanted:
        previous[signum] = signal.signal(signum, on_signal)
    return previous


def _stderr_handler(err: TextIO) -> logging.Handler:
    """The log's lines on stderr too, redacted like the file's."""
    handler = logging.StreamHandler(err)
    handler.addFilter(log.RedactingFilter())
    handler.setFormatter(logging.Formatter("xecr daemon: %(levelname)s %(message)s"))
    logging.getLogger(log.LOGGER).addHandler(handler)
    return handler
