"""``xecr doctor``: every link from the config file to a usable token, checked live.

Each check is a :class:`Check` (pass, fail, or a warning that does not fail
the run) with a hint that says what to change. Doctor never trusts a cache:
it calls GetCallerIdentity, AssumeRole on every hop of the chain and
GetAuthorizationToken against AWS, through :class:`Probes` so tests can
inject the calls, and stores nothing. A failure names the role ARN or the
registry id it concerns. Docker's side (routes, the helper on the PATH) is
:mod:`.doctor_docker`'s, the daemon's health :mod:`.doctor_daemon`'s, whom a
trust policy must name :mod:`.trust_advice`'s.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from ecr_helper import config, deadline, securefile
from ecr_helper.cache import file_cache
from ecr_helper.errors import (
    AwsError,
    CacheError,
    ConfigError,
    EndpointError,
    InputError,
    NotOurRegistry,
)
from ecr_helper.registry import misnumbered_id, normalize
from ecr_helper.setup import dockerconfig, doctor_daemon, doctor_docker, endpoints, status
from ecr_helper.setup.checks import Check, passed
from ecr_helper.setup.trust_advice import trust_hint
from ecr_helper.token import Token

__all__ = ["Check", "Probes", "live_probes", "passed", "run"]


@dataclass(frozen=True)
class Probes:
    """The live AWS calls: whose the source credentials are (region, profile) -> ARN;
    assume every hop of a registry's chain; fetch its token; name the source's kind."""

    identity: Callable[[str, str | None], str]
    assume: Callable[[config.RegistrySettings], None]
    token: Callable[[config.RegistrySettings], Token]
    source: Callable[[str | None], str] | None = None


def _source(profile: str | None) -> str:
    from ecr_helper import source

    return source.describe(profile, os.environ, deadline.source_credentials(profile))


def live_probes() -> Probes:
    """Probes that call AWS, each within its deadline (boto3 is imported on first use)."""
    return Probes(
        identity=deadline.caller_identity,
        assume=deadline.assume_for,
        token=deadline.fetch_token,
        source=_source,
    )


def _naming(text: str, subject: str, label: str) -> str:
    # Every failure line must name the role or registry it is about.
    return text if subject in text else f"{label} {subject}: {text}"


def _registry_checks(
    settings: config.RegistrySettings,
    probes: Probes,
    identities: dict[tuple[str, str | None], str | AwsError],
    docker: tuple[str, doctor_docker.HelperLookup] | None,
    suffix: str,
    now: Callable[[], float],
    env: Mapping[str, str],
) -> list[Check]:
    checks: list[Check] = []
    where = (settings.region, settings.source_profile)
    if where not in identities:
        try:
            identities[where] = probes.identity(*where)
        except AwsError as exc:
            identities[where] = exc
    who = identities[where]
    profile = f" (profile {settings.source_profile})" if settings.source_profile else ""
    if isinstance(who, AwsError):
        checks.append(
            Check(
                f"credentials{suffix}",
                False,
                f"GetCallerIdentity{profile} failed: {who}",
                endpoints.unreachable_hint("sts", settings.region, env)
                if isinstance(who, EndpointError)
                else "set AWS_PROFILE or source_profile, or run `aws sso login`; "
                "check ~/.aws/config",
            )
        )
    else:
        checks.append(Check(f"credentials{suffix}", True, f"source credentials{profile} are {who}"))
        if probes.source is not None:
            checks.append(_source_check(probes.source, settings.source_profile, suffix))
    if not isinstance(who, AwsError):
        chain_ok = _assume_check(settings, probes, who, suffix, checks, env)
        if chain_ok:
            _token_check(settings, probes, suffix, now, checks, env)
    if docker is not None:
        checks.append(doctor_docker.host_check(docker[0], settings, suffix, docker[1]))
    return checks


def _source_check(describe: Callable[[str | None], str], profile: str | None, suffix: str) -> Check:
    name = f"source identity{suffix}"
    try:
        return Check(name, True, describe(profile))
    except AwsError as exc:
        return Check(name, False, str(exc), warning_only=True)


def _assume_check(
    settings: config.RegistrySettings,
    probes: Probes,
    who: str,
    suffix: str,
    checks: list[Check],
    env: Mapping[str, str],
) -> bool:
    name = f"assume role{suffix}"
    if not settings.role_arns:
        checks.append(
            Check(name, True, "no role configured; the source credentials ask ECR directly")
        )
        return True
    try:
        probes.assume(settings)
    except AwsError as exc:
        # AssumeRoleDenied names the hop that failed; anything else names the chain's end.
        role = getattr(exc, "role_arn", None) or settings.role_arn or ""
        hops = settings.role_arns
        first = role not in hops[1:]
        caller = who if first else hops[hops.index(role) - 1]
        external = settings.external_id if role == settings.role_arn else None
        hint = (
            endpoints.unreachable_hint("sts", settings.region, env)
            if isinstance(exc, EndpointError)
            else trust_hint(role, caller, external, settings.region, first=first)
        )
        checks.append(Check(name, False, _naming(str(exc), role, "role"), hint))
        return False
    checks.append(Check(name, True, "assumed " + " -> ".join(settings.role_arns)))
    return True


def _token_check(
    settings: config.RegistrySettings,
    probes: Probes,
    suffix: str,
    now: Callable[[], float],
    checks: list[Check],
    env: Mapping[str, str],
) -> None:
    name = f"token{suffix}"
    acting = settings.role_arn or "the source credentials"
    try:
        token = probes.token(settings)
    except AwsError as exc:
        if settings.public:
            detail = _naming(str(exc), "ECR Public", "ECR Public")
            hint = f"{acting} needs ecr-public:GetAuthorizationToken and sts:GetServiceBearerToken"
        else:
            detail = _naming(str(exc), settings.registry_id, "registry")
            hint = (
                f"{acting} needs ecr:GetAuthorizationToken, and registry {settings.registry_id} "
                f"must exist in {settings.region}"
            )
        if isinstance(exc, EndpointError):
            hint = endpoints.unreachable_hint(
                "ecr-public" if settings.public else "ecr", settings.region, env
            )
        checks.append(Check(name, False, detail, hint))
        return
    left = status.countdown(token.expires_at - now())
    checks.append(
        Check(
            name,
            True,
            f"GetAuthorizationToken for {settings.subject} "
            f"in {settings.region} as {acting}: valid for {left}",
        )
    )


def _cache_folder(loaded: config.Config, env: Mapping[str, str]) -> str:
    """The folder ``get`` would use, looked at without being made (doctor changes nothing)."""
    folder = file_cache(env, loaded.system).folder
    assert folder is not None
    return folder


def _cache_check(loaded: config.Config, env: Mapping[str, str]) -> Check:
    if loaded.cache_backend == "none":
        return Check("cache folder", True, 'caching is off (cache = "none"): every pull asks AWS')
    folder = _cache_folder(loaded, env)
    if not os.path.lexists(folder):
        return Check(
            "cache folder", True, f"{folder} does not exist yet (made private on first use)"
        )
    try:
        securefile.check_dir(folder)
    except CacheError as exc:
        return Check(
            "cache folder",
            False,
            f"{exc} (tokens are not cached)",
            f"chmod 700 {folder}, owned by you (or remove it)",
        )
    mode = stat.S_IMODE(os.lstat(folder).st_mode)
    return Check("cache folder", True, f"{folder} is private ({mode:04o})")


def run(
    env: Mapping[str, str],
    registries: Sequence[str] = (),
    probes: Probes | None = None,
    clock: Callable[[], float] = time.time,
    docker: bool = True,
) -> list[Check]:
    """Every check, in order, for the named registries (default: every configured one).

    ``docker=False`` skips Docker's config (a kubelet node has none)."""
    probes = probes or live_probes()
    try:
        loaded = config.load(env)
    except ConfigError as exc:
        return [Check("config", False, str(exc), "fix the file and key named above")]
    source = loaded.path or "no config file"
    checks = _config_checks(loaded, source)
    targets = list(registries) or loaded.hosts()
    if not targets:
        checks.append(
            Check(
                "registry",
                False,
                "no registry named and none configured",
                "name one (`xecr doctor HOST`) or add one with `xecr configure HOST`",
            )
        )
    docker_path = dockerconfig.config_path(env) if docker else None
    lookup = doctor_docker.find_helper(env) if docker else None
    where = (docker_path, lookup) if docker_path is not None and lookup is not None else None
    checked = _each_registry(loaded, source, targets, checks, probes, where, clock, env)
    if where is not None:
        reported = any(doctor_docker.says_missing(c) for c in checks)
        checks.extend(doctor_docker.other_checks(*where, loaded, source, reported))
    checks.append(_cache_check(loaded, env))
    kept = [h for h in loaded.hosts() if loaded.error_for(h) is None]
    if registries:  # the daemon's registries that were asked about
        kept = [h for h in kept if _host_of(loaded, h) in checked]
    folder = _cache_folder(loaded, env)
    checks.append(doctor_daemon.daemon_check(loaded, env, folder, kept, clock))
    return _advice_once(checks)


def _config_checks(loaded: config.Config, source: str) -> list[Check]:
    """The config file's line, then one per broken registry section."""
    count = len(loaded.registries)
    if loaded.path:
        broken = f", {len(loaded.broken)} broken" if loaded.broken else ""
        parsed = f"{source} parses ({count} registr{'y' if count == 1 else 'ies'}{broken})"
    else:
        parsed = "no config file: ECR hosts are served with defaults"
    checks = [Check("config", True, parsed)]
    for host in loaded.broken:
        error = loaded.error_for(host)
        checks.append(
            Check(
                f"config [{host}]",
                False,
                str(error),
                "fix that key; the other registries are served meanwhile",
            )
        )
    return checks


def _each_registry(
    loaded: config.Config,
    source: str,
    targets: Sequence[str],
    checks: list[Check],
    probes: Probes,
    where: tuple[str, doctor_docker.HelperLookup] | None,
    clock: Callable[[], float],
    env: Mapping[str, str],
) -> list[str]:
    """Append each target's live checks to CHECKS; the hosts checked."""
    identities: dict[tuple[str, str | None], str | AwsError] = {}
    checked: list[str] = []
    for name in targets:
        suffix = f" [{name}]" if len(targets) > 1 else ""
        if loaded.error_for(name) is not None:
            continue  # shown with the config, above
        try:
            settings = loaded.resolve(name)
        except ConfigError as exc:  # named on the command line in another spelling
            checks.append(Check(f"config{suffix}", False, str(exc), "fix that key"))
            continue
        except (NotOurRegistry, InputError):
            checks.append(_unknown_registry(name, source, suffix))
            continue
        checked.append(settings.host)
        checks.extend(_registry_checks(settings, probes, identities, where, suffix, clock, env))
    return checked


def _host_of(loaded: config.Config, name: str) -> str | None:
    try:
        return loaded.resolve(name).host
    except (ConfigError, NotOurRegistry, InputError):
        return None


def _unknown_registry(name: str, source: str, suffix: str) -> Check:
    """A name xecr does not serve: an 11-digit "ECR host" is a typo, not an alias."""
    try:
        misnumbered = misnumbered_id(normalize(name))
    except InputError:
        misnumbered = None
    if misnumbered is not None:
        return Check(
            f"registry{suffix}",
            False,
            f"{name!r} is not an ECR host: {misnumbered}",
            "check the account id in the host name",
        )
    return Check(
        f"registry{suffix}",
        False,
        f"{name!r} is neither an ECR host nor a registry in {source}",
        f"run `xecr configure {name} --registry-id ID --region REGION`",
    )


def _advice_once(checks: list[Check]) -> list[Check]:
    """The same hint on several failures (every registry without credentials) is given
    on the first only."""
    seen: set[str] = set()
    out: list[Check] = []
    for check in checks:
        if check.hint and not check.ok and check.hint in seen:
            check = replace(check, hint="see above")
        seen.add(check.hint)
        out.append(check)
    return out
