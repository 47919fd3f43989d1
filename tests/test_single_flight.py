"""Concurrent helpers share one fetch; keys follow the config; the cached `get` stays lean.

Every test here runs the installed helper as a subprocess against the loopback fake
AWS, as Docker would: many at once on a cold cache, then warm.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ecr_helper.cache import FileCache
from tests.fakeaws import FakeAws
from tests.helpers import CENTRAL_HOST, PASSWORD, PULL_ROLE, installed

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
PARALLEL = 24
# Two cores starting two dozen Pythons is slow; this bounds the whole batch.
BATCH_TIMEOUT = 120.0
ONE_TIMEOUT = 30.0
SECRET = PASSWORD  # what the fake's GetAuthorizationToken hands PULL_ROLE
OTHER_ROLE = "arn:aws:iam::333333333333:role/ecr-pull-elsewhere"
# Never on the cached path: each costs more than the whole cached `get` may add.
HEAVY = frozenset(
    {
        "boto3",
        "botocore",
        "keyring",
        "dataclasses",
        "typing",
        "tomllib",
        "platformdirs",
        "filelock",
        "logging",
        "tomlkit",
        "json",
        "pathlib",
    }
)

Run = tuple[int, str, str]


def helper() -> str:
    return installed("docker-credential-xecr")


def config_text(role: str = PULL_ROLE, extra: str = "") -> str:
    return f'[defaults]\nregion = "us-east-1"\nrole_arn = "{role}"\n{extra}'


def cache_folder(home: Path) -> Path:
    return home / ".cache" / "xecr"


def run_get(env: dict[str, str], argv: list[str] | None = None) -> Run:
    result = subprocess.run(
        argv or [helper(), "get"],
        input=CENTRAL_HOST,
        env=env,
        capture_output=True,
        text=True,
        timeout=ONE_TIMEOUT,
    )
    return result.returncode, result.stdout, result.stderr


def run_parallel(env: dict[str, str], stdin_file: Path, count: int = PARALLEL) -> list[Run]:
    """Start ``count`` gets at once (each reads its own copy of stdin) and collect them."""
    stdin_file.write_text(CENTRAL_HOST)
    procs: list[subprocess.Popen[str]] = []
    try:
        for _ in range(count):
            with stdin_file.open() as stdin:
                procs.append(
                    subprocess.Popen(
                        [helper(), "get"],
                        stdin=stdin,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE,
                        env=env,
                        text=True,
                    )
                )
        deadline = time.monotonic() + BATCH_TIMEOUT
        runs: list[Run] = []
        for proc in procs:
            out, err = proc.communicate(timeout=max(0.1, deadline - time.monotonic()))
            runs.append((proc.returncode, out, err))
        return runs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)


def assert_answers(runs: list[Run], secret: str = SECRET) -> None:
    failed = [(rc, out, err[-500:]) for rc, out, err in runs if rc != 0]
    assert failed == []
    answers = {out for _, out, _ in runs}
    assert len(answers) == 1, answers
    answer = json.loads(answers.pop())
    assert answer == {"ServerURL": CENTRAL_HOST, "Username": "AWS", "Secret": secret}


def assert_one_fetch(fake: FakeAws, role: str = PULL_ROLE) -> None:
    assert fake.calls("AssumeRole") == 1
    assert fake.calls("GetAuthorizationToken") == 1
    assert fake.requests("AssumeRole")[0].params["RoleArn"] == role
    # The token was asked for as the role, not with the source keys.
    ecr_key = fake.requests("GetAuthorizationToken")[0].access_key_id
    assert ecr_key and ecr_key != os.environ["AWS_ACCESS_KEY_ID"]


def assert_private(folder: Path) -> None:
    assert stat.S_IMODE(folder.lstat().st_mode) == 0o700
    for path in folder.iterdir():
        assert stat.S_IMODE(path.lstat().st_mode) == 0o600, path.name


def imported_modules(stderr: str) -> set[str]:
    """Module names from ``-X importtime`` output."""
    names = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.split("|")[2].strip()
            if name != "imported package":
                names.add(name)
    return names


def heavy_imports(names: set[str]) -> set[str]:
    return {name for name in names if name.split(".")[0] in HEAVY}


def importtime_get(env: dict[str, str]) -> tuple[Run, set[str]]:
    """One `get` under ``-X importtime``, and every module it imported.

    ``-S`` keeps site's own imports (and whatever .pth files a machine has, such as
    certificate hooks that import typing) out of the measure: what is left is exactly
    what xecr imports. The paths site would add are given explicitly instead.
    """
    paths = [str(REPO), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    env = {**env, "PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}
    code = (
        "import sys; sys.argv = ['docker-credential-xecr', 'get']; "
        "from ecr_helper.cli import run; run()"
    )
    run = run_get(env, [sys.executable, "-S", "-X", "importtime", "-c", code])
    return run, imported_modules(run[2])


@pytest.fixture
def env() -> dict[str, str]:
    return dict(os.environ)


# -- single flight ------------------------------------------------------------------------


def test_parallel_cold_gets_make_one_fetch_then_warm_makes_none(
    fake_aws: FakeAws,
    write_config: Callable[[str], Path],
    isolated_env: Path,
    env: dict[str, str],
    tmp_path: Path,
) -> None:
    write_config(config_text())
    runs = run_parallel(env, tmp_path / "stdin")
    assert_answers(runs)
    assert_one_fetch(fake_aws)
    folder = cache_folder(isolated_env)
    assert_private(folder)
    entries = FileCache(str(folder)).entries()
    assert [t.role_arn for t in entries.values()] == [PULL_ROLE]

    fake_aws.reset()
    warm = run_get(env)
    assert_answers([warm])
    assert fake_aws.counts() == {}


def test_parallel_cold_gets_with_the_keyring_backend(
    fake_aws: FakeAws,
    write_config: Callable[[str], Path],
    isolated_env: Path,
    env: dict[str, str],
    tmp_path: Path,
) -> None:
    write_config(config_text(extra='cache = "keyring"\n'))
    keyring_file = tmp_path / "keyring.json"
    env.update(
        {
            "PYTHON_KEYRING_BACKEND": "tests.filekeyring.FileKeyring",
            "XECR_TEST_KEYRING_FILE": str(keyring_file),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
        }
    )
    runs = run_parallel(env, tmp_path / "stdin")
    assert_answers(runs)
    assert_one_fetch(fake_aws)

    stored = json.loads(keyring_file.read_text())
    assert list(stored) == ["xecr"]
    assert list(stored["xecr"].values()) == [SECRET]
    (key,) = stored["xecr"]
    folder = cache_folder(isolated_env)
    assert_private(folder)
    names = {p.name for p in folder.iterdir() if p.name.endswith(".json")}
    assert f"keyring-{key}.json" in names
    assert not any(name.startswith("token-") for name in names)  # no file-cache fallback
    for path in folder.iterdir():
        assert SECRET not in path.read_text(errors="replace"), path.name

    fake_aws.reset()
    (rc, out, err), modules = importtime_get(env)
    assert_answers([(rc, out, err)])
    assert fake_aws.counts() == {}
    assert "keyring" in modules  # really the keyring path
    assert not {"boto3", "botocore"} & {name.split(".")[0] for name in modules}


# -- keys follow the config ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after", "check"),
    [
        pytest.param(config_text(), config_text(OTHER_ROLE), ("RoleArn", OTHER_ROLE), id="role"),
        pytest.param(
            config_text(extra='external_id = "first-id"\n'),
            config_text(extra='external_id = "second-id"\n'),
            ("ExternalId", "second-id"),
            id="external-id",
        ),
    ],
)
def test_changing_the_config_never_serves_the_old_token(
    fake_aws: FakeAws,
    write_config: Callable[[str], Path],
    isolated_env: Path,
    env: dict[str, str],
    before: str,
    after: str,
    check: tuple[str, str],
) -> None:
    write_config(before)
    assert_answers([run_get(env)])
    assert fake_aws.calls("GetAuthorizationToken") == 1

    write_config(after)
    # The fake answers ECR's way, the caller's token: OTHER_ROLE's is its account's.
    assert_answers([run_get(env)], "333333333333-auth-token" if OTHER_ROLE in after else SECRET)
    assert fake_aws.calls("AssumeRole") == 2
    assert fake_aws.calls("GetAuthorizationToken") == 2
    field, value = check
    assert fake_aws.requests("AssumeRole")[-1].params[field] == value
    assert len(FileCache(str(cache_folder(isolated_env))).entries()) == 2

    write_config(before)  # the first token is still cached under its own key
    fake_aws.reset()
    assert_answers([run_get(env)])
    assert fake_aws.counts() == {}


# -- what the cached path imports ---------------------------------------------------------


@pytest.mark.parametrize(
    "warm_runs",
    [
        pytest.param(2, id="steady"),
        pytest.param(1, id="first-after-fetch"),
    ],
)
def test_the_cached_get_imports_nothing_heavy(
    fake_aws: FakeAws,
    write_config: Callable[[str], Path],
    env: dict[str, str],
    warm_runs: int,
) -> None:
    write_config(config_text())
    for _ in range(warm_runs):
        assert_answers([run_get(env)])
    fake_aws.reset()
    run, modules = importtime_get(env)
    assert_answers([run])
    assert fake_aws.counts() == {}  # really the cached path
    assert "ecr_helper.cache" in modules  # and really measured
    assert heavy_imports(modules) == set()


@pytest.mark.parametrize("setting", ["", 'cache = "file"\n'], ids=["default", "explicit"])
def test_the_file_backend_never_imports_keyring_even_on_a_miss(
    fake_aws: FakeAws,
    write_config: Callable[[str], Path],
    env: dict[str, str],
    setting: str,
) -> None:
    write_config(config_text(extra=setting))
    run, modules = importtime_get(env)
    assert_answers([run])
    assert fake_aws.calls("GetAuthorizationToken") == 1  # a miss: AWS was called
    assert "boto3" in modules
    assert not any(name.split(".")[0] == "keyring" for name in modules)
