"""Request body size limit, enforced before any route buffers a body (by the front door, http/front.py).

A declared ``Content-Length`` over the limit is answered 413 without reading a byte of the body; a body without a
length (chunked) is counted as the route reads it, and the read that crosses the limit raises
:class:`PayloadTooLarge`, which the app's error handler renders in the envelope. Either way no more than the limit
(plus one chunk) is ever held in memory.

The upload routes are exempt: they stream to their own, larger ``upload_max_bytes`` limit (http/uploads.py).
"""

from __future__ import annotations

from starlette.types import Message, Receive

from mock_server.contract.errors import JsonResponse, PayloadTooLarge

# Paths whose handlers enforce Settings.upload_max_bytes themselves while streaming (multipart and presigned PUT).
UPLOAD_PATHS = ("/api/v3/media/upload/binary", "/media/upload-slots/")


def upload_path(path: str) -> bool:
    return path == UPLOAD_PATHS[0] or path.startswith(UPLOAD_PATHS[1])


def too_large(declared: int, max_bytes: int) -> JsonResponse:
    """The 413 for a declared length over the limit."""
    error = PayloadTooLarge(f"Request body is {declared} bytes; the limit is {max_bytes} bytes")
    # Connection: close — the unread body is still on the wire; the server must not parse it as the next request,
    # and a client still sending learns from the close that it should stop.
    return JsonResponse(error.body(), status_code=error.status_code, headers={"Connection": "close"})


class CountingReceive:
    """``receive`` for a body without a declared length: raises once the chunks read pass ``max_bytes``. (With a
    declared length the HTTP parser delivers exactly that many bytes, no more: nothing to count.)"""

    __slots__ = ("receive", "max_bytes", "received")

    def __init__(self, receive: Receive, max_bytes: int) -> None:
        self.receive = receive
        self.max_bytes = max_bytes
        self.received = 0

    async def __call__(self) -> Message:
        message = await self.receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.max_bytes:
                raise PayloadTooLarge(
                    f"Request body exceeds the limit of {self.max_bytes} bytes", headers={"Connection": "close"}
                )
        return message
