"""People's commands (``xecr login``, ``status``, ``daemon``...), parsed with argparse.

Each command lives in a ``cli`` module of its own that exposes
``register(subparsers)``; the parser it adds sets ``handler`` to a function
``(args, out, err) -> int``. Usage errors exit 2, failures 1.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import textwrap
from typing import TYPE_CHECKING, Any, TextIO, cast

from ecr_helper import __version__
from ecr_helper.cli.output import one_line
from ecr_helper.errors import UsageError, XecrError

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

# Modules under ecr_helper.cli that add subcommands, in help order.
_COMMAND_MODULES = ("login_cmd", "policy_cmd", "setup_cmd", "kubelet_cmd", "daemon_cmd")


def command_names() -> set[str]:
    """Every subcommand name (so the credential-helper name can accept them too)."""
    names: set[str] = set()
    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            names.update(action.choices)
    return names


class HelpFormatter(argparse.HelpFormatter):
    """Descriptions and epilogs: runs of plain lines are re-wrapped as paragraphs,
    indented lines (examples) are printed as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        out: list[str] = []
        words: list[str] = []

        def flush() -> None:
            if words:
                out.append(
                    textwrap.fill(
                        " ".join(words),
                        width,
                        initial_indent=indent,
                        subsequent_indent=indent,
                        break_on_hyphens=False,
                    )
                )
                words.clear()

        for line in textwrap.dedent(text).strip("\n").splitlines():
            if line[:1].isspace():
                flush()
                out.append(indent + line)
            elif not line.strip():
                flush()
                out.append("")
            else:
                words.extend(line.split())
        flush()
        return "\n".join(out)


def parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """``parser`` and every subcommand's parser under it, depth first."""
    yield parser
    seen: set[int] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                if id(sub) not in seen:
                    seen.add(id(sub))
                    yield from parsers(sub)


def build_parser(prog: str = "xecr") -> argparse.ArgumentParser:
    """The whole command line; ``prog`` is the name it was run by (``docker-credential-xecr``
    answers people's commands too)."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Docker credential helper and login daemon for Amazon ECR across accounts.",
        epilog="Docker runs this program as docker-credential-xecr with get, list, store, "
        "erase or version.",
    )
    parser.add_argument("-v", "--version", action="version", version=f"xecr {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        module = importlib.import_module(f"ecr_helper.cli.{name}")
        module.register(subparsers)
    for each in parsers(parser):
        each.formatter_class = HelpFormatter
        # The deepest command parsed wins: a bad option gets that command's usage.
        each.set_defaults(usage_parser=each)
    return parser


def run(
    argv: Sequence[str],
    out: TextIO | None = None,
    err: TextIO | None = None,
    prog: str = "xecr",
) -> int:
    parser = build_parser(prog)
    args, unknown = parser.parse_known_args(list(argv))
    if unknown:
        # argparse would answer with the top-level usage; name the command's own.
        args.usage_parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(err or sys.stderr)
        return 2
    if out is not None:
        return _run(args, handler, out, err or sys.stderr)
    # A closed, full or broken stdout costs one line on stderr, not a traceback.
    from ecr_helper.cli.streams import Output

    safe = Output(name=f"xecr {args.command}")
    code = _run(args, handler, cast("TextIO", safe), err or sys.stderr)
    return code if safe.finish() else 1


def _run(args: argparse.Namespace, handler: Any, out: TextIO, err: TextIO) -> int:
    try:
        return int(handler(args, out, err))
    except UsageError as exc:
        print(f"xecr {args.command}: {exc}", file=err)
        return 2
    except XecrError as exc:
        from ecr_helper import log

        log.exception_debug(f"{args.command}: {exc}")
        print(one_line(f"xecr {args.command}: {exc}"), file=err)
        return 1
    except KeyboardInterrupt:
        print(f"xecr {args.command}: interrupted", file=err)
        return 1
    except Exception:
        from ecr_helper import log

        log.error(f"{args.command}: unexpected error", exc_info=True)
        print(
            f"xecr {args.command}: internal error; details in {log.log_file(os.environ)}",
            file=err,
        )
        return 1
