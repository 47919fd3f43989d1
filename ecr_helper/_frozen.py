"""Immutable value objects for the modules on the cached ``get`` path.

Those modules cannot use :mod:`dataclasses` or :mod:`typing` at run time:
importing them costs more (about 13 ms and 6 ms) than the whole cached
``get`` may add to Python's start-up. This base gives slotted classes the
part of ``@dataclass(frozen=True)`` we need: keyword construction through
``_set``, no mutation, value equality and a repr that hides secrets.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class Frozen:
    """Base for slotted value classes. Subclasses list secret fields in ``_hidden``."""

    __slots__ = ()
    _hidden: tuple[str, ...] = ()

    def _set(self, **fields: Any) -> None:
        for name, value in fields.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def _fields(self) -> tuple[object, ...]:
        names: tuple[str, ...] = self.__slots__
        return tuple(getattr(self, name) for name in names)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash((type(self).__name__, *(repr(v) for v in self._fields())))

    def __repr__(self) -> str:
        names: tuple[str, ...] = self.__slots__
        parts = (
            f"{name}={'***' if name in self._hidden else repr(getattr(self, name))}"
            for name in names
        )
        return f"{type(self).__name__}({', '.join(parts)})"
