"""Strict JSON for request bodies: the one parser every JSON body goes through (API routes, control plane,
scenario files).

``json.loads`` alone is too forgiving for a contract fake: it accepts ``NaN``/``Infinity`` (not JSON), turns
``1e999`` into ``inf``, decodes ``"\\ud800"`` into a lone surrogate that cannot be encoded back to UTF-8 (a later
``JSONResponse`` would crash with a 500), silently keeps the last of duplicate keys (other servers keep the first),
and recurses once per nesting level, so ``[[[[...`` 100k deep raises ``RecursionError``. Each of these is a 400
here, in the ``{code, message}`` envelope, before any of the body reaches a validator or the model.

Bodies up to a few KB, most of them, are settled by ``orjson.loads`` instead, several times faster. It refuses all
of the above except duplicate keys (it keeps the last) and nesting (up to its own far deeper limit), but makes
integers beyond 64 bits floats; so its value is taken only where cheap byte counts rule out these three, and every
other body, refusals included, goes through the strict decoder, which words every refusal.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from typing import Any, Final

import orjson

from mock_server.contract.errors import BadRequest

MAX_DEPTH = 64
# A float beyond this many significant characters is still parsed by float(); an integer is refused earlier,
# because int() of a 5000-digit string raises its own ValueError (the int max_str_digits guard).
_MAX_INT_DIGITS = 308  # anything longer is beyond IEEE double range, so no client can mean it as a number

# A JSON string, or an unterminated one running to the end of the input (a lone trailing backslash included).
# It matches from every quote it is tried at, on the first greedy path: no backtracking, so the scan stays linear
# even for ``"\"\"\"...`` (a pattern that can fail would be retried from each quote inside: quadratic).
_STRING = re.compile(rb'"(?:[^"\\]|\\[\s\S]?)*(?:"|\Z)')
_OPEN_CLOSE = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
# A \uD800-\uDFFF escape: the only way a lone surrogate gets into a decoded string (raw surrogate bytes are
# already refused by the strict UTF-8 decode).
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")
# One translate serves two checks: "{" folded into "[" counts openers, digits folded into "0" show digit runs.
_FOLD = bytes.maketrans(b"{123456789", b"[000000000")
# orjson turns an integer outside i64/u64 into a float; such an integer has at least 19 digits (10**18 < 2**63),
# so raw bytes without 19 digits in a row cannot hold one. Digits in strings only send a body the slow way.
_DIGIT_RUN = b"0" * 19
# The fast path saves per value (the decoder's Python hooks) but adds byte scans; in bodies past a few KB, mostly
# string bytes (a long prompt, a base64 image), the scans cost more than the hooks save (about even at 2-4 KB).
_FAST_MAX_BYTES = 2048
_UNSURE: Final = object()


class _Refused(ValueError):
    """Raised from inside the decoder's hooks; carries the client-facing reason."""


def parse_json(raw: bytes, *, max_depth: int = MAX_DEPTH, what: str = "Request body") -> Any:
    """Parse ``raw`` as one strict JSON document, or raise :class:`BadRequest` saying why not.

    Refused: bytes that are not UTF-8, invalid JSON, ``NaN``/``Infinity``/``-Infinity``, numbers beyond the
    IEEE double range, lone UTF-16 surrogates (``\\ud800``) in strings or keys, nesting deeper than
    ``max_depth`` (checked before parsing, so it costs no recursion), and duplicate keys in one object.
    ``what`` names the body in messages ("Request body", "control body", "scenario file").
    """
    if len(raw) <= _FAST_MAX_BYTES:
        value = _parse_fast(raw, max_depth)
        if value is not _UNSURE:
            return value
    return _parse_strict(raw, max_depth=max_depth, what=what)


def _parse_fast(raw: bytes, max_depth: int = MAX_DEPTH) -> Any:
    """orjson's value for ``raw`` when it is provably the strict parser's value (types included), else ``_UNSURE``.

    What orjson accepts and the strict parser does not, or reads differently, is ruled out by counting bytes:
    nesting, by the brackets (too few to be too deep); integers beyond 64 bits (orjson makes them floats), by
    digit runs; duplicate keys (orjson keeps the last), by colons. Each object member puts one ``:`` in the text
    and ``orjson.dumps`` writes one per member it kept, and a ``:`` in a string is either written as such in both
    (UTF-8 has no byte 0x3A inside a multi-byte character) or escaped as ``\\u003a``/``\\u003A`` in the text,
    which is counted (an escaped backslash before ``u003a`` overcounts, which only sends the body the slow way).
    So the two counts are equal only if no member was dropped. Everything else orjson accepts it reads as the
    strict decoder does (floats rounded alike, ``-0`` an int): tests/contract/test_jsonbody_fast.py holds it to that.
    """
    folded = raw.translate(_FOLD)
    if folded.count(b"[") > max_depth or folded.find(_DIGIT_RUN) >= 0:
        return _UNSURE
    try:
        value = orjson.loads(raw)
        # dumps would also refuse what loads should never give: a lone surrogate, nesting past its own limit.
        colons = orjson.dumps(value).count(b":")
    except (orjson.JSONDecodeError, orjson.JSONEncodeError):
        return _UNSURE
    expected = raw.count(b":")
    if raw.find(b"\\") >= 0:
        expected += raw.count(b"\\u003a") + raw.count(b"\\u003A")
    return value if colons == expected else _UNSURE


def _parse_strict(raw: bytes, *, max_depth: int = MAX_DEPTH, what: str = "Request body") -> Any:
    """The strict decoder alone: the reference the fast path must agree with, and the author of every refusal."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"{what} is not valid JSON: not UTF-8 (byte {exc.start})") from None
    # Two bytes.count calls settle every ordinary body; only a bracket-heavy one is scanned.
    if raw.count(b"[") + raw.count(b"{") > max_depth and nesting_depth(raw) > max_depth:
        raise BadRequest(f"{what} is nested deeper than {max_depth} levels")
    try:
        value = _DECODER.decode(text)
    except _Refused as exc:
        raise BadRequest(f"{what} is not acceptable JSON: {exc}") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(f"{what} is not valid JSON: {exc}") from None
    except (ValueError, RecursionError):  # belt and braces: the depth scan should have caught the latter
        raise BadRequest(f"{what} is not valid JSON") from None
    if _SURROGATE_ESCAPE.search(raw) and _has_lone_surrogate(value):
        raise BadRequest(
            f"{what} is not acceptable JSON: a string holds a lone UTF-16 surrogate (\\ud800-\\udfff "
            "without its pair), which is not Unicode text"
        )
    return value


def json_type(value: Any) -> str:
    """The JSON Schema type name of a parsed JSON value ("boolean" before "integer": a bool is an int in Python)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else type(value).__name__


def nesting_depth(raw: bytes) -> int:
    """The deepest ``[``/``{`` nesting in ``raw``, ignoring brackets inside strings. Linear and recursion-free:
    strings removed, the remaining brackets mapped to +1/-1, the running sum's maximum taken in C."""
    brackets = _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS).translate(_OPEN_CLOSE)
    if not brackets:
        return 0
    return max(0, max(itertools.accumulate(memoryview(brackets).cast("b"))))


def _constant(name: str) -> Any:
    raise _Refused(f"{name} is not a JSON number")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"the number {text[:40]} is beyond the range of a double")
    return value


def _int(text: str) -> int:
    if len(text.lstrip("-")) > _MAX_INT_DIGITS:
        raise _Refused(f"an integer of {len(text.lstrip('-'))} digits is beyond the range of a double")
    return int(text)


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            # ensure_ascii: the key may hold a lone surrogate, which must not reach the (UTF-8) response.
            raise _Refused(f"duplicate key {json.dumps(key)[:80]} in one object (servers disagree on which wins)")
        result[key] = value
    return result


def _has_lone_surrogate(value: Any) -> bool:
    # Iterative: the depth is bounded by the scan above, but an explicit stack costs nothing and cannot overflow.
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


# Made once: json.loads with hooks builds a new decoder on every call.
_DECODER = json.JSONDecoder(parse_constant=_constant, parse_float=_float, parse_int=_int, object_pairs_hook=_object)
