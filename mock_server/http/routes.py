"""HTTP endpoints of the real API: parse → authenticate → validate → call the backend → envelope."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

import anyio.to_thread
from starlette.datastructures import URL
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from mock_server.contract import generic
from mock_server.contract.errors import (
    ApiError,
    BadRequest,
    JsonResponse,
    MethodNotAllowed,
    NotFound,
    Unauthorized,
    render_api_error,
)
from mock_server.contract.generic import GenericEndpoint
from mock_server.contract.jsonbody import parse_json
from mock_server.contract.tenants import bearer_key, fingerprint
from mock_server.http import outbound
from mock_server.http.journal import PARSED_BODY, ROUTE_NOTE
from mock_server.http.state import state_of_scope
from mock_server.model.backend import Backend, Submission
from mock_server.model.generic import generic_notes

# First path segments under /api/v3/ that are API resources, never model owners.
RESERVED = ("predictions", "media", "balance", "webhook", "model", "models", "account", "billings", "user")
# Marks an answer of a model served generically; a near miss of a known id also names that id.
GENERIC_HEADER = "X-WaveSpeed-Mock-Generic"
NEAR_MISS_HEADER = "X-WaveSpeed-Mock-Near-Miss"
WEBHOOK_BASE64 = "webhook callback does not support base64 output, please use the normal API to use base64 output"


def backend_of(request: Request) -> Backend:
    return state_of_scope(request.scope).backend


def base_url(request: Request) -> str:
    return addressed(request)[0]


def addressed(request: Request) -> tuple[str, str]:
    """The base URL links are built on (``--public-url`` when set) and the host (and port) the client addressed,
    as Starlette reads it: the Host header, else the socket."""
    base, host = _origin(*_origin_key(request.scope))
    public = backend_of(request).settings.public_url
    return (public.rstrip("/") if public else base), host


def _origin_key(scope: Scope) -> tuple[str, str | None, tuple[Any, ...] | None, str]:
    host = _header(scope, b"host")
    server = scope.get("server")
    root = scope.get("app_root_path", scope.get("root_path", ""))
    return scope.get("scheme", "http"), host, tuple(server) if server else None, root


# Every answer carries links built from where the client reached us; a server is reached by a handful of names.
@functools.lru_cache(maxsize=256)
def _origin(scheme: str, host: str | None, server: tuple[Any, ...] | None, root: str) -> tuple[str, str]:
    headers = [] if host is None else [(b"host", host.encode("latin-1"))]
    scope = {"type": "http", "scheme": scheme, "server": server, "headers": headers, "query_string": b""}
    url = URL(scope={**scope, "path": root if root.endswith("/") else root + "/"})
    return str(url).rstrip("/"), url.netloc


def _header(scope: Scope, name: bytes) -> str | None:
    """The first ``name`` header (lower-case), as ``Request.headers`` reads it, without building that mapping: the
    two hot routes read one header or two."""
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None


def authenticate(request: Request) -> str:
    """The tenant: the Bearer key's fingerprint. Missing or malformed → 401; a key outside --api-key → 401."""
    key = bearer_key(_header(request.scope, b"authorization") or "")
    if key is None:
        raise Unauthorized("Unauthorized: send 'Authorization: Bearer <API key>'")
    allowed = backend_of(request).settings.api_keys
    if allowed and key not in allowed:
        raise Unauthorized("Unauthorized: invalid API key")
    return fingerprint(key)  # from here on the key itself is never kept, logged or shown


async def read_body(request: Request) -> bytes:
    """The whole request body, read from the stream once (``read_json`` is its one caller). What
    ``Request.body()`` does, without its async generator: a body is read on every submit."""
    chunks: list[bytes] = []
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def envelope(data: Any, *, headers: dict[str, str] | None = None) -> JsonResponse:
    return JsonResponse({"code": 200, "message": "success", "data": data}, headers=headers)


async def read_json(request: Request) -> Any:
    raw = await read_body(request)
    if not raw.strip():
        return {}
    value = parse_json(raw)  # strict: NaN, lone surrogates, duplicate keys, deep nesting → 400
    request.scope.setdefault("extensions", {})[PARSED_BODY] = (len(raw), value)
    return value


async def submit(request: Request) -> Response:
    model = request.path_params["model"].strip("/")
    if model.split("/", 1)[0] in RESERVED:
        # A resource that other methods serve (/api/v3/account/balance, /api/v3/predictions/{id}: GET, HEAD and
        # DELETE) is a 405 naming them all, as the fallback answers other methods.
        allowed = _allowed_methods(request) or (["GET", "HEAD"] if _is_resource(model) else [])
        if allowed:
            raise MethodNotAllowed(f"POST is not allowed on {request.url.path}", allow=allowed)
        raise NotFound(f"No route for POST {request.url.path}")
    backend = backend_of(request)
    tenant = authenticate(request)
    backend.rate.check(tenant)  # --rate-limit: 429 with Retry-After beyond N submits per window
    # A model without a schema is served by the generic model (or, with --unknown-models reject, a 404).
    endpoint = backend.catalog.get(model) or backend.generic.resolve(model)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise BadRequest("Request body must be a JSON object of model inputs")
    if isinstance(endpoint, GenericEndpoint):
        violations = generic.validate(body)
    else:
        violations = backend.catalog.validate(model, body, strict=backend.settings.unknown_fields == "reject")
    if violations:
        listed = "; ".join(f"{v.path}: {v.message}" for v in violations)
        raise BadRequest(f"Invalid parameters for {model}: {listed}", errors=[v.to_json() for v in violations])
    webhook = request.query_params.get("webhook") if request.scope.get("query_string") else None
    if webhook is not None and (problem := outbound.url_problem(webhook)) is not None:
        raise BadRequest(f"webhook {problem}", errors=[{"path": "webhook", "message": problem}])
    if webhook is not None and endpoint.known(body).get("enable_base64_output"):
        raise BadRequest(WEBHOOK_BASE64, extra={"error": WEBHOOK_BASE64})
    headers: dict[str, str] = {}
    notes: list[str] = []
    if isinstance(endpoint, GenericEndpoint):
        near = backend.generic.near_miss(model)
        notes = [f"served generically: no schema for {model} (a placeholder {endpoint.media} model)"]
        headers[GENERIC_HEADER] = "1"
        if near is not None:
            notes.append(f"near miss: did you mean {near}?")
            headers[NEAR_MISS_HEADER] = near
        request.scope.setdefault("extensions", {})[ROUTE_NOTE] = "; ".join(notes)
        notes += generic_notes(endpoint, body)
    data = await backend.submit(Submission(tenant, endpoint, body, *addressed(request), webhook, notes=tuple(notes)))
    if isinstance(endpoint, GenericEndpoint):
        backend.generic.record(tenant, endpoint, headers.get(NEAR_MISS_HEADER))
    return envelope(data, headers=headers or None)


def _is_resource(model: str) -> bool:
    segments = model.split("/")
    return segments[0] == "predictions" and len(segments) in (2, 3) or segments[0] in ("balance", "models")


async def result(request: Request) -> Response:
    tenant = authenticate(request)
    backend = backend_of(request)
    prediction = backend.poll(tenant, request.path_params["id"])
    return envelope(await backend.view(prediction, base_url(request)))


async def output_file(request: Request) -> Response:
    index, _, ext = request.path_params["name"].partition(".")
    if not index.isdigit():
        raise NotFound(f"No such output {request.path_params['name']!r}")
    # Rendering is CPU work: off the event loop.
    blob = await anyio.to_thread.run_sync(backend_of(request).output, request.path_params["id"], int(index), ext)
    return Response(blob.data, media_type=blob.mime, headers={"Cache-Control": "public, max-age=604800"})


async def openapi(request: Request) -> Response:
    return Response(backend_of(request).catalog.openapi_bytes, media_type="application/json")


async def fallback(request: Request) -> Response:
    path = request.url.path
    model = path.removeprefix("/api/v3/").strip("/")
    if path.startswith("/api/v3/") and backend_of(request).catalog.get(model) is not None:
        raise MethodNotAllowed(f"{request.method} is not allowed on {path}; submit with POST", allow=["POST"])
    # The routes' own methods first: /api/v3/predictions/{id} also serves DELETE, /api/v3/predictions/delete POST.
    allowed = _allowed_methods(request)
    if allowed:
        raise MethodNotAllowed(f"{request.method} is not allowed on {path}", allow=allowed)
    if path.startswith("/api/v3/predictions/") and request.method != "GET":
        raise MethodNotAllowed(f"{request.method} is not allowed on {path}", allow=["GET", "HEAD"])
    raise NotFound(f"No route for {request.method} {path}")


def _allowed_methods(request: Request) -> list[str]:
    """Methods of the routes whose path matches but whose method does not (the catch-alls aside, which match
    every path), so a wrong method on a real resource is a 405 naming the right ones, not a 404. A literal path
    (/api/v3/predictions/delete) shadows a template that also matches it (/api/v3/predictions/{id}): it names a
    resource of its own, not a prediction called "delete"."""
    methods: set[str] = set()
    literal: set[str] = set()
    for route in request.app.routes:
        if isinstance(route, Route) and ":path}" not in route.path and route.methods:
            match, _ = route.matches(request.scope)
            if match is Match.PARTIAL:
                methods |= route.methods
                if "{" not in route.path:
                    literal |= route.methods
    return sorted(literal or methods)


class HotRoutes:
    """What a client calls most, answered without the route table: a submit to a model of the catalog (found by one
    dictionary look-up) and a poll of a prediction (``GET /api/v3/predictions/{id}[/result]``).

    Pure ASGI, inside the front door (http/front.py) and outside Starlette's exception middleware and router:
    every layer a request crosses costs it, and these two are most of what a fake answers. So it renders the API's
    errors itself, with the handler the app registers; anything else still reaches the app's server-error
    handler as a 500, as from any route. Every other request, and other methods on these paths (HEAD, a 405 naming
    the allowed ones), go on to the route table, which serves these paths too.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = self.endpoint(scope) if scope["type"] == "http" else None
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response = await endpoint(request)
        except ApiError as exc:
            response = render_api_error(request, exc)
        await response(scope, receive, send)

    @staticmethod
    def endpoint(scope: Scope) -> Endpoint | None:
        """The endpoint for this request, its path parameters set in the scope; None: not one of the two."""
        path: str = scope["path"]
        if not path.startswith(API_PREFIX):
            return None
        method = scope["method"]
        rest = path[len(API_PREFIX) :]
        if method == "POST":
            if state_of_scope(scope).catalog.get(rest.strip("/")) is not None:
                scope["path_params"] = {"model": rest}
                return submit
        elif method == "GET" and rest.startswith(PREDICTIONS):
            prediction, slash, tail = rest[len(PREDICTIONS) :].partition("/")
            if prediction and (tail == "result" or not slash):
                scope["path_params"] = {"id": prediction}
                return result
        return None


ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
SUBMIT_PATH = "/api/v3/{model:path}"

API_PREFIX = "/api/v3/"
PREDICTIONS = "predictions/"
Endpoint = Callable[[Request], Awaitable[Response]]

# The polls, tried first (nothing before them matches their paths): HotRoutes answers their GETs; HEAD and the
# 405s of other methods come here.
poll_routes = [
    Route("/api/v3/predictions/{id}/result", result, methods=["GET"]),
    Route("/api/v3/predictions/{id}", result, methods=["GET"]),
]
routes = [
    Route("/media/outputs/{id}/{name}", output_file, methods=["GET"]),
    Route("/openapi.json", openapi, methods=["GET"]),
]
# Last: they match every path their prefix starts.
catch_alls = [
    Route(SUBMIT_PATH, submit, methods=["POST"]),
    Route("/{path:path}", fallback, methods=ALL_METHODS),
]
