"""Hostile input: strict JSON, body limits, full-match patterns, safe downloads, pixel limits — always a 4xx in the
envelope, never a 5xx, and the server keeps serving everyone afterwards."""

from __future__ import annotations

import json
import time

import pytest

from mock_server.contract.errors import BadRequest
from mock_server.contract.jsonbody import nesting_depth, parse_json

# --- strict JSON --------------------------------------------------------------------------------------------

HOSTILE_JSON = {
    "nan": b'{"prompt": "x", "seed": NaN}',
    "infinity": b'{"prompt": "x", "guidance_scale": Infinity}',
    "minus-infinity": b'{"prompt": "x", "guidance_scale": -Infinity}',
    "overflow": b'{"prompt": "x", "guidance_scale": 1e999}',
    "huge-integer": b'{"prompt": "x", "seed": 1' + b"0" * 400 + b"}",
    "lone-surrogate-value": b'{"prompt": "x\\ud800"}',
    "lone-surrogate-key": b'{"prompt": "x", "\\udfff": 1}',
    "lone-low-surrogate-in-list": b'{"prompt": "x", "images": ["\\udc00"]}',
    "deep-nesting": b"[" * 100_000 + b"]" * 100_000,
    "deep-objects": b'{"a":' * 5_000 + b"1" + b"}" * 5_000,
    "duplicate-key": b'{"prompt": "x", "prompt": "y"}',
    "not-utf8": b'{"prompt": "\xff"}',
}


@pytest.mark.parametrize("name", sorted(HOSTILE_JSON))
def test_hostile_json_is_a_400_naming_the_problem(name: str) -> None:
    with pytest.raises(BadRequest) as raised:
        parse_json(HOSTILE_JSON[name])

    assert raised.value.status_code == 400
    json.dumps(raised.value.body()).encode("utf-8")  # the message itself is encodable (no echoed surrogate)


@pytest.mark.parametrize(("raw", "reason"), [
    (b"[NaN]", "NaN is not a JSON number"),
    (b"[1e999]", "beyond the range of a double"),
    (b'{"a": 1, "a": 2}', 'duplicate key "a"'),
    (b'{"\\ud800": 1, "\\ud800": 2}', 'duplicate key "\\ud800"'),
    (b'["\\ud800"]', "lone UTF-16 surrogate"),
    (b"[" * 65 + b"]" * 65, "nested deeper than 64 levels"),
])
def test_the_reason_is_in_the_message(raw: bytes, reason: str) -> None:
    with pytest.raises(BadRequest, match=reason.replace("\\", "\\\\")):
        parse_json(raw)


def test_what_strict_json_still_accepts() -> None:
    assert parse_json(b'{"a": "\\ud83d\\ude00", "b": [1.5e300, -0.0, 10], "c": "\\\\ud800"}') == {
        "a": "\U0001f600", "b": [1.5e300, -0.0, 10], "c": "\\ud800"}
    assert parse_json(b"[" * 64 + b"]" * 64) is not None
    assert parse_json(b'{"a": "' + b"[" * 10_000 + b'"}') == {"a": "[" * 10_000}  # brackets in strings are text


def test_the_depth_scan_skips_strings_and_is_linear() -> None:
    assert nesting_depth(b'[[{"a": "]]]]}}"}]]') == 3
    assert nesting_depth(b'"[[[["') == 0
    assert nesting_depth(b'"unterminated [[[') == 0
    started = time.perf_counter()
    # Unterminated string full of escaped quotes: a naive scan retries from each quote (quadratic).
    assert nesting_depth(b"[" * 70 + b'"' + b'\\"' * 400_000 + b"\\") == 70
    assert time.perf_counter() - started < 5
