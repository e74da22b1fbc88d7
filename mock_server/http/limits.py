"""Request body size limit, enforced before any route buffers a body.

Pure ASGI (no BaseHTTPMiddleware): a declared ``Content-Length`` over the limit is answered 413 without reading a
byte of the body; a body without a length (chunked) is counted as the route reads it, and the read that crosses
the limit raises :class:`PayloadTooLarge`, which the app's error handler renders in the envelope. Either way no
more than the limit (plus one chunk) is ever held in memory.

The upload routes are exempt: they stream to their own, larger ``upload_max_bytes`` limit (http/uploads.py).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mock_server.contract.errors import JsonResponse, PayloadTooLarge

# Paths whose handlers enforce Settings.upload_max_bytes themselves while streaming (multipart and presigned PUT).
UPLOAD_PATHS = ("/api/v3/media/upload/binary", "/media/upload-slots/")


def upload_path(path: str) -> bool:
    return path == UPLOAD_PATHS[0] or path.startswith(UPLOAD_PATHS[1])


class BodyLimitMiddleware:
    """413 for request bodies over ``max_bytes`` on every route except the uploads."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or upload_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        declared = declared_length(scope)
        if declared is not None and declared > self.max_bytes:
            error = PayloadTooLarge(f"Request body is {declared} bytes; the limit is {self.max_bytes} bytes")
            # Connection: close — the unread body is still on the wire; the server must not parse it as the next
            # request, and a client still sending learns from the close that it should stop.
            response = JsonResponse(error.body(), status_code=error.status_code, headers={"Connection": "close"})
            await response(scope, receive, send)
            return
        if declared is not None:
            # The HTTP parser delivers exactly the declared length, no more: nothing left to count.
            await self.app(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise PayloadTooLarge(
                        f"Request body exceeds the limit of {self.max_bytes} bytes", headers={"Connection": "close"}
                    )
            return message

        await self.app(scope, counting_receive, send)


def declared_length(scope: Scope) -> int | None:
    """The request's ``Content-Length`` (None: not declared)."""
    for name, value in scope.get("headers", []):
        if name.lower() == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None  # the server already refuses a malformed length
    return None
