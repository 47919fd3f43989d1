"""``xecr policy repository|client|trust``: print cross-account policies, or apply one.

``template`` and ``audit``, and ``repository`` over many repositories, are
:mod:`ecr_helper.cli.policy_org_cmd`'s and :mod:`ecr_helper.cli.policy_audit_cmd`'s.

``repository`` prints the central repository's policy, or with ``--apply``
(``--dry-run``) merges the grants into the repository's current policy,
shows the difference and writes it (or not). ``client`` prints a consumer's
IAM policy, ``trust`` a registry role's trust policy.
"""

from __future__ import annotations

import argparse
import os
from typing import TextIO

from ecr_helper import policy
from ecr_helper.cli import policy_audit_cmd, policy_org_cmd
from ecr_helper.errors import UsageError
from ecr_helper.registry import region_partition

_PRINCIPAL = "ID|ARN"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    top = subparsers.add_parser(
        "policy",
        help="print (or apply) the policies of a cross-account ECR set-up",
        description="Print the policies a cross-account ECR set-up needs, or merge a "
        "repository policy into the one a repository has (one, every one under a prefix, "
        "or all), into a repository creation template, and audit who can pull.",
    )
    top.set_defaults(handler=lambda args, out, err: _usage(top, err))
    kinds = top.add_subparsers(dest="kind", metavar="KIND")

    p = kinds.add_parser(
        "repository",
        help="the central repository's policy granting pull/push to accounts, roles "
        "and organizations",
        description="Print a repository policy granting pull (or push and pull) to accounts "
        "and roles, or to every account of an AWS Organization or OU (--pull-org, "
        "--push-org). With --apply, merge it into the current policy of --repository, of "
        "every repository under --prefix, or of --all (xecr's statements are added or "
        "updated, every other statement is kept), show the difference and set it where "
        "something changes; --dry-run shows the difference only.",
    )
    p.add_argument(
        "--pull",
        nargs="+",
        action="extend",
        default=[],
        metavar=_PRINCIPAL,
        help="accounts (12 digits) or IAM role/user ARNs that may pull",
    )
    p.add_argument(
        "--push",
        nargs="+",
        action="extend",
        default=[],
        metavar=_PRINCIPAL,
        help="accounts or IAM role/user ARNs that may push and pull",
    )
    policy_org_cmd.add_org_options(p)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--apply", action="store_true", help="merge into the repositories' policies and set them"
    )
    mode.add_argument(
        "--dry-run", action="store_true", help="show what --apply would change, write nothing"
    )
    policy_org_cmd.add_scope_options(p, required=False)
    policy_org_cmd.add_admin_options(p)
    p.set_defaults(handler=repository)

    p = kinds.add_parser(
        "client",
        help="the IAM policy a consumer principal needs",
        description="Print the IAM policy a consumer role or user needs: "
        "ecr:GetAuthorizationToken, and pull (or push) on the repository; with --public, "
        "ecr-public:GetAuthorizationToken and sts:GetServiceBearerToken for ECR Public.",
    )
    p.add_argument(
        "--repository-arn",
        action="append",
        default=[],
        metavar="ARN",
        help="arn:aws:ecr:REGION:ACCOUNT:repository/NAME (repeatable; * allowed in NAME)",
    )
    p.add_argument("--push", action="store_true", help="push as well as pull")
    p.add_argument(
        "--public",
        action="store_true",
        help="also let it fetch ECR Public's token (public.ecr.aws, ecr-public.aws.com)",
    )
    p.set_defaults(handler=client)

    p = kinds.add_parser(
        "trust",
        help="the trust policy of a registry-account role that consumers assume, "
        "or of a pod's role",
        description="Print the trust policy of a role in the registry account that the "
        "consumer account may assume (sts:AssumeRole, with an sts:ExternalId condition "
        "when --external-id is given). With --oidc-provider, the trust policy of a pod's "
        "role instead: the named service accounts of that cluster may assume it with "
        "their tokens (sts:AssumeRoleWithWebIdentity, sub and aud conditions).",
    )
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument(
        "--account",
        action="append",
        metavar=_PRINCIPAL,
        help="the consumer account id (or one of its role ARNs; repeatable)",
    )
    who.add_argument(
        "--oidc-provider",
        metavar="ARN",
        help="the cluster's IAM OIDC provider (arn:aws:iam::ACCOUNT:oidc-provider/ISSUER)",
    )
    p.add_argument(
        "--service-account",
        action="append",
        default=[],
        metavar="NS:NAME",
        help="with --oidc-provider: a service account whose pods may assume the role "
        "(repeatable; NS:* for a whole namespace)",
    )
    p.add_argument(
        "--audience",
        default=None,
        metavar="AUD",
        help="with --oidc-provider: the tokens' audience (default sts.amazonaws.com, the "
        "kubelet's serviceAccountTokenAudience)",
    )
    p.add_argument("--external-id", metavar="X", help="require this sts:ExternalId")
    p.add_argument(
        "--region",
        help="a region of the partition (default: AWS_REGION, AWS_DEFAULT_REGION; aws when unset)",
    )
    p.set_defaults(handler=trust)

    policy_org_cmd.register(kinds)
    policy_audit_cmd.register(kinds)


def _usage(parser: argparse.ArgumentParser, err: TextIO) -> int:
    parser.print_help(err)
    return 2


def _partition(region: str | None) -> str:
    return region_partition(region) if region else "aws"


def repository(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    acting = args.apply or args.dry_run
    if not acting:
        for flag, value in (
            ("--repository", args.repository),
            ("--all", args.all),
            ("--prefix", args.prefix),
            ("--registry-id", args.registry_id),
            ("--role-arn", args.role_arn),
            ("--external-id", args.external_id),
            ("--profile", args.profile),
        ):
            if value:
                raise UsageError(f"{flag} only goes with --apply or --dry-run")
    if not (args.pull or args.push or args.pull_org or args.push_org):
        raise UsageError(
            "name at least one principal: --pull ID|ARN or --push ID|ARN "
            "(or an organization: --pull-org ORG or --push-org ORG)"
        )
    if not acting:
        region = policy_org_cmd.region_of(args.region, os.environ)
        grant = policy_org_cmd.grant(args, _partition(region))
        out.write(policy.render(policy.merge(None, grant, _partition(region))))
        return 0
    if args.all or args.prefix is not None:
        return policy_org_cmd.repositories(args, out, err)
    return _apply(args, out)


def _apply(args: argparse.Namespace, out: TextIO) -> int:
    if not args.repository:
        raise UsageError("--apply and --dry-run need --repository NAME, --prefix P or --all")
    ref = policy.repository_ref(args.repository)
    admin = policy_org_cmd.admin(args, ref.region, ref.registry_id)
    grant = policy_org_cmd.grant(args, admin.partition)

    from ecr_helper import aws
    from ecr_helper.policy import apply

    ecr = aws.make_client(
        "ecr",
        admin.region,
        role_arns=admin.roles,
        external_id=admin.external_id,
        source_profile=admin.profile,
    )
    outcome = apply.apply(
        ecr,
        repository=ref.name,
        registry_id=admin.registry_id,
        region=admin.region,
        partition=admin.partition,
        grant=grant,
        dry_run=args.dry_run,
    )
    out.write(outcome.diff)
    if not outcome.changed:
        out.write(f"{outcome.where} already grants this: nothing to change\n")
    elif outcome.written:
        out.write(f"set the policy of {outcome.where}\n")
    else:
        out.write(f"dry run: nothing written to the policy of {outcome.where}\n")
    return 0


def client(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    document = policy.client_policy(args.repository_arn, push=args.push, public=args.public)
    out.write(policy.render(document))
    return 0


def trust(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if args.oidc_provider:
        if args.external_id:
            raise UsageError("--external-id goes with --account (STS takes none with a token)")
        from ecr_helper.policy import web_identity

        doc = web_identity.trust_policy(
            args.oidc_provider, args.service_account, args.audience or web_identity.AUDIENCE
        )
        out.write(policy.render(doc))
        return 0
    if args.service_account or args.audience:
        raise UsageError("--service-account and --audience go with --oidc-provider")
    partition = _partition(policy_org_cmd.region_of(args.region, os.environ))
    principals = [policy.principal_arn(a, partition) for a in args.account]
    out.write(policy.render(policy.trust_policy(principals, args.external_id)))
    return 0
