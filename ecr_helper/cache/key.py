"""The cache key: which token a ``get`` in this environment may be served.

Everything that changes what a token is for goes into the key, so two roles,
two external ids, two profiles or two access keys in one shell never share a
token. Computed from the settings and the environment alone: the cached path
makes no AWS call to find its key.
"""

from __future__ import annotations

import json

from ecr_helper.cache.file import digest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from ecr_helper.config import RegistrySettings

KEY_VERSION = "1"


def cache_key(settings: RegistrySettings, env: Mapping[str, str]) -> str:
    """The key of ``settings``' token for the identity ``env`` selects.

    The endpoint is left out on purpose: a ``get`` that cannot reach AWS must
    still find what the daemon fetched.
    """
    access_key = env.get("AWS_ACCESS_KEY_ID", "")
    parts = [
        KEY_VERSION,
        settings.host,
        settings.partition,
        settings.region,
        settings.registry_id,
        list(settings.role_arns),
        settings.external_id or "",
        settings.source_profile or env.get("AWS_PROFILE", ""),
        digest(access_key) if access_key else "",
    ]
    return digest(json.dumps(parts))[:32]
