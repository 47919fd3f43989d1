"""ecr_helper._cjson: the same text and values as the json package, NaN refused."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecr_helper import _cjson

VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@pytest.mark.slow
@given(VALUES)
def test_dumps_writes_what_json_dumps_writes(value: Any) -> None:
    assert _cjson.dumps(value) == json.dumps(value)


@pytest.mark.slow
@given(VALUES)
def test_loads_reads_what_json_loads_reads(value: Any) -> None:
    text = json.dumps(value, indent=1)
    assert _cjson.loads(text) == json.loads(text)
    assert _cjson.loads(text.encode()) == json.loads(text)
    assert _cjson.loads(f" \n{text}\t ") == value or value != value


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "{",
        '{"a": 1',
        '{"a": 1} x',
        "[1,]",
        "nul",
        "NaN",
        "Infinity",
        "-Infinity",
        '{"t": NaN}',
        '"\\ud800',
        "'a'",
        b"\xff\xfe",
    ],
)
def test_anything_else_is_a_value_error(text: str | bytes) -> None:
    with pytest.raises(ValueError):
        _cjson.loads(text)


@pytest.mark.parametrize("text", ['{"v": 1, "secret": "trunc', "[1, 2", "{", '"abc'])
def test_a_damaged_document_is_a_value_error_with_the_json_package_unloaded(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As on the cached get's path: _json alone, without json.decoder in sys.modules.
    for name in [m for m in sys.modules if m == "json" or m.startswith("json.")]:
        monkeypatch.delitem(sys.modules, name)
    with pytest.raises(ValueError):
        _cjson.loads(text)


def test_dumps_refuses_what_is_not_json() -> None:
    for bad in (float("nan"), float("inf"), {1: "a"}, {"a": object()}, b"bytes"):
        with pytest.raises((ValueError, TypeError)):
            _cjson.dumps(bad)


def test_tuples_are_arrays_and_text_is_escaped_as_json_does() -> None:
    assert _cjson.dumps(("a", 1)) == '["a", 1]'
    assert _cjson.dumps('é\n"\u2028') == json.dumps('é\n"\u2028')
