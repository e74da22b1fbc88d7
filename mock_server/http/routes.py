"""HTTP endpoints of the real API: parse → authenticate → validate → call the backend → envelope."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match, Route

from mock_server.contract.errors import BadRequest, MethodNotAllowed, NotFound, Unauthorized
from mock_server.contract.jsonbody import parse_json
from mock_server.http import outbound
from mock_server.model.backend import Backend, InputImage, wait_sync
from mock_server.model.predictions import Prediction

# First path segments under /api/v3/ that are API resources, never model owners.
RESERVED = ("predictions", "media", "balance", "webhook", "model", "models", "account", "billings", "user")
WEBHOOK_BASE64 = "webhook callback does not support base64 output, please use the normal API to use base64 output"


def backend_of(request: Request) -> Backend:
    backend: Backend = request.app.state.backend
    return backend


def base_url(request: Request) -> str:
    public = backend_of(request).settings.public_url
    return (public or str(request.base_url)).rstrip("/")


def authenticate(request: Request) -> str:
    """The tenant: the Bearer key. Missing or malformed → 401; a key outside --api-key → 401."""
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise Unauthorized("Unauthorized: send 'Authorization: Bearer <API key>'")
    allowed = backend_of(request).settings.api_keys
    if allowed and key not in allowed:
        raise Unauthorized("Unauthorized: invalid API key")
    request.state.tenant = key
    return key


def envelope(data: Any) -> JSONResponse:
    return JSONResponse({"code": 200, "message": "success", "data": data})


async def read_json(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        return {}
    return parse_json(raw)  # strict: NaN, lone surrogates, duplicate keys, deep nesting → 400


async def submit(request: Request) -> Response:
    model = request.path_params["model"].strip("/")
    if model.split("/", 1)[0] in RESERVED:
        if _is_resource(model):
            raise MethodNotAllowed(f"POST is not allowed on {request.url.path}", allow=["GET", "HEAD"])
        raise NotFound(f"No route for POST {request.url.path}")
    backend = backend_of(request)
    endpoint = backend.catalog.get(model)
    tenant = authenticate(request)
    if endpoint is None:
        raise NotFound(f"Model {model!r} not found")
    body = await read_json(request)
    if not isinstance(body, dict):
        raise BadRequest("Request body must be a JSON object of model inputs")
    violations = backend.catalog.validate(model, body, strict=backend.settings.unknown_fields == "reject")
    if violations:
        listed = "; ".join(f"{v.path}: {v.message}" for v in violations)
        raise BadRequest(f"Invalid parameters for {model}: {listed}", errors=[v.to_json() for v in violations])
    params = endpoint.known(body)
    webhook = request.query_params.get("webhook")
    if webhook is not None and (problem := outbound.url_problem(webhook)) is not None:
        raise BadRequest(f"webhook {problem}", errors=[{"path": "webhook", "message": problem}])
    if webhook is not None and params.get("enable_base64_output"):
        raise BadRequest(WEBHOOK_BASE64, extra={"error": WEBHOOK_BASE64})
    source, failure = await _input_image(request, params)
    prediction = backend.submit(tenant, endpoint, body, base_url=base_url(request), webhook=webhook, source=source)
    if failure is not None:
        prediction.outcome = failure
    for on_submit in request.app.state.on_submit:  # e.g. webhook timers (webhooks.py)
        on_submit(prediction)
    if params.get("enable_sync_mode"):
        timed_out = await wait_sync(backend, prediction)
        return envelope(prediction.view(base_url(request), sync_timeout=timed_out))
    return envelope(prediction.view(base_url(request)))


def _is_resource(model: str) -> bool:
    segments = model.split("/")
    return segments[0] == "predictions" and len(segments) in (2, 3) or segments[0] in ("balance", "models")


async def _input_image(request: Request, params: dict[str, Any]) -> tuple[InputImage | None, Any]:
    """The first input picture of an edit; ``params`` is schema-checked, so the types are right."""
    value = params.get("image")
    if not value and params.get("images"):
        value = params["images"][0]
    if not isinstance(value, str) or not value:
        return None, None
    return await backend_of(request).resolve_input(value, request.url.netloc)


async def result(request: Request) -> Response:
    tenant = authenticate(request)
    prediction: Prediction = backend_of(request).get(tenant, request.path_params["id"], poll=True)
    return envelope(prediction.view(base_url(request)))


async def output_file(request: Request) -> Response:
    index, _, ext = request.path_params["name"].partition(".")
    if not index.isdigit():
        raise NotFound(f"No such output {request.path_params['name']!r}")
    blob = backend_of(request).output(request.path_params["id"], int(index), ext)
    return Response(blob.data, media_type=blob.mime, headers={"Cache-Control": "public, max-age=604800"})


async def openapi(request: Request) -> Response:
    return Response(backend_of(request).catalog.openapi_bytes, media_type="application/json")


async def fallback(request: Request) -> Response:
    path = request.url.path
    model = path.removeprefix("/api/v3/").strip("/")
    if path.startswith("/api/v3/") and backend_of(request).catalog.get(model) is not None:
        raise MethodNotAllowed(f"{request.method} is not allowed on {path}; submit with POST", allow=["POST"])
    if path.startswith("/api/v3/predictions/") and request.method != "GET":
        raise MethodNotAllowed(f"{request.method} is not allowed on {path}", allow=["GET", "HEAD"])
    allowed = _allowed_methods(request)
    if allowed:
        raise MethodNotAllowed(f"{request.method} is not allowed on {path}", allow=allowed)
    raise NotFound(f"No route for {request.method} {path}")


def _allowed_methods(request: Request) -> list[str]:
    """Methods of the routes whose path matches but whose method does not (the catch-alls aside, which match
    every path), so a wrong method on a real resource is a 405 naming the right ones, not a 404."""
    methods: set[str] = set()
    for route in request.app.routes:
        if isinstance(route, Route) and ":path}" not in route.path and route.methods:
            match, _ = route.matches(request.scope)
            if match is Match.PARTIAL:
                methods |= route.methods
    return sorted(methods)


ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

routes = [
    Route("/api/v3/predictions/{id}/result", result, methods=["GET"]),
    Route("/api/v3/predictions/{id}", result, methods=["GET"]),
    Route("/media/outputs/{id}/{name}", output_file, methods=["GET"]),
    Route("/openapi.json", openapi, methods=["GET"]),
    Route("/api/v3/{model:path}", submit, methods=["POST"]),
    Route("/{path:path}", fallback, methods=ALL_METHODS),
]
