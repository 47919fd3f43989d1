"""The program behind both ``docker-credential-xecr`` and ``xecr``.

The only place that reads argv, prints and exits. Docker's protocol verbs are
dispatched before anything else is imported: argparse alone costs more than a
cached ``get`` may spend. Failures are one line (on stdout for the protocol
verbs, which is what Docker shows; on stderr for people's commands), exit 1;
tracebacks go to the log file only.

:func:`run` is the console scripts' entry point: :func:`main`, then, once a
protocol verb has answered, the process ends without the interpreter's
teardown (see :func:`_leave`). On Windows, which xecr does not support (it
needs POSIX file locks and modes), it says so in one line, exit 1.
"""

from __future__ import annotations

import os
import sys

from ecr_helper.errors import NotOurRegistry, XecrError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import NoReturn


UNSUPPORTED_PLATFORM = (
    "xecr: Windows is not supported natively (xecr needs POSIX file locks and permissions); "
    "install and run it inside WSL2 (see the Install section of the README)"
)


def run() -> NoReturn:
    """The console scripts' entry point (``docker-credential-xecr``, ``xecr``)."""
    if sys.platform == "win32":
        # Checked before anything imports fcntl or grp, so a Windows user reads one
        # line instead of a traceback; one comparison costs the cached get nothing.
        sys.stderr.write(UNSUPPORTED_PLATFORM + "\n")
        raise SystemExit(1)
    code = main()
    if _protocol_verb(sys.argv[1:], _is_helper(sys.argv[0])):
        _leave(code)
    raise SystemExit(code)


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    name = os.path.basename(prog or (sys.argv[0] if argv is None else "xecr"))
    helper = _is_helper(name)
    from ecr_helper.frontends.docker import VERBS

    verb = _protocol_verb(args, helper)
    if verb:
        return _protocol(verb)
    if helper and args in (["-v"], ["--version"]):
        from ecr_helper.frontends.docker import version

        sys.stdout.write(version())
        return 0
    if args and args[0] in VERBS and args[0] != "version":
        # docker-credential-helpers answers a wrong call with its usage; a
        # protocol verb answers on stdout, a people's command on stderr (exit 2).
        usage = (
            f"Usage: {name} <store|get|erase|list|version>: {args[0]} takes no arguments; "
            f"send the registry host on stdin (echo HOST | {name} {args[0]})"
        )
        print(
            usage if helper else f"xecr {args[0]}: {usage}",
            file=sys.stdout if helper else sys.stderr,
        )
        return 1 if helper else 2
    from ecr_helper.cli import parser

    if helper and not (
        args and (args[0] in ("-h", "--help", "--version") or args[0] in parser.command_names())
    ):
        # Called as a credential helper with a verb Docker does not send:
        # answer the way the protocol answers failures, one line on stdout.
        verb = args[0] if args else ""
        print(f"{name}: unknown verb {verb!r}: expected one of {', '.join(VERBS)}")
        return 1
    try:
        return parser.run(args, prog=name)
    finally:
        _flush_stdout()


def _is_helper(name: str) -> bool:
    return os.path.basename(name).startswith("docker-credential-")


def _protocol_verb(args: Sequence[str], helper: bool) -> str | None:
    """The protocol verb ``args`` ask for, if they are one.

    `xecr version` is the people's command (argparse); Docker's `version` verb
    is answered when called by the helper's name.
    """
    from ecr_helper.frontends.docker import VERBS

    if len(args) == 1 and args[0] in VERBS and (helper or args[0] != "version"):
        return args[0]
    return None


def _leave(code: int) -> NoReturn:
    """End a process that has answered a protocol verb, skipping the teardown.

    Every ``docker pull`` waits for the helper to exit, and finalizing the
    interpreter (clearing some hundred modules) takes about 4 ms, a tenth of
    the whole cached ``get``. Once the answer is flushed nothing is left to
    finalize: xecr's files are written atomically and closed, no lock is held.
    The normal exit is kept whenever something might need it: another thread
    is alive, or an ``atexit`` hook is registered (the log's handlers, a
    coverage tool, a ``weakref.finalize``).
    """
    import atexit

    pending = getattr(atexit, "_ncallbacks", None)
    threading = sys.modules.get("threading")
    if pending is None or pending() or (threading is not None and threading.active_count() > 1):
        raise SystemExit(code)
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            code = code or 120  # what the interpreter's own flush at exit would answer
    os._exit(code)


def _flush_stdout() -> None:
    """argparse's --help and --version print straight to sys.stdout: a full one is quiet."""
    from ecr_helper.cli.streams import Output

    if sys.stdout is not None:
        Output(sys.stdout).finish()  # says so on stderr when it cannot


def _say_at_pull_time(line: str) -> None:
    """One line on stderr: Docker, skopeo and podman swallow a helper's stdout
    on pull ("no basic auth credentials") but show its stderr to the person."""
    from ecr_helper.cli.output import one_line

    try:
        sys.stderr.write(f"xecr: {one_line(line)}\n")
        sys.stderr.flush()
    except OSError:
        pass


def _protocol(verb: str) -> int:
    from ecr_helper.cli.streams import Output, stdin_bytes
    from ecr_helper.frontends import docker

    # Only the verbs that take input touch stdin: `version` and `list` work without one.
    stdin = stdin_bytes() if verb in ("get", "store", "erase") else None
    code = 1
    try:
        text = docker.run(verb, stdin, os.environ)
        code = 0
    except NotOurRegistry as exc:
        text = f"{exc}\n"
    except XecrError as exc:
        from ecr_helper import log
        from ecr_helper.cli.output import one_line

        log.exception_debug(f"{verb}: {exc}")
        text = one_line(str(exc)) + "\n"
        if verb == "get" and exc.registry:
            _say_at_pull_time(
                f"{exc.registry}: {text.strip()} (`xecr doctor {exc.registry}` checks each step)"
            )
    except KeyboardInterrupt:
        text = f"xecr {verb}: interrupted\n"
    except Exception:
        from ecr_helper import log

        log.error(f"{verb}: unexpected error", exc_info=True)
        line = f"xecr {verb}: internal error; details in {log.log_file(os.environ)}"
        text = line + "\n"
        if verb == "get":
            _say_at_pull_time(line.removeprefix("xecr "))
    out = Output(name=f"docker-credential-xecr {verb}")
    out.write(text)
    return code if out.finish() else 1
