"""Compiled schemas: jsonschema-rs decides, jsonschema explains. Where the engines read a schema differently,
jsonschema alone judges; a server that only ever sees valid requests never loads jsonschema."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from mock_server.contract.validators import CompiledSchema

SERVE_VALID_REQUESTS = """
import json, sys
import httpx
from mock_server.http.app import create_app
from mock_server.settings import Settings
from mock_server.testing.inprocess import InProcessServer

T2I = "/api/v3/wavespeed-ai/flux-kontext-pro/text-to-image"
VALID = [
    (T2I, {"prompt": "a lighthouse at dusk", "aspect_ratio": "16:9"}),
    ("/api/v3/some-lab/unknown-model", {"prompt": "x"}),
    ("/api/v3/predictions", {"page": 1}),
    ("/api/v3/model/price", {"model_id": "wavespeed-ai/flux-kontext-max", "inputs": {"num_images": 2}}),
    ("/_mock/outcomes", {"status": "failed", "prompt_contains": "broken"}),
]

def loaded():
    return sorted(m for m in sys.modules if m.split(".")[0] in ("jsonschema", "referencing"))

server = InProcessServer(create_app(Settings()))
report = {}
key = {"Authorization": "Bearer k"}
with httpx.Client(transport=server.sync_transport, base_url=server.base_url, headers=key) as c:
    for path, body in VALID:
        assert c.post(path, json=body).status_code == 200, path
    report["valid"] = loaded()
    invalid = c.post(T2I, json={"prompt": 1})
    report["invalid"] = [invalid.status_code, invalid.json()["errors"], loaded() != []]
server.close()
print(json.dumps(report))
"""


def test_a_server_serving_only_valid_requests_never_imports_jsonschema() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SERVE_VALID_REQUESTS], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])

    assert report["valid"] == []
    assert report["invalid"] == [400, [{"path": "prompt", "message": "1 is not of type 'string'"}], True]


# Found by running both engines over every code point and over boundary numbers.
ENGINE_SPECIFIC = [
    ({"type": "string", "pattern": r"^\w+(?![\s\S])"}, "e\u0301"),  # Rust's \w holds combining marks, Python's not
    ({"type": "string", "pattern": r"^\w+(?![\s\S])"}, "x\u00b2"),  # Python's \w holds superscript digits
    ({"type": "string", "pattern": r"^\s*1(?![\s\S])"}, "\x1c1"),  # Python's \s holds U+001C..U+001F
    ({"type": "string", "pattern": r"^\S(?![\s\S])"}, "\x1c"),
    ({"type": "string", "pattern": r"^\d(?![\s\S])"}, "\U00010d40"),  # the engines' Unicode versions differ
    ({"type": "string", "pattern": "^1$"}, "1\n"),  # Python's $ also matches before a final newline
    ({"type": "number", "multipleOf": 0.01}, 0.07),  # Python divides in floating point
    ({"type": "number", "multipleOf": 3}, 1e300),
    ({"properties": {"a": {"$ref": "#/x-sub"}}, "x-sub": {"pattern": r"^\w(?![\s\S])"}}, {"a": "\u0301"}),
]


@pytest.mark.parametrize(("schema", "instance"), ENGINE_SPECIFIC)
def test_where_the_engines_read_a_schema_differently_jsonschema_alone_judges(schema: Any, instance: Any) -> None:
    compiled = CompiledSchema(schema)

    assert compiled.native is None
    assert compiled.is_valid(instance) == Draft202012Validator(schema).is_valid(instance)


@pytest.mark.parametrize(
    ("pattern", "shared"),
    [
        (r"^(?:[A-Za-z]{1,16}|[*])(?![\s\S])", True),
        (r"^[0-9]{4}-[0-9]{2}([.,][0-9]+)?([Zz]|[+-][0-9]{2}(:?[0-9]{2})?)?(?![\s\S])", True),
        (r"(?:a)(?=b)(?!c)(?<=d)(?<!e)x{2,}y{3}z{1,4}\.\*\\d", True),  # \\d: an escaped backslash, then "d"
        ("^caf\u00e9+", True),
        ("(?i)^a", False),
        ("(?P<name>a)", False),
        ("(?>a)", False),
        ("[[:alpha:]]", False),
        ("a{,3}", False),
        ("a{", False),
        ("[a--b]", False),
        ("[a&&b]", False),
        (r"[^\s\S]", False),
        (r"\bword", False),
        (r"\u00e9", False),
    ],
)
def test_patterns_outside_the_shared_syntax_are_left_to_jsonschema(pattern: str, shared: bool) -> None:
    assert (CompiledSchema({"type": "string", "pattern": pattern}).native is not None) == shared


@pytest.mark.parametrize("form", ["uri", "date-time", "date", "email", "ipv4", "uuid", "regex", "binary", "made-up"])
def test_formats_are_annotations_to_both(form: str) -> None:
    """The validators have never had a format checker: a "format" never makes a request invalid."""
    compiled = CompiledSchema({"type": "string", "format": form})

    assert compiled.native is not None
    assert compiled.native.is_valid("[not a thing of any format") is True
    assert compiled.explainer.is_valid("[not a thing of any format") is True


@pytest.mark.parametrize("instance", [{"a": b"bytes"}, {"a": {1, 2}}, {1: "a"}, {"a": object()}])
def test_what_jsonschema_rs_cannot_read_is_judged_by_jsonschema(instance: Any) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}

    assert CompiledSchema(schema).is_valid(instance) == Draft202012Validator(schema).is_valid(instance)


def test_a_schema_jsonschema_rs_refuses_is_left_to_jsonschema() -> None:
    assert CompiledSchema({"$ref": "#/$defs/missing"}).native is None


@pytest.mark.parametrize(
    ("schema", "instance"),
    [({"type": "integer", "minimum": -(2**63)}, -(2.0**63)), ({"const": 2**63}, 2.0**63)],
)
def test_a_native_invalid_is_judged_again(schema: Any, instance: Any) -> None:
    """jsonschema-rs rejects these (found by tests/contract/test_validator_agreement.py); jsonschema's valid holds."""
    compiled = CompiledSchema(schema)

    assert Draft202012Validator(schema).is_valid(instance)
    assert compiled.is_valid(instance)
    assert list(compiled.iter_errors(instance)) == []


def test_the_violations_are_jsonschemas_own() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer", "maximum": 4}}, "required": ["p"]}
    compiled = CompiledSchema(schema)
    expected = Draft202012Validator(schema)

    for instance in ({"p": 1, "n": 4}, {"n": 5}, {"p": 1, "n": "4"}, [], {"n": 4.5}):
        assert [e.message for e in compiled.iter_errors(instance)] == [
            e.message for e in expected.iter_errors(instance)
        ]
