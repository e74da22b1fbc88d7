"""The hand-written JSON Schemas of the API's own bodies (``schemas/api/``): history, delete, pricing, billing.

Model request schemas are generated from the docs (``schemas build``); these describe the account and prediction
resources instead, and are what the routes validate request bodies with (no hand-written checks). The OpenAPI
document takes its request and response bodies from the same files.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from mock_server.contract.catalog import Violation, _path, _reason
from mock_server.contract.validators import CompiledSchema
from mock_server.resources import data_dir


def api_dir() -> Path:
    return data_dir("schemas") / "api"


@cache
def schema(name: str) -> dict[str, Any]:
    """``schemas/api/<name>.json``, read once."""
    document: dict[str, Any] = json.loads((api_dir() / f"{name}.json").read_text(encoding="utf-8"))
    return document


@cache
def _validator(name: str) -> CompiledSchema:
    return CompiledSchema(schema(name))


def validate(name: str, body: Any) -> list[Violation]:
    """Every violation of ``schemas/api/<name>.json``, in document order."""
    errors = sorted(_validator(name).iter_errors(body), key=lambda e: (list(map(str, e.absolute_path)), e.validator))
    return [Violation(_path(e), _reason(e)) for e in errors]


def with_defaults(name: str, body: dict[str, Any]) -> dict[str, Any]:
    """``body`` with the top-level defaults of the schema filled in (the body is valid already)."""
    properties: dict[str, Any] = schema(name).get("properties", {})
    return {**{k: p["default"] for k, p in properties.items() if "default" in p}, **body}
