"""Strict JSON: only UTF-8 RFC 8259 documents with finite numbers and short integers."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quaxspec import strictjson
from quaxspec.messages import MessageDecodeError


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b'{"x": NaN}', "NaN is not a JSON number"),
        (b'{"x": Infinity}', "Infinity is not a JSON number"),
        (b'{"x": -Infinity}', "-Infinity is not a JSON number"),
        (b'{"x": 1e999}', "overflows a double"),
        (b'{"x": -1e999}', "overflows a double"),
        (b'{"x": ' + b"9" * 5000 + b"}", "integer of 5000 digits"),
        ('{"x": 1}'.encode("utf-16"), "utf-8"),
        ('{"x": 1}'.encode("utf-32"), "utf-8"),
        (b"\x80\x81", "utf-8"),
        (b"[" * 100_000 + b"]" * 100_000, "not strict UTF-8 JSON"),
        (b"{", "Expecting"),
        (b"", "Expecting value"),
    ],
)
def test_what_json_lets_through_is_refused_with_the_reason(data: bytes, words: str) -> None:
    with pytest.raises(MessageDecodeError, match="doc: not strict UTF-8 JSON") as refused:
        strictjson.loads(data, what="doc")
    assert words.lower() in str(refused.value).lower()


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_standard_documents_read_as_json_reads_them(value: object) -> None:
    data = json.dumps(value, allow_nan=False).encode()
    assert strictjson.loads(data, what="doc") == json.loads(data)
    assert strictjson.loads(bytearray(data), what="doc") == json.loads(data)
