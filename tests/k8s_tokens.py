"""Kubernetes projected service-account tokens for the tests: JWTs shaped like the ones
a kubelet sends (KEP-4412), with the claims of a bound token, a random (unsigned)
RS256 signature, and names a test picks."""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from typing import Any

ISSUER = "https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"
AUDIENCE = "sts.amazonaws.com"
ROLE_ANNOTATION = "eks.amazonaws.com/ecr-role-arn"
V1 = "credentialprovider.kubelet.k8s.io/v1"


def _segment(value: bytes) -> str:
    return base64.urlsafe_b64encode(value).rstrip(b"=").decode()


def claims(
    namespace: str,
    name: str,
    *,
    uid: str | None = None,
    audience: str = AUDIENCE,
    issuer: str = ISSUER,
    lifetime: float = 3600.0,
    now: float | None = None,
) -> dict[str, Any]:
    issued = int(time.time() if now is None else now)
    return {
        "aud": [audience],
        "exp": issued + int(lifetime),
        "iat": issued,
        "iss": issuer,
        "jti": str(uuid.uuid4()),
        "kubernetes.io": {
            "namespace": namespace,
            "node": {"name": "ip-10-0-1-23.ec2.internal", "uid": str(uuid.uuid4())},
            "pod": {"name": f"{name}-7d9f8b6c5d-x2k4q", "uid": str(uuid.uuid4())},
            "serviceaccount": {"name": name, "uid": uid or str(uuid.uuid4())},
        },
        "nbf": issued,
        "sub": f"system:serviceaccount:{namespace}:{name}",
    }


def token(namespace: str, name: str, **kwargs: Any) -> str:
    """A service-account JWT for ``namespace/name`` (see :func:`claims` for the options)."""
    header = {"alg": "RS256", "kid": os.urandom(20).hex()}
    body = claims(namespace, name, **kwargs)
    return ".".join(
        (
            _segment(json.dumps(header, separators=(",", ":")).encode()),
            _segment(json.dumps(body, separators=(",", ":")).encode()),
            _segment(os.urandom(256)),
        )
    )


def request(
    image: str,
    sa_token: str = "",
    annotations: dict[str, str] | None = None,
    version: str = V1,
) -> bytes:
    """A CredentialProviderRequest as the kubelet writes it on the plugin's stdin."""
    body: dict[str, Any] = {"apiVersion": version, "kind": "CredentialProviderRequest"}
    body["image"] = image
    if sa_token:
        body["serviceAccountToken"] = sa_token
    if annotations is not None:
        body["serviceAccountAnnotations"] = annotations
    return json.dumps(body).encode()


def pieces(sa_token: str) -> set[str]:
    """The token and each of its three parts: none may appear anywhere."""
    return {sa_token, *sa_token.split(".")}
