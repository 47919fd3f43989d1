"""The cache key: which token a ``get`` in this environment may be served.

Everything that changes what a token is for goes into the key, so two roles,
two external ids, or two source identities (every input that selects one:
:func:`ecr_helper.source.key_inputs`) never share a token. Computed from the
settings and the environment alone: the cached path makes no AWS call and
reads no file to find its key.
"""

from __future__ import annotations

import json

from ecr_helper import source
from ecr_helper.cache.file import digest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from ecr_helper.config import RegistrySettings

KEY_VERSION = "2"


def cache_key(settings: RegistrySettings, env: Mapping[str, str]) -> str:
    """The key of ``settings``' token for the identity ``env`` selects.

    The endpoint is left out on purpose: a ``get`` that cannot reach AWS must
    still find what the daemon fetched.
    """
    parts = [
        KEY_VERSION,
        settings.host,
        settings.partition,
        settings.region,
        settings.registry_id,
        list(settings.role_arns),
        settings.external_id or "",
        source.key_inputs(settings.source_profile, env, digest),
    ]
    return digest(json.dumps(parts))[:32]
