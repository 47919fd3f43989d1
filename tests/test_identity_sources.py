"""Each source identity people run with, as the root of a cross-account chain, through
the installed ``docker-credential-xecr`` and ``xecr doctor`` against loopback stand-ins:
OIDC web identity (moto's AssumeRoleWithWebIdentity), a container-credentials endpoint
(EKS Pod Identity, ECS), an IAM Identity Center profile (the portal's GetRoleCredentials,
answered by the fake) and ``credential_process``. Also: two identities on one user never
share a token, and an expired SSO login answers with the exact command to run."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import textwrap
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.fakeaws import FakeAws
from tests.helpers import (
    ANSWER,
    PULL_ROLE,
    XECR,
    assert_answers,
    assert_one_line_failure,
    get,
    run,
)

pytestmark = pytest.mark.slow

CI_ROLE = "arn:aws:iam::333333333333:role/ci-deploy"
OTHER_CI_ROLE = "arn:aws:iam::333333333333:role/ci-untrusted"


def bare_env(**extra: str) -> dict[str, str]:
    """The isolated environment without the fake access keys: the identity comes from elsewhere."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    }
    env.update(extra)
    return env


def aws_config(home: Path, text: str) -> None:
    path = home / ".aws" / "config"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    path.chmod(0o600)


def root_of_chain(fake: FakeAws) -> str | None:
    """The access key the first AssumeRole of the chain was signed with."""
    [first] = [r for r in fake.requests("AssumeRole") if r.params.get("RoleArn") == PULL_ROLE]
    return first.access_key_id


def web_identity(tmp_path: Path, name: str, role: str) -> dict[str, str]:
    token = tmp_path / f"{name}.jwt"
    token.write_text(f"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXBvOmV4YW1wbGUvJ{name}In0.c2ln")
    return bare_env(
        AWS_ROLE_ARN=role,
        AWS_WEB_IDENTITY_TOKEN_FILE=str(token),
        AWS_ROLE_SESSION_NAME=f"job-{name}",
    )


# -- web identity ------------------------------------------------------------------------


def test_web_identity_is_the_root_of_the_chain(configured: FakeAws, tmp_path: Path) -> None:
    env = web_identity(tmp_path, "a", CI_ROLE)
    assert_answers(get(env=env))
    [exchange] = configured.requests("AssumeRoleWithWebIdentity")
    assert exchange.params["RoleArn"] == CI_ROLE
    assert exchange.access_key_id is None  # unsigned: the OIDC token is the proof
    root = root_of_chain(configured)
    assert root is not None and root.startswith("ASIA")  # the web identity's session
    assert configured.calls("GetAuthorizationToken") == 1


def test_two_oidc_identities_on_one_user_each_get_their_own_token(
    configured: FakeAws, tmp_path: Path
) -> None:
    # Two CI jobs on one runner user, same HOME and config, different OIDC roles;
    # STS refuses the second. It must get that refusal, not the first job's token.
    configured.fail("AssumeRoleWithWebIdentity", "access_denied", match={"RoleArn": OTHER_CI_ROLE})
    trusted = web_identity(tmp_path, "a", CI_ROLE)
    untrusted = web_identity(tmp_path, "b", OTHER_CI_ROLE)
    assert_answers(get(env=trusted))
    assert_answers(get(env=trusted))  # cached
    assert configured.calls("GetAuthorizationToken") == 1
    refused = get(env=untrusted)
    line = assert_one_line_failure(refused, "AssumeRoleWithWebIdentity", "AccessDenied")
    assert ANSWER["Secret"] not in refused.out
    assert "ecr-pull" not in line  # the refused hop is the web identity, not the pull role
    assert configured.calls("AssumeRoleWithWebIdentity") == 2
    assert configured.calls("GetAuthorizationToken") == 1
    # Moving the token file is a new identity too: it asks STS, it is not served the cache.
    moved = web_identity(tmp_path, "c", CI_ROLE)
    assert_answers(get(env=moved))
    assert configured.calls("AssumeRoleWithWebIdentity") == 3


@pytest.mark.parametrize(
    "variable, first, second",
    [
        ("AWS_SHARED_CREDENTIALS_FILE", "credentials-a", "credentials-b"),
        ("AWS_CONFIG_FILE", "config-a", "config-b"),
        ("AWS_DEFAULT_PROFILE", "alpha", "beta"),
    ],
)
def test_identities_differing_in_one_variable_do_not_share_a_token(
    configured: FakeAws, tmp_path: Path, variable: str, first: str, second: str
) -> None:
    def env(value: str) -> dict[str, str]:
        if variable == "AWS_DEFAULT_PROFILE":
            aws_config(
                Path(os.environ["HOME"]),
                "[profile alpha]\nregion = us-east-1\n[profile beta]\nregion = us-east-1\n",
            )
            return {**os.environ, variable: value}
        (tmp_path / value).write_text("")
        (tmp_path / value).chmod(0o600)
        return {**os.environ, variable: str(tmp_path / value)}

    assert_answers(get(env=env(first)))
    assert_answers(get(env=env(first)))
    assert configured.calls("GetAuthorizationToken") == 1
    assert_answers(get(env=env(second)))
    assert configured.calls("GetAuthorizationToken") == 2


# -- container credentials (EKS Pod Identity, ECS) -----------------------------------------


def container_env(fake: FakeAws, tmp_path: Path, token: str | None = None) -> dict[str, str]:
    token_file = tmp_path / "eks-pod-identity-token"
    token_file.write_text(token or fake.container_token)
    return bare_env(
        AWS_CONTAINER_CREDENTIALS_FULL_URI=f"{fake.url}/_stand/container-credentials",
        AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=str(token_file),
    )


def test_container_credentials_are_the_root_of_the_chain(
    configured: FakeAws, tmp_path: Path
) -> None:
    assert_answers(get(env=container_env(configured, tmp_path)))
    assert [path for path, _ in configured.stand_in_calls] == ["/_stand/container-credentials"]
    assert root_of_chain(configured) == configured.container_keys.access_key_id


def test_a_refused_container_token_is_one_line(configured: FakeAws, tmp_path: Path) -> None:
    result = get(env=container_env(configured, tmp_path, token="not-the-token"))
    assert_one_line_failure(result)
    assert configured.calls("AssumeRole") == 0
    assert "not-the-token" not in result.out


# -- IAM Identity Center (SSO) ---------------------------------------------------------------


SSO_PROFILE = """\
    [profile dev]
    sso_session = corp
    sso_account_id = 444444444444
    sso_role_name = Developer
    region = us-east-1

    [sso-session corp]
    sso_start_url = https://corp.awsapps.com/start
    sso_region = us-east-1
    sso_registration_scopes = sso:account:access
"""
LEGACY_SSO_PROFILE = """\
    [profile legacy]
    sso_start_url = https://legacy.awsapps.com/start
    sso_region = us-east-1
    sso_account_id = 444444444444
    sso_role_name = Developer
    region = us-east-1
"""


def seed_sso_login(home: Path, name: str, token: str, expires_in: float) -> Path:
    """The token `aws sso login` leaves in ~/.aws/sso/cache (named by the sha1 of the
    session name, or of the start URL for a legacy profile)."""
    folder = home / ".aws" / "sso" / "cache"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (hashlib.sha1(name.encode()).hexdigest() + ".json")
    expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + expires_in))
    path.write_text(
        json.dumps(
            {
                "startUrl": "https://corp.awsapps.com/start",
                "region": "us-east-1",
                "accessToken": token,
                "expiresAt": expires,
            }
        )
    )
    path.chmod(0o600)
    return path


def test_an_sso_profile_is_the_root_of_the_chain(configured: FakeAws, isolated_env: Path) -> None:
    aws_config(isolated_env, SSO_PROFILE)
    seed_sso_login(isolated_env, "corp", configured.sso_access_token, 8 * 3600)
    assert_answers(get(env=bare_env(AWS_PROFILE="dev")))
    [(path, query)] = configured.stand_in_calls
    assert path == "/federation/credentials"
    assert query == {"role_name": "Developer", "account_id": "444444444444"}
    assert root_of_chain(configured) == configured.sso_keys.access_key_id


@pytest.mark.parametrize(
    "profile, text, cache_name, command",
    [
        ("dev", SSO_PROFILE, "corp", "aws sso login --sso-session corp"),
        (
            "legacy",
            LEGACY_SSO_PROFILE,
            "https://legacy.awsapps.com/start",
            "aws sso login --profile legacy",
        ),
    ],
)
def test_an_expired_sso_login_names_the_exact_command(
    configured: FakeAws,
    isolated_env: Path,
    profile: str,
    text: str,
    cache_name: str,
    command: str,
) -> None:
    aws_config(isolated_env, text)
    seed_sso_login(isolated_env, cache_name, configured.sso_access_token, -3600)
    result = get(env=bare_env(AWS_PROFILE=profile))
    assert_one_line_failure(result, f"run `{command}`")
    assert configured.calls("AssumeRole") == 0
    assert configured.sso_access_token not in result.out


def test_an_expired_login_behind_a_role_profile_names_the_sso_profile(
    configured: FakeAws, isolated_env: Path
) -> None:
    aws_config(
        isolated_env,
        LEGACY_SSO_PROFILE + "\n[profile ops]\nrole_arn = arn:aws:iam::444444444444:role/ops\n"
        "source_profile = legacy\n",
    )
    seed_sso_login(
        isolated_env, "https://legacy.awsapps.com/start", configured.sso_access_token, -60
    )
    result = get(env=bare_env(AWS_PROFILE="ops"))
    assert_one_line_failure(result, "run `aws sso login --profile legacy`")


# -- credential_process ------------------------------------------------------------------------


def process_profile(home: Path, tmp_path: Path) -> Path:
    script = tmp_path / "creds.py"
    ran = tmp_path / "ran"
    script.write_text(
        textwrap.dedent(f"""\
            import json, pathlib
            pathlib.Path({str(ran)!r}).write_text("yes")
            print(json.dumps({{"Version": 1, "AccessKeyId": "AKIAPROCESSFAKE00001",
                              "SecretAccessKey": "process-secret-for-tests"}}))
        """)
    )
    aws_config(
        home,
        f"[profile builder]\ncredential_process = {sys.executable} {script}\nregion = us-east-1\n",
    )
    return ran


def test_credential_process_is_the_root_of_the_chain(
    configured: FakeAws, isolated_env: Path, tmp_path: Path
) -> None:
    ran = process_profile(isolated_env, tmp_path)
    assert_answers(get(env=bare_env(AWS_PROFILE="builder")))
    assert ran.read_text() == "yes"
    assert root_of_chain(configured) == "AKIAPROCESSFAKE00001"


# -- xecr doctor names the kind of source identity ----------------------------------------------


def doctor_line(env: Mapping[str, str]) -> str:
    done = run([XECR, "doctor", "--no-docker"], env=env, timeout=60)
    [line] = [x for x in done.out.splitlines() if x.startswith(("PASS source", "WARN source"))]
    return line


def test_doctor_names_each_kind_of_source_identity(
    configured: FakeAws, isolated_env: Path, tmp_path: Path
) -> None:
    assert doctor_line(os.environ) == (
        "PASS source identity: environment keys (AWS_ACCESS_KEY_ID ...0001)"
    )
    env = web_identity(tmp_path, "a", CI_ROLE)
    assert doctor_line(env) == (
        f"PASS source identity: web identity: role {CI_ROLE} with token file "
        f"{env['AWS_WEB_IDENTITY_TOKEN_FILE']}"
    )
    env = container_env(configured, tmp_path)
    assert doctor_line(env) == (
        "PASS source identity: container credentials from "
        f"{configured.url}/_stand/container-credentials"
    )
    aws_config(isolated_env, SSO_PROFILE)
    cached = seed_sso_login(isolated_env, "corp", configured.sso_access_token, 8 * 3600)
    expires = json.loads(cached.read_text())["expiresAt"]
    assert doctor_line(bare_env(AWS_PROFILE="dev")) == (
        f"PASS source identity: SSO session corp (profile dev), login valid until {expires}"
    )
    process_profile(isolated_env, tmp_path)
    assert doctor_line(bare_env(AWS_PROFILE="builder")) == (
        f"PASS source identity: credential_process of profile builder "
        f"({isolated_env / '.aws' / 'config'})"
    )
    (isolated_env / ".aws" / "credentials").write_text(
        "[keys]\naws_access_key_id = AKIAFILEFAKE00000001\n"
        "aws_secret_access_key = file-secret-for-tests\n"
    )
    (isolated_env / ".aws" / "credentials").chmod(0o600)
    assert doctor_line(bare_env(AWS_PROFILE="keys")) == (
        f"PASS source identity: profile keys from {isolated_env / '.aws' / 'credentials'}"
    )
