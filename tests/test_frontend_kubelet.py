"""ecr_helper.frontends.kubelet: CredentialProviderRequest in, CredentialProviderResponse out."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Mapping

import pytest

from ecr_helper.config import RegistrySettings
from ecr_helper.errors import InputError
from ecr_helper.frontends import kubelet
from ecr_helper.service import Service
from ecr_helper.token import Token
from tests.helpers import CENTRAL, CENTRAL_HOST, PULL_ROLE

V1 = "credentialprovider.kubelet.k8s.io/v1"
ISSUED = 1_800_000_000.0


class FakeGetToken:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def __call__(self, address: str, env: Mapping[str, str]) -> tuple[RegistrySettings, Token]:
        self.asked.append(address)
        settings = RegistrySettings(address, CENTRAL, "us-east-1", "aws", (PULL_ROLE,))
        return settings, Token(
            "AWS",
            "the-password-0123",
            ISSUED,
            ISSUED + 43200,
            address,
            CENTRAL,
            "us-east-1",
            PULL_ROLE,
        )


def _request(image: str, version: str = V1, **extra: object) -> io.BytesIO:
    body = {"apiVersion": version, "kind": "CredentialProviderRequest", "image": image, **extra}
    return io.BytesIO(json.dumps(body).encode())


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (21570, "5h59m30s"),
        (3600, "1h0m0s"),
        (3661.9, "1h1m1s"),
        (60, "1m0s"),
        (59, "59s"),
        (0, "0s"),
        (-5, "0s"),
    ],
)
def test_go_duration(seconds: float, text: str) -> None:
    assert kubelet.go_duration(seconds) == text


@pytest.mark.parametrize(
    ("image", "host"),
    [
        (f"{CENTRAL_HOST}/team/app:1.2", CENTRAL_HOST),
        (f"{CENTRAL_HOST}/app@sha256:{'a' * 64}", CENTRAL_HOST),
        ("127.0.0.1:5000/app", "127.0.0.1:5000"),
        ("localhost/app", "localhost"),
        ("nginx", None),
        ("nginx:1.25", None),
        ("library/nginx", None),
        ("", None),
    ],
)
def test_image_host(image: str, host: str | None) -> None:
    assert kubelet.image_host(image) == host


def test_response_field_by_field() -> None:
    get_token = FakeGetToken()
    now = ISSUED + 30
    out = kubelet.run(
        _request(
            f"{CENTRAL_HOST}/team/app:1.2", serviceAccountToken="", serviceAccountAnnotations={}
        ),
        dict(os.environ),
        get_token,
        lambda: now,
    )
    assert out.endswith("\n") and out.count("\n") == 1
    response = json.loads(out)
    assert set(response) == {"apiVersion", "kind", "cacheKeyType", "cacheDuration", "auth"}
    assert response["apiVersion"] == V1
    assert response["kind"] == "CredentialProviderResponse"
    assert response["cacheKeyType"] == "Registry"
    # the token's refresh point is half of its 12 h life: 6 h after issue, 5h59m30s from now
    assert response["cacheDuration"] == "5h59m30s"
    assert list(response["auth"]) == [CENTRAL_HOST]
    assert response["auth"][CENTRAL_HOST] == {"username": "AWS", "password": "the-password-0123"}
    assert get_token.asked == [CENTRAL_HOST]


def test_past_the_refresh_point_the_kubelet_is_told_not_to_cache() -> None:
    response = kubelet.respond(
        V1, f"{CENTRAL_HOST}/app", {}, FakeGetToken(), lambda: ISSUED + 30000
    )
    assert response["cacheDuration"] == "0s"


@pytest.mark.parametrize("version", ["v1", "v1beta1", "v1alpha1"])
def test_every_version_the_kubelet_accepts_is_answered_in_kind(version: str) -> None:
    api = f"credentialprovider.kubelet.k8s.io/{version}"
    for image in ("127.0.0.1:5000/app", "docker.io/library/nginx"):
        out = kubelet.run(_request(image, api), {}, FakeGetToken(), lambda: ISSUED)
        response = json.loads(out)
        assert response["apiVersion"] == api
        assert response["kind"] == "CredentialProviderResponse"
        assert response["cacheKeyType"] in ("Image", "Registry", "Global")
    assert list(
        json.loads(
            kubelet.run(_request("127.0.0.1:5000/app", api), {}, FakeGetToken(), lambda: ISSUED)
        )["auth"]
    ) == ["127.0.0.1:5000"]


# The fields each version's CredentialProviderResponse has: the kubelet decodes strictly.
RESPONSE_FIELDS = {"apiVersion", "kind", "cacheKeyType", "cacheDuration", "auth"}


@pytest.mark.parametrize(
    "image",
    ["nginx:latest", "docker.io/library/nginx", "quay.io/org/app:1", "localhost:5000/x"],
)
@pytest.mark.parametrize("version", ["v1", "v1beta1", "v1alpha1"])
def test_an_image_that_is_not_ours_gets_a_valid_response_without_auth(
    image: str, version: str
) -> None:
    def no_fetch(settings: RegistrySettings, quick: bool) -> Token:
        raise AssertionError("AWS must not be called")

    def get_token(address: str, env: Mapping[str, str]) -> tuple[RegistrySettings, Token]:
        return Service.open(env, fetch=no_fetch).token_for(address)

    api = f"credentialprovider.kubelet.k8s.io/{version}"
    response = json.loads(kubelet.run(_request(image, api), dict(os.environ), get_token))
    assert response == {
        "apiVersion": api,
        "kind": "CredentialProviderResponse",
        "cacheKeyType": "Registry",
        "cacheDuration": kubelet.NOT_OURS_CACHE,
    }
    assert set(response) <= RESPONSE_FIELDS
    assert kubelet.go_duration(600) == kubelet.NOT_OURS_CACHE  # a duration Go parses


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"not json", "not a JSON"),
        (b"\xff\xfe", "not a JSON"),
        (b"[1, 2]", "not a JSON CredentialProviderRequest object"),
        (json.dumps({"apiVersion": "v1", "image": "x/y"}).encode(), "unsupported apiVersion"),
        (json.dumps({"apiVersion": V1, "kind": "Pod", "image": "x/y"}).encode(), "kind"),
        (
            json.dumps({"apiVersion": V1, "kind": "CredentialProviderRequest"}).encode(),
            "names no image",
        ),
        (json.dumps({"apiVersion": V1, "image": 5}).encode(), "names no image"),
        (b" " * (64 * 1024 + 1), "longer than 65536 bytes"),
    ],
)
def test_bad_requests(raw: bytes, message: str) -> None:
    with pytest.raises(InputError, match=message):
        kubelet.run(io.BytesIO(raw), {}, FakeGetToken(), lambda: ISSUED)


def test_input_is_read_bounded() -> None:
    class Endless(io.RawIOBase):
        def __init__(self) -> None:
            self.asked: list[int] = []

        def read(self, size: int = -1) -> bytes:
            self.asked.append(size)
            return b" " * size

    stream = Endless()
    with pytest.raises(InputError):
        kubelet.read_request(stream)  # type: ignore[arg-type]
    assert stream.asked == [64 * 1024 + 1]
