"""JSON for the cached ``get``: CPython's C accelerator without the ``json`` package.

The ``json`` package is five modules (about 2 ms to import, as much as all of
xecr's own get-path modules together); its C core ``_json`` holds the scanner
and the string encoder that do the work. :func:`loads` and :func:`dumps` give
what ``json.loads`` and ``json.dumps`` (default settings) give for the values
xecr keeps (objects, arrays, strings, numbers, booleans, null), byte for byte,
with one deliberate difference: ``NaN`` and ``Infinity`` are refused, since a
token time that compares false would look fresh forever. ``_json`` is part of
CPython, the only Python xecr supports.
"""

from __future__ import annotations

import _json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

_WHITESPACE = " \t\n\r"


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed here")


class _Context:
    """The attributes ``_json.make_scanner`` reads (a ``json.JSONDecoder``'s)."""

    __slots__ = (
        "strict",
        "object_hook",
        "object_pairs_hook",
        "parse_float",
        "parse_int",
        "parse_constant",
        "memo",
    )

    def __init__(self) -> None:
        self.strict = True
        self.object_hook = None
        self.object_pairs_hook = None
        self.parse_float = float
        self.parse_int = int
        self.parse_constant = _refuse_constant
        self.memo: dict[str, str] = {}


# typeshed types the scanner's context as the scanner itself; any object with
# a decoder's attributes is what the C code reads.
_scan: Callable[[str, int], tuple[Any, int]] = _json.make_scanner(_Context())  # type: ignore[arg-type]
_quote: Callable[[str], str] = _json.encode_basestring_ascii


def loads(text: str | bytes) -> Any:
    """The value of one JSON document; :class:`ValueError` for anything else."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")  # UnicodeDecodeError is a ValueError
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        value, end = _scan(text, start)
    except StopIteration:
        raise ValueError("not a JSON document") from None
    except SystemError:
        # _json builds its error from json.decoder, which it looks up in
        # sys.modules but never imports: load it (a damaged document is rare)
        # and scan again, for the real JSONDecodeError (a ValueError).
        import json.decoder  # noqa: F401

        try:
            value, end = _scan(text, start)
        except (StopIteration, SystemError) as exc:
            raise ValueError("not a JSON document") from exc
    if text[end:].strip(_WHITESPACE):
        raise ValueError("extra data after the JSON document")
    return value


def dumps(value: Any) -> str:
    """``json.dumps(value)`` for strings, numbers, booleans, None, lists and dicts."""
    if isinstance(value, str):
        return _quote(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("NaN and Infinity are not JSON")
        return float.__repr__(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(dumps(item) for item in value) + "]"
    if isinstance(value, dict):
        items = []
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"keys must be str, not {type(key).__name__}")
            items.append(f"{_quote(key)}: {dumps(item)}")
        return "{" + ", ".join(items) + "}"
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
