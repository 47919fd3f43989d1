"""The registry token as xecr holds it: an immutable snapshot with its times.

``issued_at`` is when xecr received it (local clock); ``expires_at`` is what
ECR said. ``registry`` is the host it was fetched for (registries of one
identity and region share it); ``account`` names the Kubernetes service
account (``namespace/name``) of a token fetched as a pod's role, else "".
Every refresh decision is made from the two times (see
:mod:`ecr_helper.refresh`), so the same code is right for 12-hour tokens and
for the few-second tokens of tests.
"""

from __future__ import annotations

from ecr_helper._frozen import Frozen

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

ENTRY_VERSION = 1


class Token(Frozen):
    """A registry login. ``repr`` never shows the secret."""

    __slots__ = (
        "username",
        "secret",
        "issued_at",
        "expires_at",
        "registry",
        "registry_id",
        "region",
        "role_arn",
        "account",
    )
    _hidden = ("secret",)
    username: str
    secret: str
    issued_at: float
    expires_at: float
    registry: str
    registry_id: str
    region: str
    role_arn: str | None
    account: str

    def __init__(
        self,
        username: str,
        secret: str,
        issued_at: float,
        expires_at: float,
        registry: str = "",
        registry_id: str = "",
        region: str = "",
        role_arn: str | None = None,
        account: str = "",
    ) -> None:
        self._set(
            username=username,
            secret=secret,
            issued_at=float(issued_at),
            expires_at=float(expires_at),
            registry=registry,
            registry_id=registry_id,
            region=region,
            role_arn=role_arn,
            account=account,
        )

    @property
    def lifetime(self) -> float:
        return self.expires_at - self.issued_at

    def to_json(self, with_secret: bool = True) -> dict[str, Any]:
        body: dict[str, Any] = {"v": ENTRY_VERSION}
        for name in self.__slots__:
            if name != "secret" or with_secret:
                body[name] = getattr(self, name)
        return body

    @classmethod
    def from_json(cls, body: Any, secret: str | None = None) -> Token | None:
        """A token from a cache entry, or None when the entry is not one we wrote."""
        try:
            if body["v"] != ENTRY_VERSION:
                return None
            values = {
                name: body[name] for name in cls.__slots__ if name not in ("secret", "account")
            }
            values["account"] = body.get("account", "")  # absent from older entries
            values["secret"] = body["secret"] if secret is None else secret
            strings = ("username", "secret", "registry", "registry_id", "region", "account")
            if not all(isinstance(values[k], str) for k in strings):
                return None
            if not all(type(values[k]) in (int, float) for k in ("issued_at", "expires_at")):
                return None
            # json accepts NaN and Infinity; either would make a token "fresh"
            # forever. The comparison is False for NaN, so it refuses both.
            if not all(-1e12 < values[k] < 1e12 for k in ("issued_at", "expires_at")):
                return None
            if values["role_arn"] is not None and not isinstance(values["role_arn"], str):
                return None
            if not values["secret"] or values["expires_at"] <= values["issued_at"]:
                return None
            return cls(**values)
        except (KeyError, TypeError):
            return None
