"""One OpenAPI 3.1 document assembled from the generated JSON Schemas (3.1 speaks JSON Schema 2020-12)."""

from __future__ import annotations

from typing import Any

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


def openapi_document(files: dict[str, Json], index: list[Json]) -> Json:
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
