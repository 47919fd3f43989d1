"""The token cache's interface, and the null backend (``cache = "none"``).

A backend reads and writes :class:`~ecr_helper.token.Token` entries by key,
lists them, gives a per-key lock that serialises fetches across processes,
and passes a failed fetch's line to processes already queued behind it.
Correctness never rests on the lock (see :mod:`ecr_helper.refresh`).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Protocol

    from ecr_helper.token import Token

    class Lock(Protocol):
        """``with lock as held``: whether the lock was had in time."""

        def __enter__(self) -> bool: ...

        def __exit__(self, *exc: object) -> None: ...


class NoLock:
    """The lock of a backend that has nothing to lock: never held."""

    def __enter__(self) -> bool:
        return False

    def __exit__(self, *exc: object) -> None:
        return None


class TokenCache:
    """Backend interface. The base class caches nothing (``cache = "none"``)."""

    name = "none"
    folder: str | None = None
    # The machine-wide cache: keyed by the machine's identity, written by root only.
    machine = False

    def read(self, key: str) -> Token | None:
        return None

    def write(self, key: str, token: Token) -> None:
        return None

    def delete(self, key: str) -> bool:
        return False

    def entries(self) -> dict[str, Token]:
        """Every readable entry, by key."""
        return {}

    def lock(self, key: str, timeout: float) -> Lock:
        return NoLock()

    def note_failure(self, key: str, message: str, at: float) -> None:
        """Tell processes already waiting on this key's lock that the fetch failed."""
        return None

    def failure_since(self, key: str, since: float, until: float | None = None) -> str | None:
        """The error line of a fetch that failed after ``since`` (and not after ``until``)."""
        return None

    def last_failure(self, key: str) -> tuple[float, str] | None:
        """When the last noted fetch for ``key`` failed, and its error line (``status``)."""
        return None
