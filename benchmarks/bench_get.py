"""Side-by-side timings of ``docker-credential-xecr get`` (issue 3, point 6).

Three comparisons, each as paired runs (A then B in every round, N rounds)
measured in one run of this script, reported as medians, p90s and the ratio
of the medians (and the median of the per-round ratios):

* cached ``get`` against the floor of any pip console script
  (``python -c "import re, sys; sys.stdin.read()"`` in the same venv, fed the
  same stdin the same way); aim: within 1.2x;
* cold ``get`` (cache folder emptied before each run) against a minimal boto3
  script doing the same two calls (AssumeRole, then GetAuthorizationToken)
  against the same loopback fake AWS; aim: within 1.2x;
* with ``--dist DIR`` (what ``scripts/release.sh`` built): the cached ``get``
  of the self-contained bundle, and of the packaged launcher
  (``/usr/bin/docker-credential-xecr`` of the ``.deb``, unpacked), against the
  pip-installed helper's; aims: no slower (1.0x) and at most 0.75x;
* when ``docker-credential-ecr-login`` is installed: cached ``get`` against
  its cached ``get``, its ``~/.ecr/cache.json`` seeded so that it answers
  without any network call (checked, see :func:`prepare_ecr_login`).

It also lists the modules the cached ``get`` imports beyond the floor's
(``-X importtime``) and exits 1 if boto3, botocore or keyring are among them.
Run from the repository: ``python benchmarks/bench_get.py --rounds 40``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from _env import (
    ACCESS_KEY,
    CENTRAL,
    CENTRAL_HOST,
    EXPECTED_SECRET,
    EXTERNAL_ID,
    PULL_ROLE,
    REGION,
    BenchError,
    FakeAwsProcess,
    Trap,
    Venv,
    build_venv,
    cache_dir,
    clear_folder,
    isolated_env,
)

# Docker writes the bare host, no newline.
STDIN = CENTRAL_HOST.encode()
FLOOR = "import re, sys; sys.stdin.read()"
AIM = 1.2
BUNDLE_AIM = 1.0
PACKAGED_AIM = 0.75
FORBIDDEN = ("boto3", "botocore", "keyring")

BOTO3_GET = '''\
"""The least a boto3 script does for an ECR token through a role."""
import base64
import json
import sys

import boto3

role, external_id = sys.argv[1], sys.argv[2]
host = sys.stdin.read().strip()
region = host.split(".")[3]
sts = boto3.client("sts", region_name=region)
creds = sts.assume_role(RoleArn=role, RoleSessionName="bench", ExternalId=external_id,
                        DurationSeconds=900)["Credentials"]
ecr = boto3.client("ecr", region_name=region, aws_access_key_id=creds["AccessKeyId"],
                   aws_secret_access_key=creds["SecretAccessKey"],
                   aws_session_token=creds["SessionToken"])
data = ecr.get_authorization_token()["authorizationData"][0]
user, _, secret = base64.b64decode(data["authorizationToken"]).decode().partition(":")
print(json.dumps({"ServerURL": host, "Username": user, "Secret": secret}))
'''


@dataclass(frozen=True)
class Command:
    label: str
    argv: list[str]
    env: dict[str, str]
    answers: bool = True  # prints a credential answer (else: prints nothing)
    prepare: Callable[[], None] | None = None  # run before each timing, untimed
    timeout: float = 60.0


@dataclass(frozen=True)
class Paired:
    a: Command
    b: Command
    a_times: list[float] = field(default_factory=list)
    b_times: list[float] = field(default_factory=list)

    def ratio(self) -> float:
        return statistics.median(self.a_times) / statistics.median(self.b_times)

    def paired_ratio(self) -> float:
        return statistics.median(x / y for x, y in zip(self.a_times, self.b_times, strict=True))


def run_once(
    cmd: Command, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    env = cmd.env if extra_env is None else {**cmd.env, **extra_env}
    try:
        return subprocess.run(
            cmd.argv,
            input=STDIN,
            capture_output=True,
            env=env,
            cwd=env["HOME"],
            timeout=cmd.timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"{cmd.label}: no answer within {cmd.timeout:.0f}s") from None


def check(cmd: Command, done: subprocess.CompletedProcess[bytes]) -> None:
    out = done.stdout.decode(errors="replace").strip()
    if done.returncode != 0:
        err = done.stderr.decode(errors="replace").strip()
        raise BenchError(f"{cmd.label} failed ({done.returncode}): {out or err}"[:2000])
    if not cmd.answers:
        if out:
            raise BenchError(f"{cmd.label} printed {out[:200]!r}; expected nothing")
        return
    try:
        answer = json.loads(out.splitlines()[0])
        good = answer["Username"] == "AWS" and answer["Secret"] == EXPECTED_SECRET
    except (ValueError, KeyError, IndexError, TypeError):
        good = False
    if not good:
        raise BenchError(f"{cmd.label} did not answer with the fake's token for {CENTRAL}")


def timed(cmd: Command) -> float:
    if cmd.prepare is not None:
        cmd.prepare()
    start = time.perf_counter()
    done = run_once(cmd)
    elapsed = time.perf_counter() - start
    check(cmd, done)
    return elapsed


def paired(a: Command, b: Command, rounds: int, warmup: int) -> Paired:
    """A then B in every round; warm-up rounds are run and thrown away."""
    for _ in range(warmup):
        timed(a)
        timed(b)
    result = Paired(a, b)
    for _ in range(rounds):
        result.a_times.append(timed(a))
        result.b_times.append(timed(b))
    return result


def p90(times: list[float]) -> float:
    return statistics.quantiles(times, n=10, method="inclusive")[-1]


def row(name: str, result: Paired, aim: float | None) -> str:
    a, b = result.a_times, result.b_times
    ratio = result.ratio()
    verdict = ""
    if aim is not None:
        verdict = f"  aim <= {aim:.2f}x: {'met' if ratio <= aim else 'NOT met'}"
    return (
        f"{name:<12} {statistics.median(a) * 1e3:7.1f} ms (p90 {p90(a) * 1e3:6.1f})   "
        f"{result.b.label:<22} {statistics.median(b) * 1e3:7.1f} ms (p90 {p90(b) * 1e3:6.1f})"
        f"   ratio {ratio:5.2f}x (paired {result.paired_ratio():4.2f}x){verdict}"
    )


# -- what the cached get imports -------------------------------------------------------------


def import_times(cmd: Command, runs: int) -> dict[str, tuple[float, float]]:
    """Module -> (median self, median cumulative) import time in ms, in first-seen order."""
    samples: dict[str, list[tuple[int, int]]] = {}
    for _ in range(runs):
        done = run_once(cmd, {"PYTHONPROFILEIMPORTTIME": "1"})
        check(cmd, done)
        for line in done.stderr.decode(errors="replace").splitlines():
            if not line.startswith("import time:") or "imported package" in line:
                continue
            self_us, cumulative_us, name = line[len("import time:") :].split("|", 2)
            samples.setdefault(name.strip(), []).append((int(self_us), int(cumulative_us)))
    return {
        name: (
            statistics.median(s for s, _ in values) / 1e3,
            statistics.median(c for _, c in values) / 1e3,
        )
        for name, values in samples.items()
    }


def report_imports(get: Command, floor: Command, runs: int) -> list[str]:
    """Print the modules the cached get imports beyond the floor; return the forbidden ones."""
    mine = import_times(get, runs)
    base = import_times(floor, runs)
    extra = {name: t for name, t in mine.items() if name not in base}
    total = sum(s for s, _ in extra.values())
    print(
        f"modules the cached get imports beyond the floor's ({len(extra)}, "
        f"median self time {total:.1f} ms over {runs} runs; -X importtime):"
    )
    for name, (self_ms, cumulative_ms) in extra.items():
        print(f"  {name:<34} self {self_ms:6.2f} ms   cumulative {cumulative_ms:6.2f} ms")
    return sorted({n.split(".")[0] for n in extra} & set(FORBIDDEN))


# -- docker-credential-ecr-login ---------------------------------------------------------------


def ecr_login_key(region: str, access_key: str, registry_id: str) -> str:
    """The key amazon-ecr-credential-helper 0.6.0 files a registry's token under.

    ecr-login/cache/build.go: prefix ``"<region>-<checksum(access key id)>-"``,
    where checksum is ``base64.StdEncoding(md5.New().Sum([]byte(text)))``:
    Go's ``Sum(b)`` *appends* the digest of nothing to ``b``, so it is the
    key id's bytes followed by md5(""), not md5 of the key id. ecr-login/api/
    client.go then looks up ``prefix + registryID``.
    """
    checksum = base64.b64encode(access_key.encode() + hashlib.md5(b"").digest()).decode()
    return f"{region}-{checksum}-{registry_id}"


def _go_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def seed_ecr_login(home: Path, lifetime: float = 43200.0) -> Path:
    """Write ``~/.ecr/cache.json`` as ecr-login 0.6.0 would after fetching the fake's token."""
    now = time.time()
    token = base64.b64encode(f"AWS:{EXPECTED_SECRET}".encode()).decode()
    entry = {
        "AuthorizationToken": token,
        "RequestedAt": _go_time(now),
        "ExpiresAt": _go_time(now + lifetime),
        "ProxyEndpoint": f"https://{CENTRAL_HOST}",
        "Service": "ecr",
    }
    doc = {"Registries": {ecr_login_key(REGION, ACCESS_KEY, CENTRAL): entry}, "Version": "1.0"}
    folder = home / ".ecr"
    folder.mkdir(mode=0o700, exist_ok=True)
    path = folder / "cache.json"
    path.write_text(json.dumps(doc, indent=2))
    path.chmod(0o600)
    return path


def ecr_login_version(binary: str) -> str:
    """Its own version: ``-v`` (``version`` answers the helper library's version)."""
    out = subprocess.run(
        [binary, "-v"], capture_output=True, text=True, timeout=30, check=False
    ).stdout
    found = [
        line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Version:")
    ]
    return found[0] if found else "(version unknown)"


def prepare_ecr_login(binary: str, env: dict[str, str], trap: Trap) -> tuple[Command | None, str]:
    """ecr-login's cached get as a Command, or None and why it cannot be measured fairly.

    ``env`` sends AWS_ENDPOINT_URL and every proxy variable to the trap. A control
    run with no cache must knock on the trap (so its AWS traffic would be seen);
    the seeded run must then answer with the seeded token and knock on nothing.
    (A cache-hit check on the answer alone proves nothing: on a failed fetch
    ecr-login falls back to any cached entry.)
    """
    home = Path(env["HOME"])
    shutil.rmtree(home / ".ecr", ignore_errors=True)
    cmd = Command("ecr-login cached get", [binary, "get"], env)
    before = trap.hits
    control = run_once(cmd)
    if control.returncode == 0:
        return None, "with no cache it still answered, so a cache hit cannot be told apart"
    if trap.hits == before:
        return None, (
            "with no cache it failed without any connection reaching the trap, "
            "so its network use cannot be observed: "
            + control.stdout.decode(errors="replace").strip()[:300]
        )
    shutil.rmtree(home / ".ecr", ignore_errors=True)
    seed_ecr_login(home)
    before = trap.hits
    seeded = run_once(cmd)
    try:
        check(cmd, seeded)
    except BenchError as exc:
        return None, f"the seeded cache was not used ({exc})"
    if trap.hits != before:
        return None, f"with the seeded cache it still made {trap.hits - before} connection(s)"
    return cmd, f"cache hit verified offline (control run without cache: {trap.hits} trap hit(s))"


# -- the run -----------------------------------------------------------------------------------


def verify_calls(fake: FakeAwsProcess, who: str) -> None:
    """The last AssumeRole and GetAuthorizationToken the fake saw are the configured ones."""
    seen = fake.requests()
    roles = [r["params"] for r in seen if r["action"] == "AssumeRole"]
    tokens = [r["params"] for r in seen if r["action"] == "GetAuthorizationToken"]
    if (
        not roles
        or roles[-1].get("RoleArn") != PULL_ROLE
        or (roles[-1].get("ExternalId") != EXTERNAL_ID)
    ):
        raise BenchError(f"{who}: no AssumeRole of {PULL_ROLE} with the external id")
    if not tokens or "registryIds" in tokens[-1]:
        raise BenchError(f"{who}: no GetAuthorizationToken without registryIds (the caller's)")


def profile(venv: Venv, cmd: Command) -> None:
    """A cProfile of one cached get, in process, imports included."""
    prof = Command(
        "profiled get", [str(venv.python), "-m", "cProfile", "-s", "cumulative", *cmd.argv], cmd.env
    )
    done = run_once(prof)
    if done.returncode != 0:
        raise BenchError(f"cProfile run failed: {done.stderr.decode(errors='replace')[-500:]}")
    lines = done.stdout.decode(errors="replace").splitlines()[1:]
    print("\ncProfile of one cached get (sorted by cumulative time):")
    print("\n".join(line for line in lines[:40] if line.strip()))


def unpack_release(dist: Path, tmp: Path) -> tuple[Path, Path]:
    """The bundle's helper and the .deb's /usr/bin helper, unpacked from DIST."""
    [tarball] = dist.glob("xecr-*-linux-*.tar.gz")
    [deb] = dist.glob("xecr_*.deb")
    bundle = tmp / "bundle"
    bundle.mkdir()
    subprocess.run(["tar", "-xzf", str(tarball), "-C", str(bundle)], check=True)
    [top] = bundle.iterdir()
    deb_root = tmp / "deb-root"
    subprocess.run(["dpkg-deb", "-x", str(deb), str(deb_root)], check=True)
    return top / "bin" / "docker-credential-xecr", deb_root / "usr/bin/docker-credential-xecr"


def release_rows(args: argparse.Namespace, tmp: Path, cached: Command) -> list[str]:
    bundle, packaged = unpack_release(args.dist, tmp)
    rows = []
    for label, binary, aim in (
        ("bundle cached get", bundle, BUNDLE_AIM),
        ("packaged cached get", packaged, PACKAGED_AIM),
    ):
        command = Command(label, [str(binary), "get"], cached.env)
        check(command, run_once(command))
        rows.append(row(label, paired(command, cached, args.rounds, args.warmup), aim))
    return rows


def cold_row(args: argparse.Namespace, fake: FakeAwsProcess, cold: Command, boto: Command) -> str:
    fake.reset()
    result = paired(cold, boto, args.rounds, args.warmup)
    calls = fake.calls()
    want = 2 * (args.rounds + args.warmup)
    if calls.get("AssumeRole") != want or calls.get("GetAuthorizationToken") != want:
        raise BenchError(f"the cold rounds made {calls} calls; expected {want} of each")
    return row("cold get", result, AIM)


def ecr_login_rows(
    args: argparse.Namespace, cached: Command, offline: dict[str, str], trap: Trap, rows: list[str]
) -> str:
    """Time the Go helper's cached get when it is installed (a row into ROWS); its note."""
    binary = shutil.which("docker-credential-ecr-login")
    if not binary:
        return "docker-credential-ecr-login: not installed"
    if args.skip_ecr_login:
        return "docker-credential-ecr-login: skipped (--skip-ecr-login)"
    check(cached, run_once(cached))  # the cold rounds left a token: still a hit
    ecr_login, why = prepare_ecr_login(binary, offline, trap)
    note = f"docker-credential-ecr-login {ecr_login_version(binary)}: {why}"
    if ecr_login is None:
        return note + "; comparison SKIPPED, no figures"
    hits = trap.hits
    result = paired(cached, ecr_login, args.rounds, args.warmup)
    if trap.hits != hits:
        raise BenchError("a cached get made a network call during the rounds")
    rows.append(row("cached get", result, None))
    return note


def bench(args: argparse.Namespace, tmp: Path) -> int:
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"building a venv with a real install of xecr in {tmp} ...", file=sys.stderr)
    venv = build_venv(tmp, system_pth=args.system_pth)
    trap = Trap()
    fake: FakeAwsProcess | None = None
    try:
        fake = FakeAwsProcess(tmp / "fakeaws.log")
        online = isolated_env(tmp, venv, fake.url, trap)
        offline = {**online, "AWS_ENDPOINT_URL": trap.url}
        script = tmp / "boto3_get.py"
        script.write_text(BOTO3_GET)
        xecr = str(venv.script("docker-credential-xecr"))
        cache = cache_dir(online)

        def clear_cache() -> None:
            clear_folder(cache)

        cold = Command("xecr cold get", [xecr, "get"], online, prepare=clear_cache)
        boto = Command(
            "boto3 script", [str(venv.python), str(script), PULL_ROLE, EXTERNAL_ID], online
        )
        cached = Command("xecr cached get", [xecr, "get"], offline)
        floor = Command("floor", [str(venv.python), "-c", FLOOR], offline, answers=False)

        # Both cold commands make the same two calls against the fake.
        print("checking the commands against the fake ...", file=sys.stderr)
        clear_cache()
        check(cold, run_once(cold))
        verify_calls(fake, cold.label)
        check(boto, run_once(boto))
        verify_calls(fake, boto.label)
        # The cache is warm now: the cached get must answer with AWS out of reach.
        fake.reset()
        hits = trap.hits
        check(cached, run_once(cached))
        if fake.calls() or trap.hits != hits:
            raise BenchError("the cached get made a network call")

        forbidden = report_imports(cached, floor, args.import_runs)
        if forbidden:
            print(f"FAIL: the cached get imports {', '.join(forbidden)}")
            return 1

        print(f"\nmeasuring {args.rounds} paired rounds each ...", file=sys.stderr)
        rows: list[str] = []
        result = paired(cached, floor, args.rounds, args.warmup)
        if fake.calls() or trap.hits != hits:
            raise BenchError("a cached get made a network call during the rounds")
        rows.append(row("cached get", result, AIM))
        slow = result.ratio() > AIM
        if args.dist is not None:
            rows += release_rows(args, tmp, cached)

        if not args.skip_cold:
            rows.append(cold_row(args, fake, cold, boto))
        ecr_note = ecr_login_rows(args, cached, offline, trap, rows)

        print(
            f"\nxecr get, {args.rounds} paired rounds (A then B each round, "
            f"{args.warmup} warm-up rounds dropped); wall time from spawn to exit"
        )
        print(
            f"python {sys.version.split()[0]} venv at {venv.root} "
            f"({'system .pth hooks kept' if args.system_pth else 'system .pth hooks skipped'}); "
            f"{os.cpu_count()} CPUs; load average {load} at start, "
            f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} at end"
        )
        print("\n".join(rows))
        print(ecr_note)
        if args.profile or (slow and not args.no_profile):
            profile(venv, cached)
        return 0
    finally:
        if fake is not None:
            fake.stop()
        trap.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=40, help="paired rounds per comparison")
    parser.add_argument("--warmup", type=int, default=3, help="rounds run first and dropped")
    parser.add_argument(
        "--import-runs", type=int, default=5, help="-X importtime runs whose medians are listed"
    )
    parser.add_argument("--skip-cold", action="store_true", help="skip cold get vs boto3")
    parser.add_argument(
        "--dist",
        type=Path,
        help="release artifacts (scripts/release.sh): also time the bundle and the .deb's launcher",
    )
    parser.add_argument(
        "--skip-ecr-login",
        action="store_true",
        help="skip the docker-credential-ecr-login comparison",
    )
    parser.add_argument(
        "--system-pth",
        action="store_true",
        help="keep the system site-packages' .pth start-up hooks in the venv",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="print a cProfile of one cached get (done anyway above the aim)",
    )
    parser.add_argument("--no-profile", action="store_true", help="never print the cProfile")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    if args.rounds < 5:
        parser.error("--rounds must be at least 5")
    tmp = Path(tempfile.mkdtemp(prefix="xecr-bench-"))
    try:
        return bench(args, tmp)
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
