"""ECR Public (public.ecr.aws, and its dual-stack name ecr-public.aws.com): the config's
rules for it, its token from the ecr-public service in us-east-1 through the loopback
fake, and every front door that must know it (get, list, status, doctor, login, the
daemon, the kubelet plugin, the client policy), through the installed executables."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import threading
import time
import tomllib
from pathlib import Path

import pytest

from ecr_helper import config, config_schema, ecr
from ecr_helper.cache import cache_key
from ecr_helper.errors import ConfigError, PublicTokenDenied
from ecr_helper.service import Service
from tests.fakeaws import FakeAws
from tests.helpers import HELPER, XECR, get, installed, known_secrets, run, scan

PUBLIC_ROLE = "arn:aws:iam::444444444444:role/public-pull"
# The fake's token for a caller in account N (see tests/fakeaws.py).
BASE_ACCOUNT = "123456789012"  # moto's account for keys it did not issue
NAMES = (
    "public.ecr.aws",
    "PUBLIC.ECR.AWS:443",
    "https://public.ecr.aws/v2/nginx/nginx/manifests/latest",
    "ecr-public.aws.com",
    "https://ECR-PUBLIC.aws.com:443/amazonlinux",
)


def password(account: str) -> str:
    return f"ecr-public-{account}-auth-token"


def public_requests(fake: FakeAws) -> list[object]:
    return [r for r in fake.requests("GetAuthorizationToken") if r.service == "ecr-public"]


def parse(text: str) -> config.Config:
    path = "/test/config.toml"
    defaults, registries = config_schema.validate(tomllib.loads(text), path)
    return config.Config(path, False, defaults, registries)


# -- the config's rules ------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_every_name_resolves_to_the_one_public_registry(name: str) -> None:
    settings = parse('[defaults]\nregion = "eu-west-1"\n').resolve(name)
    assert settings.public and settings.service == "ecr-public"
    # Always us-east-1, whatever [defaults] says: ECR Public's tokens come from there.
    assert (settings.host, settings.region, settings.partition) == (
        "public.ecr.aws",
        "us-east-1",
        "aws",
    )
    assert settings.registry_id == ""
    assert settings.subject == "ECR Public"
    assert not settings.configured


def test_with_no_config_file_public_is_still_served() -> None:
    settings = config.Config().resolve("public.ecr.aws")
    assert settings.public and settings.role_arns == ()


def test_public_takes_defaults_unless_its_own_section_says() -> None:
    defaults = """
[defaults]
role_arn = "arn:aws:iam::222222222222:role/default"
external_id = "from-defaults"
"""
    assert parse(defaults).resolve("public.ecr.aws").role_arns == (
        "arn:aws:iam::222222222222:role/default",
    )
    own = parse(
        defaults
        + f"""
[registries."public.ecr.aws"]
role_arn = ["arn:aws:iam::333333333333:role/hop", "{PUBLIC_ROLE}"]
source_profile = "central"
"""
    ).resolve("ecr-public.aws.com")
    assert own.role_arns == ("arn:aws:iam::333333333333:role/hop", PUBLIC_ROLE)
    assert own.external_id == "from-defaults"  # not overridden, so inherited
    assert own.source_profile == "central"
    assert own.configured


def test_the_dual_stack_name_is_the_same_section() -> None:
    loaded = parse(f'[registries."HTTPS://ECR-Public.aws.com"]\nrole_arn = "{PUBLIC_ROLE}"\n')
    assert loaded.hosts() == ["public.ecr.aws"]
    assert loaded.resolve("public.ecr.aws").role_arn == PUBLIC_ROLE
    with pytest.raises(ConfigError, match=r"names the same host as another entry \(public"):
        parse('[registries."public.ecr.aws"]\n[registries."ecr-public.aws.com"]\n')


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (
            'registry_id = "111111111111"',
            r"registry_id: contradicts the host \(ECR Public has none",
        ),
        ('region = "eu-west-1"', r"region: contradicts the host \(us-east-1\)"),
    ],
)
def test_the_public_section_refuses_what_ecr_public_lacks(body: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        parse(f'[registries."public.ecr.aws"]\n{body}\n')
    assert parse('[registries."public.ecr.aws"]\nregion = "us-east-1"\n').hosts()


def test_one_token_per_identity_for_both_names_and_every_path() -> None:
    env = {"AWS_ACCESS_KEY_ID": "AKIAFAKEFAKEFAKE0001"}
    loaded = config.Config()
    keys = {cache_key(loaded.resolve(name), env) for name in NAMES}
    assert len(keys) == 1
    other = {**env, "AWS_PROFILE": "someone-else"}
    assert cache_key(loaded.resolve("public.ecr.aws"), other) not in keys


# -- the token, from the fake ------------------------------------------------------------


def test_the_token_comes_from_ecr_public_in_us_east_1(fake_aws: FakeAws) -> None:
    settings = parse('[defaults]\nregion = "eu-west-1"\n').resolve("public.ecr.aws")
    before = time.time()
    token = ecr.fetch_token(settings)
    [request] = fake_aws.requests()
    assert (request.action, request.service, request.region) == (
        "GetAuthorizationToken",
        "ecr-public",
        "us-east-1",
    )
    assert request.params == {}  # no registry ids: ECR Public has none
    assert (token.username, token.secret) == ("AWS", password(BASE_ACCOUNT))
    assert (token.registry, token.registry_id, token.region) == ("public.ecr.aws", "", "us-east-1")
    assert before + 43200 - 5 < token.expires_at <= time.time() + 43200


def test_the_token_is_asked_for_as_the_last_role_of_the_chain(fake_aws: FakeAws) -> None:
    text = f"""
[registries."public.ecr.aws"]
role_arn = "{PUBLIC_ROLE}"
external_id = "pub-ext"
role_session_name = "pub-session"
"""
    token = ecr.fetch_token(parse(text).resolve("public.ecr.aws"))
    [assume] = fake_aws.requests("AssumeRole")
    assert assume.region == "us-east-1"
    assert (assume.params["RoleArn"], assume.params["ExternalId"]) == (PUBLIC_ROLE, "pub-ext")
    assert assume.params["RoleSessionName"] == "pub-session"
    [asked] = public_requests(fake_aws)
    assert asked.access_key_id is not None and asked.access_key_id.startswith("ASIA")
    assert token.secret == password("444444444444")  # the role's account, not the caller's
    assert token.role_arn == PUBLIC_ROLE


def test_access_denied_names_ecr_public_and_the_actions_it_needs(fake_aws: FakeAws) -> None:
    fake_aws.fail("GetAuthorizationToken", "access_denied")
    with pytest.raises(PublicTokenDenied) as caught:
        ecr.fetch_token(config.Config().resolve("public.ecr.aws"))
    line = str(caught.value)
    assert line.startswith("ECR Public GetAuthorizationToken denied as the source credentials")
    assert "ecr-public:GetAuthorizationToken" in line and "sts:GetServiceBearerToken" in line
    assert "xecr policy client --public" in line
    assert "\n" not in line


def test_a_refresh_due_token_is_refreshed_like_a_private_one(fake_aws: FakeAws) -> None:
    env = dict(os.environ)
    _, first = Service.open(env).token_for("public.ecr.aws")
    _, again = Service.open(env).token_for("ecr-public.aws.com")
    assert again == first and fake_aws.calls("GetAuthorizationToken") == 1
    # Seven hours on, past half its life: the next get refreshes it early.
    later_service = Service.open(env, clock=lambda: time.time() + 7 * 3600)
    _, later = later_service.token_for("public.ecr.aws")
    assert fake_aws.calls("GetAuthorizationToken") == 2
    assert later.issued_at > first.issued_at


# -- through the installed executables ---------------------------------------------------


def _config(home: Path, text: str) -> None:
    path = home / ".config" / "xecr" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.mark.slow
def test_done_when_get_answers_then_serves_from_the_cache(fake_aws: FakeAws) -> None:
    first = get("public.ecr.aws")
    assert first.returncode == 0, (first.out, first.err)
    assert first.answer() == {
        "ServerURL": "public.ecr.aws",
        "Username": "AWS",
        "Secret": password(BASE_ACCOUNT),
    }
    assert first.stderr == b""
    [request] = fake_aws.requests()
    assert (request.service, request.region) == ("ecr-public", "us-east-1")
    fake_aws.reset()
    for name in ("public.ecr.aws", "https://ecr-public.aws.com/v2/", "PUBLIC.ECR.AWS:443"):
        again = get(name)
        assert again.returncode == 0, again.out
        assert again.answer()["Secret"] == password(BASE_ACCOUNT)  # type: ignore[index]
    assert fake_aws.counts() == {}  # one token per identity, whatever the name or path


@pytest.mark.slow
def test_get_goes_through_the_configured_role(isolated_env: Path, fake_aws: FakeAws) -> None:
    _config(isolated_env, f'[registries."public.ecr.aws"]\nrole_arn = "{PUBLIC_ROLE}"\n')
    done = get("ecr-public.aws.com")
    assert done.returncode == 0, done.out
    assert done.answer()["Secret"] == password("444444444444")  # type: ignore[index]
    assert [r.params["RoleArn"] for r in fake_aws.requests("AssumeRole")] == [PUBLIC_ROLE]
    assert len(public_requests(fake_aws)) == 1


@pytest.mark.slow
def test_a_cold_burst_of_pulls_makes_one_call(fake_aws: FakeAws) -> None:
    results: list[int] = []

    def one(name: str) -> None:
        results.append(get(name, timeout=60).returncode)

    names = ["public.ecr.aws", "ecr-public.aws.com"] * 3
    threads = [threading.Thread(target=one, args=(n,)) for n in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    assert results == [0] * len(names)
    assert fake_aws.calls("GetAuthorizationToken") == 1


@pytest.mark.slow
def test_list_status_login_and_doctor_know_it(isolated_env: Path, fake_aws: FakeAws) -> None:
    _config(isolated_env, f'[registries."public.ecr.aws"]\nrole_arn = "{PUBLIC_ROLE}"\n')
    assert json.loads(run([HELPER, "list"]).out) == {"public.ecr.aws": "AWS"}

    login = run([XECR, "login"])
    assert login.returncode == 0, login.err
    assert login.out.startswith("logged in to public.ecr.aws (ECR Public), token expires ")

    rows = json.loads(run([XECR, "status", "--json"]).out)
    assert [(r["registry"], r["registry_id"], r["region"], r["state"]) for r in rows] == [
        ("public.ecr.aws", "", "us-east-1", "fresh")
    ]
    table = run([XECR, "status"]).out.splitlines()
    assert table[1].split()[:3] == ["public.ecr.aws", "(public)", "us-east-1"]

    fake_aws.reset()
    doctor = run([XECR, "doctor", "--no-docker"])
    assert doctor.returncode == 0, doctor.out
    assert "PASS token: GetAuthorizationToken for ECR Public in us-east-1 as " in doctor.out
    assert len(public_requests(fake_aws)) == 1

    fake_aws.fail("GetAuthorizationToken", "access_denied")
    failing = run([XECR, "doctor", "--no-docker", "https://ecr-public.aws.com"])
    assert failing.returncode == 1
    [line] = [x for x in failing.out.splitlines() if x.startswith("FAIL token")]
    assert "ECR Public" in line and "sts:GetServiceBearerToken" in line


@pytest.mark.slow
def test_the_daemon_keeps_it_fresh(isolated_env: Path, fake_aws: FakeAws) -> None:
    _config(isolated_env, '[registries."public.ecr.aws"]\n')
    once = run([XECR, "daemon", "--once"], timeout=60)
    assert once.returncode == 0, once.err
    assert once.out.startswith("refreshed public.ecr.aws (ECR Public), token expires ")
    fake_aws.reset()
    served = get("public.ecr.aws")
    assert served.returncode == 0 and fake_aws.counts() == {}


@pytest.mark.slow
@pytest.mark.parametrize(
    "image",
    ["public.ecr.aws/eks-distro/kubernetes/pause:3.9", "ecr-public.aws.com/nginx/nginx:latest"],
)
def test_the_kubelet_plugin_answers_for_public_images(fake_aws: FakeAws, image: str) -> None:
    request = {
        "apiVersion": "credentialprovider.kubelet.k8s.io/v1",
        "kind": "CredentialProviderRequest",
        "image": image,
    }
    done = run([HELPER, "kubelet"], json.dumps(request).encode())
    assert done.returncode == 0, done.err
    response = json.loads(done.out)
    host = image.split("/", 1)[0]
    assert response["auth"] == {host: {"username": "AWS", "password": password(BASE_ACCOUNT)}}
    assert response["cacheKeyType"] == "Registry"
    assert [(r.service, r.region) for r in public_requests(fake_aws)] == [
        ("ecr-public", "us-east-1")
    ]


@pytest.mark.slow
def test_the_client_policy_for_ecr_public() -> None:
    done = subprocess.run(
        [installed(XECR), "policy", "client", "--public"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "XecrEcrPublicToken",
                "Effect": "Allow",
                "Action": ["ecr-public:GetAuthorizationToken", "sts:GetServiceBearerToken"],
                "Resource": "*",
            }
        ],
    }


def test_the_fake_answers_as_botocore_reads_it(fake_aws: FakeAws) -> None:
    """Checked against botocore's ecr-public model: target SpencerFrontendService, signing
    name ecr-public, authorizationData one structure with a timestamp expiresAt."""
    import boto3

    client = boto3.client("ecr-public", region_name="us-east-1", endpoint_url=fake_aws.url)
    model = client.meta.service_model
    assert (model.metadata["targetPrefix"], model.signing_name) == (
        "SpencerFrontendService",
        "ecr-public",
    )
    data = client.get_authorization_token()["authorizationData"]
    assert base64.b64decode(data["authorizationToken"]) == f"AWS:{password(BASE_ACCOUNT)}".encode()
    assert data["expiresAt"].timestamp() > time.time() + 43000
    with pytest.raises(client.exceptions.ClientError, match="UnsupportedCommandException"):
        client.describe_registries()


@pytest.mark.slow
def test_configure_writes_one_section_for_both_names(isolated_env: Path) -> None:
    added = run([XECR, "configure", "public.ecr.aws", "--role-arn", PUBLIC_ROLE])
    assert added.returncode == 0, added.err
    assert 'config: added [registries."public.ecr.aws"]' in added.out
    assert 'credHelpers["public.ecr.aws"] = "xecr"' in added.out
    updated = run([XECR, "configure", "https://ecr-public.aws.com", "--external-id", "pub-ext"])
    assert updated.returncode == 0, updated.err
    assert 'config: updated [registries."public.ecr.aws"]' in updated.out
    text = (isolated_env / ".config" / "xecr" / "config.toml").read_text()
    assert text.count("[registries.") == 1 and "pub-ext" in text and PUBLIC_ROLE in text
    docker = json.loads((isolated_env / ".docker" / "config.json").read_text())
    assert docker["credHelpers"] == {"public.ecr.aws": "xecr", "ecr-public.aws.com": "xecr"}
    for args, says in (
        (["--registry-id", "111111111111"], "--registry-id: ECR Public has no registry id"),
        (["--region", "eu-west-1"], "ECR Public's tokens come from us-east-1 only"),
    ):
        refused = run([XECR, "configure", "public.ecr.aws", *args])
        assert refused.returncode == 2 and says in refused.err, refused.err


@pytest.mark.slow
def test_no_public_token_or_role_secret_leaks(isolated_env: Path, fake_aws: FakeAws) -> None:
    """Debug logging on, a role chain, a fetch, a cached serve, a failure: the token and the
    role's keys appear only in get's answers and the private cache entry."""
    _config(isolated_env, f'[registries."public.ecr.aws"]\nrole_arn = "{PUBLIC_ROLE}"\n')
    debug = {"XECR_LOG_LEVEL": "debug"}
    answered = [get("public.ecr.aws", extra_env=debug), get("ecr-public.aws.com", extra_env=debug)]
    assert all(r.returncode == 0 for r in answered)
    fake_aws.fail("GetAuthorizationToken", "access_denied")
    failed = run([XECR, "login", "public.ecr.aws"], extra_env=debug)
    assert failed.returncode == 1
    assert password("444444444444") in known_secrets(fake_aws)
    entries = scan(fake_aws, isolated_env, [*answered, failed], answered)
    assert len(entries) == 1
