"""Media uploads the way the official clients send them, stored content-addressed as store blobs.

Two flows:
- ticket (Python/JS/Java SDKs): ``POST /api/v3/media/uploads`` ``{filename, size, content_type?}`` answers a
  ``download_url`` plus a PUT instruction; the raw bytes then go to that URL with no Authorization (the slot
  token in the URL authorises it, like an object store's presigned URL).
- multipart (Go SDK, desktop app, older clients): ``POST /api/v3/media/upload/binary`` with the form field ``file``.

Downloads are public like CDN links: ``GET /media/uploads/{key}/{filename}``.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
import secrets
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import quote

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mock_server.contract.errors import BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge
from mock_server.http.headers import download_headers
from mock_server.http.routes import authenticate, base_url, envelope, read_json
from mock_server.http.state import state_of
from mock_server.model.backend import Backend, Blob
from mock_server.model.store import Record

SLOT_SECONDS = 3600.0  # presigned object-store URLs typically live an hour
FORM_OVERHEAD = 64 * 1024  # multipart framing allowed on top of the file before the body counts as too large
OCTET_STREAM = "application/octet-stream"
# ASCII only and matched whole: the type is echoed in a Content-Type header, which must stay one clean line.
_MIME = re.compile(r"[\w.+-]+/[\w.+-]+", re.ASCII)
_MAGIC = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF8", "image/gif"))


@dataclass(frozen=True)
class Stored:
    """An upload once its bytes are kept: what the API answers about it."""

    key: str  # the id in the download path: the content hash, or the ticket's slot token
    filename: str
    mime: str
    size: int

    @property
    def kind(self) -> str:
        major = self.mime.partition("/")[0]
        return major if major in ("image", "video", "audio") else "file"

    def path(self) -> str:
        return f"/media/uploads/{self.key}/{quote(self.filename, safe='')}"


@dataclass
class Slot:
    """An upload ticket waiting for its PUT."""

    token: str
    tenant: str
    filename: str
    size: int
    mime: str
    expires_at: float
    spent: bool = False
    blob: str | None = None  # the content hash once the PUT stored the bytes


class Uploads:
    """Upload tickets (store kind ``slot``) and stored uploads (kind ``upload``); the bytes are store blobs."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.store = backend.store

    @property
    def max_bytes(self) -> int:
        return self.backend.settings.upload_max_bytes

    def open_slot(self, tenant: str, filename: str, size: int, mime: str) -> Slot:
        if size > self.max_bytes:
            raise PayloadTooLarge(f"File is {size} bytes; the upload limit is {self.max_bytes} bytes")
        slot = Slot(secrets.token_urlsafe(24), tenant, filename, size, mime, self.backend.clock.now() + SLOT_SECONDS)
        # The record outlives the PUT window: after the PUT, its token is the upload's download key.
        self.store.put("slot", slot.token, asdict(slot), tenant=tenant)
        return slot

    def slot(self, token: str) -> Slot:
        """The open slot for a PUT: 404 when unknown or expired, 409 when already used."""
        found = self.store.get("slot", token)
        slot = Slot(**found) if found else None
        if slot is None or (not slot.spent and slot.expires_at < self.backend.clock.now()):
            raise NotFound("Upload URL not found or expired; request a new one from /api/v3/media/uploads")
        if slot.spent:
            raise Conflict("This upload URL has already been used; request a new one from /api/v3/media/uploads")
        return slot

    def fill(self, token: str, data: bytes) -> Stored:
        """Store a PUT's bytes under its slot; the slot is spent only by a successful PUT."""
        slot = self.slot(token)
        if len(data) != slot.size:
            raise BadRequest(f"Upload body is {len(data)} bytes but the ticket declared size {slot.size}")
        key = hashlib.sha256(data).hexdigest()
        won: list[bool] = []

        def spend(record: Record) -> Record | None:
            won.clear()
            if record["spent"]:
                return None
            won.append(True)
            # The ticket named its download URL before the bytes (and so their hash) existed.
            return {**record, "spent": True, "blob": key}

        self.store.update("slot", token, spend)
        if not won:  # a concurrent PUT to the same slot won
            raise Conflict("This upload URL has already been used; request a new one from /api/v3/media/uploads")
        self.store.put_blob(key, slot.mime, data)
        return self._remember(slot.tenant, Stored(token, slot.filename, slot.mime, slot.size))

    def store_bytes(self, tenant: str, data: bytes, filename: str, mime: str) -> Stored:
        key = hashlib.sha256(data).hexdigest()
        self.store.put_blob(key, mime, data)
        return self._remember(tenant, Stored(key, filename, mime, len(data)))

    def blob(self, key: str) -> Blob | None:
        return self.backend.upload_blob(key)

    def content_key(self, key: str) -> str:
        found = self.store.get("slot", key)
        return str(found["blob"]) if found and found.get("blob") else key

    def uploads(self, tenant: str | None = None) -> list[Stored]:
        return [Stored(**r) for r in self.store.records("upload", tenant)]

    def _remember(self, tenant: str, stored: Stored) -> Stored:
        self.store.put("upload", f"{stored.key}/{stored.filename}", asdict(stored), tenant=tenant)
        return stored


def uploads_of(request: Request) -> Uploads:
    return state_of(request).uploads


def clean_filename(name: str) -> str:
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip()[:255]
    # "." and ".." would become dot-segments of the download URL, which clients resolve away before requesting it.
    return "" if base in (".", "..") else base


def media_type(filename: str, declared: str | None, data: bytes = b"") -> str:
    """The declared type unless it says nothing, else the extension's, else the bytes' magic number."""
    main = (declared or "").split(";")[0].strip()
    if main.lower() != OCTET_STREAM and _MIME.fullmatch(main):
        return main
    guessed = mimetypes.guess_type(filename)[0]
    if guessed:
        return guessed
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return OCTET_STREAM


def _ticket_fields(body: Any) -> tuple[str, int, str | None]:
    if not isinstance(body, dict):
        raise BadRequest("Upload ticket must be a JSON object {filename, size, content_type?}")
    problems: list[dict[str, str]] = []
    filename = body.get("filename")
    if not isinstance(filename, str) or not clean_filename(filename):
        problems.append({"path": "filename", "message": "required: a non-empty file name"})
    size = body.get("size")
    if isinstance(size, float) and size.is_integer():
        size = int(size)
    if isinstance(size, bool) or not isinstance(size, int):
        problems.append({"path": "size", "message": "required: the file size in bytes, an integer"})
    elif size < 1:
        problems.append({"path": "size", "message": "must be at least 1 byte"})
    content_type = body.get("content_type")
    if content_type is not None and (not isinstance(content_type, str) or not _MIME.fullmatch(content_type)):
        problems.append({"path": "content_type", "message": "must be a media type such as image/png"})
    if problems:
        listed = "; ".join(f"{p['path']}: {p['message']}" for p in problems)
        raise BadRequest(f"Invalid upload ticket: {listed}", errors=problems)
    assert isinstance(filename, str) and isinstance(size, int)
    return clean_filename(filename), size, content_type


async def create_ticket(request: Request) -> Response:
    tenant = authenticate(request)
    filename, size, content_type = _ticket_fields(await read_json(request))
    uploads = uploads_of(request)
    slot = uploads.open_slot(tenant, filename, size, media_type(filename, content_type))
    base = base_url(request)
    planned = Stored(slot.token, filename, slot.mime, size)
    return envelope(
        {
            "download_url": base + planned.path(),
            "upload": {
                "method": "PUT",
                "url": f"{base}/media/upload-slots/{slot.token}",
                "headers": {"Content-Type": slot.mime},
            },
            "type": planned.kind,
            "filename": filename,
            "size": size,
        }
    )


async def put_upload(request: Request) -> Response:
    if "authorization" in request.headers:
        # Object stores reject a presigned URL that also carries an Authorization header; a client that sends
        # one is leaking its API key to the storage host.
        raise BadRequest("The upload URL is pre-authorised: send it without an Authorization header")
    uploads = uploads_of(request)
    token = request.path_params["token"]
    slot = uploads.slot(token)
    sent_type = request.headers.get("content-type")
    if sent_type is not None and sent_type.split(";")[0].strip().lower() != slot.mime.lower():
        raise Forbidden(
            f"Content-Type {sent_type!r} does not match the ticket's {slot.mime!r} (send exactly upload.headers)"
        )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > uploads.max_bytes:
        raise PayloadTooLarge(f"Body is {declared} bytes; the upload limit is {uploads.max_bytes} bytes")
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > uploads.max_bytes:
            raise PayloadTooLarge(f"Body exceeds the upload limit of {uploads.max_bytes} bytes")
    stored = uploads.fill(token, bytes(data))
    return Response(status_code=200, headers={"ETag": f'"{uploads.content_key(stored.key)[:32]}"'})


async def _capped(stream: AsyncIterator[bytes], cap: int) -> AsyncGenerator[bytes, None]:
    total = 0
    async for chunk in stream:
        total += len(chunk)
        if total > cap:
            raise PayloadTooLarge(f"Body exceeds the upload limit of {cap - FORM_OVERHEAD} bytes")
        yield chunk


async def upload_binary(request: Request) -> Response:
    tenant = authenticate(request)
    uploads = uploads_of(request)
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        raise BadRequest(
            "Send multipart/form-data with the file in the field 'file'",
            errors=[{"path": "file", "message": "required"}],
        )
    cap = uploads.max_bytes + FORM_OVERHEAD
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise PayloadTooLarge(f"Body is {declared} bytes; the upload limit is {uploads.max_bytes} bytes")
    parser = MultiPartParser(request.headers, _capped(request.stream(), cap), max_files=1, max_fields=16)
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise BadRequest(f"Invalid multipart body: {exc.message}") from None
    try:
        part = form.get("file")
        if not isinstance(part, UploadFile):
            problem = "must be a file part (with a filename)" if part is not None else "required"
            raise BadRequest(f"Form field 'file' {problem}", errors=[{"path": "file", "message": problem}])
        data = await part.read()
    finally:
        await form.close()
    if len(data) > uploads.max_bytes:
        raise PayloadTooLarge(f"File is {len(data)} bytes; the upload limit is {uploads.max_bytes} bytes")
    if not data:
        raise BadRequest("Form field 'file' is empty", errors=[{"path": "file", "message": "must not be empty"}])
    filename = clean_filename(part.filename or "") or "upload"
    stored = uploads.store_bytes(tenant, data, filename, media_type(filename, part.content_type, data))
    return envelope(
        {
            "type": stored.kind,
            "download_url": base_url(request) + stored.path(),
            "filename": stored.filename,
            "size": stored.size,
        }
    )


async def download(request: Request) -> Response:
    blob = uploads_of(request).blob(request.path_params["key"])
    if blob is None:
        raise NotFound(f"No uploaded file at {request.url.path}")
    return Response(
        blob.data,
        media_type=blob.mime,
        headers={
            "Cache-Control": "public, max-age=604800",
            **download_headers(blob.mime, request.path_params["filename"]),
        },
    )


routes: list[BaseRoute] = [
    Route("/api/v3/media/uploads", create_ticket, methods=["POST"]),
    Route("/api/v3/media/upload/binary", upload_binary, methods=["POST"]),
    Route("/media/upload-slots/{token}", put_upload, methods=["PUT"]),
    Route("/media/uploads/{key}/{filename}", download, methods=["GET"]),
]
