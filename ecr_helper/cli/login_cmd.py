"""``xecr login``, ``logout``, ``get-login-password`` and ``version``.

A token is its identity's for a region, shared by every registry whose
settings give the same cache key: ``login`` fetches it once for all of them,
and ``logout HOST`` forgets it for all of them (and says which), along with
the tokens the kubelet mode fetched as pods' roles for it.
"""

from __future__ import annotations

import argparse
import os
from typing import TextIO

from ecr_helper import __version__, config, log
from ecr_helper.cli.output import one_line
from ecr_helper.config import RegistrySettings
from ecr_helper.errors import InputError, NotOurRegistry, UsageError, XecrError
from ecr_helper.service import Service
from ecr_helper.setup import status
from ecr_helper.token import Token


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "login",
        help="fetch and cache tokens now",
        description="Fetch a new token for each REGISTRY now (assuming its roles), whatever "
        "the cache holds, and cache it for Docker's `get`. Each failure is one line "
        "naming the registry; `xecr status` shows it until a fetch succeeds.",
        epilog="""example:
  xecr login                                  # every configured registry
  xecr login 111111111111.dkr.ecr.us-east-1.amazonaws.com""",
    )
    p.add_argument(
        "registries",
        nargs="*",
        metavar="REGISTRY",
        help="registry hosts (default: every configured registry)",
    )
    p.set_defaults(handler=login)
    p = subparsers.add_parser(
        "logout",
        help="forget cached tokens",
        description="Remove the cached tokens of each REGISTRY (all of them when none is "
        "named). The config is kept: the next pull fetches a new token.",
        epilog="""example:
  xecr logout public.ecr.aws""",
    )
    p.add_argument(
        "registries",
        nargs="*",
        metavar="REGISTRY",
        help="registry hosts (default: every configured or cached registry)",
    )
    p.set_defaults(handler=logout)
    p = subparsers.add_parser(
        "get-login-password",
        help="print a registry's password, for docker login --password-stdin",
        description="Print the password of REGISTRY's token (cached, or fetched now) on "
        "stdout, for tools that log in themselves (the user name is AWS).",
        epilog="""example:
  xecr get-login-password 111111111111.dkr.ecr.us-east-1.amazonaws.com |
    helm registry login --username AWS --password-stdin \\
      111111111111.dkr.ecr.us-east-1.amazonaws.com""",
    )
    p.add_argument("registry", metavar="REGISTRY")
    p.set_defaults(handler=get_login_password)
    p = subparsers.add_parser(
        "version", help="print the version", description="Print xecr's version."
    )
    p.set_defaults(handler=lambda args, out, err: out.write(f"xecr {__version__}\n") and 0)


def _targets(args: argparse.Namespace, loaded: config.Config) -> list[str]:
    names: list[str] = list(args.registries) or loaded.hosts()
    if not names:
        raise UsageError("no registry named and none configured (see `xecr configure`)")
    return names


def resolve(loaded: config.Config, name: str) -> RegistrySettings:
    """A registry's settings; an unknown host is named (Docker's "not found" text is not)."""
    try:
        return loaded.resolve(name)
    except NotOurRegistry:
        raise _unknown(name, loaded) from None


def _unknown(name: str, loaded: config.Config) -> XecrError:
    from ecr_helper.registry import misnumbered_id, normalize

    try:
        misnumbered = misnumbered_id(normalize(name))
    except InputError:
        misnumbered = None
    if misnumbered is not None:  # a typo in an ECR host, not an alias to configure
        return XecrError(f"{name!r} is not an ECR host: {misnumbered}")
    where = loaded.path or "the config (there is no config file)"
    return XecrError(
        f"{name!r} is neither an ECR host nor a registry in {where}: add it with "
        f"`xecr configure {name} --registry-id ID --region REGION`"
    )


def login(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Every registry is tried, with a line each; one failure does not stop the rest.
    A token shared by several of them is fetched once."""
    opened = Service.open(os.environ)
    failed = 0
    done: dict[str, tuple[str, Token]] = {}  # cache key -> (host fetched for, token)
    for name in _targets(args, opened.config):
        shared = ""
        try:
            settings = resolve(opened.config, name)
            key = opened.key(settings)
            if key in done:
                first, token = done[key]
                shared = f", sharing the token of {first} (one token per identity and region)"
            else:
                token = opened.renew(settings)
                done[key] = (settings.host, token)
        except XecrError as exc:
            log.exception_debug(f"login {name}: {exc}")
            reason = str(exc)
        except Exception:
            log.error(f"login {name}: unexpected error", exc_info=True)
            reason = f"internal error; details in {log.log_file(os.environ)}"
        else:
            out.write(
                f"logged in to {settings.host} ({settings.subject}){shared}, "
                f"token expires {status.iso(token.expires_at)}\n"
            )
            out.flush()
            continue
        failed += 1
        err.write(one_line(f"xecr login: {_printable(name)}: {reason}") + "\n")
        err.flush()
    return 1 if failed else 0


def _printable(name: str) -> str:
    return name if name.isprintable() else name.encode("unicode_escape").decode("ascii")


def logout(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    opened = Service.open(os.environ)
    store = opened.store
    if args.registries:
        forgotten: dict[str, str] = {}  # cache key -> the host it was forgotten for
        for name in args.registries:
            settings = resolve(opened.config, name)
            out.write(_forget(opened, settings, forgotten) + "\n")
        return 0
    entries = store.entries()
    for key, token in entries.items():
        store.delete(key)
        who = f" (pod role, service account {token.account})" if token.account else ""
        out.write(f"{token.registry}: token forgotten{who}{_shared_with(opened, token)}\n")
    if not entries:
        out.write("nothing cached\n")
    return 0


def _shared_with(opened: Service, token: Token) -> str:
    """``, shared with A, B`` when configured registries were served ``token`` too."""
    try:
        siblings = opened.siblings(opened.settings(token.registry))
    except XecrError:
        return ""  # a host no longer configured: nothing to name
    return f", shared with {', '.join(siblings)}" if siblings else ""


def _forget(opened: Service, settings: RegistrySettings, forgotten: dict[str, str]) -> str:
    """Forget ``settings``' token and its pod-role tokens; the line that says what went."""
    key = opened.key(settings)
    if key in forgotten:
        return f"{settings.host}: token already forgotten with {forgotten[key]} (it was shared)"
    removed = opened.forget(settings)
    pods = opened.forget_pods(settings)
    forgotten[key] = settings.host
    siblings = opened.siblings(settings)
    line = f"{settings.host}: {'token forgotten' if removed else 'nothing cached'}"
    if removed and siblings:
        line += (
            f", for {', '.join(siblings)} too (they shared it: one token per identity and region)"
        )
    if pods:
        line += (
            f"; {pods} pod-role token{'s' if pods > 1 else ''} forgotten (kubelet service accounts)"
        )
    return line


def get_login_password(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    opened = Service.open(os.environ)
    try:
        _, token = opened.token_for(args.registry)
    except NotOurRegistry:
        raise _unknown(args.registry, opened.config) from None
    out.write(token.secret + "\n")
    return 0
