"""One OpenAPI 3.1 document assembled from the generated JSON Schemas (3.1 speaks JSON Schema 2020-12).

It describes every route the fake serves: each documented model's submit, the generic submit of any other model
path, results (v3 and the legacy v2 path), history and deletion, uploads, outputs, balance, the model catalog,
pricing, billing and usage, the webhook secret, and the ``/_mock/`` control operations, each with the bodies it
really accepts and answers (``schemas/api/`` holds the hand-written ones). ``tests/test_openapi.py`` checks that no
route of the app is missing and that live answers validate against the document.
"""

from __future__ import annotations

import re
from typing import Any

from jsonschema import Draft202012Validator

from mock_server.contract.controlschemas import rewrite_refs

Json = dict[str, Any]

_REASONS = {
    400: "Invalid request",
    401: "Missing or invalid API key",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    410: "Gone (the output expired)",
    413: "Payload too large",
    415: "Unsupported media type (control requests carry JSON)",
    429: "Rate limited (--rate-limit, or an injected fault)",
    504: "Gateway timeout (an injected fault; on a submit the prediction was created all the same)",
}
_NOT_URL = r"\s\x00-\x1f\x7f\x85"
_PORT = r"(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4})"
_WEBHOOK_URL = (
    rf"^[hH][tT][tT][pP][sS]?://([^{_NOT_URL}/?#@]*@)?[^{_NOT_URL}/?#@:\[\].][^{_NOT_URL}/?#@:\[\]]*"
    rf"(:{_PORT}?)?([/?#][^{_NOT_URL}]*)?(?![\s\S])"
)
_ID = [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}]


def _component(schema: Json) -> Json:
    # $id/$schema would re-base $refs inside the OpenAPI document; components are addressed by name instead.
    return {k: v for k, v in schema.items() if k not in ("$id", "$schema")}


def _name(model: str, suffix: str) -> str:
    words = model.replace("/", "-").replace("_", "-").split("-")
    return "".join(w[:1].upper() + w[1:] for w in words if w) + suffix


def _ref(name: str) -> Json:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(description: str, name: str) -> Json:
    return {"description": description, "content": {"application/json": {"schema": _ref(name)}}}


def _error_responses(*codes: int) -> Json:
    return {str(c): _json(_REASONS[c], "Error") for c in codes}


def control_component(stem: str) -> str:
    return "Control" + "".join(w[:1].upper() + w[1:] for w in stem.split("-"))


def control_paths(control: dict[str, Json]) -> tuple[Json, Json]:
    """The ``/_mock/`` operations that take a body, from the control schemas (``schemas/control/``): their paths,
    and every control schema as a component (``$ref``s rewritten to ``#/components/schemas/Control...``)."""

    def pointer(stem: str) -> str:
        return f"#/components/schemas/{control_component(stem)}"

    components: Json = {
        control_component(stem): _component(rewrite_refs(schema, stem, pointer))
        for stem, schema in sorted(control.items())
    }
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
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in re.findall(r"{(\w+)}", operation["path"])
        ]
        paths[operation["path"]] = {
            operation["method"].lower(): {
                "operationId": "mock_" + operation["name"],
                "summary": schema["title"],
                "description": schema["description"],
                "tags": ["mock control"],
                "security": [],  # the control plane takes no API key
                **({"parameters": parameters} if parameters else {}),
                "requestBody": {
                    "required": not parameters and bool(schema.get("required")),
                    "content": {"application/json": {"schema": {"$ref": pointer(stem)}}},
                },
                "responses": {
                    "200": {
                        "description": "Done",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ControlResponse"}}},
                    },
                    **_error_responses(400, 401, 403, 404, 413, 415),
                },
            }
        }
    return paths, components


def _operation(
    operation_id: str,
    summary: str,
    tag: str,
    ok: Json,
    *errors: int,
    body: str | None = None,
    parameters: list[Json] | None = None,
    security: bool = True,
) -> Json:
    op: Json = {"operationId": operation_id, "summary": summary, "tags": [tag]}
    if parameters:
        op["parameters"] = parameters
    if body is not None:
        # "required" is settled by _body_requirement, once every schema is known.
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(body)}}}
    op["responses"] = {"200": ok, **_error_responses(*errors)}
    if not security:
        op["security"] = []
    return op


def openapi_document(
    files: dict[str, Json],
    index: list[Json],
    control: dict[str, Json] | None = None,
    api: dict[str, Json] | None = None,
) -> Json:
    """The document for the generated ``files`` (``index`` lists the models); with ``api`` (the ``schemas/api/``
    files of the shipped schemas) every other route of the fake too, and with ``control`` (``schemas/control/``) the
    /_mock/ bodies' own schemas."""
    schemas: Json = {
        "Error": _component(files["error.json"]),
        "ResultResponse": _component(files["result-response.json"]),
    }
    paths: Json = {}
    webhook = {
        "name": "webhook",
        "in": "query",
        "required": False,
        "description": "URL that receives the finished prediction.",
        # What outbound.url_problem accepts: an absolute http(s) URL with a host and a valid port, no whitespace or
        # control characters; anything else is a 400. No "format: uri": non-ASCII (IRI) URLs are accepted.
        "schema": {"type": "string", "pattern": _WEBHOOK_URL, "maxLength": 2048},
    }
    for entry in index:
        model = entry["model"]
        req, sub = _name(model, "Request"), _name(model, "SubmitResponse")
        schemas[req] = _component(files[entry["request"]])
        schemas[sub] = _component(files[entry["submit_response"]])
        paths[f"/api/v3/{model}"] = {
            "post": _operation(
                "submit_" + model.replace("/", "_").replace("-", "_"),
                f"Submit a {entry['kind']} prediction to {model}",
                "predictions",
                _json("Prediction accepted (or finished, in sync mode)", sub),
                400,
                401,
                429,
                504,
                body=req,
                parameters=[webhook],
            )
        }
    result = _json("The prediction", "ResultResponse")
    paths["/api/v3/predictions/{id}/result"] = {
        "get": _operation(
            "get_prediction_result", "Current state of a prediction", "predictions", result, 401, 404, parameters=_ID
        )
    }
    paths["/api/v3/predictions/{id}"] = {
        "get": _operation(
            "get_prediction", "Current state of a prediction", "predictions", result, 401, 404, parameters=_ID
        )
    }
    if api:
        _api_paths(paths, schemas, api, webhook)
    if control:
        control_ops, control_schemas = control_paths(control)
        for path, item in control_ops.items():  # the body schemas refine the generic control operations
            paths.setdefault(path, {}).update(item)
        schemas.update(control_schemas)
    _body_requirement(paths, schemas)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "WaveSpeedAI API (as modelled by wavespeed-mock)",
            "version": "v3",
            "description": "Model requests are generated from the documented parameter tables (see x-provenance on "
            "each property); the other bodies are hand-written in schemas/api/.",
        },
        "servers": [{"url": "https://api.wavespeed.ai"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }


def _body_requirement(paths: Json, schemas: Json) -> None:
    """A JSON body is required exactly when ``{}`` is not a valid one: the fake reads an empty body as ``{}``, so
    leaving out a body its schema lets be empty is accepted, and leaving out any other is a 400."""
    for item in paths.values():
        for operation in item.values():
            body = operation.get("requestBody", {})
            schema = body.get("content", {}).get("application/json", {}).get("schema")
            if schema is not None and "$ref" in schema:
                validator = Draft202012Validator({**schema, "components": {"schemas": schemas}})
                body["required"] = not validator.is_valid({})


def _api_paths(paths: Json, schemas: Json, api: dict[str, Json], webhook: Json) -> None:
    for file, schema in api.items():
        if file.endswith((".request.json", ".response.json")):
            schemas[_name(file.removesuffix(".json").replace(".", "-"), "")] = _component(schema)  # ModelPriceRequest
    generic = _operation(
        "submit_any_model",
        "Submit a prediction to a model without a schema (served by the generic model)",
        "predictions",
        _json(
            "Prediction accepted (or finished, in sync mode); header X-WaveSpeed-Mock-Generic: 1, "
            "and X-WaveSpeed-Mock-Near-Miss naming a known id it resembles",
            "ResultResponse",
        ),
        400,
        401,
        404,
        429,
        504,
        body="GenericModelRequest",
        parameters=[
            {
                "name": "model_path",
                "in": "path",
                "required": True,
                "schema": {"type": "string"},
                "description": "owner/model[/variant...], its slashes sent as they are. A 404 (with the "
                "nearest known id) instead under --unknown-models reject.",
            },
            webhook,
        ],
    )
    generic["responses"]["200"]["headers"] = {
        "X-WaveSpeed-Mock-Generic": {"schema": {"const": "1"}},
        "X-WaveSpeed-Mock-Near-Miss": {"schema": {"type": "string"}, "required": False},
    }
    paths["/api/v3/{model_path}"] = {"post": generic}
    paths["/api/v3/predictions/{id}"]["delete"] = _operation(
        "delete_prediction",
        "Delete a prediction (its polls and outputs then answer 404)",
        "predictions",
        _json("Deleted", "PredictionDeletedResponse"),
        401,
        404,
        parameters=_ID,
    )
    paths["/api/v2/predictions/{id}/result"] = {
        "get": _operation(
            "get_prediction_result_v2",
            "Legacy v2 path of the result (same answer as v3)",
            "legacy",
            _json("The prediction", "ResultResponse"),
            401,
            404,
            parameters=_ID,
        )
    }
    paths["/api/v3/predictions"] = {
        "post": _operation(
            "list_predictions",
            "The caller's predictions, newest first, one page",
            "predictions",
            _json("One page", "PredictionsListResponse"),
            400,
            401,
            body="PredictionsListRequest",
        )
    }
    paths["/api/v3/predictions/delete"] = {
        "post": _operation(
            "delete_predictions",
            "Delete predictions by id (unknown or another key's ids are ignored)",
            "predictions",
            _json("How many were deleted", "PredictionsDeleteResponse"),
            400,
            401,
            body="PredictionsDeleteRequest",
        )
    }
    paths["/api/v3/media/uploads"] = {
        "post": _operation(
            "create_upload_ticket",
            "Upload ticket: PUT the bytes to data.upload.url",
            "media",
            _json("Ticket", "UploadTicketResponse"),
            400,
            401,
            413,
            body="UploadTicketRequest",
        )
    }
    paths["/media/upload-slots/{token}"] = {
        "put": {
            "operationId": "put_upload",
            "summary": "The ticket's PUT target (pre-authorised: no Authorization)",
            "tags": ["media"],
            "security": [],
            "parameters": [{"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}],
            "requestBody": {"required": True, "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}},
            "responses": {
                "200": {"description": "Stored (ETag: the content hash)"},
                **_error_responses(400, 403, 404, 409, 413),
            },
        }
    }
    multipart = {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            }
        },
    }
    for version, tag in (("v3", "media"), ("v2", "legacy")):
        upload = _operation(
            f"upload_binary_{version}",
            "Multipart upload (field 'file')",
            tag,
            _json("Stored", "UploadResponse"),
            400,
            401,
            413,
        )
        upload["requestBody"] = multipart
        paths[f"/api/{version}/media/upload/binary"] = {"post": upload}
    for path, operation_id, what in (
        ("/media/uploads/{key}/{filename}", "download_upload", "An uploaded file"),
        ("/media/outputs/{id}/{name}", "download_output", "An output file"),
    ):
        names = [part.strip("{}") for part in path.split("/") if part.startswith("{")]
        responses: Json = {
            "200": {
                "description": f"{what} (public, like a CDN link)",
                "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
            },
            **_error_responses(404),
        }
        if "outputs" in path:
            responses.update(_error_responses(410))
        paths[path] = {
            "get": {
                "operationId": operation_id,
                "summary": what,
                "tags": ["media"],
                "security": [],
                "parameters": [
                    {"name": n, "in": "path", "required": True, "schema": {"type": "string"}} for n in names
                ],
                "responses": responses,
            }
        }
    for path, operation_id, summary, answer in (
        ("/api/v3/balance", "get_balance", "Balance in USD", "BalanceResponse"),
        ("/api/v3/account/balance", "get_account_balance", "Balance with its currency", "AccountBalanceResponse"),
        (
            "/api/v3/models",
            "list_models",
            "Every model with a schema, in the catalog format the CLI, MCP server and desktop app read",
            "ModelsResponse",
        ),
        ("/api/v3/webhook/secret", "get_webhook_secret", "The webhook signing secret", "WebhookSecretResponse"),
    ):
        paths[path] = {"get": _operation(operation_id, summary, "account", _json(summary, answer), 401)}
    for path, operation_id, summary, answer in (
        ("/api/v3/model/price", "get_price", "Price of one run with these inputs", "ModelPriceResponse"),
        ("/api/v3/model/pricing", "get_pricing", "Price of one run (unit_price)", "ModelPricingResponse"),
    ):
        paths[path] = {
            "post": _operation(
                operation_id, summary, "account", _json(summary, answer), 400, 401, 404, body="ModelPriceRequest"
            )
        }
    paths["/api/v3/billings/search"] = {
        "post": _operation(
            "search_billings",
            "Billing records: one per charged prediction",
            "account",
            _json("One page", "BillingsSearchResponse"),
            400,
            401,
            body="BillingsSearchRequest",
        )
    }
    paths["/api/v3/user/usage_stats"] = {
        "post": _operation(
            "usage_stats",
            "Spend and requests per model and per day",
            "account",
            _json("Usage", "UsageStatsResponse"),
            400,
            401,
            body="UsageStatsRequest",
        )
    }
    paths["/openapi.json"] = {
        "get": {
            "operationId": "openapi",
            "summary": "This document",
            "tags": ["meta"],
            "security": [],
            "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {}}}},
        }
    }
    _control_paths(paths, api.get("control-operations.json", {}))


def _control_paths(paths: Json, control: Json) -> None:
    prefix = control.get("prefix", "/_mock")
    for op in control.get("operations", []):
        names = [part.strip("{}") for part in op["path"].split("/") if part.startswith("{")]
        operation: Json = {
            "operationId": f"mock_{op['name']}",
            "summary": op["summary"],
            "tags": ["control"],
            "description": "Control plane of the fake, never part of the real API.",
            "security": [],
            "responses": {
                "200": _json("{code: 200, message: success, data: ...}", "ControlResponse"),
                **_error_responses(400, 401, 403, 404, 415),
            },
        }
        if names:
            operation["parameters"] = [
                {"name": n, "in": "path", "required": True, "schema": {"type": "string"}} for n in names
            ]
        if op["method"] in ("POST", "PUT"):
            operation["requestBody"] = {
                "required": False,
                "content": {"application/json": {"schema": {"type": "object"}}},
            }
        paths.setdefault(prefix + op["path"], {})[op["method"].lower()] = operation
    if control:
        for path, operation_id, summary in (
            (f"{prefix}/ui", "mock_ui", "The inspector page"),
            (f"{prefix}/ui/", "mock_ui_slash", "The inspector page"),
            (f"{prefix}/ui/{{name}}", "mock_ui_asset", "The inspector's assets"),
        ):
            operation = {
                "operationId": operation_id,
                "summary": summary,
                "tags": ["control"],
                "security": [],
                "responses": {"200": {"description": summary, "content": {"text/html": {}}}, **_error_responses(404)},
            }
            if "{name}" in path:
                operation["parameters"] = [
                    {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
                ]
            paths[path] = {"get": operation}
