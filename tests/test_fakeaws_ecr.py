"""tests.fakeaws_ecr: the creation-template API and DescribeRepositories paging the fake adds
to moto, in the shapes botocore's ECR model gives them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ecr_helper import aws
from tests.fakeaws import FakeAws
from tests.helpers import CENTRAL

ADMIN = f"arn:aws:iam::{CENTRAL}:role/registry-admin"


@pytest.fixture
def ecr(fake_aws: FakeAws) -> Iterator[Any]:
    fake_aws.ecr.reset_templates()
    yield aws.make_client("ecr", "us-east-1", role_arns=[ADMIN])
    fake_aws.ecr.page_cap = None
    fake_aws.ecr.reset_templates()


def test_template_api_shapes_of_the_fake(fake_aws: FakeAws, ecr: Any) -> None:
    created = ecr.create_repository_creation_template(prefix="ROOT", appliedFor=["CREATE_ON_PUSH"])
    assert created["registryId"] == CENTRAL
    body = created["repositoryCreationTemplate"]
    assert body["prefix"] == "ROOT" and body["imageTagMutability"] == "MUTABLE"
    assert body["encryptionConfiguration"] == {"encryptionType": "AES256"}
    with pytest.raises(ecr.exceptions.TemplateAlreadyExistsException):
        ecr.create_repository_creation_template(prefix="ROOT", appliedFor=["CREATE_ON_PUSH"])
    with pytest.raises(ecr.exceptions.TemplateNotFoundException):
        ecr.update_repository_creation_template(prefix="nope", repositoryPolicy="{}")
    with pytest.raises(ecr.exceptions.ClientError, match="ValidationException"):
        ecr.create_repository_creation_template(prefix="Bad!", appliedFor=["CREATE_ON_PUSH"])
    with pytest.raises(ecr.exceptions.ClientError, match="ValidationException"):
        ecr.create_repository_creation_template(prefix="x", appliedFor=["SOMETIMES"])


def test_templates_page_and_filter_by_prefix(fake_aws: FakeAws, ecr: Any) -> None:
    for prefix in ("a", "b", "c"):
        ecr.create_repository_creation_template(prefix=prefix, appliedFor=["REPLICATION"])
    first = ecr.describe_repository_creation_templates(maxResults=2)
    assert [t["prefix"] for t in first["repositoryCreationTemplates"]] == ["a", "b"]
    rest = ecr.describe_repository_creation_templates(maxResults=2, nextToken=first["nextToken"])
    assert [t["prefix"] for t in rest["repositoryCreationTemplates"]] == ["c"]
    assert "nextToken" not in rest
    only = ecr.describe_repository_creation_templates(prefixes=["b", "zzz"])
    assert [t["prefix"] for t in only["repositoryCreationTemplates"]] == ["b"]
    ecr.delete_repository_creation_template(prefix="b")
    assert (
        ecr.describe_repository_creation_templates(prefixes=["b"])["repositoryCreationTemplates"]
        == []
    )


def test_describe_repositories_pages_by_max_results(fake_aws: FakeAws, ecr: Any) -> None:
    for i in range(5):
        ecr.create_repository(repositoryName=f"p/r{i}")
    page = ecr.describe_repositories(maxResults=2)
    assert [r["repositoryName"] for r in page["repositories"]] == ["p/r0", "p/r1"]
    names = [r["repositoryName"] for r in page["repositories"]]
    while "nextToken" in page:
        page = ecr.describe_repositories(maxResults=2, nextToken=page["nextToken"])
        names += [r["repositoryName"] for r in page["repositories"]]
    assert names == [f"p/r{i}" for i in range(5)]
    fake_aws.ecr.page_cap = 3
    assert len(ecr.describe_repositories(maxResults=1000)["repositories"]) == 3
    assert len(ecr.describe_repositories(repositoryNames=["p/r4"])["repositories"]) == 1
