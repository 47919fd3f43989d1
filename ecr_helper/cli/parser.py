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
from typing import TYPE_CHECKING, Any, TextIO, cast

from ecr_helper import __version__
from ecr_helper.cli.output import one_line
from ecr_helper.errors import UsageError, XecrError

if TYPE_CHECKING:
    from collections.abc import Sequence

# Modules under ecr_helper.cli that add subcommands, in help order.
_COMMAND_MODULES = ("login_cmd", "policy_cmd", "setup_cmd", "kubelet_cmd", "daemon_cmd")


def command_names() -> set[str]:
    """Every subcommand name (so the credential-helper name can accept them too)."""
    names: set[str] = set()
    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            names.update(action.choices)
    return names


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xecr",
        description="Docker credential helper and login daemon for Amazon ECR across accounts.",
        epilog="Docker runs this program as docker-credential-xecr with get, list, store, "
        "erase or version.",
    )
    parser.add_argument("-v", "--version", action="version", version=f"xecr {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        module = importlib.import_module(f"ecr_helper.cli.{name}")
        module.register(subparsers)
    return parser


def run(argv: Sequence[str], out: TextIO | None = None, err: TextIO | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(list(argv))
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
