"""The OpenAPI document describes every route the fake serves, with the answers it really gives."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from starlette.routing import Route

from mock_server.contract.apischemas import api_dir
from mock_server.contract.catalog import Catalog
from mock_server.http.control import OPERATIONS, PREFIX
from mock_server.testing.fixtures_data import image_path
from tests.conftest import T2I, Live

CATCH_ALL = "/{path:path}"  # the fallback: answers 404/405 envelopes for what no route serves


def openapi_path(route_path: str) -> str:
    """A Starlette route path as OpenAPI writes it: ``{model:path}`` → ``{model_path}``."""
    return re.sub(r"\{(\w+):path\}", lambda m: "{" + m.group(1) + "_path}", route_path)


def test_every_route_of_the_app_is_in_the_document(live: Live) -> None:
    document = live.http.get("/openapi.json").json()
    served: set[tuple[str, str]] = set()
    for route in live.running.app.routes:
        assert isinstance(route, Route)
        if route.path == CATCH_ALL:
            continue
        for method in route.methods or ():
            if method != "HEAD":  # Starlette adds HEAD to every GET
                served.add((openapi_path(route.path), method.lower()))

    described = {(path, method) for path, operations in document["paths"].items() for method in operations}
    assert served - described == set()
    assert described - served - {(f"/api/v3/{model}", "post") for model in live.backend.catalog.endpoints} == set()


def test_the_control_listing_is_the_operations_table() -> None:
    listing = json.loads((api_dir() / "control-operations.json").read_text())

    assert listing["prefix"] == PREFIX
    assert [(o["name"], o["method"], o["path"]) for o in listing["operations"]] == [
        (o.name, o.method, o.path) for o in OPERATIONS
    ]


class Document:
    """Validates an answer against the response schema the document gives its operation and status."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document

    def check(self, path: str, method: str, response: Any) -> None:
        operation = self.document["paths"][path][method]
        described = operation["responses"][str(response.status_code)]
        schema = described["content"]["application/json"]["schema"]
        validator = Draft202012Validator({**schema, "components": self.document["components"]})
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(response.json())]
        assert errors == [], f"{method.upper()} {path} {response.status_code}"


@pytest.fixture
def document(live: Live) -> Document:
    return Document(live.http.get("/openapi.json").json())


def test_live_answers_validate_against_the_document(live: Live, document: Document) -> None:
    http = live.http
    submitted = live.submit(T2I, {"prompt": "x"})
    prediction_id = submitted.json()["data"]["id"]
    generic = live.submit("wavespeed-ai/flux-dev", {"prompt": "x"})
    picture = image_path("target-96x96.jpg").read_bytes()
    checks: list[tuple[str, str, Any]] = [
        (f"/api/v3/{T2I}", "post", submitted),
        (f"/api/v3/{T2I}", "post", live.submit(T2I, {"prompt": 1})),
        ("/api/v3/{model_path}", "post", generic),
        ("/api/v3/predictions/{id}/result", "get", http.get(f"/api/v3/predictions/{prediction_id}/result")),
        ("/api/v3/predictions/{id}", "get", http.get(f"/api/v3/predictions/{prediction_id}")),
        ("/api/v2/predictions/{id}/result", "get", http.get(f"/api/v2/predictions/{prediction_id}/result")),
        ("/api/v3/predictions/{id}/result", "get", http.get("/api/v3/predictions/" + "0" * 32 + "/result")),
        ("/api/v3/predictions", "post", http.post("/api/v3/predictions", json={"include_inputs": True})),
        ("/api/v3/predictions", "post", http.post("/api/v3/predictions", json={"page_size": 0})),
        (
            "/api/v3/media/uploads",
            "post",
            http.post("/api/v3/media/uploads", json={"filename": "a.jpg", "size": len(picture)}),
        ),
        (
            "/api/v3/media/upload/binary",
            "post",
            http.post("/api/v3/media/upload/binary", files={"file": ("a.jpg", picture, "image/jpeg")}),
        ),
        (
            "/api/v2/media/upload/binary",
            "post",
            http.post("/api/v2/media/upload/binary", files={"file": ("a.jpg", picture, "image/jpeg")}),
        ),
        ("/api/v3/balance", "get", http.get("/api/v3/balance")),
        ("/api/v3/account/balance", "get", http.get("/api/v3/account/balance")),
        ("/api/v3/models", "get", http.get("/api/v3/models")),
        ("/api/v3/webhook/secret", "get", http.get("/api/v3/webhook/secret")),
        ("/api/v3/model/price", "post", http.post("/api/v3/model/price", json={"model_id": T2I})),
        ("/api/v3/model/pricing", "post", http.post("/api/v3/model/pricing", json={"model_id": T2I})),
        ("/api/v3/billings/search", "post", http.post("/api/v3/billings/search", json={})),
        ("/api/v3/user/usage_stats", "post", http.post("/api/v3/user/usage_stats", json={})),
        ("/_mock/generic", "get", http.get("/_mock/generic")),
        ("/_mock/predictions/{prediction_id}", "get", http.get(f"/_mock/predictions/{prediction_id}")),
        ("/api/v3/predictions/delete", "post", http.post("/api/v3/predictions/delete", json={"ids": []})),
        ("/api/v3/predictions/{id}", "delete", http.delete(f"/api/v3/predictions/{prediction_id}")),
        ("/api/v3/predictions/{id}", "delete", http.delete(f"/api/v3/predictions/{prediction_id}")),
    ]
    for path, method, response in checks:
        document.check(path, method, response)
    assert [r.status_code for _, _, r in checks[-2:]] == [200, 404]


def test_the_committed_document_is_what_the_fake_serves(live: Live, catalog: Catalog) -> None:
    committed = json.loads((api_dir().parent / "openapi.json").read_text())

    assert live.http.get("/openapi.json").json() == committed == catalog.openapi
