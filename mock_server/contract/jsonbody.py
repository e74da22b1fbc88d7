"""Strict JSON for request bodies: the one parser every JSON body goes through (API routes, control plane,
scenario files).

``json.loads`` alone is too forgiving for a contract fake: it accepts ``NaN``/``Infinity`` (not JSON), turns
``1e999`` into ``inf``, decodes ``"\\ud800"`` into a lone surrogate that cannot be encoded back to UTF-8 (a later
``JSONResponse`` would crash with a 500), silently keeps the last of duplicate keys (other servers keep the first),
and recurses once per nesting level, so ``[[[[...`` 100k deep raises ``RecursionError``. Each of these is a 400
here, in the ``{code, message}`` envelope, before any of the body reaches a validator or the model.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from typing import Any

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


class _Refused(ValueError):
    """Raised from inside the decoder's hooks; carries the client-facing reason."""


def parse_json(raw: bytes, *, max_depth: int = MAX_DEPTH, what: str = "Request body") -> Any:
    """Parse ``raw`` as one strict JSON document, or raise :class:`BadRequest` saying why not.

    Refused: bytes that are not UTF-8, invalid JSON, ``NaN``/``Infinity``/``-Infinity``, numbers beyond the
    IEEE double range, lone UTF-16 surrogates (``\\ud800``) in strings or keys, nesting deeper than
    ``max_depth`` (checked before parsing, so it costs no recursion), and duplicate keys in one object.
    ``what`` names the body in messages ("Request body", "control body", "scenario file").
    """
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
