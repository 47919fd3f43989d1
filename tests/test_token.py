"""ecr_helper.token: the Token value, its cache-entry form, and the secret kept out
of every repr."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings

from ecr_helper.token import ENTRY_VERSION, Token
from tests.helpers import CENTRAL, CENTRAL_HOST, PULL_ROLE
from tests.strategies import TARGETS

SECRET = "ecr-password-0123456789abcdef"


def body(**changes: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "v": ENTRY_VERSION,
        "username": "AWS",
        "secret": SECRET,
        "issued_at": 1000.0,
        "expires_at": 44200.0,
        "registry": CENTRAL_HOST,
        "registry_id": CENTRAL,
        "region": "us-east-1",
        "role_arn": PULL_ROLE,
    }
    entry.update(changes)
    return entry


def without(field: str) -> dict[str, Any]:
    entry = body()
    del entry[field]
    return entry


def test_a_valid_entry() -> None:
    token = Token.from_json(body())
    assert token == Token("AWS", SECRET, 1000, 44200, CENTRAL_HOST, CENTRAL, "us-east-1", PULL_ROLE)
    assert token is not None and token.lifetime == 43200.0
    assert Token.from_json(body(role_arn=None, issued_at=1000, expires_at=2000)) is not None


def test_to_json_round_trips_through_json_text() -> None:
    token = Token.from_json(body())
    assert token is not None
    assert Token.from_json(json.loads(json.dumps(token.to_json()))) == token
    public = token.to_json(with_secret=False)
    assert "secret" not in public and SECRET not in json.dumps(public)
    assert Token.from_json(public) is None  # no secret, no token...
    assert Token.from_json(public, secret=SECRET) == token  # ...unless given (keyring)


NOT_STRINGS: tuple[object, ...] = (None, 1, 1.5, [], {}, True)
NOT_NUMBERS: tuple[object, ...] = (None, "1000", [], {}, True, False)
MALFORMED: dict[str, Any] = {
    "none": None,
    "list": [body()],
    "string": json.dumps(body()),
    "number": 1,
    "bool": True,
    "empty object": {},
    **{f"without {field}": without(field) for field in body()},
    "version 0": body(v=0),
    "version 2": body(v=2),
    "version as text": body(v="1"),
    "version null": body(v=None),
    **{
        f"{field} is {value!r}": body(**{field: value})
        for field in ("username", "secret", "registry", "registry_id", "region")
        for value in NOT_STRINGS
    },
    **{
        f"{field} is {value!r}": body(**{field: value})
        for field in ("issued_at", "expires_at")
        for value in NOT_NUMBERS
    },
    "role_arn is int": body(role_arn=1),
    "role_arn is list": body(role_arn=[PULL_ROLE]),
    "role_arn is object": body(role_arn={}),
    "empty secret": body(secret=""),
    "expires when issued": body(expires_at=1000.0),
    "expires before issued": body(expires_at=999.0),
}


@pytest.mark.parametrize("entry", MALFORMED.values(), ids=list(MALFORMED))
def test_malformed_entries_are_refused(entry: Any) -> None:
    assert Token.from_json(entry) is None


@pytest.mark.parametrize(
    "entry",
    [
        body(expires_at=float("nan")),
        body(issued_at=float("nan")),
        body(expires_at=float("inf")),
        body(issued_at=float("-inf")),
    ],
    ids=["expires NaN", "issued NaN", "expires inf", "issued -inf"],
)
def test_non_finite_times_are_refused(entry: dict[str, Any]) -> None:
    assert Token.from_json(entry) is None


def test_repr_and_str_hide_the_secret() -> None:
    token = Token.from_json(body())
    assert token is not None
    for text in (repr(token), str(token), f"{token}", f"{[token]}", repr({"t": token})):
        assert SECRET not in text
        assert "secret=***" in text
    assert "username='AWS'" in repr(token)  # the rest stays visible for debugging


def test_tokens_are_immutable_values() -> None:
    token = Token.from_json(body())
    assert token is not None
    with pytest.raises(AttributeError):
        token.secret = "other"
    with pytest.raises(AttributeError):
        del token.expires_at
    assert token == Token.from_json(body())
    assert hash(token) == hash(Token.from_json(body()))
    assert token != Token.from_json(body(secret="other-secret"))
    assert token != "not a token"


def test_times_are_floats() -> None:
    token = Token("AWS", SECRET, 1, 2)
    assert isinstance(token.issued_at, float) and isinstance(token.expires_at, float)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(TARGETS["token_from_json"].strategy)
def test_from_json_never_raises(entry: Any) -> None:
    TARGETS["token_from_json"].check(entry)


def test_a_pod_role_token_names_its_service_account_and_older_entries_still_read() -> None:
    """Issue 21, item 5: ``account`` names a pod-role token's service account for
    status; entries written before it existed read as the node's (account "")."""
    pod = Token.from_json(body(account="team-a/builder"))
    assert pod is not None and pod.account == "team-a/builder"
    assert Token.from_json(pod.to_json()) == pod
    older = Token.from_json(body())  # no "account" key
    assert older is not None and older.account == ""
    assert Token.from_json(body(account=7)) is None
