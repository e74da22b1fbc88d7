"""The orjson fast path of ``parse_json`` against the strict decoder: same value, same types (``1 == 1.0`` and
``0.0 == -0.0`` in Python, so values are compared tagged), and for every refused body the same message."""

from __future__ import annotations

import functools
import json
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mock_server.contract import jsonbody
from mock_server.contract.errors import BadRequest
from mock_server.contract.jsonbody import parse_json

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def tagged(value: Any) -> Any:
    """``value`` with each scalar's exact type beside it, floats by their bits, objects in key order."""
    if type(value) is float:
        return ("float", value.hex())
    if type(value) is list:
        return ("list", [tagged(item) for item in value])
    if type(value) is dict:
        return ("dict", [(type(key).__name__, key, tagged(item)) for key, item in value.items()])
    return (type(value).__name__, value)


def outcome(parse: Any, raw: bytes) -> Any:
    try:
        return ("value", tagged(parse(raw)))
    except BadRequest as exc:
        return ("refused", exc.status_code, exc.body())


def assert_agree(raw: bytes) -> Any:
    """parse_json behaves exactly as the strict decoder alone; the fast path, where it answers, agrees too."""
    strict = outcome(jsonbody._parse_strict, raw)
    assert outcome(parse_json, raw) == strict
    fast = jsonbody._parse_fast(raw)
    if fast is not jsonbody._UNSURE:
        assert ("value", tagged(fast)) == strict
    return strict


# --- documents written by hand: every escape choice, whitespace, duplicate keys -----------------------------

# ':' '"' '\\' '/' and control characters are the ones the fast path's colon count and orjson.dumps care about.
CHARS = st.one_of(
    st.sampled_from(':"\\/\x00\x08\t\n\x0c\r\x1f\x7f\u2028é\U0001f600a0 '),
    st.characters(exclude_categories=["Cs"]),
)
WHITESPACE = st.sampled_from(["", " ", "\n", "\t", "\r\n  "])
SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "/": "\\/", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def u_escapes(char: str) -> list[str]:
    code = ord(char)
    if code < 0x10000:
        return [f"\\u{code:04x}", f"\\u{code:04X}"]
    high, low = 0xD800 + ((code - 0x10000) >> 10), 0xDC00 + ((code - 0x10000) & 0x3FF)
    return [f"\\u{high:04x}\\u{low:04x}", f"\\u{high:04X}\\u{low:04X}"]


@st.composite
def json_strings(draw: st.DrawFn, text: str | None = None, chars: st.SearchStrategy[str] = CHARS) -> tuple[str, str]:
    """(decoded, as written): each character literal where JSON allows, or by a short or ``\\u`` escape."""
    decoded = draw(st.text(chars, max_size=8)) if text is None else text
    written = []
    for char in decoded:
        choices = u_escapes(char)
        if char in SHORT_ESCAPES:
            choices.append(SHORT_ESCAPES[char])
        if char not in '"\\' and ord(char) >= 0x20:
            choices += [char, char]
        written.append(draw(st.sampled_from(choices)))
    if text is None and draw(st.integers(0, 30)) == 0:
        written.insert(draw(st.integers(0, len(written))), draw(st.sampled_from(["\\ud800", "\\uDFFF", "\\udc00"])))
    return decoded, '"' + "".join(written) + '"'


NUMBERS = st.one_of(
    st.integers().map(str),
    st.integers(-(2**64), 2**65).map(str),
    st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 10**18, 10**19]).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda x: f"{x:.17e}"),
    st.from_regex(r"-?(0|[1-9][0-9]{0,24})(\.[0-9]{1,24})?([eE][-+]?[0-9]{1,3})?", fullmatch=True),
    st.sampled_from(["-0", "-0.0", "1e999", "-1e999", "1e-999", "-1e-400", "NaN", "Infinity", "-Infinity"]),
)
SCALARS = st.one_of(NUMBERS, st.sampled_from(["true", "false", "null"]), json_strings().map(lambda pair: pair[1]))


@st.composite
def json_objects(
    draw: st.DrawFn, values: st.SearchStrategy[str], keys: st.SearchStrategy[tuple[str, str]] | None = None
) -> str:
    members = draw(st.lists(st.tuples(json_strings() if keys is None else keys, values), max_size=5))
    if draw(st.booleans()) and members:
        # The same key again, maybe escaped differently, with a value that may hold colons of its own.
        (key, _), _ = draw(st.sampled_from(members))
        members.insert(draw(st.integers(0, len(members))), (draw(json_strings(key)), draw(values)))
    ws = draw(WHITESPACE)
    return "{" + ws + ",".join(f"{ws}{key}{ws}:{ws}{value}{ws}" for (_, key), value in members) + ws + "}"


@st.composite
def json_arrays(draw: st.DrawFn, values: st.SearchStrategy[str]) -> str:
    ws = draw(WHITESPACE)
    return "[" + ws + f"{ws},{ws}".join(draw(st.lists(values, max_size=5))) + ws + "]"


WRITTEN_DOCUMENTS = st.recursive(
    SCALARS, lambda children: json_objects(children) | json_arrays(children), max_leaves=25
).flatmap(lambda text: st.tuples(WHITESPACE, WHITESPACE).map(lambda ws: ws[0] + text + ws[1]))


@PROPERTY
@given(WRITTEN_DOCUMENTS)
def test_written_documents_agree(text: str) -> None:
    assert_agree(text.encode("utf-8"))


# Where the colon count could be fooled: a dropped duplicate's colons against colons written as \u003a/\u003A.
COLON_STRINGS = json_strings(chars=st.sampled_from(":a"))
COLON_DOCUMENTS = st.recursive(
    COLON_STRINGS.map(lambda pair: pair[1]),
    lambda children: json_objects(children, keys=COLON_STRINGS) | json_arrays(children),
    max_leaves=8,
)


@PROPERTY
@given(COLON_DOCUMENTS)
def test_colon_heavy_documents_agree(text: str) -> None:
    assert_agree(text.encode("utf-8"))


# --- values serialized by the usual encoders ------------------------------------------------------------------

KEYS = st.text(CHARS, max_size=6)
VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(-(2**65), 2**65)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(CHARS, max_size=10),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=4),
    max_leaves=20,
)
ENCODINGS = st.one_of(
    st.builds(
        functools.partial,
        st.just(json.dumps),
        ensure_ascii=st.booleans(),
        indent=st.sampled_from([None, 0, 2, "\t"]),
        separators=st.sampled_from([None, (",", ":"), (", ", ": "), (" , ", " : ")]),
    ),
    st.just(lambda value: orjson.dumps(value).decode()),
    # "/" only ever appears inside strings, where "\/" means the same.
    st.just(lambda value: json.dumps(value).replace("/", "\\/")),
)


@PROPERTY
@given(VALUES, ENCODINGS)
def test_serialized_values_agree_and_round_trip(value: Any, encode: Any) -> None:
    try:
        text = encode(value)
    except TypeError:  # orjson.dumps: an integer beyond 64 bits
        return
    strict = assert_agree(text.encode("utf-8"))
    if strict[0] == "value":  # else an integer of over 308 digits, or nesting beyond 64
        assert strict[1] == tagged(value)


# What a client sends, with none of what sends a body the slow way although orjson reads it right: 19 digits in a
# row (integers within 18 digits, floats with a few decimals: 0.00012345678901234567 is 20 in a row), a backslash
# before "u003a" (overcounted as an escaped colon); no duplicate keys.
PLAIN_TEXT = st.text(st.characters(exclude_categories=["Cs", "Nd"], exclude_characters="\\"), max_size=10)
PLAIN_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**18) + 1, 10**18 - 1)
    | st.floats(allow_nan=False, allow_infinity=False).map(lambda x: round(x, 6))
    | PLAIN_TEXT,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(PLAIN_TEXT, children, max_size=3),
    max_leaves=12,
)


@PROPERTY
@given(PLAIN_VALUES, st.booleans())
def test_plain_documents_take_the_fast_path(value: Any, ensure_ascii: bool) -> None:
    raw = json.dumps(value, ensure_ascii=ensure_ascii).encode("utf-8")
    fast = jsonbody._parse_fast(raw)
    assert fast is not jsonbody._UNSURE
    assert tagged(fast) == tagged(value)


# --- arbitrary bytes ------------------------------------------------------------------------------------------

TOKENS = st.sampled_from(
    [b"{", b"}", b"[", b"]", b",", b":", b'"', b"\\", b"\\u", b"003a", b"003A", b"d800", b"dc00", b"d83d", b"de00"]
    + [b"a", b" ", b"\n", b"\x0c", b"\x00", b"\x1f", b"0", b"1", b"-", b"+", b".", b"e", b"true", b"null", b"NaN"]
    + [b"/", b"\xc3\xa9", b"\xf0\x9f\x98\x80", b"\xed\xa0\x80", b"\xff", b"\xef\xbb\xbf", b"\\\\", b'\\"']
    + [b"1" * 19, b"18446744073709551616", b"1e309", b"5e-324", b'{"a":', b'"a"', b"}", b'{"a":1,"a":2}']
)


@PROPERTY
@given(st.binary(max_size=40) | st.lists(TOKENS, max_size=30).map(b"".join))
def test_any_bytes_agree(raw: bytes) -> None:
    assert_agree(raw)


# --- examples -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"a": 1, "a": 2}', 'duplicate key "a"'),
        (b'{"x": {"a": 1, "b": 2, "a": 3}}', 'duplicate key "a"'),
        (b'[{"a": 1}, {"a": "x:y", "a": "http://h:1/p"}]', 'duplicate key "a"'),
        (b'{"a": {"b:c": "d:e"}, "z": 0, "a": 1}', 'duplicate key "a"'),
        (b'{"a": 1, "\\u0061": 2}', 'duplicate key "a"'),
        # orjson keeps {"a": ":"}: one ':' in its output as in the raw text, so only counting the escape tells
        # that a member was dropped.
        (b'{"a": 1, "a": "\\u003a"}', 'duplicate key "a"'),
        (b'{"k\\u003A": 1, "k:": 2}', 'duplicate key "k:"'),
        (b"[NaN]", "NaN is not a JSON number"),
        (b'{"x": 1e999}', "the number 1e999 is beyond the range of a double"),
        (b'["\\ud800"]', "lone UTF-16 surrogate"),
        (b'"a\\udc00"', "lone UTF-16 surrogate"),
        (b"1" + b"0" * 400, "an integer of 401 digits is beyond the range of a double"),
    ],
)
def test_refusals_are_the_strict_ones(raw: bytes, reason: str) -> None:
    assert jsonbody._parse_fast(raw) is jsonbody._UNSURE
    with pytest.raises(BadRequest, match=reason.replace("\\", "\\\\")):
        parse_json(raw)
    assert_agree(raw)


@pytest.mark.parametrize(
    "number", [2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 10**40, -(10**40), 10**308 - 1]
)
def test_big_integers_stay_exact_integers(number: int) -> None:
    value = parse_json(b'{"seed": %d}' % number)
    assert type(value["seed"]) is int
    assert value["seed"] == number


def test_escaped_colons_and_escapes_are_read_alike() -> None:
    raw = b'{"k\\u003a": "a\\u003Ab:\\/\\"\\\\", "\\ud83d\\ude00": -0, "f": -0.0, "e": 1E2}'
    assert parse_json(raw) == {"k:": 'a:b:/"\\', "\U0001f600": 0, "f": -0.0, "e": 100.0}
    assert jsonbody._parse_fast(raw) is not jsonbody._UNSURE
    assert_agree(raw)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"prompt": "a lighthouse at dusk", "aspect_ratio": "16:9"}',
        b'{"prompt": "x", "image": "https://cdn.example.com/a.png?sig=1:2", "seed": 42, "guidance_scale": 3.5, '
        b'"enable_safety_checker": true, "images": [], "size": "1024*1024"}',
        json.dumps({"prompt": "un phare au crépuscule 🌅", "n": [1, 2.5, None]}).encode(),  # \u escapes
    ],
)
def test_typical_bodies_take_the_fast_path(raw: bytes) -> None:
    assert jsonbody._parse_fast(raw) is not jsonbody._UNSURE
    assert_agree(raw)


def test_too_deep_is_left_to_the_strict_path() -> None:
    raw = b"[" * 65 + b"]" * 65  # orjson would accept it
    assert jsonbody._parse_fast(raw) is jsonbody._UNSURE
    with pytest.raises(BadRequest, match="nested deeper than 64 levels"):
        parse_json(raw)
    assert parse_json(b"[" * 3 + b"]" * 3, max_depth=3) == [[[]]]
    with pytest.raises(BadRequest, match="nested deeper than 2 levels"):
        parse_json(b"[" * 3 + b"]" * 3, max_depth=2)


@pytest.mark.parametrize(
    "raw",
    [
        json.dumps({"prompt": "a lighthouse at dusk, " * 300, "seed": 7}).encode(),
        b'{"prompt": "' + b"x:" * 3000 + b'", "prompt": 1}',
    ],
)
def test_large_bodies_agree_too(raw: bytes) -> None:
    assert len(raw) > jsonbody._FAST_MAX_BYTES
    assert_agree(raw)
