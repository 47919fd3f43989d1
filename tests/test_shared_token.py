"""One token per identity and region (issue 22), through the installed programs.

ECR's GetAuthorizationToken answers the caller's token, valid for every registry
of its region the caller may read, and the fake answers the same way. Three
registries of us-east-1 behind one role chain (two account hosts and an alias)
must cost one AssumeRole and one GetAuthorizationToken, however many ``get``s
ask at once; a registry in another region or behind another role has its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ecr_helper import _cjson, config
from ecr_helper.cache import FileCache, file_cache
from ecr_helper.cache.file import digest
from ecr_helper.token import Token
from tests import k8s_tokens
from tests.fakeaws import FakeAws
from tests.helpers import (
    CENTRAL,
    CENTRAL_HOST,
    HELPER,
    PASSWORD,
    PULL_ROLE,
    XECR,
    Result,
    get,
    installed,
    run,
)

pytestmark = pytest.mark.slow

SIBLING_HOST = "333333333333.dkr.ecr.us-east-1.amazonaws.com"
ALIAS = "registry.example.com"
WEST_HOST = f"{CENTRAL}.dkr.ecr.us-west-2.amazonaws.com"
OTHER_ROLE_HOST = "555555555555.dkr.ecr.us-east-1.amazonaws.com"
OTHER_ROLE = "arn:aws:iam::555555555555:role/ecr-pull"
SHARED = (CENTRAL_HOST, SIBLING_HOST, ALIAS)
CONFIG = f"""\
[defaults]
region = "us-east-1"
role_arn = "{PULL_ROLE}"

[registries."{CENTRAL_HOST}"]
[registries."{SIBLING_HOST}"]
[registries."{ALIAS}"]
registry_id = "444444444444"
[registries."{WEST_HOST}"]
[registries."{OTHER_ROLE_HOST}"]
role_arn = "{OTHER_ROLE}"
"""
BATCH_TIMEOUT = 120.0


def secret_of(result: Result) -> str:
    answer = json.loads(result.out)
    return str(answer["Secret"])


def test_three_cold_gets_make_one_assume_role_and_one_token(
    fake_aws: FakeAws, write_config: Callable[[str], Path]
) -> None:
    write_config(CONFIG)
    secrets = []
    for host in SHARED:
        done = get(host)
        assert done.returncode == 0, (done.out, done.err)
        secrets.append(secret_of(done))
    # Before issue 22: 3 AssumeRole and 3 GetAuthorizationToken.
    assert (fake_aws.calls("AssumeRole"), fake_aws.calls("GetAuthorizationToken")) == (1, 1)
    assert secrets == [PASSWORD] * 3
    # Another region, another role: a token each.
    fake_aws.reset()
    for host in (WEST_HOST, OTHER_ROLE_HOST):
        assert get(host).returncode == 0
    assert (fake_aws.calls("AssumeRole"), fake_aws.calls("GetAuthorizationToken")) == (2, 2)
    west, other = fake_aws.requests("GetAuthorizationToken")
    assert (west.region, other.region) == ("us-west-2", "us-east-1")
    assert fake_aws.requests("AssumeRole")[1].params["RoleArn"] == OTHER_ROLE


def test_thirty_concurrent_cold_gets_over_three_registries_make_one_fetch(
    fake_aws: FakeAws, write_config: Callable[[str], Path], tmp_path: Path
) -> None:
    write_config(CONFIG)
    procs: list[subprocess.Popen[str]] = []
    try:
        for n in range(30):
            stdin_file = tmp_path / f"stdin-{n}"
            stdin_file.write_text(SHARED[n % 3] + "\n")
            with stdin_file.open() as stdin:
                procs.append(
                    subprocess.Popen(
                        [installed(HELPER), "get"],
                        stdin=stdin,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE,
                        env=dict(os.environ),
                        text=True,
                    )
                )
        deadline = time.monotonic() + BATCH_TIMEOUT
        runs = []
        for proc in procs:
            out, err = proc.communicate(timeout=max(0.1, deadline - time.monotonic()))
            runs.append((proc.returncode, out, err))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    assert [(rc, err[-300:]) for rc, _, err in runs if rc != 0] == []
    assert {json.loads(out)["Secret"] for _, out, _ in runs} == {PASSWORD}
    assert (fake_aws.calls("AssumeRole"), fake_aws.calls("GetAuthorizationToken")) == (1, 1)


def test_login_fetches_once_and_logout_names_the_registries_that_shared_it(
    fake_aws: FakeAws, write_config: Callable[[str], Path]
) -> None:
    write_config(CONFIG)
    done = run([XECR, "login", *SHARED])
    assert done.returncode == 0, done.err
    assert fake_aws.calls("GetAuthorizationToken") == 1
    lines = done.out.splitlines()
    assert lines[0].startswith(f"logged in to {CENTRAL_HOST} (registry {CENTRAL}), token expires")
    assert f"sharing the token of {CENTRAL_HOST}" in lines[1] and SIBLING_HOST in lines[1]
    rows = {row["registry"]: row for row in json.loads(run([XECR, "status", "--json"]).out)}
    assert rows[ALIAS]["state"] == "fresh"
    assert rows[ALIAS]["shares_token_with"] == [CENTRAL_HOST, SIBLING_HOST]
    assert rows[WEST_HOST]["shares_token_with"] == []
    done = run([XECR, "logout", SIBLING_HOST])
    assert done.out == (
        f"{SIBLING_HOST}: token forgotten, for {CENTRAL_HOST}, {ALIAS} too "
        "(they shared it: one token per identity and region)\n"
    )
    fake_aws.reset()
    assert get(CENTRAL_HOST).returncode == 0
    assert fake_aws.calls("GetAuthorizationToken") == 1  # forgotten for its siblings too
    everything = run([XECR, "logout"])
    assert everything.out == (
        f"{CENTRAL_HOST}: token forgotten, shared with {SIBLING_HOST}, {ALIAS}\n"
    )


def test_two_kubelet_requests_for_two_registries_of_a_region_make_one_call(
    fake_aws: FakeAws, write_config: Callable[[str], Path]
) -> None:
    write_config(CONFIG)
    answers = []
    for host in (CENTRAL_HOST, SIBLING_HOST):
        request = {
            "apiVersion": k8s_tokens.V1,
            "kind": "CredentialProviderRequest",
            "image": f"{host}/team/app:1",
        }
        done = run([HELPER, "kubelet"], json.dumps(request).encode())
        assert done.returncode == 0, done.err
        answers.append(json.loads(done.out)["auth"])
    assert answers == [
        {host: {"username": "AWS", "password": PASSWORD}} for host in (CENTRAL_HOST, SIBLING_HOST)
    ]
    assert (fake_aws.calls("AssumeRole"), fake_aws.calls("GetAuthorizationToken")) == (1, 1)


def _previous_key(host: str, env: dict[str, str]) -> str:
    """The key xecr gave ``host``'s token before issue 22 (KEY_VERSION 2, per registry)."""
    from ecr_helper import source

    settings = config.load(env).resolve(host)
    parts = [
        "2",
        settings.host,
        settings.partition,
        settings.region,
        settings.registry_id,
        list(settings.role_arns),
        settings.external_id or "",
        source.key_inputs(settings.source_profile, env, digest),
    ]
    return digest(_cjson.dumps(parts))[:32]


def test_entries_of_the_previous_key_version_are_never_served(
    fake_aws: FakeAws, write_config: Callable[[str], Path]
) -> None:
    """An entry written per registry before the upgrade is left alone: the first get
    after it fetches once, under the new key, and never serves the old one."""
    write_config(CONFIG)
    env = dict(os.environ)
    store: FileCache = file_cache(env, False)
    now = time.time()
    old = Token("AWS", "old-version-secret", now - 60, now + 43000, CENTRAL_HOST, CENTRAL)
    store.write(_previous_key(CENTRAL_HOST, env), old)
    first = get(CENTRAL_HOST)
    assert secret_of(first) == PASSWORD != old.secret
    assert fake_aws.calls("GetAuthorizationToken") == 1
    assert secret_of(get(SIBLING_HOST)) == PASSWORD
    assert fake_aws.calls("GetAuthorizationToken") == 1


def test_logout_and_erase_forget_pod_role_tokens_and_say_how_many(
    write_config: Callable[[str], Path],
) -> None:
    """Issue 21, item 5: a pod-role token must not stay servable after a logout."""
    from ecr_helper.frontends.kubelet import pod_key
    from ecr_helper.service import Service
    from ecr_helper.service_account import PodRole, ServiceAccount

    write_config(CONFIG)
    env = dict(os.environ)
    opened = Service.open(env)
    now = time.time()
    role = "arn:aws:iam::555555555555:role/team-a"
    for host, names in (("public.ecr.aws", ("builder", "web")), (SIBLING_HOST, ("builder",))):
        settings = opened.settings(host)
        for name in names:
            pod = PodRole(ServiceAccount("team-a", name, uid=name), role, "jwt")
            token = Token("AWS", "pod-secret", now, now + 3000, host, "", "us-east-1", role)
            opened.store.write(pod_key(opened.key(settings), pod), token)
    assert len(opened.store.entries()) == 3
    done = run([XECR, "logout", "public.ecr.aws"])
    assert done.returncode == 0, done.err
    assert done.out == (
        "public.ecr.aws: nothing cached; 2 pod-role tokens forgotten (kubelet service accounts)\n"
    )
    assert len(opened.store.entries()) == 1
    erased = run([HELPER, "erase"], CENTRAL_HOST.encode() + b"\n")  # shares SIBLING's token
    assert erased.returncode == 0, erased.err
    assert opened.store.entries() == {}
