"""packaging/kubernetes: the example kubelet configs agree with what xecr reads, and the
DaemonSet that installs the plugin from the image is valid against the Kubernetes API."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
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


def test_both_configs_send_xecr_the_same_images() -> None:
    """Switching to the service-account config must not stop serving ECR Public,
    ISO or EUSC images (issue 21, item 5): the two lists are the same."""
    node = _provider("credential-provider-config.yaml")["matchImages"]
    pods = _provider("credential-provider-config-service-accounts.yaml")["matchImages"]
    assert len(node) == 20
    assert pods == node


def test_the_node_identity_config_sends_no_tokens() -> None:
    assert "tokenAttributes" not in _provider("credential-provider-config.yaml")


# -- the DaemonSet that installs the plugin from the image ---------------------------------

DAEMONSET = FOLDER / "daemonset-install-plugin.yaml"
# The oldest Kubernetes whose kubelet takes credential providers as GA, and the newest
# schema kubernetes-validate bundles (offline: the schemas ship inside the package).
K8S_VERSIONS = ("1.26", kubernetes_validate.latest_version())


def _daemonset() -> dict[str, Any]:
    [doc] = [doc for doc in yaml.safe_load_all(DAEMONSET.read_text()) if doc]
    found: dict[str, Any] = doc
    return found


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_the_daemonset_is_valid_against_the_kubernetes_api_schema(version: str) -> None:
    # strict: a field the API does not know (a typo) fails too.
    kubernetes_validate.validate(_daemonset(), version, strict=True)


def _break_field(doc: dict[str, Any]) -> None:
    doc["spec"]["template"]["spec"]["containers"][0]["volumeMount"] = []  # typo of volumeMounts


def _break_type(doc: dict[str, Any]) -> None:
    doc["spec"]["template"]["spec"]["containers"][0]["securityContext"]["runAsUser"] = "root"


def _break_required(doc: dict[str, Any]) -> None:
    del doc["spec"]["selector"]


@pytest.mark.parametrize("damage", [_break_field, _break_type, _break_required])
def test_the_schema_check_refuses_a_broken_daemonset(
    damage: Callable[[dict[str, Any]], None],
) -> None:
    doc = _daemonset()
    damage(doc)
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, K8S_VERSIONS[-1], strict=True)


def test_the_daemonset_installs_into_the_eks_plugin_folder_without_privilege() -> None:
    spec = _daemonset()["spec"]["template"]["spec"]
    [container] = spec["containers"]
    assert not spec.get("initContainers") and not spec.get("hostNetwork")
    assert spec["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert {"operator": "Exists"} in spec["tolerations"]
    # The two folders of the command are the node's /opt/xecr and the EKS AMIs' plugin folder.
    host = {volume["name"]: volume["hostPath"]["path"] for volume in spec["volumes"]}
    mounted = {mount["mountPath"]: host[mount["name"]] for mount in container["volumeMounts"]}
    command = container["command"]
    assert command[:2] == ["/opt/xecr/install-node", "--wait"]
    assert [mounted[folder] for folder in command[2:]] == [
        "/opt/xecr",
        "/etc/eks/image-credential-provider",
    ]
    context = container["securityContext"]
    assert context["runAsUser"] == 0 and context["readOnlyRootFilesystem"] is True
    assert context["privileged"] is False and context["allowPrivilegeEscalation"] is False
    assert set(container["resources"]) == {"requests", "limits"}
