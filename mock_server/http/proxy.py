"""``wavespeed-mock proxy``: a recording, drift-checking pass-through in front of a WaveSpeed-compatible API.

Every request goes to the upstream as sent (method, path, query, body, headers; Authorization passed through,
never stored or logged) and its answer comes back unchanged (status, headers less the hop-by-hop ones, body
bytes). On the way, every JSON answer of the API is checked against our schemas (``contract.observed``):

| request | checked against |
|---|---|
| ``POST /api/v3/{model}`` (a model we know) | that model's submit-response schema |
| ``POST /api/v3/{model}`` (any other model), any other ``/api/v3/`` 2xx | the ``{code, message, data}`` envelope |
| ``GET /api/v3/predictions/{id}[/result]`` | the result schema of ``data.model`` (the shared one if unknown) |
| any ``/api/v3/`` non-2xx | the error envelope ``schemas/error.json`` |

Each difference is a finding: named in an ``X-WaveSpeed-Mock-Drift`` header on that answer and kept in the
report file (``--report``: one JSON document, rewritten atomically, each finding counted once per endpoint,
model, kind and field). An upstream that cannot be reached or times out gets the client a 502 in the
``{code, message}`` envelope naming the failure, and the failure goes into the report too.

What is deliberately NOT done: links in answers (``urls.get``, outputs, upload URLs) are not rewritten, so
clients that follow them talk to the upstream directly, exactly as they would without the proxy. The upstream
is addressed by its own host name (a real API behind a CDN routes on it), so links point at the upstream.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mock_server.contract.catalog import Catalog, default_catalog
from mock_server.contract.drift import Change
from mock_server.contract.errors import JsonResponse
from mock_server.contract.observed import ENVELOPE_SCHEMA, check_error, check_success, summary
from mock_server.contract.report import PROXY_REPORT
from mock_server.http.recorder import Recorder, credentials, scrub_url
from mock_server.http.server import RunningServer, start_in_thread

DRIFT_HEADER = "X-WaveSpeed-Mock-Drift"
UPSTREAM_ERROR_HEADER = "X-WaveSpeed-Mock-Upstream-Error"
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
# First path segments under /api/v3/ that are API resources, never model owners (as the real API's URL space).
RESERVED = ("predictions", "media", "balance", "webhook", "model", "models", "account", "billings", "user")
DECODABLE = ("gzip", "deflate", "identity")
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
_ID_SEGMENT = re.compile(r"^(?=.*\d)[0-9A-Za-z_-]{16,}$")

logger = logging.getLogger("wavespeed_mock.proxy")


@dataclass(frozen=True)
class ProxyConfig:
    upstream: str
    record_dir: Path | None = None
    report_path: Path | None = None
    placeholders: bool = False
    timeout: float = 600.0  # sync-mode submits may legitimately take minutes (reference §4)
    fetch_outputs: bool = True  # with record_dir: download outputs to measure them at the terminal poll

    def validated(self) -> ProxyConfig:
        if not self.upstream.startswith(("http://", "https://")):
            raise ValueError(f"--upstream must be an http(s) URL, not {self.upstream!r}")
        if self.timeout <= 0:
            raise ValueError("--timeout must be positive")
        return self


# ----------------------------------------------------------------------------------------------- routes


@dataclass(frozen=True)
class RouteInfo:
    """What a request is, as far as checking and recording go."""

    kind: str  # submit | result | upload-ticket | upload-binary | api | other
    label: str  # the endpoint in the report: "submit", "result", "GET /api/v3/balance", ...
    model: str | None = None
    prediction_id: str | None = None


def classify(method: str, path: str) -> RouteInfo:
    if not path.startswith("/api/v3/"):
        return RouteInfo("other", f"{method} {path}")
    rest = path.removeprefix("/api/v3/").strip("/")
    segments = rest.split("/")
    if (
        method in ("GET", "HEAD")
        and segments[0] == "predictions"
        and len(segments) in (2, 3)
        and (len(segments) == 2 or segments[2] == "result")
    ):
        return RouteInfo("result", "result", prediction_id=segments[1])
    if method == "POST" and rest == "media/uploads":
        return RouteInfo("upload-ticket", "upload ticket")
    if method == "POST" and rest == "media/upload/binary":
        return RouteInfo("upload-binary", "upload binary")
    if method == "POST" and segments[0] and segments[0] not in RESERVED:
        return RouteInfo("submit", "submit", model=rest)
    generic = "/".join("{id}" if _ID_SEGMENT.match(s) else s for s in segments)
    return RouteInfo("api", f"{method} /api/v3/{generic}")


def check(route: RouteInfo, method: str, status: int, body: bytes | None, catalog: Catalog) -> list[Change]:
    """The findings for one upstream answer (nothing for non-API paths, HEAD, redirects and 204/304)."""
    if route.kind == "other" or method == "HEAD" or status < 200 or 300 <= status < 400 or status == 204:
        return []
    if body is None:
        return [
            Change(
                "unchecked",
                "(body)",
                "a body this proxy can decode",
                "undecodable Content-Encoding",
                False,
                "the answer could not be decompressed, so it was not checked",
            )
        ]
    if status >= 400:
        return check_error(body, catalog.error_schema, http_status=status)
    schema: dict[str, Any] = ENVELOPE_SCHEMA
    if route.kind == "submit" and route.model is not None:
        endpoint = catalog.get(route.model)
        schema = endpoint.submit_schema if endpoint else ENVELOPE_SCHEMA
    elif route.kind == "result":
        model = _data_field(body, "model")
        endpoint = catalog.get(model) if isinstance(model, str) else None
        schema = endpoint.result_schema if endpoint else catalog.result_schema
    return check_success(body, schema, http_status=status)


def _data_field(body: bytes, name: str) -> Any:
    parsed = _json(body)
    data = parsed.get("data") if isinstance(parsed, dict) else None
    return data.get(name) if isinstance(data, dict) else None


def _json(body: bytes | None) -> Any:
    if body is None:
        return None
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None


# ------------------------------------------------------------------------------------------------- report


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class DriftLog:
    """The findings of one proxy run, each counted once per (endpoint, model, kind, location)."""

    upstream: str
    path: Path | None
    started_at: str = field(default_factory=_now)
    responses_checked: int = 0
    findings: dict[tuple[str, str, str, str], dict[str, Any]] = field(default_factory=dict)

    def add(
        self,
        route: RouteInfo,
        changes: list[Change],
        *,
        method: str,
        path: str,
        http_status: int | None,
        model: str | None = None,
    ) -> None:
        now = _now()
        for change in changes:
            key = (route.label, model or route.model or "", change.kind, change.location)
            entry = self.findings.get(key)
            if entry is None:
                entry = self.findings[key] = {
                    "source": "proxy",
                    "endpoint": route.label,
                    "model": model or route.model,
                    **change.to_json(),
                    "count": 0,
                    "first_seen": now,
                    "last_seen": now,
                    "example": {"method": method, "path": scrub_url(path), "http_status": http_status},
                }
                logger.warning(
                    "drift: %s%s: %s %s: %s",
                    route.label,
                    f" ({entry['model']})" if entry["model"] else "",
                    change.kind,
                    change.location,
                    change.detail,
                )
            entry["count"] += 1
            entry["last_seen"] = now
        if changes:  # clean answers only count; the file is rewritten when there is news (and at shutdown)
            self.write()

    def document(self) -> dict[str, Any]:
        findings = sorted(self.findings.values(), key=lambda f: (not f["breaking"], f["first_seen"]))
        return {
            "report": PROXY_REPORT,
            "version": 1,
            "upstream": scrub_url(self.upstream),
            "started_at": self.started_at,
            "updated_at": _now(),
            "responses_checked": self.responses_checked,
            "breaking": sum(1 for f in findings if f["breaking"]),
            "findings": findings,
        }

    def write(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.document(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp, self.path)


# -------------------------------------------------------------------------------------------------- the app


@dataclass
class ProxyState:
    config: ProxyConfig
    catalog: Catalog
    log: DriftLog
    transport: httpx.AsyncBaseTransport | None = None
    client: httpx.AsyncClient | None = None
    recorder: Recorder = field(init=False)

    def __post_init__(self) -> None:
        config = self.config
        self.recorder = Recorder(
            config.record_dir,
            self.catalog,
            upstream=config.upstream,
            placeholders=config.placeholders,
            fetch=self.fetch if config.fetch_outputs else None,
        )

    def http(self) -> httpx.AsyncClient:
        if self.client is None:
            timeout = httpx.Timeout(self.config.timeout, connect=min(10.0, self.config.timeout))
            # Redirects go back to the client as they came; a proxy that followed them would change the answer.
            self.client = httpx.AsyncClient(timeout=timeout, follow_redirects=False, transport=self.transport)
        return self.client

    async def fetch(self, url: str) -> tuple[bytes, str | None]:
        """An output file, fetched without the client's credentials (output hosts are public CDNs)."""
        # Bounded well below the upstream timeout: the terminal answer waits for this (see _record).
        response = await self.http().get(url, follow_redirects=True, timeout=min(60.0, self.config.timeout))
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code} from {scrub_url(url)}")
        return response.content, response.headers.get("content-type")


def create_proxy_app(
    config: ProxyConfig, *, catalog: Catalog | None = None, transport: httpx.AsyncBaseTransport | None = None
) -> Starlette:
    """A proxy to ``config.upstream``; ``transport`` replaces the network (an ``httpx.ASGITransport`` in tests)."""
    config = config.validated()
    catalog = catalog or default_catalog()
    state = ProxyState(config, catalog, DriftLog(config.upstream, config.report_path), transport=transport)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state.log.write()  # an empty report from the start: "ran, found nothing" differs from "never ran"
        yield
        state.log.write()  # the final count of checked answers
        if state.client is not None:
            await state.client.aclose()
            state.client = None

    app = Starlette(routes=[Route("/{path:path}", forward, methods=ALL_METHODS)], lifespan=lifespan)
    app.state.proxy = state
    return app


async def forward(request: Request) -> Response:
    state: ProxyState = request.app.state.proxy
    method = request.method
    raw_path = request.scope.get("raw_path") or request.url.path.encode()
    path = raw_path.decode("latin-1")
    query_string = request.scope.get("query_string", b"").decode("latin-1")
    target = state.config.upstream.rstrip("/") + path + (f"?{query_string}" if query_string else "")
    body = await request.body()
    query = dict(request.query_params)
    secrets = credentials(request.headers, request.query_params.multi_items())
    route = classify(method, request.url.path)
    started = time.monotonic()
    shown_path = path + (f"?{query_string}" if query_string else "")

    try:
        upstream_request = state.http().build_request(method, target, headers=_request_headers(request), content=body)
        answer = await state.http().send(upstream_request, stream=True)
        try:
            raw = b"".join([chunk async for chunk in answer.aiter_raw()])
        finally:
            await answer.aclose()
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return _upstream_failed(state, route, method, shown_path, exc)

    decoded = _decoded(answer, raw)
    findings = check(route, method, answer.status_code, decoded, state.catalog)
    if route.kind != "other":
        state.log.responses_checked += 1
    model = route.model
    if route.kind == "result" and decoded is not None:
        found = _data_field(decoded, "model")
        model = found if isinstance(found, str) else None
    if findings:
        state.log.add(route, findings, method=method, path=shown_path, http_status=answer.status_code, model=model)

    await _record(state, route, request, body, query, answer, decoded, started, secrets)

    response = Response(content=raw, status_code=answer.status_code)
    response.raw_headers = _response_headers(answer, raw, method)
    if findings:
        response.raw_headers.append((DRIFT_HEADER.lower().encode(), summary(findings).encode("latin-1")))
    return response


async def _record(
    state: ProxyState,
    route: RouteInfo,
    request: Request,
    body: bytes,
    query: dict[str, str],
    answer: httpx.Response,
    decoded: bytes | None,
    started: float,
    secrets: list[str],
) -> None:
    recorder = state.recorder
    if not recorder.enabled:
        return
    parsed = _json(decoded)
    status = answer.status_code
    if route.kind == "submit" and route.model is not None:
        cassette = recorder.submit(
            model=route.model,
            path=request.url.path,
            query=query,
            headers=request.headers,
            body=body,
            started=started,
            http_status=status,
            response=parsed,
            secrets=secrets,
        )
    elif route.kind == "result" and route.prediction_id is not None and request.method == "GET":
        cassette = recorder.result(route.prediction_id, status, parsed, secrets)
    else:
        if route.kind in ("upload-ticket", "upload-binary"):
            flow = "ticket" if route.kind == "upload-ticket" else "binary"
            recorder.upload(flow, status, _json(body) if flow == "ticket" else None, parsed, secrets)
        elif route.kind == "other" and request.method == "GET" and decoded is not None:
            recorder.download(request.url.path, status, decoded, answer.headers.get("content-type"))
        return
    if cassette is not None and cassette.doc["final"] is not None:
        # Before the terminal answer reaches the client: the cassette is complete when its run() returns.
        await recorder.finish(cassette, secrets)


def _upstream_failed(state: ProxyState, route: RouteInfo, method: str, path: str, exc: Exception) -> Response:
    reason = f"{type(exc).__name__}: {str(exc) or 'no detail'}"[:300]
    upstream = scrub_url(state.config.upstream)
    change = Change(
        "upstream-failure",
        "(upstream)",
        upstream,
        type(exc).__name__,
        False,
        f"{method} {scrub_url(path)} could not be forwarded: {reason}",
    )
    state.log.add(route, [change], method=method, path=path, http_status=None)
    return JsonResponse(
        {"code": 502, "message": f"Upstream {upstream} failed: {reason}"},
        status_code=502,
        headers={UPSTREAM_ERROR_HEADER: type(exc).__name__},
    )


def _connection_listed(headers: httpx.Headers | Any) -> set[str]:
    listed = headers.get("connection", "") or ""
    return {part.strip().lower() for part in listed.split(",") if part.strip()}


def _request_headers(request: Request) -> list[tuple[bytes, bytes]]:
    # Host is the upstream's (httpx sets it); Content-Length is recomputed from the body we send.
    drop = HOP_BY_HOP | {"host", "content-length"} | _connection_listed(request.headers)
    headers = [(k, v) for k, v in request.headers.raw if k.decode("latin-1").lower() not in drop]
    return [(k, _decodable(v)) if k.lower() == b"accept-encoding" else (k, v) for k, v in headers]


def _decodable(accept_encoding: bytes) -> bytes:
    """The client's Accept-Encoding narrowed to what this proxy can undo to check the body (a client that accepts
    br as well as gzip is still answered correctly with gzip)."""
    tokens = [t.strip() for t in accept_encoding.decode("latin-1").split(",") if t.strip()]
    kept = [t for t in tokens if t.split(";")[0].strip().lower() in DECODABLE]
    return ", ".join(kept or ["identity"]).encode("latin-1")


def _response_headers(answer: httpx.Response, raw: bytes, method: str) -> list[tuple[bytes, bytes]]:
    drop = HOP_BY_HOP | _connection_listed(answer.headers) | {"content-length"}
    kept = [(k, v) for k, v in answer.headers.raw if k.decode("latin-1").lower() not in drop]
    if method == "HEAD":
        if "content-length" in answer.headers:
            kept.append((b"content-length", answer.headers["content-length"].encode("latin-1")))
    elif answer.status_code not in (204, 304) and answer.status_code >= 200:
        # The body is forwarded as received (still compressed if it was): its length is ours to state.
        kept.append((b"content-length", str(len(raw)).encode()))
    return kept


def _decoded(answer: httpx.Response, raw: bytes) -> bytes | None:
    """The body with its Content-Encoding undone, for checking only (the client gets ``raw``)."""
    if not answer.headers.get("content-encoding"):
        return raw
    try:
        return httpx.Response(answer.status_code, headers=answer.headers, content=raw).content
    except httpx.DecodingError:
        return None


# --------------------------------------------------------------------------------------------------- running


def serve_proxy(config: ProxyConfig, *, host: str = "127.0.0.1", port: int = 8080, log_level: str = "info") -> None:
    """Serve until interrupted."""
    app = create_proxy_app(config)
    # No Server/Date of our own: the upstream's are forwarded.
    uvicorn.run(app, host=host, port=port, log_level=log_level, server_header=False, date_header=False)


@dataclass
class RunningProxy(RunningServer):
    """The proxy serving in a thread: a running server whose app also carries the proxy's report state."""

    @property
    def state(self) -> ProxyState:
        state: ProxyState = self.app.state.proxy
        return state


def run_proxy_in_thread(
    config: ProxyConfig,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    catalog: Catalog | None = None,
    startup_timeout: float = 15.0,
) -> RunningProxy:
    """Start the proxy under uvicorn in a daemon thread on a free loopback port; wait (bounded) until it accepts."""
    app = create_proxy_app(config, catalog=catalog)
    server, thread, bound_port = start_in_thread(
        app, host, port, "wavespeed-mock proxy", startup_timeout, server_header=False, date_header=False
    )
    return RunningProxy(app, server, thread, host, bound_port)
