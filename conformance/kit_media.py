"""Image files in both directions: the fixture images the suite sends (inline or uploaded), the upload flows
(optional routes: a target without them answers 404 and their checks are skipped), and the checks that every
output decodes to an image of the requested format and size.
"""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
from kit_checks import Journey, base64_mode, json_of
from kit_target import Target
from kit_violations import Violation, fail, short, status_violation
from PIL import Image

from mock_server.contract.catalog import Endpoint
from mock_server.model.images import ASPECT_RESOLUTIONS
from mock_server.resources import data_dir

PIL_FORMAT = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}
MIME = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
INPUT_FIXTURES = ("badge-48x64.png", "shapes-64x48.png", "target-96x96.jpg")
UPLOAD_BINARY = "POST /api/v3/media/upload/binary"
UPLOAD_DIRECT = "POST /api/v3/media/uploads"


# --------------------------------------------------------------------------------------------------------
# fixtures


def fixture_bytes(name: str) -> bytes:
    path: Path = data_dir("fixtures") / "images" / name
    return path.read_bytes()


def fixture_mime(name: str) -> str:
    return "image/png" if name.endswith(".png") else "image/jpeg"


def fixture_data_uris() -> tuple[str, ...]:
    return tuple(
        f"data:{fixture_mime(name)};base64,{base64.b64encode(fixture_bytes(name)).decode()}" for name in INPUT_FIXTURES
    )


# --------------------------------------------------------------------------------------------------------
# outputs


def expected_size(endpoint: Endpoint, body: Mapping[str, Any]) -> tuple[tuple[int, int], str] | None:
    """The (width, height) a request determines, and why; None when the contract does not say."""
    props = endpoint.properties
    size = body.get("size") if "size" in props else None
    if isinstance(size, str) and "*" in size:
        width, _, height = size.partition("*")
        return (int(width), int(height)), f"size {size!r}"
    ratio = body.get("aspect_ratio", endpoint.default("aspect_ratio")) if "aspect_ratio" in props else None
    if isinstance(ratio, str) and ratio in ASPECT_RESOLUTIONS:
        given = "aspect_ratio" in body
        return ASPECT_RESOLUTIONS[ratio], f"aspect_ratio {ratio!r}{'' if given else ' (schema default)'}"
    if endpoint.kind == "text-to-image":
        return (1024, 1024), "text-to-image default"
    return None


def expected_format(endpoint: Endpoint, body: Mapping[str, Any]) -> str | None:
    if "output_format" not in endpoint.properties:
        return None
    value = body.get("output_format", endpoint.default("output_format"))
    return value if value in PIL_FORMAT else None


def check_outputs(target: Target, journey: Journey) -> list[tuple[int, int, str]]:
    """Every output downloads (or base64-decodes) to an image of the requested format and size."""
    data = journey.final
    if data.get("status") != "completed":
        return []
    endpoint, body = journey.endpoint, journey.body
    model = endpoint.model
    size = expected_size(endpoint, body)
    fmt = expected_format(endpoint, body)
    inline = base64_mode(body)
    seen = []
    for index, output in enumerate(data.get("outputs") or []):
        where = f"output {index}"
        path = f"data.outputs[{index}]"
        if inline:
            if not isinstance(output, str) or output.startswith("data:"):
                fail([Violation(model, where, path, "naked base64 (no data: prefix)", short(output, 80))], body)
            try:
                blob = base64.b64decode(output, validate=True)
            except (binascii.Error, ValueError):
                fail([Violation(model, where, path, "valid base64 of an image", short(output, 80))], body)
        else:
            response = target.download(str(output), endpoint=model, where=where)
            if response.status_code != 200:
                fail(
                    [
                        Violation(
                            model,
                            where,
                            path,
                            "HTTP 200 when downloading the output URL",
                            f"HTTP {response.status_code} for {short(output, 120)}",
                        )
                    ],
                    body,
                )
            mime = response.headers.get("content-type", "").split(";")[0].strip()
            if fmt is not None and mime != MIME[fmt]:
                fail([Violation(model, where, f"{path} Content-Type", MIME[fmt], short(mime))], body)
            blob = response.content
        try:
            with Image.open(io.BytesIO(blob)) as image:
                image.load()
                width, height, pil = image.width, image.height, str(image.format)
        except Exception as exc:  # Pillow raises many types for undecodable data
            fail([Violation(model, where, path, "a decodable image", f"{type(exc).__name__}: {exc}")], body)
        wanted = f"{PIL_FORMAT[fmt]}" if fmt else "JPEG, PNG or WEBP"
        if (fmt and pil != PIL_FORMAT[fmt]) or (not fmt and pil not in PIL_FORMAT.values()):
            fail(
                [
                    Violation(
                        model,
                        where,
                        f"{path} format",
                        f"{wanted} (output_format {body.get('output_format', 'default')})",
                        pil,
                    )
                ],
                body,
            )
        if size is not None and (width, height) != size[0]:
            fail(
                [
                    Violation(
                        model, where, f"{path} size", f"{size[0][0]}x{size[0][1]} ({size[1]})", f"{width}x{height}"
                    )
                ],
                body,
            )
        seen.append((width, height, pil))
    return seen


# --------------------------------------------------------------------------------------------------------
# uploads


def _upload_data(response: httpx.Response, where: str) -> dict[str, Any]:
    if response.status_code != 200:
        fail([status_violation(response, "media", where, "200 for a valid upload")])
    envelope = json_of(response, endpoint="media", where=where)
    data = envelope.get("data") if isinstance(envelope, dict) else None
    violations = []
    if not isinstance(envelope, dict) or envelope.get("code") != 200:
        violations.append(
            Violation(
                "media", where, "code", "200", short(envelope.get("code") if isinstance(envelope, dict) else envelope)
            )
        )
    if not isinstance(data, dict) or not isinstance(data.get("download_url"), str):
        violations.append(
            Violation(
                "media",
                where,
                "data.download_url",
                "a URL string",
                short(data.get("download_url") if isinstance(data, dict) else data),
            )
        )
    fail(violations)
    assert isinstance(data, dict)
    return data


def check_download_matches(target: Target, url: str, content: bytes, where: str) -> None:
    response = target.download(url, endpoint="media", where=where)
    if response.status_code != 200 or response.content != content:
        fail(
            [
                Violation(
                    "media",
                    where,
                    "data.download_url",
                    f"HTTP 200 with the {len(content)} uploaded bytes",
                    f"HTTP {response.status_code} with {len(response.content)} bytes"
                    f"{'' if response.content != content else ' (identical)'}",
                )
            ]
        )


def upload_binary(target: Target, name: str) -> str | None:
    """Multipart upload; the download URL, or None when the target has no such route."""
    if UPLOAD_BINARY in target.unavailable:
        return None
    content = fixture_bytes(name)
    response = target.send(
        "POST",
        "/api/v3/media/upload/binary",
        endpoint="media",
        where="upload/binary",
        files={"file": (name, content, fixture_mime(name))},
        headers=target.auth(),
    )
    if not target.optional_route(UPLOAD_BINARY, response):
        return None
    url = str(_upload_data(response, "upload/binary response")["download_url"])
    check_download_matches(target, url, content, "upload/binary download")
    return url


def upload_direct(target: Target, name: str) -> str | None:
    """Ticket (POST /media/uploads) then PUT of the bytes; the download URL, or None without the route."""
    if UPLOAD_DIRECT in target.unavailable:
        return None
    content = fixture_bytes(name)
    ticket = target.send(
        "POST",
        "/api/v3/media/uploads",
        endpoint="media",
        where="uploads ticket",
        json_body={"filename": name, "size": len(content), "content_type": fixture_mime(name)},
        headers=target.auth(),
    )
    if not target.optional_route(UPLOAD_DIRECT, ticket):
        return None
    data = _upload_data(ticket, "uploads ticket response")
    upload = data.get("upload")
    if not (isinstance(upload, dict) and isinstance(upload.get("url"), str)):
        fail(
            [
                Violation(
                    "media", "uploads ticket response", "data.upload.url", "the URL to PUT the bytes to", short(upload)
                )
            ]
        )
    assert isinstance(upload, dict)
    method = str(upload.get("method") or "PUT").upper()
    given = upload.get("headers")
    headers: dict[Any, Any] = given if isinstance(given, dict) else {}
    put = target.send(
        method,
        str(upload["url"]),
        endpoint="media",
        where="upload PUT",
        content=content,
        headers={str(k): str(v) for k, v in headers.items()},
    )
    if not 200 <= put.status_code < 300:
        fail([status_violation(put, "media", "upload PUT", "2xx for the ticket's PUT")])
    url = str(data["download_url"])
    check_download_matches(target, url, content, "uploads download")
    return url
