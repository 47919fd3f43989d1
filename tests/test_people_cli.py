"""People's commands through the installed executables, against the loopback fake AWS:
configure, login, status, logout, get-login-password, doctor and the kubelet plugin."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.fakeaws import FakeAws
from tests.helpers import CENTRAL, CENTRAL_HOST, PULL_ACCOUNT, PULL_ROLE, installed

# Every test here starts the installed executables (or a shell script).
pytestmark = pytest.mark.slow


PASSWORD = f"{PULL_ACCOUNT}-auth-token"  # the caller's token, as ECR answers
FAKE_SECRET_KEY = "fake-secret-key-for-tests-only"
TIMEOUT = 60


def run(
    *args: str, input: str | None = None, exe: str = "xecr"
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [installed(exe), *args],
        input=input,
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=TIMEOUT,
        check=False,
    )
    # Nothing people see may carry a traceback or the source secret key.
    for stream in (done.stdout, done.stderr):
        assert "Traceback" not in stream
        assert FAKE_SECRET_KEY not in stream
    return done


def configure_central(*extra: str) -> subprocess.CompletedProcess[str]:
    done = run(
        "configure", CENTRAL_HOST, "--role-arn", PULL_ROLE, "--external-id", "fleet-1", *extra
    )
    assert done.returncode == 0, done.stderr
    return done


def status_json() -> list[dict[str, object]]:
    done = run("status", "--json")
    assert done.returncode == 0, done.stderr
    rows: list[dict[str, object]] = json.loads(done.stdout)
    return rows


def test_configure_keeps_docker_config_and_comments_and_runs_twice_unchanged(
    isolated_env: Path, write_config: Callable[[str], Path], fake_aws: FakeAws
) -> None:
    config_file = write_config(
        '# my registries -- keep me\n[defaults]\nregion = "us-east-1"  # home\n'
    )
    docker = isolated_env / ".docker" / "config.json"
    docker.parent.mkdir()
    existing = {
        "auths": {"ghcr.io": {"auth": "dXNlcjpwYXNz"}},
        "credHelpers": {"gcr.io": "gcloud"},
        "currentContext": "colima",
        "x-unknown": {"nested": [1, 2, 3]},
    }
    docker.write_text(json.dumps(existing))
    docker.chmod(0o640)

    done = configure_central()
    assert done.stdout.splitlines() == [
        f'config: added [registries."{CENTRAL_HOST}"] to {config_file}',
        f'docker: credHelpers["{CENTRAL_HOST}"] = "xecr" in {docker}',
    ]
    assert done.stderr == ""
    expected = json.loads(json.dumps(existing))
    expected["credHelpers"][CENTRAL_HOST] = "xecr"
    assert json.loads(docker.read_text()) == expected
    assert stat.S_IMODE(docker.stat().st_mode) == 0o640
    text = config_file.read_text()
    assert text.startswith('# my registries -- keep me\n[defaults]\nregion = "us-east-1"  # home\n')
    assert f'role_arn = "{PULL_ROLE}"' in text and 'external_id = "fleet-1"' in text

    before = (config_file.read_bytes(), docker.read_bytes())
    again = configure_central()
    assert again.stdout == "nothing to change\n"
    assert (config_file.read_bytes(), docker.read_bytes()) == before

    # Docker's side of a pull: the helper answers for the configured host.
    got = run("get", input=CENTRAL_HOST, exe="docker-credential-xecr")
    assert got.returncode == 0, got.stdout
    assert json.loads(got.stdout) == {
        "ServerURL": CENTRAL_HOST,
        "Username": "AWS",
        "Secret": PASSWORD,
    }
    [assume] = fake_aws.requests("AssumeRole")
    assert assume.params["RoleArn"] == PULL_ROLE and assume.params["ExternalId"] == "fleet-1"


def test_configure_usage_errors_exit_2(isolated_env: Path) -> None:
    done = run("configure", "mirror.example.com", "--role-arn", PULL_ROLE)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and "give --registry-id" in done.stderr
    assert "--region" in done.stderr


def test_login_status_logout(isolated_env: Path, fake_aws: FakeAws) -> None:
    configure_central()
    [row] = status_json()
    assert row["registry"] == CENTRAL_HOST and row["expires_at"] is None
    assert row["state"] == "none"

    before = time.time()
    done = run("login")
    after = time.time()
    assert done.returncode == 0, done.stderr
    assert f"logged in to {CENTRAL_HOST} (registry {CENTRAL})" in done.stdout
    assert PASSWORD not in done.stdout
    assert fake_aws.calls("GetAuthorizationToken") == 1

    [row] = status_json()
    assert {k: row[k] for k in ("registry", "registry_id", "region", "role_arn", "state")} == {
        "registry": CENTRAL_HOST,
        "registry_id": CENTRAL,
        "region": "us-east-1",
        "role_arn": PULL_ROLE,
        "state": "fresh",
    }
    assert isinstance(row["expires_at"], str)
    expires = datetime.fromisoformat(row["expires_at"])
    assert expires.utcoffset() == timedelta(0)
    # 12 h from the moment of the fetch, which lies between before and after
    # (the ISO form keeps whole seconds).
    assert before + 12 * 3600 - 1 <= expires.timestamp() <= after + 12 * 3600

    table = run("status")
    assert table.returncode == 0
    lines = table.stdout.splitlines()
    assert lines[0].startswith("REGISTRY") and "EXPIRES" in lines[0]
    assert re.fullmatch(
        rf"{re.escape(CENTRAL_HOST)}\s+{CENTRAL}\s+us-east-1\s+"
        rf"{re.escape(PULL_ROLE)}\s+set\s+in 11h5\dm\s+fresh",
        lines[1],
    )
    assert lines[-1] == "daemon: not running"
    assert PASSWORD not in table.stdout

    done = run("logout")
    assert done.returncode == 0
    assert done.stdout == f"{CENTRAL_HOST}: token forgotten\n"
    [row] = status_json()
    assert row["expires_at"] is None and row["state"] == "none"
    assert run("logout", CENTRAL_HOST).stdout == f"{CENTRAL_HOST}: nothing cached\n"


def test_get_login_password_prints_the_password_alone(
    isolated_env: Path, fake_aws: FakeAws
) -> None:
    configure_central()
    done = run("get-login-password", CENTRAL_HOST)
    assert done.returncode == 0, done.stderr
    assert done.stdout == PASSWORD + "\n"
    assert done.stderr == ""
    # the second one comes from the cache
    assert run("get-login-password", CENTRAL_HOST).stdout == PASSWORD + "\n"
    assert fake_aws.calls("GetAuthorizationToken") == 1


def test_unknown_registries_are_named(isolated_env: Path, fake_aws: FakeAws) -> None:
    for args in (
        ("login", "mirror.example.com"),
        ("get-login-password", "mirror.example.com"),
        ("logout", "mirror.example.com"),
    ):
        done = run(*args)
        assert done.returncode == 1
        assert done.stderr.count("\n") == 1
        assert "'mirror.example.com' is neither an ECR host" in done.stderr
        assert "xecr configure mirror.example.com" in done.stderr
    assert fake_aws.counts() == {}
    # The log keeps the command and the host (once redacted to "get-login-***'").
    log_text = (Path(os.environ["XDG_STATE_HOME"]) / "xecr" / "log" / "xecr.log").read_text()
    assert "get-login-password: 'mirror.example.com' is neither an ECR host" in log_text


def test_an_11_digit_ecr_host_is_called_a_typo_not_an_alias(
    isolated_env: Path, fake_aws: FakeAws
) -> None:
    short = "11111111111.dkr.ecr.us-east-1.amazonaws.com"
    for args in (("login", short), ("get-login-password", short), ("logout", short)):
        done = run(*args)
        assert done.returncode == 1
        assert done.stderr.count("\n") == 1 and short in done.stderr
        assert (
            "is not an ECR host: 11111111111 has 11 digits, "
            "but an ECR host starts with a 12-digit account id\n"
        ) in done.stderr
        assert "--registry-id" not in done.stderr  # not steered toward an alias
    assert fake_aws.counts() == {}


def test_doctor_passes_on_a_healthy_setup(isolated_env: Path, fake_aws: FakeAws) -> None:
    configure_central()
    assert run("login").returncode == 0
    fake_aws.reset()
    done = run("doctor")
    assert done.returncode == 0, done.stdout
    words = [line.split(" ", 1)[0] for line in done.stdout.splitlines()]
    assert words[:-1] == ["PASS"] * 7 and words[-1] in ("PASS", "WARN")
    assert "PASS source identity: environment keys (AWS_ACCESS_KEY_ID ...0001)" in done.stdout
    assert "PASS assume role: assumed " + PULL_ROLE in done.stdout
    # live, not from the cache that login filled
    assert fake_aws.calls("GetCallerIdentity") == 1
    assert fake_aws.calls("AssumeRole") >= 1
    assert fake_aws.calls("GetAuthorizationToken") == 1
    assert PASSWORD not in done.stdout


def test_doctor_fails_naming_the_role_on_access_denied(
    isolated_env: Path, fake_aws: FakeAws
) -> None:
    configure_central()
    fake_aws.fail("AssumeRole", "access_denied")
    done = run("doctor", CENTRAL_HOST)
    assert done.returncode == 1
    [failed] = [line for line in done.stdout.splitlines() if line.startswith("FAIL")]
    assert failed.startswith(f"FAIL assume role: AssumeRole denied for {PULL_ROLE} (AccessDenied)")
    assert " -- " in failed and "fleet-1" in failed
    assert fake_aws.calls("GetAuthorizationToken") == 0


def test_kubelet_plugin_answers_field_by_field(isolated_env: Path, fake_aws: FakeAws) -> None:
    configure_central("--no-docker")
    request = {
        "apiVersion": "credentialprovider.kubelet.k8s.io/v1",
        "kind": "CredentialProviderRequest",
        "image": f"{CENTRAL_HOST}/team/app:1.0",
        "serviceAccountToken": "",
        "serviceAccountAnnotations": {},
    }
    done = run("kubelet", input=json.dumps(request), exe="docker-credential-xecr")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    response = json.loads(done.stdout)
    assert response["apiVersion"] == "credentialprovider.kubelet.k8s.io/v1"
    assert response["kind"] == "CredentialProviderResponse"
    assert response["cacheKeyType"] == "Registry"
    match = re.fullmatch(r"(\d+)h(\d+)m(\d+)s", response["cacheDuration"])
    assert match is not None
    hours, minutes, seconds = map(int, match.groups())
    assert 6 * 3600 - 120 < hours * 3600 + minutes * 60 + seconds <= 6 * 3600
    assert response["auth"] == {CENTRAL_HOST: {"username": "AWS", "password": PASSWORD}}
    assert set(response) == {"apiVersion", "kind", "cacheKeyType", "cacheDuration", "auth"}
    assert fake_aws.calls("GetAuthorizationToken") == 1


@pytest.mark.parametrize("version", ["v1", "v1beta1", "v1alpha1"])
def test_kubelet_plugin_answers_other_images_with_no_auth(
    isolated_env: Path, fake_aws: FakeAws, version: str
) -> None:
    """A broad matchImages sends Docker Hub images here too: a valid, empty answer, exit 0,
    so the kubelet pulls without credentials instead of logging an exec error."""
    api = f"credentialprovider.kubelet.k8s.io/{version}"
    for image in ("quay.io/org/app:1", "nginx:latest"):
        request = {"apiVersion": api, "kind": "CredentialProviderRequest", "image": image}
        done = run("kubelet", input=json.dumps(request), exe="docker-credential-xecr")
        assert done.returncode == 0, done.stderr
        assert done.stderr == ""
        response = json.loads(done.stdout)
        assert response["apiVersion"] == api and response["kind"] == "CredentialProviderResponse"
        assert response["cacheKeyType"] == "Registry" and "auth" not in response
        assert re.fullmatch(r"(\d+h)?(\d+m)?\d+s", response["cacheDuration"])
    assert fake_aws.counts() == {}


OTHER_ROLE_FREE = "333333333333.dkr.ecr.us-east-1.amazonaws.com"


def test_login_tries_every_registry_names_the_failing_one_and_exits_1(
    isolated_env: Path, fake_aws: FakeAws
) -> None:
    """Of two registries one is denied: the other is logged in all the same."""
    configure_central()
    # The second registry asks ECR with the source credentials: no AssumeRole.
    config_file = isolated_env / ".config" / "xecr" / "config.toml"
    config_file.write_text(
        config_file.read_text() + f'\n[registries."{OTHER_ROLE_FREE}"]\nrole_arn = []\n'
    )
    fake_aws.fail("AssumeRole", "access_denied")
    done = run("login")
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        line for line in done.stdout.splitlines() if line.startswith("logged in to ")
    ]
    [ok] = done.stdout.splitlines()
    assert ok.startswith(f"logged in to {OTHER_ROLE_FREE} (registry 333333333333), token expires ")
    [failed] = done.stderr.splitlines()
    assert failed.startswith(f"xecr login: {CENTRAL_HOST}: AssumeRole denied for {PULL_ROLE}")
    assert "trust policy" in failed
    fake_aws.clear_faults()
    done = run("login")
    assert done.returncode == 0 and done.stderr == ""
    assert len(done.stdout.splitlines()) == 2


def test_a_typo_in_one_section_leaves_the_others_working(
    isolated_env: Path, fake_aws: FakeAws
) -> None:
    configure_central("--no-docker")
    config_file = isolated_env / ".config" / "xecr" / "config.toml"
    config_file.write_text(
        config_file.read_text()
        + '\n[registries."mirror.example.com"]\nregistry_id = "333333333333"\n'
        + 'region = "us-east-1"\nrole_ran = "arn:aws:iam::333333333333:role/x"\n'
    )
    where = f'config error in {config_file}: registries."mirror.example.com".role_ran'
    # get: the good one answers; the broken one fails naming file and key, on both streams
    good = run("get", input=CENTRAL_HOST, exe="docker-credential-xecr")
    assert good.returncode == 0, good.stdout
    assert json.loads(good.stdout)["Secret"] == PASSWORD
    bad = run("get", input="mirror.example.com", exe="docker-credential-xecr")
    assert bad.returncode == 1 and bad.stdout.startswith(where)
    assert bad.stderr.startswith(f"xecr: mirror.example.com: {where}")
    # login: one line each, exit 1
    done = run("login")
    assert done.returncode == 1
    assert done.stdout.startswith(f"logged in to {CENTRAL_HOST}")
    assert done.stderr.startswith(f"xecr login: mirror.example.com: {where}")
    # status and doctor show the broken section
    rows = {str(row["registry"]): row for row in status_json()}
    assert rows[CENTRAL_HOST]["state"] == "fresh"
    assert rows["mirror.example.com"]["state"] == "config error"
    assert str(rows["mirror.example.com"]["error"]).startswith(where)
    table = run("status")
    assert table.returncode == 0 and f"mirror.example.com: {where}" in table.stdout
    doctor = run("doctor", "--no-docker")
    assert doctor.returncode == 1
    assert f"FAIL config [mirror.example.com]: {where}" in doctor.stdout
    assert f"PASS token [{CENTRAL_HOST}]" in doctor.stdout
    # the kubelet keeps serving the good registry
    request = {
        "apiVersion": "credentialprovider.kubelet.k8s.io/v1",
        "kind": "CredentialProviderRequest",
        "image": f"{CENTRAL_HOST}/team/app:1",
    }
    kube = run("kubelet", input=json.dumps(request), exe="docker-credential-xecr")
    assert kube.returncode == 0, kube.stderr
    assert json.loads(kube.stdout)["auth"][CENTRAL_HOST]["password"] == PASSWORD


def test_help_lists_the_commands() -> None:
    done = run("--help")
    assert done.returncode == 0
    for name in (
        "configure",
        "login",
        "logout",
        "get-login-password",
        "status",
        "doctor",
        "kubelet",
    ):
        assert re.search(rf"^\s+{name}\s", done.stdout, re.MULTILINE), name
