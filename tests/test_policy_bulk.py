"""ecr_helper.policy.bulk and .template against the in-process loopback fake, and their pure
parts (retries, backoff, the policy size limit)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ecr_helper import aws, policy
from ecr_helper.errors import AwsError, PolicyError, UsageError
from ecr_helper.policy import Grants, bulk, orgs
from ecr_helper.policy import apply as policy_apply
from ecr_helper.policy import template as templates
from tests.fakeaws import FakeAws
from tests.helpers import CENTRAL

ADMIN = f"arn:aws:iam::{CENTRAL}:role/registry-admin"
REGION = "us-east-1"
ORG = "o-exampleorg1"


@pytest.fixture
def ecr(fake_aws: FakeAws) -> Any:
    client = aws.make_client("ecr", REGION, role_arns=[ADMIN])
    fake_aws.ecr.reset_templates()
    yield client
    fake_aws.ecr.page_cap = None
    fake_aws.ecr.reset_templates()


def make(ecr: Any, fake: FakeAws, *names: str) -> None:
    for name in names:
        ecr.create_repository(repositoryName=name)
    fake.reset()


def test_listing_pages_past_the_page_size_and_filters_by_prefix(
    fake_aws: FakeAws, ecr: Any
) -> None:
    make(ecr, fake_aws, *[f"team/a{i:02d}" for i in range(25)], "teamx/b", "other/c")
    fake_aws.ecr.page_cap = 10
    found = bulk.repositories(ecr, bulk.Scope(prefix="team/"), CENTRAL, REGION)
    assert [r.name for r in found] == [f"team/a{i:02d}" for i in range(25)]
    assert found[0].arn == f"arn:aws:ecr:{REGION}:{CENTRAL}:repository/team/a00"
    assert fake_aws.calls("DescribeRepositories") == 3  # 27 repositories, pages of 10
    assert [r.params.get("maxResults") for r in fake_aws.requests("DescribeRepositories")] == [
        1000
    ] * 3
    every = bulk.repositories(ecr, bulk.Scope(), CENTRAL, REGION)
    assert len(every) == 27


def test_a_repository_deleted_after_listing_fails_alone(fake_aws: FakeAws, ecr: Any) -> None:
    make(ecr, fake_aws, "team/a", "team/b")
    repos = bulk.repositories(ecr, bulk.Scope(prefix="team/"), CENTRAL, REGION)
    ecr.delete_repository(repositoryName="team/a")
    done = bulk.apply_all(
        ecr,
        repos,
        registry_id=CENTRAL,
        region=REGION,
        partition="aws",
        grant=orgs.with_orgs(Grants(), [ORG], []),
        dry_run=False,
        sleep=lambda s: None,
    )
    assert done[0].error == "repository team/a was deleted after it was listed; nothing written"
    assert done[1].value is not None and done[1].value.written


def test_one_repository_by_name_and_a_missing_one(fake_aws: FakeAws, ecr: Any) -> None:
    make(ecr, fake_aws, "team/one")
    assert [r.name for r in bulk.repositories(ecr, bulk.Scope(name="team/one"), None, REGION)] == [
        "team/one"
    ]
    with pytest.raises(AwsError, match="repository team/gone not found"):
        bulk.repositories(ecr, bulk.Scope(name="team/gone"), None, REGION)


def throttled() -> AwsError:
    error = AwsError("throttled")
    error.code = "ThrottlingException"
    return error


def test_throttling_is_retried_with_growing_waits_and_others_go_on() -> None:
    repos = [bulk.Repository(f"r{i}", f"arn{i}") for i in range(3)]
    tries: dict[str, int] = {}
    waits: list[float] = []

    def work(repo: bulk.Repository) -> str:
        tries[repo.name] = tries.get(repo.name, 0) + 1
        if repo.name == "r0" and tries["r0"] <= 3:
            raise throttled()
        if repo.name == "r1":
            raise throttled()  # never lets up
        if repo.name == "r2":
            raise PolicyError("bad policy")
        return "ok"

    seen: list[tuple[int, int]] = []
    done = bulk.each(
        repos, work, sleep=waits.append, workers=1, progress=lambda d, t: seen.append((d, t))
    )
    assert [(d.repository, d.value, d.error) for d in done] == [
        ("r0", "ok", None),
        ("r1", None, "throttled"),
        ("r2", None, "bad policy"),
    ]
    assert tries == {"r0": 4, "r1": 1 + bulk.THROTTLE_RETRIES, "r2": 1}
    assert len(waits) == 3 + bulk.THROTTLE_RETRIES
    assert seen == [(1, 3), (2, 3), (3, 3)]


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    assert [bulk.backoff(n, rng=lambda: 1.0) for n in range(7)] == [1, 2, 4, 8, 16, 20, 20]
    assert bulk.backoff(3, rng=lambda: 0.0) == 4.0


def test_threads_keep_the_order_of_the_repositories() -> None:
    repos = [bulk.Repository(f"r{i:02d}", "") for i in range(40)]
    done = bulk.each(repos, lambda r: r.name.upper(), sleep=lambda s: None, workers=4)
    assert [d.value for d in done] == [r.name.upper() for r in repos]


@pytest.mark.parametrize("bad", ["", "Team/", "team/*", "a" * 257])
def test_bad_prefix(bad: str) -> None:
    with pytest.raises(UsageError, match="invalid --prefix"):
        bulk.prefix(bad)


def test_a_policy_over_ecrs_limit_is_written_compact_or_refused() -> None:
    many = [f"arn:aws:iam::{i:012d}:root" for i in range(1, 260)]
    doc = policy.merge(None, Grants(pull=tuple(many)), "aws")
    assert len(policy.render(doc)) > policy_apply.MAX_POLICY_CHARS
    text = policy_apply.policy_text(doc, "repository team/app")
    assert json.loads(text) == doc and len(text) <= policy_apply.MAX_POLICY_CHARS
    too_many = policy.merge(
        None, Grants(pull=tuple(f"arn:aws:iam::{i:012d}:root" for i in range(1, 400))), "aws"
    )
    with pytest.raises(PolicyError, match="over ECR's limit of 10240"):
        policy_apply.policy_text(too_many, "repository team/app")


def test_a_repository_over_the_limit_fails_alone(fake_aws: FakeAws, ecr: Any) -> None:
    make(ecr, fake_aws, "team/a", "team/b")
    many = tuple(f"arn:aws:iam::{i:012d}:root" for i in range(1, 400))
    repos = bulk.repositories(ecr, bulk.Scope(prefix="team/"), CENTRAL, REGION)
    small = bulk.apply_all(
        ecr,
        repos[:1],
        registry_id=CENTRAL,
        region=REGION,
        partition="aws",
        grant=orgs.with_orgs(Grants(), [ORG], []),
        dry_run=False,
        sleep=lambda s: None,
    )
    assert small[0].value is not None and small[0].value.written
    done = bulk.apply_all(
        ecr,
        repos,
        registry_id=CENTRAL,
        region=REGION,
        partition="aws",
        grant=Grants(pull=many[:200]),
        dry_run=False,
        sleep=lambda s: None,
    )
    assert [d.error is None for d in done] == [True, True]
    done = bulk.apply_all(
        ecr,
        repos,
        registry_id=CENTRAL,
        region=REGION,
        partition="aws",
        grant=Grants(pull=many),
        dry_run=False,
        sleep=lambda s: None,
    )
    assert all(d.error and "over ECR's limit" in d.error for d in done)


# -- creation templates --------------------------------------------------------------------
def test_template_created_then_merged_keeping_foreign_statements(
    fake_aws: FakeAws, ecr: Any
) -> None:
    foreign = {
        "Sid": "LambdaPull",
        "Effect": "Allow",
        "Principal": {"Service": "lambda.amazonaws.com"},
        "Action": ["ecr:BatchGetImage"],
    }
    ecr.create_repository_creation_template(
        prefix="team",
        appliedFor=["REPLICATION"],
        repositoryPolicy=json.dumps({"Version": "2012-10-17", "Statement": [foreign]}),
    )
    fake_aws.reset()
    grant = orgs.with_orgs(Grants(), [ORG], [])
    first = templates.apply(
        ecr,
        prefix="team",
        region=REGION,
        partition="aws",
        grant=grant,
        applied=["CREATE_ON_PUSH"],
    )
    assert first.written and first.exists and first.registry_id == CENTRAL
    assert first.applied_for == ("REPLICATION", "CREATE_ON_PUSH")
    (update,) = fake_aws.requests("UpdateRepositoryCreationTemplate")
    assert update.params["appliedFor"] == ["REPLICATION", "CREATE_ON_PUSH"]
    stored = json.loads(update.params["repositoryPolicy"])
    assert stored["Statement"][0] == foreign
    assert stored["Statement"][1]["Sid"] == "XecrPullOrg"
    again = templates.apply(ecr, prefix="team", region=REGION, partition="aws", grant=grant)
    assert not again.changed and not again.written
    assert fake_aws.calls("UpdateRepositoryCreationTemplate") == 1


def test_template_of_another_registry_is_refused_before_writing(
    fake_aws: FakeAws, ecr: Any
) -> None:
    grant = orgs.with_orgs(Grants(), [ORG], [])
    with pytest.raises(PolicyError, match="act in registry 111111111111, not 222222222222"):
        templates.apply(
            ecr,
            prefix="team",
            region=REGION,
            partition="aws",
            grant=grant,
            registry_id="222222222222",
        )
    assert fake_aws.calls("CreateRepositoryCreationTemplate") == 0


def test_template_prefix_and_applied_for_are_checked() -> None:
    assert templates.prefix("team/") == "team/" and templates.prefix("ROOT") == "ROOT"
    for bad in ("Team", "team//x", "", "ROOT/x"):
        with pytest.raises(UsageError, match="invalid template --prefix"):
            templates.prefix(bad)
    assert templates.applied_for(["create-on-push", "REPLICATION"]) == (
        "CREATE_ON_PUSH",
        "REPLICATION",
    )
    with pytest.raises(UsageError, match="invalid --applied-for"):
        templates.applied_for(["ALWAYS"])
