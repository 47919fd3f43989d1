"""ecr_helper.service_account: reading a pod's token and annotation, session names, keys."""

from __future__ import annotations

import base64
import json
import re
import time

import pytest

from ecr_helper import service_account as sa
from ecr_helper.errors import InputError
from tests import k8s_tokens

ROLE = "arn:aws:iam::222222222222:role/team-a-ecr"
NOW = time.time()


def test_a_kubelet_token_names_its_service_account() -> None:
    tok = k8s_tokens.token("team-a", "builder", uid="5b1e0c1e-aaaa-4bbb-8ccc-000000000001")
    account = sa.service_account(tok, NOW)
    assert (account.namespace, account.name) == ("team-a", "builder")
    assert account.uid == "5b1e0c1e-aaaa-4bbb-8ccc-000000000001"
    assert account.issuer == k8s_tokens.ISSUER
    assert account.audiences == ("sts.amazonaws.com",)
    assert account.expires_at is not None and account.expires_at > NOW
    assert account.label == "team-a/builder"
    assert account.subject == "system:serviceaccount:team-a:builder"


def _jwt(body: object) -> str:
    payload = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
    return f"eyJhbGciOiJSUzI1NiJ9.{payload}.c2ln"


@pytest.mark.parametrize(
    ("tok", "message"),
    [
        ("not-a-jwt", "not a JWT"),
        ("a.b", "not a JWT"),
        ("a..c", "not a JWT"),
        ("a.!!!!.c", "no readable JWT claims"),
        ("a.bm90IGpzb24.c", "no readable JWT claims"),
        (_jwt([1, 2]), "no readable JWT claims"),
        (_jwt({"sub": "alice"}), "not a Kubernetes service account token"),
        (_jwt({"sub": "system:serviceaccount:only-namespace"}), "not a Kubernetes service"),
        (_jwt({}), "not a Kubernetes service account token"),
    ],
)
def test_a_token_that_names_no_service_account_is_refused_without_echo(
    tok: str, message: str
) -> None:
    with pytest.raises(InputError, match=message) as caught:
        sa.service_account(tok, NOW)
    for piece in tok.split("."):
        if len(piece) > 3:
            assert piece not in str(caught.value)


def test_an_expired_token_is_refused() -> None:
    tok = k8s_tokens.token("team-a", "builder", now=NOW - 7200, lifetime=600)
    with pytest.raises(InputError, match="team-a/builder has expired"):
        sa.service_account(tok, NOW)


@pytest.mark.parametrize(
    ("namespace", "name", "expected"),
    [
        ("team-a", "builder", "builder@team-a"),
        ("kube-system", "default", "default@kube-system"),
        ("ns", "name.with.dots", "name.with.dots@ns"),
        ("ns", "ünïcode", "-n-code@ns"),
    ],
)
def test_session_names_name_the_service_account(namespace: str, name: str, expected: str) -> None:
    assert sa.session_name(sa.ServiceAccount(namespace, name)) == expected


def test_long_session_names_stay_within_sts_limits_and_distinct() -> None:
    name = "n" * 253  # a DNS subdomain's longest
    first = sa.session_name(sa.ServiceAccount("x" * 63, name))
    second = sa.session_name(sa.ServiceAccount("x" * 63, name[:-1] + "m"))
    for got in (first, second):
        assert 2 <= len(got) <= 64
        assert re.fullmatch(r"[\w+=,.@-]{2,64}", got, re.ASCII)
    assert first != second


def test_annotation_picks_the_role_and_hides_the_token() -> None:
    tok = k8s_tokens.token("team-a", "builder")
    account, pod = sa.pod_role(tok, {k8s_tokens.ROLE_ANNOTATION: ROLE}, sa.KubeletOptions(), NOW)
    assert pod is not None
    assert pod.role_arn == ROLE and pod.account == account
    assert pod.session_name == "builder@team-a"
    assert tok not in repr(pod) and "***" in repr(pod)


def test_no_annotation_means_no_role() -> None:
    tok = k8s_tokens.token("team-c", "default")
    account, pod = sa.pod_role(tok, {"other/key": "x"}, sa.KubeletOptions(), NOW)
    assert pod is None and account.label == "team-c/default"


def test_another_annotation_key_can_be_configured() -> None:
    tok = k8s_tokens.token("team-a", "builder")
    options = sa.KubeletOptions.from_env({sa.ANNOTATION_VAR: "example.com/pull-role"})
    _, pod = sa.pod_role(tok, {"example.com/pull-role": ROLE}, options, NOW)
    assert pod is not None and pod.role_arn == ROLE
    _, none = sa.pod_role(tok, {k8s_tokens.ROLE_ANNOTATION: ROLE}, options, NOW)
    assert none is None


@pytest.mark.parametrize("value", ["", "team-a-ecr", "arn:aws:iam::12:role/x", "arn:aws:s3:::b"])
def test_an_annotation_that_is_not_a_role_arn_is_refused(value: str) -> None:
    tok = k8s_tokens.token("team-a", "builder")
    with pytest.raises(InputError, match=r"team-a/builder: annotation eks\.amazonaws\.com"):
        sa.pod_role(tok, {k8s_tokens.ROLE_ANNOTATION: value}, sa.KubeletOptions(), NOW)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({sa.UNANNOTATED_VAR: "deny"}, "XECR_KUBELET_UNANNOTATED='deny'"),
        ({sa.CACHE_TYPE_VAR: "token"}, "XECR_KUBELET_CACHE_TYPE='token'"),
    ],
)
def test_bad_options_are_one_line_naming_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(InputError, match=re.escape(message)):
        sa.KubeletOptions.from_env(env)


def test_options_default_to_cloud_provider_aws_behaviour() -> None:
    options = sa.KubeletOptions.from_env({})
    assert options.role_annotation == "eks.amazonaws.com/ecr-role-arn"
    assert options.unannotated == "node"
    assert options.cache_type == "ServiceAccount"


def _pod(namespace: str, name: str, uid: str, role: str = ROLE) -> sa.PodRole:
    tok = k8s_tokens.token(namespace, name, uid=uid)
    _, pod = sa.pod_role(tok, {k8s_tokens.ROLE_ANNOTATION: role}, sa.KubeletOptions(), NOW)
    assert pod is not None
    return pod


def test_cache_keys_separate_service_accounts_even_with_one_role() -> None:
    base = "0" * 32
    a1 = sa.cache_key(base, _pod("team-a", "builder", "uid-1"))
    a1_again = sa.cache_key(base, _pod("team-a", "builder", "uid-1"))  # another pod's token
    b = sa.cache_key(base, _pod("team-b", "builder", "uid-2"))
    a_other_name = sa.cache_key(base, _pod("team-a", "deployer", "uid-3"))
    a_recreated = sa.cache_key(base, _pod("team-a", "builder", "uid-4"))
    a_other_role = sa.cache_key(
        base, _pod("team-a", "builder", "uid-1", "arn:aws:iam::222222222222:role/other")
    )
    a_other_registry = sa.cache_key("1" * 32, _pod("team-a", "builder", "uid-1"))
    assert a1 == a1_again
    keys = [a1, b, a_other_name, a_recreated, a_other_role, a_other_registry, base]
    assert len(set(keys)) == len(keys)
    assert all(re.fullmatch(r"[0-9a-f]{32}", k) for k in keys)


def test_the_request_never_shows_the_token() -> None:
    import io

    from ecr_helper.frontends import kubelet

    tok = k8s_tokens.token("team-a", "builder")
    raw = k8s_tokens.request("111111111111.dkr.ecr.us-east-1.amazonaws.com/a", tok, {"k": "v"})
    request = kubelet.read_request(io.BytesIO(raw))
    assert request.token == tok and request.annotations == {"k": "v"}
    assert tok not in repr(request) and "***" in repr(request)


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("serviceAccountToken", 42, "serviceAccountToken is not a string"),
        ("serviceAccountAnnotations", ["k"], "serviceAccountAnnotations is not a map"),
    ],
)
def test_malformed_service_account_fields_are_refused(field: str, value: object, says: str) -> None:
    import io

    from ecr_helper.frontends import kubelet

    body = {"apiVersion": k8s_tokens.V1, "image": "111111111111.dkr.ecr.us-east-1.amazonaws.com/a"}
    body[field] = value
    with pytest.raises(InputError, match=says):
        kubelet.read_request(io.BytesIO(json.dumps(body).encode()))


def test_an_oversized_token_is_refused_before_it_is_read() -> None:
    tok = k8s_tokens.token("team-a", "builder")
    huge = tok + "A" * sa.MAX_TOKEN
    with pytest.raises(InputError, match="longer than 16384 bytes") as caught:
        sa.pod_role(huge, {k8s_tokens.ROLE_ANNOTATION: ROLE}, sa.KubeletOptions(), NOW)
    assert "AAAA" not in str(caught.value)


def _raw_jwt(payload: bytes) -> str:
    """A JWT whose claims are exactly ``payload`` (json.dumps cannot write some of them)."""
    body = base64.urlsafe_b64encode(payload).rstrip(b"=").decode()
    return f"eyJhbGciOiJSUzI1NiJ9.{body}.c2ln"


def _with_exp(exp: str) -> str:
    claims = json.dumps(k8s_tokens.claims("team-a", "builder"))
    return _raw_jwt(re.sub(r'"exp": -?\d+', f'"exp": {exp}', claims).encode())


# Issue 20, item 9: each of these was an "internal error" (RecursionError,
# OverflowError), or NaN passed the expiry check and went on to STS and ECR.
CRAFTED = {
    "claims nested 5000 deep": (
        _raw_jwt(b'{"sub": "system:serviceaccount:a:b", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}"),
        "no readable JWT claims",
    ),
    "exp NaN": (_with_exp("NaN"), "team-a/builder has an exp claim that is not a time"),
    "exp Infinity": (_with_exp("Infinity"), "exp claim that is not a time"),
    "exp -Infinity": (_with_exp("-Infinity"), "exp claim that is not a time"),
    "exp 10**400": (_with_exp(str(10**400)), "exp claim that is not a time"),
    "exp 1e400": (_with_exp("1e400"), "exp claim that is not a time"),
    "exp past the year 9999": (_with_exp("253402300800"), "exp claim that is not a time"),
    "exp a string": (_with_exp('"tomorrow"'), "exp claim that is not a time"),
    "exp true": (_with_exp("true"), "exp claim that is not a time"),
}


@pytest.mark.parametrize("case", list(CRAFTED))
def test_crafted_claims_are_one_input_line(case: str) -> None:
    tok, message = CRAFTED[case]
    with pytest.raises(InputError, match=message) as caught:
        sa.pod_role(tok, {k8s_tokens.ROLE_ANNOTATION: ROLE}, sa.KubeletOptions(), NOW)
    line = str(caught.value)
    assert "\n" not in line and tok.split(".")[1][:16] not in line


def test_an_exp_within_datetime_years_is_kept() -> None:
    account = sa.service_account(_with_exp("253402300799"), NOW)
    assert account.expires_at == 253402300799.0
