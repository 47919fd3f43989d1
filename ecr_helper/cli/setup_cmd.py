"""``xecr configure``, ``status`` and ``doctor``: setting xecr up and checking it.

The work is in :mod:`ecr_helper.setup.configure`, :mod:`ecr_helper.setup.status`
and :mod:`ecr_helper.setup.doctor`; this module parses and prints."""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import TextIO


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "configure",
        help="add or update a registry in the config and route it to xecr in Docker's config",
        description="Create or update REGISTRY's section of the config file (comments and "
        'other sections are kept) and add credHelpers[REGISTRY] = "xecr" to Docker\'s '
        "config.json. Options not given leave the file's values alone.",
    )
    p.add_argument(
        "registry",
        metavar="REGISTRY",
        help="an ECR host (ID.dkr.ecr.REGION.amazonaws.com) or an alias host",
    )
    p.add_argument(
        "--role-arn",
        dest="role_arns",
        action="append",
        default=[],
        metavar="ARN",
        help="role to assume; repeat for a chain, in order (the last is the "
        "registry account's role)",
    )
    p.add_argument("--external-id", metavar="ID", help="external id for the last role")
    p.add_argument(
        "--registry-id",
        metavar="ID",
        help="the registry's 12-digit account id (required for an alias host)",
    )
    p.add_argument("--region", metavar="R", help="the registry's region (required for an alias)")
    p.add_argument("--source-profile", metavar="P", help="AWS profile with the source credentials")
    p.add_argument("--role-session-name", metavar="N", help="session name for the last role")
    p.add_argument(
        "--system", action="store_true", help="edit the machine-wide config file instead of yours"
    )
    p.add_argument(
        "--no-docker", dest="docker", action="store_false", help="leave Docker's config.json alone"
    )
    p.set_defaults(handler=configure)

    p = subparsers.add_parser(
        "status",
        help="show registries, cached tokens and the daemon",
        description="One row per configured or cached registry: its account, region, "
        "roles, when its cached token expires and whether `get` would serve it, then the "
        "last failed fetch of each (until a fetch succeeds) and whether the daemon runs. "
        "Reads files only: no AWS call.",
        epilog="""example:
  xecr status --json | jq '.[] | select(.state != "fresh")'""",
    )
    p.add_argument("--json", action="store_true", help="a JSON array, one object per registry")
    p.set_defaults(handler=status)

    p = subparsers.add_parser(
        "doctor",
        help="check config, credentials, roles, token, Docker's config and cache, live",
        description="Check each step a pull goes through, live: the config, the source "
        "credentials, each role, the token, Docker's config and the cache. One PASS, WARN "
        "or FAIL line per check, with what to fix; exit 1 when a check fails.",
        epilog="""example:
  xecr doctor 111111111111.dkr.ecr.us-east-1.amazonaws.com
  xecr doctor --no-docker                     # on a kubelet node""",
    )
    p.add_argument(
        "registries",
        nargs="*",
        metavar="REGISTRY",
        help="registries to check (default: every configured registry)",
    )
    p.add_argument(
        "--no-docker",
        dest="docker",
        action="store_false",
        help="skip Docker's config (for kubelet nodes)",
    )
    p.set_defaults(handler=doctor)


def configure(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from ecr_helper.setup import configure as core

    request = core.Request(
        registry=args.registry,
        role_arns=tuple(args.role_arns),
        external_id=args.external_id,
        registry_id=args.registry_id,
        region=args.region,
        source_profile=args.source_profile,
        role_session_name=args.role_session_name,
        system=args.system,
        docker=args.docker,
    )
    result = core.configure(request, os.environ)
    for line in result.lines():
        out.write(line + "\n")
    return 0


def status(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from ecr_helper.setup import status as core

    now = time.time()
    rows, daemon = core.collect(os.environ, lambda: now)
    if args.json:
        out.write(json.dumps([row.to_json() for row in rows], indent=2) + "\n")
    else:
        out.write(core.table(rows, daemon, now))
    return 0


def doctor(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from ecr_helper.setup import doctor as core

    checks = core.run(os.environ, args.registries, docker=args.docker)
    for check in checks:
        out.write(check.line() + "\n")
        out.flush()
    return 0 if core.passed(checks) else 1
