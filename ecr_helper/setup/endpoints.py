"""Which AWS endpoint a client here would call, and which proxy variables it would
obey: what ``xecr doctor`` names when an endpoint cannot be reached.

Proxy variables are named, never shown: a proxy URL may carry a password.
"""

from __future__ import annotations

from collections.abc import Mapping

PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy")


def endpoint_url(service: str, region: str, env: Mapping[str, str]) -> str:
    """``AWS_ENDPOINT_URL_<SERVICE>``, else ``AWS_ENDPOINT_URL``, else the regional URL."""
    name = service.upper().replace("-", "_")  # botocore's AWS_ENDPOINT_URL_ECR_PUBLIC
    override = env.get(f"AWS_ENDPOINT_URL_{name}") or env.get("AWS_ENDPOINT_URL")
    if override:
        return override
    domain = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    host = f"api.{service}" if service.startswith("ecr") else service
    return f"https://{host}.{region}.{domain}"


def proxies_set(env: Mapping[str, str]) -> list[str]:
    """The names of the proxy variables that are set."""
    return [name for name in PROXY_VARIABLES if env.get(name)]


def unreachable_hint(service: str, region: str, env: Mapping[str, str]) -> str:
    """The advice for an endpoint that did not answer: it is the network, not the
    credentials; which URL, and which proxy variables are in play."""
    names = proxies_set(env)
    proxies = f"proxy variables set: {', '.join(names)}" if names else "no proxy variable is set"
    return (
        "this is the network, not the credentials: can this machine reach "
        f"{endpoint_url(service, region, env)}? "
        f"({proxies}; check HTTPS_PROXY and NO_PROXY, firewalls and VPC endpoints)"
    )
