"""Lifecycle cassettes: what one prediction looked like on the wire, recorded by ``wavespeed-mock proxy --record``.

One JSON file per prediction (``DIR/<prediction id>.json``, or ``DIR/rejected-<digest>.json`` for a submit the
upstream refused), rewritten atomically after every event so a killed proxy leaves valid files. The format is
``schemas/formats/cassette.json``; it holds what a replaying fake needs: the model and the normalized input to
match a request, the status sequence with timings, the outputs' size and format, the errors, the uploads.

Secrets never reach the disk: no request header but an allow-list is kept (so never Authorization or Cookie),
the values of the current request's credentials are replaced wherever they appear, and recorded URLs lose their
query string when it carries signature-like parameters (presigned object-store links, tokens). Output pictures
are stored once under ``DIR/media/<sha256>.<ext>`` — or, with ``placeholders``, a generated picture of the same
size and format stands in for them (to share cassettes without the upstream's pictures).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import io
import json
import mimetypes
import os
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from PIL import Image, UnidentifiedImageError

from mock_server.contract.cassette import (
    FORMAT,
    REDACTED,
    SECRET_KEYS,
    SIGNED_PARAM,
    VERSION,
    match_key,
    normalized_input,
    scrub,
    scrub_url,
    summarise_data_uri,
)
from mock_server.contract.catalog import Catalog

TERMINAL = ("completed", "failed", "cancelled", "timeout", "deleted")
# Request headers worth keeping: they say which client spoke (reference §1), and none can carry a secret.
KEPT_HEADERS = ("content-type", "user-agent", "x-client-name", "x-client-version", "x-client-os")
_MAX_ERRORS = 100  # a prediction polled through an outage must not grow its cassette without bound
_MAX_PREDICTIONS = 10_000  # remembered at once; the oldest are forgotten (their files stay)
_MAX_UPLOADS = 1000

Fetch = Callable[[str], Awaitable[tuple[bytes, str | None]]]


# ------------------------------------------------------------------------------------------------- scrubbing
# scrub, scrub_url and summarise_data_uri live in contract/cassette (a replaying fake scrubs requests the same way);
# they are imported above and stay importable from here.


def credentials(headers: Mapping[str, str], query: Iterable[tuple[str, str]]) -> list[str]:
    """The secret values of one request: the bearer key (and the whole header), key-like query parameters (each
    occurrence: ``query`` is the list of pairs, repeats included)."""
    found: list[str] = []
    header = headers.get("authorization", "")
    if header:
        found.append(header)
        scheme, _, key = header.partition(" ")
        if key.strip():
            found.append(key.strip())
        elif scheme:
            found.append(scheme)
    found += [v for k, v in query if v and SIGNED_PARAM.match(k)]
    return found


def kept_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {name: headers[name] for name in KEPT_HEADERS if name in headers}


# ----------------------------------------------------------------------------------------------- media


@dataclass(frozen=True)
class Media:
    """What a recorded output turned out to be."""

    content_type: str | None
    size: int
    sha256: str
    width: int | None
    height: int | None
    format: str | None  # Pillow's name, lower case: jpeg, png, webp, gif...

    @property
    def ext(self) -> str:
        if self.format:
            return self.format
        guessed = mimetypes.guess_extension((self.content_type or "").split(";")[0].strip()) or ".bin"
        return guessed.lstrip(".")


def inspect(data: bytes, content_type: str | None) -> Media:
    width = height = None
    fmt = None
    try:
        with Image.open(io.BytesIO(data)) as picture:
            width, height = picture.size
            fmt = (picture.format or "").lower() or None
    except (UnidentifiedImageError, OSError, ValueError):
        pass  # not a picture (a video, a text error page): size and type are still worth recording
    return Media(content_type, len(data), hashlib.sha256(data).hexdigest(), width, height, fmt)


def placeholder(media: Media, model: str, index: int) -> bytes | None:
    """A picture of the same size and format as the recorded one, or None when that is not a picture."""
    if media.width is None or media.height is None or media.format is None:
        return None
    from mock_server.model.images import FORMATS, ImageSpec, render

    if media.format in FORMATS:
        try:
            return render(
                ImageSpec(
                    model=model,
                    prompt="recorded output (placeholder)",
                    seed=0,
                    index=index,
                    width=media.width,
                    height=media.height,
                    fmt=media.format,
                    params_digest="cassette",
                )
            )
        except ValueError:
            pass  # outside the renderer's bounds: a plain picture below
    out = io.BytesIO()
    try:
        Image.new("RGB", (media.width, media.height), (128, 128, 128)).save(out, format=media.format.upper())
    except (KeyError, OSError, ValueError):
        return None
    return out.getvalue()


# ------------------------------------------------------------------------------------------------- cassettes


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Cassette:
    """One prediction being recorded. ``doc`` is the JSON written to disk; the rest is bookkeeping."""

    name: str
    started: float  # monotonic, when the submit reached the proxy
    doc: dict[str, Any]
    finalizing: bool = False
    output_paths: dict[str, int] = field(default_factory=dict)  # URL path of each output -> index

    def seconds(self, when: float) -> float:
        return round(max(0.0, when - self.started), 4)

    def see(self, status: str, when: float) -> None:
        """Count one answer carrying ``status``; a change of status starts a new entry."""
        statuses: list[dict[str, Any]] = self.doc["statuses"]
        if statuses and statuses[-1]["status"] == status:
            statuses[-1]["seen"] += 1
        else:
            statuses.append({"status": status, "at": self.seconds(when), "seen": 1})

    def error(self, entry: dict[str, Any]) -> None:
        errors: list[dict[str, Any]] = self.doc["errors"]
        if len(errors) < _MAX_ERRORS:
            errors.append(entry)


class Recorder:
    """Cassettes of the predictions the proxy sees. Without a directory nothing is kept (the proxy then only
    checks drift)."""

    def __init__(
        self,
        directory: Path | None,
        catalog: Catalog,
        *,
        upstream: str,
        placeholders: bool = False,
        fetch: Fetch | None = None,
    ) -> None:
        self.directory = directory
        self.catalog = catalog
        self.upstream = scrub_url(upstream)
        self.placeholders = placeholders
        self.fetch = fetch
        self._cassettes: OrderedDict[str, Cassette] = OrderedDict()
        self._uploads: OrderedDict[str, dict[str, Any]] = OrderedDict()  # scrubbed download URL -> upload

    @property
    def enabled(self) -> bool:
        return self.directory is not None

    # ---- events, called by the proxy once the upstream has answered

    def upload(self, flow: str, http_status: int, request_body: Any, response: Any, secrets: list[str]) -> None:
        """An upload ticket (``flow`` "ticket") or a multipart upload ("binary") the upstream answered."""
        if not self.enabled or http_status != 200 or not isinstance(response, dict):
            return
        data = response.get("data")
        if not isinstance(data, dict) or not isinstance(data.get("download_url"), str):
            return
        asked = request_body if isinstance(request_body, dict) else {}
        entry = {
            "flow": flow,
            "filename": data.get("filename", asked.get("filename")),
            "size": data.get("size", asked.get("size")),
            "type": data.get("type"),
            "content_type": asked.get("content_type"),
            "download_url": scrub(data["download_url"], secrets),
            "recorded_at": now_iso(),
        }
        # Never data.upload.url: it is the presigned slot that authorises the PUT.
        self._uploads[entry["download_url"]] = scrub(entry, secrets)
        while len(self._uploads) > _MAX_UPLOADS:
            self._uploads.popitem(last=False)

    def submit(
        self,
        *,
        model: str,
        path: str,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        body: bytes,
        started: float,
        http_status: int,
        response: Any,
        secrets: list[str],
    ) -> Cassette | None:
        if not self.enabled:
            return None
        when = time.monotonic()
        try:
            sent = json.loads(body) if body.strip() else {}
        except (UnicodeDecodeError, json.JSONDecodeError):
            sent = {"(body)": f"{len(body)} bytes, not JSON"}
        sent_input = sent if isinstance(sent, dict) else {"(body)": sent}
        scrubbed_input = scrub(sent_input, secrets)
        attached = [u for url, u in self._uploads.items() if _mentions(scrubbed_input, url)]
        # The same function a replaying fake keys its cassettes by (contract/cassette), so they match.
        normalized, match_digest = match_key(
            model, scrubbed_input, self.catalog, uploads={u["download_url"]: u for u in attached}
        )
        data = response.get("data") if isinstance(response, dict) else None
        prediction_id = data.get("id") if isinstance(data, dict) and isinstance(data.get("id"), str) else None
        ok = http_status == 200 and prediction_id is not None
        name = _safe_name(prediction_id) if ok and prediction_id else f"rejected-{match_digest[7:23]}"
        doc: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "recorded_at": now_iso(),
            "upstream": self.upstream,
            "model": model,
            "prediction_id": prediction_id if ok else None,
            "request": {
                "method": "POST",
                "path": path,
                "query": scrub(dict(query), secrets),
                "headers": kept_headers(headers),
                "input": scrubbed_input,
                "sync": sent_input.get("enable_sync_mode") is True,
                "base64": sent_input.get("enable_base64_output") is True,
                "webhook": scrub(query["webhook"], secrets) if "webhook" in query else None,
            },
            "match": {"model": model, "input": normalized, "digest": match_digest},
            "submit": {
                "http_status": http_status,
                "seconds": round(when - started, 4),
                "status": data.get("status") if isinstance(data, dict) else None,
            },
            "statuses": [],
            "polls": 0,
            "final": None,
            "outputs": [],
            "errors": [],
            "uploads": attached,
        }
        cassette = Cassette(name, started, doc)
        if ok and isinstance(data, dict) and prediction_id is not None:
            self._observe(cassette, data, http_status, when)
            self._cassettes[prediction_id] = cassette
            while len(self._cassettes) > _MAX_PREDICTIONS:
                self._cassettes.popitem(last=False)
        else:
            cassette.error(
                {"where": "submit", "at": cassette.seconds(when), "http_status": http_status, **_error_fields(response)}
            )
        self._write(cassette, secrets)
        return cassette

    def result(self, prediction_id: str, http_status: int, response: Any, secrets: list[str]) -> Cassette | None:
        """A poll answered; unknown ids (submitted before the proxy started) are not recorded."""
        cassette = self._cassettes.get(prediction_id)
        if cassette is None:
            return None
        when = time.monotonic()
        cassette.doc["polls"] += 1
        data = response.get("data") if isinstance(response, dict) else None
        if http_status != 200 or not isinstance(data, dict):
            cassette.error(
                {"where": "result", "at": cassette.seconds(when), "http_status": http_status, **_error_fields(response)}
            )
        else:
            self._observe(cassette, data, http_status, when)
        self._write(cassette, secrets)
        return cassette

    async def finish(self, cassette: Cassette, secrets: list[str]) -> None:
        """Once terminal: measure every output (fetch URLs, decode base64) and store the media."""
        if cassette.finalizing or cassette.doc["final"] is None or cassette.doc["outputs"]:
            return
        cassette.finalizing = True
        raw_outputs = cassette.doc["final"].pop("_outputs", [])
        base64_mode = cassette.doc["request"]["base64"]
        for index, value in enumerate(raw_outputs):
            entry: dict[str, Any] = {
                "index": index,
                "encoding": "url",
                "url": None,
                "content_type": None,
                "size": None,
                "width": None,
                "height": None,
                "format": None,
                "sha256": None,
                "media": None,
                "placeholder": False,
                "source": None,
                "error": None,
            }
            if not isinstance(value, str):
                entry["error"] = f"output is {type(value).__name__}, not a string"
            elif value.startswith(("http://", "https://")):
                entry["url"] = scrub(value, secrets)
                cassette.output_paths[urlsplit(value).path] = index
                if self.fetch is not None:
                    try:
                        content, content_type = await self.fetch(value)
                    except Exception as exc:  # any failure (transport, HTTP status) is recorded, never raised
                        entry["error"] = f"fetch failed: {type(exc).__name__}: {str(exc)[:200]}"
                    else:
                        self._measure(cassette, entry, content, content_type, "recorder")
            else:
                entry["encoding"] = "base64" if base64_mode or not value.startswith("data:") else "data-uri"
                payload = value.partition(",")[2] if value.startswith("data:") else value
                try:
                    content = base64.b64decode(payload, validate=True)
                except (binascii.Error, ValueError):
                    entry["error"] = "output is neither a URL nor base64"
                else:
                    self._measure(cassette, entry, content, None, "base64")
            cassette.doc["outputs"].append(entry)
        self._write(cassette, secrets)

    def download(self, url_path: str, http_status: int, content: bytes, content_type: str | None) -> None:
        """A GET through the proxy: if it is a recorded output not yet measured, measure it now."""
        if not self.enabled or http_status != 200:
            return
        for cassette in reversed(self._cassettes.values()):
            index = cassette.output_paths.get(url_path)
            if index is None or index >= len(cassette.doc["outputs"]):
                continue
            entry = cassette.doc["outputs"][index]
            if entry["sha256"] is None:
                entry["error"] = None
                self._measure(cassette, entry, content, content_type, "proxy")
                self._write(cassette, [])
            return

    # ---- internals

    def _observe(self, cassette: Cassette, data: Mapping[str, Any], http_status: int, when: float) -> None:
        status = data.get("status")
        status_text = status if isinstance(status, str) else f"({type(status).__name__})"
        cassette.see(status_text, when)
        code, error = data.get("code"), data.get("error")
        if (isinstance(code, int) and code not in (0, 200)) or (isinstance(error, str) and error):
            entry = {
                "where": "result" if cassette.doc["polls"] else "submit",
                "at": cassette.seconds(when),
                "http_status": http_status,
                "status": status_text,
                "code": code if isinstance(code, int) else None,
                "error": error if isinstance(error, str) else None,
            }
            # A failed prediction polled again says the same thing: keep it once.
            if not cassette.doc["errors"] or not _same_error(cassette.doc["errors"][-1], entry):
                cassette.error(entry)
        if status_text in TERMINAL and cassette.doc["final"] is None:
            outputs = data.get("outputs")
            cassette.doc["final"] = {
                "status": status_text,
                "at": cassette.seconds(when),
                "http_status": http_status,
                "code": code if isinstance(code, int) else None,
                "error": error if isinstance(error, str) else None,
                "has_nsfw_contents": data.get("has_nsfw_contents"),
                "timings": data.get("timings") if isinstance(data.get("timings"), dict) else None,
                "execution_time_ms": data.get("executionTime") if isinstance(data.get("executionTime"), int) else None,
                "fields": sorted(data),
                "_outputs": list(outputs) if isinstance(outputs, list) else [],  # consumed by finish()
            }

    def _measure(
        self, cassette: Cassette, entry: dict[str, Any], content: bytes, content_type: str | None, source: str
    ) -> None:
        media = inspect(content, content_type)
        entry.update(
            {
                "content_type": content_type or (f"image/{media.format}" if media.format else None),
                "size": media.size,
                "width": media.width,
                "height": media.height,
                "format": media.format,
                "sha256": media.sha256,
                "source": source,
            }
        )
        stored: bytes | None = content
        if self.placeholders:
            stored = placeholder(media, cassette.doc["model"], entry["index"])
            entry["placeholder"] = stored is not None
        if stored is None or self.directory is None:
            return
        name = f"{hashlib.sha256(stored).hexdigest()}.{media.ext}"
        target = self.directory / "media" / name
        if not target.exists():  # content-addressed: one copy however many cassettes use it
            target.parent.mkdir(parents=True, exist_ok=True)
            _atomic_write(target, stored)
        entry["media"] = f"media/{name}"

    def _write(self, cassette: Cassette, secrets: list[str]) -> None:
        if self.directory is None:
            return
        doc = dict(cassette.doc)
        if isinstance(doc.get("final"), dict):
            doc["final"] = {k: v for k, v in doc["final"].items() if not k.startswith("_")}
        text = json.dumps(scrub(doc, secrets), indent=2, ensure_ascii=False) + "\n"
        self.directory.mkdir(parents=True, exist_ok=True)
        _atomic_write(self.directory / f"{cassette.name}.json", text.encode("utf-8"))


def _same_error(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return all(a.get(k) == b.get(k) for k in ("where", "http_status", "status", "code", "error"))


def _error_fields(response: Any) -> dict[str, Any]:
    if not isinstance(response, dict):
        return {"code": None, "message": None, "body_keys": None}
    code = response.get("code")
    message = response.get("message", response.get("error"))
    return {
        "code": code if isinstance(code, int) else None,
        "message": message if isinstance(message, str) else None,
        "body_keys": sorted(response),
    }


def _mentions(value: Any, text: str) -> bool:
    if isinstance(value, str):
        return value == text
    if isinstance(value, list):
        return any(_mentions(v, text) for v in value)
    if isinstance(value, dict):
        return any(_mentions(v, text) for v in value.values())
    return False


def _safe_name(prediction_id: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", prediction_id)[:120].lstrip(".")
    return cleaned or "prediction"


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


__all__ = [
    "FORMAT",
    "REDACTED",
    "SECRET_KEYS",
    "TERMINAL",
    "VERSION",
    "Cassette",
    "Media",
    "Recorder",
    "credentials",
    "inspect",
    "kept_headers",
    "normalized_input",
    "placeholder",
    "scrub",
    "scrub_url",
    "summarise_data_uri",
]
