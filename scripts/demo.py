"""An offline tour of xecr against a loopback AWS stand-in (tests/fakeaws.py).

Everything happens in a throwaway HOME (under ``--root``, else a temporary
folder removed at the end): a config that maps the central
registry (account 111111111111) to a cross-account role with an external id,
then the calls Docker makes (`get`, `list`), the people's commands, and the
answer for a registry that is not ours. Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CENTRAL_HOST = "111111111111.dkr.ecr.us-east-1.amazonaws.com"
ROLE = "arn:aws:iam::111111111111:role/ecr-pull-from-dev"


def step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def run(argv: list[str], env: dict[str, str], stdin: str | None = None) -> float:
    shown = " ".join(argv) if stdin is None else f"echo {stdin} | {' '.join(argv)}"
    print(f"$ {shown}", flush=True)
    started = time.perf_counter()
    result = subprocess.run(
        argv, input=stdin, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    elapsed = time.perf_counter() - started
    for line in (result.stdout + result.stderr).rstrip().splitlines():
        print(f"  {line}")
    print(f"  (exit {result.returncode}, {elapsed * 1000:.0f} ms)", flush=True)
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, help="an empty folder for the demo's files")
    args = parser.parse_args()
    helper = shutil.which("docker-credential-xecr")
    xecr = shutil.which("xecr")
    if not helper or not xecr:
        print("install xecr first: pip install -e '.[test]'", file=sys.stderr)
        return 1
    if args.root is not None:
        return tour(args.root, helper, xecr)  # whoever made the folder removes it
    with tempfile.TemporaryDirectory(prefix="xecr-demo-") as root:
        return tour(Path(root), helper, xecr)


def tour(root: Path, helper: str, xecr: str) -> int:
    home = root / "home"
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "DOCKER_CONFIG": str(home / ".docker"),
        "AWS_ACCESS_KEY_ID": "AKIADEMODEMODEMO0001",
        "AWS_SECRET_ACCESS_KEY": "demo-secret-key-not-real",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "XECR_SYSTEM_CONFIG": str(root / "no-system-config.toml"),
    }
    config = home / ".config" / "xecr" / "config.toml"
    fake = subprocess.Popen(
        [sys.executable, "-m", "tests.fakeaws", "--port", "0"],
        cwd=Path(__file__).resolve().parent.parent,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert fake.stdout is not None
        url = fake.stdout.readline().strip()
        env["AWS_ENDPOINT_URL"] = url
        print(f"loopback AWS stand-in (moto + real 12 h expiries) at {url}")

        step("One command sets up a registry: xecr's config and Docker's credHelpers")
        run(
            [
                xecr,
                "configure",
                CENTRAL_HOST,
                "--role-arn",
                ROLE,
                "--external-id",
                "demo-external-id",
            ],
            env,
        )
        print(f"{config}:\n{config.read_text()}")
        docker_config = home / ".docker" / "config.json"
        print(f"{docker_config}:\n{docker_config.read_text()}")

        step("Docker asks for credentials: the first get assumes the role and calls ECR")
        cold = run([helper, "get"], env, CENTRAL_HOST)
        step("Docker asks again: served from the cache, no AWS call")
        warm = run([helper, "get"], env, CENTRAL_HOST)
        step("The same registry as clients spell it: https://, :443, a path, upper case")
        run([helper, "get"], env, f"HTTPS://{CENTRAL_HOST.upper()}:443/v2/")
        step("Docker's list: the registries xecr serves")
        run([helper, "list"], env)
        step("A registry that is not ours: Docker's own 'not found', and no AWS call")
        run([helper, "get"], env, "registry-1.docker.io")
        step("A look-alike host is not ours either")
        run([helper, "get"], env, f"{CENTRAL_HOST}.evil.example")
        step("xecr status: what is cached, and when it must be refreshed")
        run([xecr, "status"], env)
        step("xecr doctor: live checks of the whole chain")
        run([xecr, "doctor", CENTRAL_HOST], env)
        step("The password alone, for docker login --password-stdin or helm")
        run([xecr, "get-login-password", CENTRAL_HOST], env)
        step("The repository policy the registry owner applies for a consumer account")
        run([xecr, "policy", "repository", "--pull", "222222222222"], env)
        print(f"\ncold get {cold * 1000:.0f} ms, cached get {warm * 1000:.0f} ms")
        return 0
    finally:
        fake.terminate()
        fake.wait(timeout=10)


if __name__ == "__main__":
    raise SystemExit(main())
