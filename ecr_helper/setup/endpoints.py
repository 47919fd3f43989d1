"""Which AWS endpoint a client here would call, and which proxy variables it would
obey: what ``xecr doctor`` names when an endpoint cannot be reached.

Proxy variables are named, never shown: a proxy URL may carry a password.
"""

from __future__ import annotations

from collections.abc import Mapping

PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy")


def endpoint_url(service: str, region: str, env: Mapping[str, str]) -> str:
    """``AWS_ENDPOINT_URL_<SERVICE>``, else ``AWS_ENDPOINT_URL``, else the regional URL."""
    override = env.get(f"AWS_ENDPOINT_URL_{service.upper()}") or env.get("AWS_ENDPOINT_URL")
    if override:
        return override
    domain = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    host = "api.ecr" if service == "ecr" else service
    return f"https://{host}.{region}.{domain}"


def proxies_set(env: Mapping[str, str]) -> list[str]:
    """The names of the proxy variables that are set."""
    return [name for name in PROXY_VARIABLES if env.get(name)]
