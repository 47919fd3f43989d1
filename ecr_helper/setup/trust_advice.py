"""Whom a role's trust policy must name, told as ``xecr doctor`` tells it.

GetCallerIdentity answers with the *session* of an assumed role
(``arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION``: EC2 instance profiles,
EKS, CI OIDC, SSO), which IAM refuses as a principal and ``xecr policy trust``
refuses too. A trust policy names the role (``arn:aws:iam::ACCOUNT:role/NAME``).
The session ARN drops the role's path, so the advice says when the role may
sit under one. The advice ends with the ``xecr policy trust`` command that
prints the policy: every value in it is one that command accepts.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

_ACCOUNT = r"(?P<account>[0-9]{12})"
_SESSION = re.compile(
    rf"arn:(?P<partition>[a-z-]+):sts::{_ACCOUNT}:assumed-role/(?P<name>[\w+=,.@-]{{1,64}})/.+",
    re.ASCII,
)
_IAM = re.compile(
    rf"arn:[a-z-]+:iam::{_ACCOUNT}:(?:root|(?:role|user)/(?:[\w+=,.@-]+/)*[\w+=,.@-]{{1,64}})",
    re.ASCII,
)
_ANY_ACCOUNT = re.compile(rf"arn:[a-z-]+:[a-z]+::{_ACCOUNT}:.*", re.ASCII)


@dataclass(frozen=True)
class Principal:
    """What a trust policy names for a caller; ``note`` says what the ARN cannot tell."""

    value: str
    note: str = ""


def principal_for(caller: str) -> Principal:
    """The principal that stands for ``caller`` (an ARN from GetCallerIdentity, or a role ARN).

    A role session becomes its role; an IAM user, role or root is kept; any other
    identity (a federated user) falls back to its account, whose own IAM policies
    then decide.
    """
    session = _SESSION.fullmatch(caller)
    if session is not None:
        name = session["name"]
        role = f"arn:{session['partition']}:iam::{session['account']}:role/{name}"
        return Principal(
            role,
            f"the role of your session {caller}; a session ARN drops the role's path: if "
            f"`aws iam get-role --role-name {name}` shows one, write "
            f"arn:{session['partition']}:iam::{session['account']}:role/PATH/{name}",
        )
    if _IAM.fullmatch(caller):
        return Principal(caller)
    account = _ANY_ACCOUNT.fullmatch(caller)
    if account is not None:
        return Principal(
            account["account"],
            f"the account of {caller}, which a trust policy cannot name itself",
        )
    return Principal(caller)


def trust_command(principal: str, external_id: str | None, region: str) -> str:
    """The ``xecr policy trust`` command that prints a trust policy naming ``principal``.

    ``--region`` fixes the partition the command checks the principal against
    (the registry's, whatever AWS_REGION says where it is run)."""
    words = ["xecr", "policy", "trust", "--account", principal]
    if external_id:
        words += ["--external-id", external_id]
    words += ["--region", region]
    return shlex.join(words)


def trust_hint(role: str, caller: str, external_id: str | None, region: str, *, first: bool) -> str:
    """Doctor's advice for a denied AssumeRole of ``role`` by ``caller``.

    ``first``: ``caller`` is the source identity (else the role before ``role``
    in the chain, whose ARN the config gives in full)."""
    who = principal_for(caller)
    about = who.note if first else "the role before it in the chain"
    external = f"; its sts:ExternalId must be {external_id!r}" if external_id else ""
    command = trust_command(who.value, external_id, region)
    return (
        f"{role}'s trust policy must name {who.value} as principal"
        + (f" ({about})" if about else "")
        + f"{external}; `{command}` prints one"
    )
