"""Lifecycle cassettes as a contract: how a request is scrubbed and normalized for matching, and the file format.

Two sides use this and must agree byte for byte: the recording proxy (``http/recorder``) writes ``match`` from
what it saw, and a replaying fake (``model/replay``) computes the same key from the request it gets. Keeping the
scrubbing and normalization here, below both, is what makes a recorded cassette match its replayed request.
The format itself is the hand-written ``schemas/formats/cassette.json``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from mock_server.contract.catalog import Catalog
from mock_server.resources import data_dir

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator

FORMAT = "wavespeed-mock cassette"
VERSION = 1
REDACTED = "[REDACTED]"
# Keys whose values are credentials wherever they appear in a recorded object.
SECRET_KEYS = frozenset(
    {
        "authorization",
        "cookie",
        "set-cookie",
        "api_key",
        "apikey",
        "x-api-key",
        "access_token",
        "password",
        "secret",
        "webhook_secret",
    }
)
# Query parameters that make a URL a credential (S3/GCS presigned URLs, CloudFront, Azure SAS, tokens).
SIGNED_PARAM = re.compile(
    r"^(x-amz-.*|x-goog-.*|signature|sig|.*token.*|.*secret.*|.*api[_-]?key.*|key|key-pair-id|policy|credential"
    r"|expires|auth.*|se|sp|sv|sr|st|skoid|sktid)$",
    re.IGNORECASE,
)
_DATA_URI = re.compile(r"^data:([\w.+-]+/[\w.+-]+)?((?:;[\w-]+=[^;,]*)*)(;base64)?,", re.IGNORECASE)
_BASE64 = re.compile(r"^[A-Za-z0-9+/=\s]+$")
_INLINE_LIMIT = 2048  # longer base64-looking strings are inline media, not text
# Transport flags: they change how a prediction travels, not what it is, so a replay matches without them.
TRANSPORT_FLAGS = ("enable_sync_mode", "enable_base64_output")


# ------------------------------------------------------------------------------------------------- scrubbing


def scrub_url(url: str) -> str:
    """``url`` without its query string when any parameter looks like a signature or token (and never with
    user:password in the authority)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    query = parts.query
    if query and any(SIGNED_PARAM.match(name) for name, _ in parse_qsl(query, keep_blank_values=True)):
        query = ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def scrub(value: Any, secrets: Iterable[str] = ()) -> Any:
    """A copy of a JSON value safe to store: credentials redacted, URLs scrubbed, inline media summarised.

    Idempotent, so scrubbing a recorded (already scrubbed) input again changes nothing."""
    known = [s for s in secrets if len(s) >= 4]
    return _scrub(value, known)


def _scrub(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, dict):
        return {
            _scrub_text(str(k), secrets): REDACTED if str(k).lower() in SECRET_KEYS else _scrub(v, secrets)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_scrub(v, secrets) for v in value]
    if isinstance(value, str):
        return _scrub_text(value, secrets)
    return value


def _scrub_text(text: str, secrets: list[str]) -> str:
    if text.startswith("data:"):
        return summarise_data_uri(text)
    if len(text) > _INLINE_LIMIT and _BASE64.match(text):
        # A naked base64 picture (some clients send inputs that way): identified, not stored.
        return summarise_data_uri("data:application/octet-stream;base64," + text)
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    if text.startswith(("http://", "https://")):
        text = scrub_url(text)
    return text


def summarise_data_uri(uri: str) -> str:
    """``[data-uri image/png sha256:<hex> bytes:<n>]``: inline pictures are identified, not stored."""
    match = _DATA_URI.match(uri)
    payload = uri[match.end() :] if match else uri.partition(",")[2]
    mime = (match.group(1) if match else None) or "text/plain"
    data: bytes
    if match and match.group(3):
        try:
            data = base64.b64decode(payload, validate=False)
        except (binascii.Error, ValueError):
            data = payload.encode()
    else:
        data = payload.encode()
    return f"[data-uri {mime} sha256:{hashlib.sha256(data).hexdigest()} bytes:{len(data)}]"


# ------------------------------------------------------------------------------------------------- matching


def upload_marker(filename: Any, size: Any) -> str:
    """How an uploaded file appears in a normalized input: what it is, not its one-off URL."""
    return f"[upload {filename} bytes:{size}]"


def normalized_input(
    model: str, body: Mapping[str, Any], catalog: Catalog, uploads: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """What a replay matches on: documented defaults filled in, the transport flags (sync, base64) left out
    (they are recorded beside it), uploaded files named by what they are rather than their one-off URL.

    ``uploads`` maps an upload's (scrubbed) download URL to a mapping with its ``filename`` and ``size``."""
    endpoint = catalog.get(model)
    merged: dict[str, Any] = {}
    if endpoint is not None:
        merged = {
            name: prop["default"]
            for name, prop in endpoint.properties.items()
            if isinstance(prop, dict) and "default" in prop
        }
    merged.update(body)
    for flag in TRANSPORT_FLAGS:
        merged.pop(flag, None)

    def replace(value: Any) -> Any:
        if isinstance(value, str) and value in uploads:
            upload = uploads[value]
            return upload_marker(upload.get("filename"), upload.get("size"))
        if isinstance(value, list):
            return [replace(v) for v in value]
        if isinstance(value, dict):
            return {k: replace(v) for k, v in value.items()}
        return value

    return {k: replace(merged[k]) for k in sorted(merged)}


def digest(model: str, normalized: Mapping[str, Any]) -> str:
    text = json.dumps({"model": model, "input": normalized}, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def match_key(
    model: str,
    body: Mapping[str, Any],
    catalog: Catalog,
    *,
    secrets: Iterable[str] = (),
    uploads: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[dict[str, Any], str]:
    """The normalized input and digest of a submit, exactly as the recorder writes them into ``match``: the body
    scrubbed (credentials, signed URLs, inline media), then normalized."""
    normalized = normalized_input(model, scrub(dict(body), secrets), catalog, uploads or {})
    return normalized, digest(model, normalized)


# ------------------------------------------------------------------------------------------------- the format


def schema_path() -> Path:
    return data_dir("schemas") / "formats" / "cassette.json"


@cache
def _validator() -> Draft202012Validator:
    # Imported on first use: a server that replays no cassette starts without jsonschema.
    from jsonschema import Draft202012Validator, FormatChecker

    schema = json.loads(schema_path().read_text(encoding="utf-8"))
    return Draft202012Validator(schema, format_checker=FormatChecker())


def problems(document: Any) -> list[str]:
    """Every way ``document`` breaks ``schemas/formats/cassette.json`` ("path: message"), in a stable order."""
    found = sorted(_validator().iter_errors(document), key=lambda e: [str(p) for p in e.absolute_path])
    return [f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}" for e in found]
