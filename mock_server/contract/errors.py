"""One error type, rendered in one place, in the envelope every official client parses: {code, message}."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response


class JsonResponse(JSONResponse):
    """Every JSON answer of the fake: compact UTF-8 JSON, as Starlette writes it, but by orjson (the envelope is
    written on every request: Starlette's ``json.dumps`` cost several percent of a submit)."""

    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content)
        except TypeError:
            # An integer beyond 64 bits (inputs are echoed as sent, and none may be rounded), or a string orjson
            # refuses: the standard library writes both, exactly and ASCII-escaped.
            return json.dumps(content, separators=(",", ":")).encode()

    def init_headers(self, headers: Mapping[str, str] | None = None) -> None:
        if headers is None and self.status_code >= 200 and self.status_code not in (204, 304):
            # What Starlette writes for a JSON body without extra headers, without its general-purpose walk: every
            # answer of the two hot routes comes here.
            self.raw_headers = [(b"content-length", b"%d" % len(self.body)), (b"content-type", b"application/json")]
            return
        super().init_headers(headers)


class ApiError(Exception):
    """An HTTP-level error. Subclasses set defaults; instances may override them."""

    status_code = 500
    message = "Internal server error"

    def __init__(
        self,
        message: str | None = None,
        *,
        status_code: int | None = None,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.message = message or self.message
        self.status_code = status_code or self.status_code
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra or {}
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.status_code, "message": self.message}
        if self.errors:
            body["errors"] = self.errors
        body.update(self.extra)
        return body


class BadRequest(ApiError):
    status_code = 400
    message = "Invalid request"


class Unauthorized(ApiError):
    status_code = 401
    message = "Unauthorized"


class Forbidden(ApiError):
    status_code = 403
    message = "Forbidden"


class NotFound(ApiError):
    status_code = 404
    message = "Not found"


class MethodNotAllowed(ApiError):
    """A 405, with the ``Allow`` header RFC 9110 requires: the methods the resource does take."""

    status_code = 405
    message = "Method not allowed"

    def __init__(self, message: str | None = None, *, allow: Iterable[str] = (), **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        if allow:
            self.headers.setdefault("Allow", ", ".join(allow))


class Conflict(ApiError):
    status_code = 409
    message = "Conflict"


class Gone(ApiError):
    status_code = 410
    message = "Gone"


class PayloadTooLarge(ApiError):
    status_code = 413
    message = "Payload too large"


class TooManyRequests(ApiError):
    status_code = 429
    message = "Too many requests"


def render_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return JsonResponse(exc.body(), status_code=exc.status_code, headers=exc.headers)


def render_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        error: ApiError = NotFound(f"No route for {request.method} {request.url.path}")
    elif exc.status_code == 405:
        error = MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}")
    else:
        error = ApiError(str(exc.detail), status_code=exc.status_code)
    return JsonResponse(error.body(), status_code=error.status_code, headers=dict(exc.headers or {}))


def render_unexpected(request: Request, exc: Exception) -> Response:
    # Never a stack trace on the wire: a client sees the envelope, the log sees the traceback.
    return JsonResponse({"code": 500, "message": f"Internal error in the mock: {type(exc).__name__}"}, status_code=500)
