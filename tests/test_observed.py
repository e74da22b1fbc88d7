"""contract.observed: naming how an observed answer differs from our schemas, and whether that breaks clients."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mock_server.contract.catalog import Catalog
from mock_server.contract.observed import ENVELOPE_SCHEMA, check_error, check_success, compare, summary
from tests.conftest import T2I


def result_body(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": "0123456789abcdef0123456789abcdef",
        "model": T2I,
        "outputs": ["https://cdn.invalid/a.jpeg"],
        "urls": {"get": "https://api.invalid/api/v3/predictions/x/result"},
        "has_nsfw_contents": [False],
        "status": "completed",
        "created_at": "2025-05-19T06:09:15.948268264Z",
        "error": "",
        "timings": {"inference": 6710},
        "executionTime": 6710,
    }
    data.update(changes)
    return {"code": 200, "message": "success", "data": data}


def kinds(changes: list[Any]) -> list[tuple[str, str, bool]]:
    return [(c.kind, c.location, c.breaking) for c in changes]


def test_a_documented_answer_has_no_findings(catalog: Catalog) -> None:
    schema = catalog.endpoints[T2I].result_schema
    assert check_success(json.dumps(result_body()).encode(), schema) == []
    # data.input is free-form: whatever the client sent comes back without being called "extra".
    assert compare(result_body(input={"prompt": "x", "anything": [1, {"deep": True}]}), schema) == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"seed": 42}, [("extra-field", "data.seed", False)]),
        (
            {"urls": {"get": "https://x.invalid/r", "stream": "https://x.invalid/s"}},
            [("extra-field", "data.urls.stream", False)],
        ),
        ({"status": "queued", "outputs": []}, [("new-status-value", "data.status", True)]),
        ({"timings": {"inference": "6710"}}, [("type-changed", "data.timings.inference", True)]),
        ({"has_nsfw_contents": [0]}, [("type-changed", "data.has_nsfw_contents[]", True)]),
        ({"id": "pred_abc123"}, [("format-changed", "data.id", False)]),
        ({"status": "processing"}, [("constraint-violated", "data.outputs", False)]),
    ],
)
def test_each_difference_is_classified(
    catalog: Catalog, changes: dict[str, Any], expected: list[tuple[str, str, bool]]
) -> None:
    found = check_success(json.dumps(result_body(**changes)).encode(), catalog.endpoints[T2I].result_schema)
    assert kinds(found) == expected


def test_a_missing_field_and_a_renamed_one_are_told_apart(catalog: Catalog) -> None:
    body = result_body()
    body["data"]["output"] = body["data"].pop("outputs")
    del body["data"]["created_at"]
    body["data"]["createdAt"] = 1758791568  # similar name, but an integer where a string was: not a rename

    found = compare(body, catalog.endpoints[T2I].result_schema)

    assert kinds(found) == [
        ("renamed-field", "data.outputs", True),
        ("missing-field", "data.created_at", True),
        ("extra-field", "data.createdAt", False),
    ]
    assert (found[0].old, found[0].new) == ("data.outputs", "data.output")


def test_the_envelope_code_is_a_constant(catalog: Catalog) -> None:
    found = compare({**result_body(), "code": 0}, catalog.endpoints[T2I].result_schema)
    assert kinds(found) == [("value-changed", "code", True)]


def test_answers_that_are_not_json_or_not_200(catalog: Catalog) -> None:
    assert kinds(check_success(b"<html>", ENVELOPE_SCHEMA)) == [("not-json", "(body)", True)]
    found = check_success(
        json.dumps({"code": 200, "message": "ok", "data": {}}).encode(), ENVELOPE_SCHEMA, http_status=201
    )
    assert kinds(found) == [("status-changed", "(HTTP status)", True)]


def test_error_bodies(catalog: Catalog) -> None:
    schema = catalog.error_schema
    assert check_error(b'{"code": 401, "message": "Unauthorized"}', schema, http_status=401) == []
    assert (
        check_error(b'{"code": 400, "message": "bad", "error_code": "x", "errors": []}', schema, http_status=400) == []
    )
    (shape,) = check_error(b'{"error": "webhook callback does not support base64 output"}', schema, http_status=400)
    assert (shape.kind, shape.breaking, shape.new) == ("error-shape-changed", True, ["error"])
    assert "missing code, message; it carries error" in shape.detail
    (text,) = check_error(b"upstream connect error", schema, http_status=503)
    assert text.kind == "error-shape-changed" and "not JSON" in text.detail
    assert kinds(check_error(b'{"code": 400, "message": "x", "trace": "t"}', schema, http_status=400)) == [
        ("extra-field", "trace", False)
    ]


def test_the_summary_is_one_header_safe_line(catalog: Catalog) -> None:
    body = result_body(**{"schön": 1})
    body["data"]["output"] = body["data"].pop("outputs")
    line = summary(compare(body, catalog.endpoints[T2I].result_schema))
    assert line == "2 findings (1 breaking): renamed-field data.outputs -> data.output; extra-field data.sch\\xf6n"
    line.encode("latin-1")
    assert len(summary(compare(body, catalog.endpoints[T2I].result_schema) * 50, limit=100)) == 100
