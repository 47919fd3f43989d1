"""``xecr policy audit``: which repositories a principal can pull from (or push to).

This module owns the command line of the audit: its options, reading each
repository's policy in scope (:mod:`ecr_helper.policy.bulk`), and printing
:mod:`ecr_helper.policy.audit`'s verdicts one line per repository (or as one
JSON document) with a summary naming the repositories that do not allow it.
Exit 0 when every repository in scope allows it, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from typing import TextIO

from ecr_helper import policy
from ecr_helper.cli import policy_org_cmd
from ecr_helper.errors import AwsError
from ecr_helper.policy import orgs

_LISTED = 20  # repositories named in the summary line before "and N more"


def register(kinds: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = kinds.add_parser(
        "audit",
        help="which repositories a principal can pull from (or push to), read from their policies",
        description="Read each repository's policy as it is and say whether the principal can "
        "pull (or push), by which statement, or why not. Evaluates Allow and Deny, "
        "principals, actions, and the organization conditions with --org; any other "
        "condition is reported as unknown. Exit 0 when every repository in scope allows it. "
        "Only the repository side: a principal of another account also needs its own IAM "
        "policy (xecr policy client).",
    )
    p.add_argument(
        "--principal", required=True, metavar="ID|ARN", help="the account id or role/user ARN"
    )
    p.add_argument(
        "--org",
        metavar="ORG",
        help="the principal's organization id, or its account's OU path "
        "(o-.../r-.../ou-.../), for organization conditions",
    )
    policy_org_cmd.add_scope_options(p)
    p.add_argument("--push", action="store_true", help="audit push (and pull) instead of pull")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    policy_org_cmd.add_admin_options(p)
    p.set_defaults(handler=audit)


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_LISTED])
    return shown + (f" and {len(names) - _LISTED} more" if len(names) > _LISTED else "")


def audit(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from ecr_helper.policy import apply, bulk
    from ecr_helper.policy import audit as audits

    scope, ref = policy_org_cmd.scope_of(args)
    where = policy_org_cmd.admin(
        args, ref.region if ref else None, ref.registry_id if ref else None
    )
    principal = policy.principal_arn(args.principal, where.partition)
    if args.org is not None:
        orgs.target(args.org)  # validates it
    who = audits.caller(principal, args.org)
    wanted = audits.actions(args.push)
    ecr = where.ecr()
    repos = policy_org_cmd.in_scope(ecr, scope, where)

    def judge(repo: bulk.Repository) -> audits.Verdict:
        try:
            doc, _ = apply.read_policy(ecr, repo.name, where.registry_id, where.region)
        except AwsError as exc:
            raise bulk.gone(exc, repo.name) from None
        return audits.evaluate(doc, who, wanted, repo.arn)

    done = bulk.each(
        repos, judge, progress=policy_org_cmd.Progress(err, "repositories read"), sleep=time.sleep
    )
    rows = [
        {
            "repository": d.repository,
            "result": d.value.result if d.value else "error",
            "statements": list(d.value.statements) if d.value else [],
            "reason": d.value.reason if d.value else (d.error or ""),
        }
        for d in done
    ]
    refused = [str(r["repository"]) for r in rows if r["result"] != audits.ALLOWED]
    access = "push" if args.push else "pull"
    if args.json:
        doc = {
            "principal": principal,
            "org": args.org,
            "access": access,
            "actions": list(wanted),
            "registry": where.registry_id,
            "region": where.region,
            "repositories": rows,
            "allowed": len(rows) - len(refused),
            "total": len(rows),
        }
        out.write(json.dumps(doc, indent=2) + "\n")
    else:
        for row in rows:
            out.write(f"{row['repository']}: {row['result']}: {row['reason']}\n")
        allowed = len(rows) - len(refused)
        summary = f"{access} by {principal}: {allowed} of {len(rows)} {scope.describe()} allow it"
        if refused:
            summary += f"; not: {_names(refused)}"
        out.write(summary + "\n")
    return 1 if refused else 0
