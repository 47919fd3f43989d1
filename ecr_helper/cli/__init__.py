"""The program behind both ``docker-credential-xecr`` and ``xecr``.

The only place that reads argv, prints and exits. Docker's protocol verbs are
dispatched before anything else is imported: argparse alone costs more than a
cached ``get`` may spend. Failures are one line (on stdout for the protocol
verbs, which is what Docker shows; on stderr for people's commands), exit 1;
tracebacks go to the log file only.
"""

from __future__ import annotations

import os
import sys

from ecr_helper.errors import NotOurRegistry, XecrError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    name = os.path.basename(prog or (sys.argv[0] if argv is None else "xecr"))
    helper = name.startswith("docker-credential-")
    from ecr_helper.frontends.docker import VERBS

    # `xecr version` is the people's command (argparse); Docker's `version` verb
    # is answered when called by the helper's name.
    if len(args) == 1 and args[0] in VERBS and (helper or args[0] != "version"):
        return _protocol(args[0])
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
        return parser.run(args)
    finally:
        _flush_stdout()


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
