"""``xecr policy`` at registry scale: ``repository --all|--prefix`` and ``template``.

This module owns the command-line side of acting on many repositories (or a
creation template) as the registry account: the registry-admin options
(``--region``, ``--registry-id``, ``--role-arn`` chain, ``--external-id``,
``--profile``), the scope (``--all``, ``--prefix``, ``--repository``), the
progress count on stderr, and what is printed per repository. The work is
:mod:`ecr_helper.policy.bulk`'s, :mod:`~ecr_helper.policy.template`'s and
:mod:`~ecr_helper.policy.audit`'s.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from ecr_helper import policy
from ecr_helper.errors import PolicyError, UsageError
from ecr_helper.policy import orgs
from ecr_helper.registry import is_region, is_registry_id, region_partition

if TYPE_CHECKING:
    from ecr_helper.policy import bulk

_ORG = "ORG"


def add_admin_options(p: argparse.ArgumentParser) -> None:
    """The options of acting as the registry account, shared by every acting command."""
    p.add_argument(
        "--region",
        help="the registry's region; decides the partition of account "
        "ids (default: AWS_REGION, AWS_DEFAULT_REGION)",
    )
    p.add_argument(
        "--registry-id",
        metavar="ID",
        help="the registry's account id (default: the account of --role-arn, "
        "else the credentials' own)",
    )
    p.add_argument(
        "--role-arn",
        action="append",
        default=[],
        metavar="ARN",
        help="act through this role of the registry account (repeat for a chain)",
    )
    p.add_argument("--external-id", metavar="ID", help="external id for the last --role-arn")
    p.add_argument("--profile", metavar="NAME", help="AWS profile of the source credentials")


def add_org_options(p: argparse.ArgumentParser) -> None:
    for flag, level in (("--pull-org", "pull"), ("--push-org", "push and pull")):
        p.add_argument(
            flag,
            nargs="+",
            action="extend",
            default=[],
            metavar=_ORG,
            help=f"organizations (o-...) or OU paths (o-.../r-.../ou-...) whose accounts may "
            f"{level} (aws:PrincipalOrgID / aws:PrincipalOrgPaths)",
        )


def register(kinds: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = kinds.add_parser(
        "template",
        help="merge grants into a repository creation template, for repositories to come",
        description="Merge a repository policy granting pull (or push) into the ECR "
        "repository creation template of a prefix (creating the template when the prefix "
        "has none), so repositories ECR creates under it (on push, by pull-through cache, by "
        "replication) start with the grant. Same merge rules as `repository --apply`.",
    )
    for flag, level in (("--pull", "pull"), ("--push", "push and pull")):
        p.add_argument(
            flag,
            nargs="+",
            action="extend",
            default=[],
            metavar="ID|ARN",
            help=f"accounts (12 digits) or IAM role/user ARNs that may {level}",
        )
    add_org_options(p)
    p.add_argument(
        "--prefix", required=True, help="the template's repository namespace (team/) or ROOT"
    )
    p.add_argument(
        "--applied-for",
        nargs="+",
        action="extend",
        default=[],
        metavar="KIND",
        help="CREATE_ON_PUSH, PULL_THROUGH_CACHE, REPLICATION (a new template gets all three; "
        "these are added to an existing one's)",
    )
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--apply", action="store_true", help="write the template")
    mode.add_argument("--dry-run", action="store_true", help="show the change, write nothing")
    add_admin_options(p)
    p.set_defaults(handler=template)


def add_scope_options(p: argparse.ArgumentParser, required: bool = True) -> None:
    group = p.add_mutually_exclusive_group(required=required)
    group.add_argument("--all", action="store_true", help="every repository of the registry")
    group.add_argument("--prefix", metavar="P", help="the repositories whose name starts with P")
    group.add_argument(
        "--repository", metavar="NAME", help="one repository: a name, its URI or its ARN"
    )


@dataclass(frozen=True)
class Admin:
    """Where and as whom to act, from the registry-admin options."""

    region: str
    partition: str
    registry_id: str | None
    roles: tuple[str, ...]
    external_id: str | None
    profile: str | None

    def ecr(self) -> Any:
        from ecr_helper import aws

        # More attempts than a login's: a registry-wide run meets throttling.
        timeouts = aws.Timeouts(connect=2.0, read=10.0, attempts=5)
        return aws.make_client(
            "ecr",
            self.region,
            role_arns=self.roles,
            external_id=self.external_id,
            source_profile=self.profile,
            timeouts=timeouts,
        )

    @property
    def where(self) -> str:
        registry = f"registry {self.registry_id}" if self.registry_id else "the default registry"
        return f"{registry} ({self.region})"


def region_of(given: str | None, env: Mapping[str, str]) -> str | None:
    """--region, else AWS_REGION, else AWS_DEFAULT_REGION; refused if not a region name."""
    region = given or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None
    if region is not None and not is_region(region):
        raise UsageError(f"invalid region {region!r} (expected a region name like us-east-1)")
    return region


def admin(
    args: argparse.Namespace, region: str | None = None, registry: str | None = None
) -> Admin:
    """The registry-admin options, validated (``region``/``registry`` implied by a URI)."""
    for flag, given, implied in (
        ("--registry-id", args.registry_id, registry),
        ("--region", args.region, region),
    ):
        if given and implied and given != implied:
            raise UsageError(f"{flag} {given} contradicts --repository {args.repository}")
    if args.registry_id and not is_registry_id(args.registry_id):
        raise UsageError(f"invalid --registry-id {args.registry_id!r}: expected 12 digits")
    roles = tuple(policy.role_arn(r) for r in args.role_arn)
    external = policy.external_id(args.external_id) if args.external_id else None
    if external and not roles:
        raise UsageError("--external-id goes with --role-arn")
    where = region or region_of(args.region, os.environ)
    if not where:
        raise UsageError("no region: pass --region (or set AWS_REGION)")
    registry_id = (
        args.registry_id or registry or (policy.role_account(roles[-1]) if roles else None)
    )
    return Admin(where, region_partition(where), registry_id, roles, external, args.profile)


def grant(args: argparse.Namespace, partition: str) -> policy.Grants:
    given = policy.grants(args.pull, args.push, partition)
    return orgs.with_orgs(given, args.pull_org, args.push_org)


class Progress:
    """A count on stderr: rewritten in place on a terminal, else a line per quarter."""

    def __init__(self, err: TextIO, what: str, clock: Callable[[], float] = time.monotonic) -> None:
        self._err = err
        self._what = what
        self._clock = clock
        self._tty = bool(getattr(err, "isatty", lambda: False)())
        self._shown = -1.0
        self._quarter = 0

    def __call__(self, done: int, total: int) -> None:
        if total < 20:
            return  # a short run needs no progress
        if self._tty:
            now = self._clock()
            if done == total or now - self._shown >= 0.1:
                self._shown = now
                end = "\n" if done == total else ""
                self._err.write(f"\rxecr policy: {self._what} {done}/{total}{end}")
                self._err.flush()
            return
        quarter = done * 4 // total
        if quarter > self._quarter:
            self._quarter = quarter
            self._err.write(f"xecr policy: {self._what} {done}/{total}\n")


def scope_of(args: argparse.Namespace) -> tuple[bulk.Scope, policy.RepositoryRef | None]:
    from ecr_helper.policy import bulk

    if args.repository:
        ref = policy.repository_ref(args.repository)
        return bulk.Scope(name=ref.name), ref
    if args.prefix is not None:
        return bulk.Scope(prefix=bulk.prefix(args.prefix)), None
    return bulk.Scope(), None


def in_scope(ecr: Any, scope: bulk.Scope, where: Admin) -> list[bulk.Repository]:
    from ecr_helper.policy import bulk

    repos = bulk.repositories(ecr, scope, where.registry_id, where.region)
    if not repos:
        raise PolicyError(
            f"no {scope.describe()} in {where.where}: check --prefix, --registry-id, "
            "--region and --role-arn"
        )
    return repos


def repositories(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``policy repository --all|--prefix --apply|--dry-run``."""
    from ecr_helper.policy import bulk

    scope, _ = scope_of(args)
    where = admin(args)
    given = grant(args, where.partition)
    ecr = where.ecr()
    repos = in_scope(ecr, scope, where)
    done = bulk.apply_all(
        ecr,
        repos,
        registry_id=where.registry_id,
        region=where.region,
        partition=where.partition,
        grant=given,
        dry_run=args.dry_run,
        sleep=time.sleep,
        progress=Progress(err, "repositories"),
    )
    counts = {"set": 0, "unchanged": 0, "failed": 0}
    for item in done:
        if item.value is None:
            counts["failed"] += 1
            err.write(f"xecr policy: repository {item.repository}: {item.error}\n")
        elif not item.value.changed:
            counts["unchanged"] += 1
            out.write(f"{item.repository}: already grants this\n")
        elif item.value.written:
            counts["set"] += 1
            out.write(f"{item.repository}: policy set\n")
        else:
            counts["set"] += 1
            out.write(item.value.diff)
            out.write(f"{item.repository}: would change (dry run)\n")
    verb = "would change" if args.dry_run else "set"
    out.write(
        f"{len(repos)} {scope.describe()} in {where.where}: {counts['set']} {verb}, "
        f"{counts['unchanged']} already granted, {counts['failed']} failed"
        + ("; nothing written\n" if args.dry_run else "\n")
    )
    return 1 if counts["failed"] else 0


def template(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from ecr_helper.policy import template as templates

    prefix = templates.prefix(args.prefix)
    applied = templates.applied_for(args.applied_for)
    where = admin(args)
    given = grant(args, where.partition)
    if not (given.pull or given.push or given.pull_orgs or given.push_orgs):
        raise UsageError(
            "name at least one principal or organization: --pull, --push, --pull-org or --push-org"
        )
    outcome = templates.apply(
        where.ecr(),
        prefix=prefix,
        region=where.region,
        partition=where.partition,
        grant=given,
        applied=applied,
        dry_run=args.dry_run,
        registry_id=where.registry_id,
    )
    out.write(outcome.diff)
    if not outcome.changed:
        out.write(f"{outcome.where} already grants this: nothing to change\n")
    elif outcome.written:
        verb = "updated" if outcome.exists else "created"
        out.write(f"{verb} {outcome.where} (applied for {', '.join(outcome.applied_for)})\n")
    else:
        out.write(f"dry run: nothing written to {outcome.where}\n")
    return 0
