"""packaging/kubernetes: the example kubelet configs agree with what xecr reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ecr_helper import service_account
from ecr_helper.frontends import kubelet

FOLDER = Path(__file__).resolve().parent.parent / "packaging" / "kubernetes"


def _provider(name: str) -> dict[str, Any]:
    doc = yaml.safe_load((FOLDER / name).read_text())
    assert doc["apiVersion"] == "kubelet.config.k8s.io/v1"
    assert doc["kind"] == "CredentialProviderConfig"
    [provider] = doc["providers"]
    assert provider["name"] == "docker-credential-xecr" and provider["args"] == ["kubelet"]
    assert provider["apiVersion"] in kubelet.API_VERSIONS
    found: dict[str, Any] = provider
    return found


def test_the_service_account_config_matches_xecr_options() -> None:
    provider = _provider("credential-provider-config-service-accounts.yaml")
    tokens = provider["tokenAttributes"]
    assert tokens["serviceAccountTokenAudience"] == "sts.amazonaws.com"
    assert tokens["requireServiceAccount"] is False
    assert tokens["cacheType"] in service_account.CACHE_TYPES
    env = {item["name"]: item["value"] for item in provider["env"]}
    options = service_account.KubeletOptions.from_env(env)
    # The kubelet sends only the annotations it is told to, and xecr must be told
    # the cacheType the kubelet uses.
    assert options.role_annotation in tokens["optionalServiceAccountAnnotationKeys"]
    assert options.cache_type == tokens["cacheType"]


def test_the_audience_rbac_allows_the_configured_audience() -> None:
    provider = _provider("credential-provider-config-service-accounts.yaml")
    audience = provider["tokenAttributes"]["serviceAccountTokenAudience"]
    role, binding = yaml.safe_load_all((FOLDER / "kubelet-token-audience-rbac.yaml").read_text())
    [rule] = role["rules"]
    assert rule["verbs"] == ["request-serviceaccounts-token-audience"]
    assert rule["resources"] == [audience]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "Group", "name": "system:nodes", "apiGroup": "rbac.authorization.k8s.io"}
    ]


def test_the_node_identity_config_sends_no_tokens() -> None:
    assert "tokenAttributes" not in _provider("credential-provider-config.yaml")
