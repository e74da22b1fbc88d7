"""One OpenAPI 3.1 document assembled from the generated JSON Schemas (3.1 speaks JSON Schema 2020-12)."""

from __future__ import annotations

import re
from typing import Any

from mock_server.contract.controlschemas import rewrite_refs

Json = dict[str, Any]


def _component(schema: Json) -> Json:
    # $id/$schema would re-base $refs inside the OpenAPI document; components are addressed by name instead.
    return {k: v for k, v in schema.items() if k not in ("$id", "$schema")}


def _name(model: str, suffix: str) -> str:
    words = model.replace("/", "-").replace("_", "-").split("-")
    return "".join(w[:1].upper() + w[1:] for w in words if w) + suffix


def _error_responses(*codes: int) -> Json:
    reasons = {400: "Invalid request", 401: "Missing or invalid API key", 404: "Not found",
               405: "Method not allowed", 413: "Payload too large", 429: "Rate limited"}
    return {
        str(c): {"description": reasons[c],
                 "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        for c in codes
    }


def control_component(stem: str) -> str:
    return "Control" + "".join(w[:1].upper() + w[1:] for w in stem.split("-"))


def control_paths(control: dict[str, Json]) -> tuple[Json, Json]:
    """The ``/_mock/`` operations that take a body, from the control schemas (``schemas/control/``): their paths,
    and every control schema as a component (``$ref``s rewritten to ``#/components/schemas/Control...``)."""
    def pointer(stem: str) -> str:
        return f"#/components/schemas/{control_component(stem)}"

    components: Json = {control_component(stem): _component(rewrite_refs(schema, stem, pointer))
                        for stem, schema in sorted(control.items())}
    components["ControlResponse"] = {
        "type": "object",
        "description": "What a control operation did, in the API's envelope.",
        "properties": {"code": {"const": 200}, "message": {"type": "string"}, "data": {}},
        "required": ["code", "message", "data"],
    }
    paths: Json = {}
    for stem, schema in sorted(control.items()):
        operation = schema.get("x-operation")
        if not operation:
            continue  # a shape other bodies use (the outcome), not a body of its own
        parameters = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                      for name in re.findall(r"{(\w+)}", operation["path"])]
        paths[operation["path"]] = {operation["method"].lower(): {
            "operationId": "mock_" + operation["name"],
            "summary": schema["title"],
            "description": schema["description"],
            "tags": ["mock control"],
            **({"parameters": parameters} if parameters else {}),
            "requestBody": {"required": not parameters and bool(schema.get("required")),
                            "content": {"application/json": {"schema": {"$ref": pointer(stem)}}}},
            "responses": {
                "200": {"description": "Done",
                        "content": {"application/json": {"schema": {
                            "$ref": "#/components/schemas/ControlResponse"}}}},
                **_error_responses(400, 404, 413),
            },
        }}
    return paths, components


def openapi_document(files: dict[str, Json], index: list[Json], control: dict[str, Json] | None = None) -> Json:
    schemas: Json = {"Error": _component(files["error.json"]),
                     "ResultResponse": _component(files["result-response.json"])}
    paths: Json = {}
    for entry in index:
        model = entry["model"]
        req, sub = _name(model, "Request"), _name(model, "SubmitResponse")
        schemas[req] = _component(files[entry["request"]])
        schemas[sub] = _component(files[entry["submit_response"]])
        paths[f"/api/v3/{model}"] = {
            "post": {
                "operationId": "submit_" + model.replace("/", "_").replace("-", "_"),
                "summary": f"Submit a {entry['kind']} prediction to {model}",
                "tags": ["predictions"],
                "parameters": [{
                    "name": "webhook", "in": "query", "required": False,
                    "description": "URL that receives the finished prediction.",
                    "schema": {"type": "string", "format": "uri"},
                }],
                "requestBody": {"required": True,
                                "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{req}"}}}},
                "responses": {
                    "200": {"description": "Prediction accepted (or finished, in sync mode)",
                            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{sub}"}}}},
                    **_error_responses(400, 401, 404, 429),
                },
            }
        }
    result_op = {
        "summary": "Current state of a prediction",
        "tags": ["predictions"],
        "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
        "responses": {
            "200": {"description": "The prediction",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ResultResponse"}}}},
            **_error_responses(401, 404),
        },
    }
    paths["/api/v3/predictions/{id}/result"] = {"get": {**result_op, "operationId": "get_prediction_result"}}
    paths["/api/v3/predictions/{id}"] = {"get": {**result_op, "operationId": "get_prediction"}}
    if control:
        control_ops, control_schemas = control_paths(control)
        paths.update(control_ops)
        schemas.update(control_schemas)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "WaveSpeedAI FLUX.1 Kontext API (as modelled by wavespeed-mock)",
            "version": "v3",
            "description": "Generated from the documented parameter tables; see x-provenance on each property.",
        },
        "servers": [{"url": "https://api.wavespeed.ai"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {"schemas": schemas,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
