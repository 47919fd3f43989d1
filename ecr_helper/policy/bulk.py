"""Applying xecr's grants to many repositories of a registry, one failure at a time.

This module owns the registry-wide side of ``xecr policy``: listing the
repositories in scope (every one, those under a prefix, or one by name,
paging DescribeRepositories past its page size), and running one piece of
work per repository (apply a grant, read a policy for the audit) on a few
threads, where a failure on one repository (denied, deleted meanwhile, a
policy over the size limit) is recorded for that repository and the others
go on. Throttling that outlasts botocore's own retries is retried here, with
exponential backoff and jitter. The ECR client, the sleep and the progress
callback are parameters.
"""

from __future__ import annotations

import functools
import random
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ecr_helper import aws
from ecr_helper.errors import THROTTLE_CODES, AwsError, UsageError, XecrError
from ecr_helper.policy import Grants, apply
from ecr_helper.policy.apply import registry_param

if TYPE_CHECKING:
    from mypy_boto3_ecr.client import ECRClient

T = TypeVar("T")
PAGE = 1000  # DescribeRepositories' largest page
WORKERS = 4
THROTTLE_RETRIES = 5
BACKOFF_BASE = 1.0
BACKOFF_CAP = 20.0
_PREFIX_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._/-")


@dataclass(frozen=True)
class Scope:
    """Which repositories: ``name`` alone, those starting with ``prefix``, or every one."""

    name: str | None = None
    prefix: str | None = None

    def describe(self) -> str:
        if self.name is not None:
            return f"repository {self.name}"
        if self.prefix:
            return f"repositories under {self.prefix}"
        return "repositories"


def prefix(text: str) -> str:
    """A repository-name prefix (``team/``, ``team/app-``)."""
    if not text or len(text) > 256 or not set(text) <= _PREFIX_CHARS:
        raise UsageError(
            f"invalid --prefix {text!r}: use the start of a repository name "
            "(lowercase letters, digits, . _ - /), like team/"
        )
    return text


@dataclass(frozen=True)
class Repository:
    name: str
    arn: str


@dataclass(frozen=True)
class Done(Generic[T]):
    """One repository's result: ``value``, or ``error`` (one line) when it failed."""

    repository: str
    value: T | None = None
    error: str | None = None


def repositories(
    ecr: ECRClient, scope: Scope, registry_id: str | None, region: str
) -> list[Repository]:
    """The repositories in ``scope``, sorted by name."""
    where = f"registry {registry_id}" if registry_id else "the credentials' own registry"
    if scope.name is not None:
        try:
            response = aws.call(
                lambda: ecr.describe_repositories(
                    repositoryNames=[scope.name or ""], **registry_param(registry_id)
                ),
                "ecr",
                region,
                f"ECR DescribeRepositories for repository {scope.name}",
            )
        except AwsError as exc:
            raise apply.explain(
                exc, "DescribeRepositories", scope.name, registry_id, region
            ) from None
        return [
            Repository(r["repositoryName"], r["repositoryArn"]) for r in response["repositories"]
        ]
    found: list[Repository] = []
    token: str | None = None
    while True:
        page: dict[str, Any] = {"maxResults": PAGE, **registry_param(registry_id)}
        if token:
            page["nextToken"] = token
        response = aws.call(
            functools.partial(ecr.describe_repositories, **page),
            "ecr",
            region,
            f"ECR DescribeRepositories in {where} ({region})",
        )
        for item in response.get("repositories", []):
            name = str(item["repositoryName"])
            if scope.prefix is None or name.startswith(scope.prefix):
                found.append(Repository(name, str(item["repositoryArn"])))
        token = response.get("nextToken")
        if not token:
            return sorted(found, key=lambda r: r.name)


def backoff(attempt: int, rng: Callable[[], float] = random.random) -> float:
    """Seconds to wait before retry ``attempt`` (0-based): full jitter, capped."""
    return float(min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt) * (0.5 + rng() / 2))


def each(
    repos: Sequence[Repository],
    work: Callable[[Repository], T],
    *,
    progress: Callable[[int, int], None] = lambda done, total: None,
    sleep: Callable[[float], None],
    workers: int = WORKERS,
) -> list[Done[T]]:
    """``work`` for every repository, a few at a time; results in ``repos``' order.

    A :class:`XecrError` fails only its repository; throttling is retried
    :data:`THROTTLE_RETRIES` times first, waiting :func:`backoff`.
    """
    lock = threading.Lock()
    count = [0]

    def one(repo: Repository) -> Done[T]:
        attempt = 0
        while True:
            try:
                result = Done(repo.name, value=work(repo))
                break
            except AwsError as exc:
                if exc.code in THROTTLE_CODES and attempt < THROTTLE_RETRIES:
                    sleep(backoff(attempt))
                    attempt += 1
                    continue
                result = Done(repo.name, error=str(exc))
                break
            except XecrError as exc:
                result = Done(repo.name, error=str(exc))
                break
        with lock:
            count[0] += 1
            progress(count[0], len(repos))
        return result

    if workers <= 1 or len(repos) <= 1:
        return [one(r) for r in repos]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="xecr-policy") as pool:
        return list(pool.map(one, repos))


def gone(exc: AwsError, repository: str) -> AwsError:
    """A repository listed a moment ago and now not found was deleted meanwhile."""
    if exc.code != "RepositoryNotFoundException":
        return exc
    error = AwsError(f"repository {repository} was deleted after it was listed; nothing written")
    error.code = exc.code
    return error


def apply_all(
    ecr: ECRClient,
    repos: Sequence[Repository],
    *,
    registry_id: str | None,
    region: str,
    partition: str,
    grant: Grants,
    dry_run: bool,
    sleep: Callable[[float], None],
    progress: Callable[[int, int], None] = lambda done, total: None,
    workers: int = WORKERS,
) -> list[Done[apply.ApplyOutcome]]:
    """Merge ``grant`` into each repository's policy; write only those that change."""

    def work(repo: Repository) -> apply.ApplyOutcome:
        try:
            return apply.apply(
                ecr,
                repository=repo.name,
                registry_id=registry_id,
                region=region,
                partition=partition,
                grant=grant,
                dry_run=dry_run,
            )
        except AwsError as exc:
            raise gone(exc, repo.name) from None

    return each(repos, work, progress=progress, sleep=sleep, workers=workers)
