"""A fleet of xecr daemons against ECR's GetAuthorizationToken quota (issues 15 and 22).

Simulates ``--nodes`` machines, each running ``xecr daemon`` for ``--registries``
registries of one region, for ``--hours`` hours on a simulated clock, against a
simulated ECR that admits requests through one token bucket per account and
region: ``--rate`` requests/s sustained (20), ``--burst`` (200), as ECR's
troubleshooting guide gives the quota.

Which bucket a fetch spends, and how many tokens a node keeps, is the design
(``--design``; issue 22):

* ``role`` (the default): each node assumes a role in the registries' account
  and fetches as that role, so it spends *the registry account's* bucket. The
  registries are spread over ``--registry-accounts`` accounts (1), each behind
  its own role: a node keeps one token per registry account, since xecr shares
  one token among the registries of one identity and region;
* ``grant``: each node fetches as itself, granted by the repositories'
  policies (docs/cross-account.md), so it spends *its own account's* bucket;
  the nodes are spread over ``--consumer-accounts`` accounts (1), and a node
  keeps one token for every registry;
* ``--per-registry`` models xecr before issue 22 (and the Go helper): one
  token per registry, whatever the identity.

Every timing decision is the daemon's own, imported from the package rather
than re-written here: when a token is refreshed
(``ecr_helper.daemon.schedule.next_refresh``: half-life plus jitter) and how
long a failed refresh waits (``schedule.retry_at``, with ``overloaded=True`` as
the worker passes it for a throttled answer: full jitter). What is modelled
here is only the world around the daemon:

* a request admitted by the bucket succeeds at once and returns a token that
  lives ``--ttl`` seconds (ECR's 12 h); a request the bucket refuses is
  throttled and costs no quota;
* one fetch is up to ``--sdk-attempts`` HTTP attempts, as botocore's
  ``standard`` retry mode makes them (3 with xecr's settings): after a
  throttled attempt it sleeps ``rand * min(2**i, 20)`` s; a fetch whose last
  attempt is throttled is a failed refresh for the daemon;
* network latency, STS and clock skew are left out (STS allows 600 AssumeRole
  calls/s per account, far above what the ECR quota lets through); STS calls
  follow the tokens one for one, so fewer tokens mean as many fewer AssumeRoles.

Scenarios:

* **steady**: nodes start at random times over the first token lifetime
  (12 h), as a fleet that grows and is replaced over the day; reports the
  peak and the 99th percentile of requests per second over every second of
  the run;
* **boot storm**: every node starts cold (no token) at a random moment within
  ``--storm`` seconds (10 min); reports when the last node had a token for
  every registry, counted from the first boot, and how many requests were
  throttled over the whole run.

Standard library only; run from the repository:
``python benchmarks/fleet.py --nodes 10000 --registries 3 --hours 48``
(``--design grant --consumer-accounts 10``, ``--per-registry``: see above).
The last line is
``steady peak X/s (p99 Y/s), boot storm: every node served in Z s, N throttled``.
"""

from __future__ import annotations

import argparse
import heapq
import math
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ecr_helper.daemon import schedule
from ecr_helper.token import Token

# botocore's standard retry: base 1 s for throttling errors, capped at 20 s.
SDK_BASE = 1.0
SDK_MAX = 20.0


@dataclass
class Bucket:
    """ECR's quota as a token bucket: ``rate`` per second, at most ``burst`` saved."""

    rate: float
    burst: float
    level: float
    at: float = 0.0

    def admit(self, now: float) -> bool:
        self.level = min(self.burst, self.level + (now - self.at) * self.rate)
        self.at = now
        if self.level >= 1.0:
            self.level -= 1.0
            return True
        return False


@dataclass
class Result:
    requests: int
    throttled: int
    failed_refreshes: int
    peak: int
    p99: float
    served_in: float | None  # when the last node had every token (from t = 0)
    longest_wait: float | None  # the longest a node waited from its start to every token
    refresh_peak_after: int  # the peak after the first hour (the first refresh wave)
    throttled_after: int  # throttled after the first hour


@dataclass(frozen=True)
class Design:
    """How many tokens a node keeps and which account's bucket each one spends."""

    name: str  # "role" or "grant"
    registries: int
    registry_accounts: int = 1
    consumer_accounts: int = 1
    per_registry: bool = False

    @property
    def tokens(self) -> int:
        """Tokens per node: one per identity and region (one per registry before)."""
        if self.per_registry:
            return self.registries
        if self.name == "grant":
            return 1
        return min(self.registries, self.registry_accounts)

    @property
    def buckets(self) -> int:
        return self.consumer_accounts if self.name == "grant" else self.registry_accounts

    def bucket(self, node: int, token: int) -> int:
        """The account whose bucket node ``node``'s token ``token`` spends."""
        if self.name == "grant":
            return node % self.consumer_accounts
        # Role design: token t is (the registry or) the registry account t.
        return token % self.registry_accounts


def simulate(
    *,
    nodes: int,
    design: Design,
    hours: float,
    starts: list[float],
    rate: float,
    burst: float,
    ttl: float,
    sdk_attempts: int,
    seed: int,
) -> Result:
    """Run one scenario; ``starts[n]`` is when node ``n``'s daemon starts, cold."""
    rng = random.Random(seed)
    rand = rng.random
    end = hours * 3600.0
    registries = design.tokens  # what each node's daemon keeps fresh
    buckets = [Bucket(rate, burst, burst) for _ in range(design.buckets)]
    spends = [design.bucket(w // registries, w % registries) for w in range(nodes * registries)]
    per_second = [0] * (math.ceil(end) + 1)
    workers = nodes * registries
    failures = [0] * workers
    lifetime: list[float | None] = [None] * workers
    missing = [registries] * nodes  # registries a node still has no token for
    served_at = [math.inf] * nodes
    throttled = failed = requests = throttled_after = 0
    # (time, worker, attempt): attempt 0 starts a fetch, k > 0 is the SDK's k-th retry.
    # Every daemon starts cold and fetches at once, as `xecr daemon` does.
    events = [(starts[worker // registries], worker, 0) for worker in range(workers)]
    heapq.heapify(events)
    push, pop = heapq.heappush, heapq.heappop
    while events:
        now, worker, attempt = pop(events)
        if now >= end:
            break
        requests += 1
        per_second[int(now)] += 1
        if buckets[spends[worker]].admit(now):
            failures[worker] = 0
            node = worker // registries
            if lifetime[worker] is None:  # this registry's first token on this node
                missing[node] -= 1
                if missing[node] == 0:
                    served_at[node] = now
            lifetime[worker] = ttl
            token = Token("AWS", "", now, now + ttl)
            push(events, (schedule.next_refresh(token, rand), worker, 0))
            continue
        throttled += 1
        if now >= 3600.0:
            throttled_after += 1
        if attempt + 1 < sdk_attempts:
            delay = rand() * min(SDK_BASE * 2.0**attempt, SDK_MAX)
            push(events, (now + delay, worker, attempt + 1))
            continue
        failed += 1
        failures[worker] += 1
        due = schedule.retry_at(now, failures[worker], lifetime[worker], rand, overloaded=True)
        push(events, (due, worker, 0))
    busy = sorted(per_second)
    last = max(served_at)
    everyone = last if last != math.inf else None
    return Result(
        requests=requests,
        throttled=throttled,
        failed_refreshes=failed,
        peak=busy[-1] if busy else 0,
        p99=float(busy[min(len(busy) - 1, int(0.99 * len(busy)))]) if busy else 0.0,
        served_in=everyone,
        longest_wait=None if everyone is None else max(map(float.__sub__, served_at, starts)),
        refresh_peak_after=max(per_second[3600:], default=0),
        throttled_after=throttled_after,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=10000)
    parser.add_argument("--registries", type=int, default=3, help="registries of one region")
    parser.add_argument("--design", choices=("role", "grant"), default="role")
    parser.add_argument("--registry-accounts", type=int, default=1)
    parser.add_argument("--consumer-accounts", type=int, default=1)
    parser.add_argument(
        "--per-registry", action="store_true", help="one token per registry (before issue 22)"
    )
    parser.add_argument("--hours", type=float, default=48.0)
    parser.add_argument("--rate", type=float, default=20.0, help="ECR quota, requests/s")
    parser.add_argument("--burst", type=float, default=200.0, help="ECR burst")
    parser.add_argument("--ttl", type=float, default=43200.0, help="token lifetime, s")
    parser.add_argument("--storm", type=float, default=600.0, help="boot window, s")
    parser.add_argument("--sdk-attempts", type=int, default=3, help="botocore attempts/fetch")
    parser.add_argument("--seed", type=int, default=15)
    args = parser.parse_args(argv)
    if (
        min(args.nodes, args.registries, args.sdk_attempts) < 1
        or min(args.registry_accounts, args.consumer_accounts) < 1
        or args.hours <= 0
    ):
        parser.error("--nodes, --registries, --hours, --sdk-attempts and accounts must be positive")
    design = Design(
        args.design,
        args.registries,
        args.registry_accounts,
        args.consumer_accounts,
        args.per_registry,
    )
    common = {
        "nodes": args.nodes,
        "design": design,
        "hours": args.hours,
        "rate": args.rate,
        "burst": args.burst,
        "ttl": args.ttl,
        "sdk_attempts": args.sdk_attempts,
    }
    rng = random.Random(args.seed)
    began = time.perf_counter()
    steady = simulate(
        starts=[rng.random() * args.ttl for _ in range(args.nodes)],
        seed=args.seed + 1,
        **common,
    )
    storm = simulate(
        starts=[rng.random() * args.storm for _ in range(args.nodes)],
        seed=args.seed + 2,
        **common,
    )
    took = time.perf_counter() - began
    shape = "one token per registry" if design.per_registry else "one token per identity"
    print(
        f"{args.nodes} nodes x {args.registries} registries, {args.hours:g} h, "
        f"design {design.name} ({shape}: {design.tokens} per node, {design.buckets} "
        f"account bucket{'s' if design.buckets > 1 else ''}), "
        f"ECR bucket {args.rate:g}/s burst {args.burst:g}, tokens {args.ttl:g} s, "
        f"{args.sdk_attempts} SDK attempts per fetch; simulated in {took:.1f} s"
    )
    for name, result in (("steady", steady), ("boot storm", storm)):
        served = (
            f"every node served by {result.served_in:.0f} s, "
            f"the longest wait from a node's start {result.longest_wait:.0f} s"
            if result.served_in is not None and result.longest_wait is not None
            else "NOT every node served"
        )
        print(
            f"  {name}: {result.requests} requests, peak {result.peak}/s (p99 {result.p99:g}/s;"
            f" after the first hour peak {result.refresh_peak_after}/s), {result.throttled} "
            f"throttled ({result.throttled_after} after the first hour), "
            f"{result.failed_refreshes} failed refreshes; {served}"
        )
    storm_served = f"{storm.served_in:.0f}" if storm.served_in is not None else "never"
    print(
        f"steady peak {steady.peak}/s (p99 {steady.p99:g}/s), boot storm: every node served "
        f"in {storm_served} s, {storm.throttled} throttled"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
