"""The source identity at the root of the role chain: what selects it, and what it is.

:func:`key_inputs` lists every input that decides which identity boto3's
credential chain starts from, so the token cache can keep identities apart.
It runs on every cached ``get``: it reads the environment only (``os``,
nothing imported, no file read, no AWS call). :func:`machine_key_inputs` is
the machine-wide identity: the one root's daemon fetches with for the
machine-wide config, the same for every reader of the machine-wide cache. :func:`describe` and
:func:`sso_login_command` read the AWS config file, for ``xecr doctor`` and for an
expired SSO login's error line; they are never on the cached path.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

# botocore ignores these when a profile is named explicitly (source_profile).
PROFILE_VARIABLES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
)
# It always honours these (container and instance roles come after every profile).
ALWAYS_VARIABLES = (
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_EC2_METADATA_DISABLED",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
)


def config_files(env: Mapping[str, str]) -> tuple[str, str]:
    """The AWS config and shared credentials files botocore reads, as absolute paths."""
    home = env.get("HOME") or os.path.expanduser("~")

    def resolve(variable: str, default: str) -> str:
        path = env.get(variable) or default
        if path.startswith("~"):
            path = home + path[1:]
        return os.path.abspath(path)

    return (
        resolve("AWS_CONFIG_FILE", "~/.aws/config"),
        resolve("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials"),
    )


def key_inputs(source_profile: str | None, env: Mapping[str, str], digest: Any) -> list[str]:
    """Every input that selects the source identity, for the cache key.

    ``digest(text) -> str`` hashes the secret-valued variables. The files'
    paths are in, their contents are not: reading them would cost the cached
    ``get`` a file read each, and the contents are the same user's.
    """
    plain = ALWAYS_VARIABLES if source_profile else PROFILE_VARIABLES + ALWAYS_VARIABLES
    # Only a digest of a secret-valued variable enters the key. The access key
    # stays in with a source profile: `credential_source = Environment` uses it.
    secret = ("AWS_ACCESS_KEY_ID", "AWS_CONTAINER_AUTHORIZATION_TOKEN")
    parts = [f"source_profile={source_profile or ''}"]
    parts.extend(f"{name}={env.get(name, '')}" for name in plain)
    for name in secret:
        value = env.get(name, "")
        parts.append(f"{name}={digest(value) if value else ''}")
    aws_config, credentials = config_files(env)
    parts.append(f"config_file={aws_config}")
    parts.append(f"credentials_file={credentials}")
    return parts


MACHINE_IDENTITY = "identity=machine"


def machine_key_inputs(source_profile: str | None) -> list[str]:
    """The machine-wide identity's inputs: root's, whoever asks.

    Under the machine-wide config, with the machine-wide cache, the identity
    is whatever root's environment selects (the daemon's): a docker-group
    user with her own HOME must find the entries it keeps, so nothing of the
    caller's environment is in. Only root writes that folder, and its readers
    take only root's entries from it (:class:`~ecr_helper.cache.file.FileCache`).
    """
    return [MACHINE_IDENTITY, f"source_profile={source_profile or ''}"]


def profile_name(source_profile: str | None, env: Mapping[str, str]) -> str | None:
    """The profile botocore starts from (it reads AWS_DEFAULT_PROFILE before AWS_PROFILE)."""
    return source_profile or env.get("AWS_DEFAULT_PROFILE") or env.get("AWS_PROFILE") or None


def sso_login_command(source_profile: str | None, env: Mapping[str, str]) -> str:
    """The exact ``aws sso login`` command that renews the login this profile rests on.

    Follows ``source_profile`` links to the profile that holds the SSO
    settings: ``--sso-session NAME`` for an ``sso_session`` profile, else
    ``--profile NAME`` (legacy ``sso_start_url`` profiles).
    """
    name = profile_name(source_profile, env) or "default"
    profiles = _profiles(env)
    seen: set[str] = set()
    while name not in seen:
        seen.add(name)
        settings = profiles.get(name, {})
        if settings.get("sso_session"):
            return f"aws sso login --sso-session {settings['sso_session']}"
        if settings.get("sso_start_url") or not settings.get("source_profile"):
            break
        name = str(settings["source_profile"])
    return f"aws sso login --profile {name}"


def _profiles(env: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """The profiles of the AWS config file, by name (``[profile NAME]``, ``[default]``)."""
    import configparser

    parser = configparser.RawConfigParser()
    try:
        parser.read(config_files(env)[0], encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError):
        return {}  # an unreadable config: the command names the profile alone
    found: dict[str, dict[str, Any]] = {}
    for section in parser.sections():
        if section.startswith("profile "):
            found[section.removeprefix("profile ").strip()] = dict(parser.items(section))
        elif section == "default":
            found[section] = dict(parser.items(section))
    return found


def describe(source_profile: str | None, env: Mapping[str, str], credentials: Any) -> str:
    """What kind of identity the chain starts from, and where it comes from (for doctor).

    ``credentials`` are what boto3's chain found
    (:func:`ecr_helper.aws.source_credentials`): their ``method`` names the
    provider that found them.
    """
    method = str(getattr(credentials, "method", "") or "unknown")
    name = profile_name(source_profile, env) or "default"
    settings = _profiles(env).get(name, {})
    aws_config, shared = config_files(env)
    if method == "env":
        key = env.get("AWS_ACCESS_KEY_ID", "")
        return f"environment keys (AWS_ACCESS_KEY_ID ...{key[-4:]})"
    if method == "shared-credentials-file":
        return f"profile {name} from {shared}"
    if method == "config-file":
        return f"profile {name} from {aws_config}"
    if method == "assume-role":
        return f"profile {name} from {aws_config}, assuming {settings.get('role_arn', '?')}"
    if method == "assume-role-with-web-identity":
        role = env.get("AWS_ROLE_ARN") or settings.get("role_arn", "?")
        token = env.get("AWS_WEB_IDENTITY_TOKEN_FILE") or settings.get(
            "web_identity_token_file", "?"
        )
        return f"web identity: role {role} with token file {token}"
    if method == "container-role":
        uri = env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI") or (
            "http://169.254.170.2" + env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "")
        )
        return f"container credentials from {uri}"
    if method == "sso":
        return _describe_sso(name, settings, env)
    if method == "custom-process":
        return f"credential_process of profile {name} ({aws_config})"
    if method == "iam-role":
        return "instance profile (EC2 instance metadata)"
    return f"{method} (profile {name})"


def _describe_sso(name: str, settings: Mapping[str, Any], env: Mapping[str, str]) -> str:
    import hashlib
    import json

    session = settings.get("sso_session")
    cache_name = str(session or settings.get("sso_start_url", ""))
    what = f"SSO session {session} (profile {name})" if session else f"SSO profile {name}"
    home = env.get("HOME") or os.path.expanduser("~")
    path = os.path.join(
        home,
        ".aws",
        "sso",
        "cache",
        hashlib.sha1(cache_name.encode(), usedforsecurity=False).hexdigest() + ".json",
    )
    try:
        with open(path, encoding="utf-8") as handle:
            expires = str(json.load(handle).get("expiresAt", ""))
    except (OSError, ValueError, AttributeError):
        return f"{what}, login expiry unknown"
    return f"{what}, login valid until {expires}"


def refuse_unsafe_files(env: Mapping[str, str]) -> None:
    """Refuse AWS config and credentials files another user could have written.

    They can name a ``credential_process``: root run with another user's HOME
    (``sudo -E``) must not run her commands. A file owned by neither the
    effective user nor root, or writable by everyone, is refused with
    :class:`~ecr_helper.errors.NoCredentialsError` naming it. (Group write is
    allowed here: AWS tools do not set these files' mode, and umask 002 is common.)
    """
    import stat

    from ecr_helper.errors import NoCredentialsError

    for path in config_files(env):
        try:
            info = os.stat(path)
        except OSError:
            continue  # missing: botocore reads nothing from it
        if info.st_uid not in (os.geteuid(), 0):
            raise NoCredentialsError(
                f"refusing AWS file {path}: owned by uid {info.st_uid}, not by you "
                f"(uid {os.geteuid()}) or root; another user's AWS settings are never used"
            )
        if info.st_mode & 0o002:
            raise NoCredentialsError(
                f"refusing AWS file {path}: mode {stat.S_IMODE(info.st_mode):04o} lets "
                f"anyone write it (run `chmod o-w {path}`)"
            )
