"""The source identity at the root of the role chain: what selects it, and what it is.

:func:`key_inputs` lists every input that decides which identity boto3's
credential chain starts from, so the token cache can keep identities apart.
It runs on every cached ``get``: it reads the environment only (``os``,
nothing imported, no file read, no AWS call). :func:`describe` and
:func:`sso_login_command` read the AWS config files through botocore, for
``xecr doctor`` and for an expired SSO login's error line; they are never on
the cached path.
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


def profile_name(source_profile: str | None, env: Mapping[str, str]) -> str | None:
    """The profile botocore starts from (it reads AWS_DEFAULT_PROFILE before AWS_PROFILE)."""
    return source_profile or env.get("AWS_DEFAULT_PROFILE") or env.get("AWS_PROFILE") or None
