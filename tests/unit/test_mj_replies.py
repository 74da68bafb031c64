"""A reply body reads as the standard library reads it, whichever parser did the work: every
JSON value alike, and bytes that are not JSON (or JSON only to the standard library, such as
UTF-16 or a lone surrogate escape) alike."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.adapters.mj.transport import EMPTY, NOT_JSON, Reply

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=30,
)


def stdlib(body: bytes) -> Any:
    if not body.strip():
        return EMPTY
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return NOT_JSON


def same(a: Any, b: Any) -> bool:
    """Equal, with floats compared as floats and types kept apart (1 is not 1.0 here)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


@settings(max_examples=300, deadline=None)
@given(JSON, st.booleans())
def test_every_json_value_reads_as_the_standard_library_reads_it(value: Any, ascii: bool) -> None:
    body = json.dumps(value, ensure_ascii=ascii).encode()
    assert same(Reply(200, {}, body).payload, json.loads(body))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64) | st.text(max_size=32).map(lambda t: t.encode("utf-16")))
def test_any_bytes_read_as_the_standard_library_reads_them(body: bytes) -> None:
    assert same(Reply(200, {}, body).payload, stdlib(body))


def test_the_odd_cases_the_standard_library_accepts_still_read() -> None:
    for body in (
        b'{"a": NaN, "b": Infinity}',
        b'"\\ud800"',
        '{"a": 1}'.encode("utf-16"),
        b'{"a": 1, "a": 2}',
        b"  \n ",
        b"[1, 2",
    ):
        assert same(Reply(200, {}, body).payload, stdlib(body)), body
