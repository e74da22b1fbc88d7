"""Hostile input: strict JSON, body limits, full-match patterns, safe downloads, pixel limits — always a 4xx in the
envelope, never a 5xx, and the server keeps serving everyone afterwards."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import re
import shutil
import struct
import subprocess
import time
import zlib
from collections.abc import Callable, Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema
from PIL import Image
from starlette.types import Message, Receive, Scope, Send

from mock_server.contract.catalog import Catalog, default_catalog
from mock_server.contract.errors import BadRequest, PayloadTooLarge
from mock_server.contract.jsonbody import nesting_depth, parse_json
from mock_server.contract.ranges import END_OF_STRING
from mock_server.contract.tenants import fingerprint
from mock_server.http.faults import Faults
from mock_server.http.front import FrontDoor
from mock_server.http.headers import content_disposition
from mock_server.http.journal import Journal
from mock_server.model import images
from mock_server.resources import data_dir
from mock_server.settings import Settings
from tests.conftest import DEV, EDIT, T2I, Live

# --- strict JSON --------------------------------------------------------------------------------------------

HOSTILE_JSON = {
    "nan": b'{"prompt": "x", "seed": NaN}',
    "infinity": b'{"prompt": "x", "guidance_scale": Infinity}',
    "minus-infinity": b'{"prompt": "x", "guidance_scale": -Infinity}',
    "overflow": b'{"prompt": "x", "guidance_scale": 1e999}',
    "huge-integer": b'{"prompt": "x", "seed": 1' + b"0" * 400 + b"}",
    "lone-surrogate-value": b'{"prompt": "x\\ud800"}',
    "lone-surrogate-key": b'{"prompt": "x", "\\udfff": 1}',
    "lone-low-surrogate-in-list": b'{"prompt": "x", "images": ["\\udc00"]}',
    "deep-nesting": b"[" * 100_000 + b"]" * 100_000,
    "deep-objects": b'{"a":' * 5_000 + b"1" + b"}" * 5_000,
    "duplicate-key": b'{"prompt": "x", "prompt": "y"}',
    "not-utf8": b'{"prompt": "\xff"}',
}


@pytest.mark.parametrize("name", sorted(HOSTILE_JSON))
def test_hostile_json_is_a_400_naming_the_problem(name: str) -> None:
    with pytest.raises(BadRequest) as raised:
        parse_json(HOSTILE_JSON[name])

    assert raised.value.status_code == 400
    json.dumps(raised.value.body()).encode("utf-8")  # the message itself is encodable (no echoed surrogate)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"[NaN]", "NaN is not a JSON number"),
        (b"[1e999]", "beyond the range of a double"),
        (b'{"a": 1, "a": 2}', 'duplicate key "a"'),
        (b'{"\\ud800": 1, "\\ud800": 2}', 'duplicate key "\\ud800"'),
        (b'["\\ud800"]', "lone UTF-16 surrogate"),
        (b"[" * 65 + b"]" * 65, "nested deeper than 64 levels"),
    ],
)
def test_the_reason_is_in_the_message(raw: bytes, reason: str) -> None:
    with pytest.raises(BadRequest, match=reason.replace("\\", "\\\\")):
        parse_json(raw)


def test_what_strict_json_still_accepts() -> None:
    assert parse_json(b'{"a": "\\ud83d\\ude00", "b": [1.5e300, -0.0, 10], "c": "\\\\ud800"}') == {
        "a": "\U0001f600",
        "b": [1.5e300, -0.0, 10],
        "c": "\\ud800",
    }
    assert parse_json(b"[" * 64 + b"]" * 64) is not None
    assert parse_json(b'{"a": "' + b"[" * 10_000 + b'"}') == {"a": "[" * 10_000}  # brackets in strings are text


def test_the_depth_scan_skips_strings_and_is_linear() -> None:
    assert nesting_depth(b'[[{"a": "]]]]}}"}]]') == 3
    assert nesting_depth(b'"[[[["') == 0
    assert nesting_depth(b'"unterminated [[[') == 0
    started = time.perf_counter()
    # Unterminated string full of escaped quotes: a naive scan retries from each quote (quadratic).
    assert nesting_depth(b"[" * 70 + b'"' + b'\\"' * 400_000 + b"\\") == 70
    assert time.perf_counter() - started < 5


# --- body size limit ----------------------------------------------------------------------------------------


def _chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    yield b'{"prompt": "'
    for _ in range(total // size):
        yield b"a" * size
    yield b'"}'


def test_a_declared_oversized_body_is_a_413_and_is_never_read(start_server: Callable[..., Live]) -> None:
    server = start_server(max_body_bytes=4096)

    response = server.http.post(
        f"/api/v3/{T2I}", content=b'{"prompt": "' + b"a" * 10_000 + b'"}', headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 413
    assert response.json() == {"code": 413, "message": "Request body is 10014 bytes; the limit is 4096 bytes"}
    [entry] = server.running.app.state.mock.journal.find(tenant=server.tenant)
    assert entry.status == 413
    assert server.run_to_end(T2I, {"prompt": "fine"})["status"] == "completed"


def test_a_chunked_oversized_body_is_a_413_once_it_crosses_the_limit(start_server: Callable[..., Live]) -> None:
    server = start_server(max_body_bytes=100_000)

    response = server.http.post(
        f"/api/v3/{T2I}", content=_chunks(1_000_000), headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 413
    assert response.json()["message"] == "Request body exceeds the limit of 100000 bytes"


def test_a_body_at_the_limit_is_accepted(start_server: Callable[..., Live]) -> None:
    body = json.dumps({"prompt": "a" * 1000}).encode()
    server = start_server(max_body_bytes=len(body))

    assert server.http.post(f"/api/v3/{T2I}", content=body).status_code == 200
    assert server.http.post(f"/api/v3/{T2I}", content=body + b" ").status_code == 413


def test_control_bodies_are_limited_too(start_server: Callable[..., Live]) -> None:
    server = start_server(max_body_bytes=1000)

    response = server.http.post("/_mock/reset", content=b"[" * 5000)

    assert response.status_code == 413 and response.json()["code"] == 413


def test_uploads_keep_their_own_larger_limit(start_server: Callable[..., Live]) -> None:
    server = start_server(max_body_bytes=1000, upload_max_bytes=50_000)
    picture = b"\x89PNG\r\n\x1a\n" + bytes(20_000)

    binary = server.http.post("/api/v3/media/upload/binary", files={"file": ("a.png", picture, "image/png")})
    ticket = server.http.post("/api/v3/media/uploads", json={"filename": "a.png", "size": len(picture)})
    put = httpx.put(ticket.json()["data"]["upload"]["url"], content=picture, headers={"Content-Type": "image/png"})
    too_big = server.http.post("/api/v3/media/upload/binary", files={"file": ("a.png", picture * 3, "image/png")})

    assert (binary.status_code, ticket.status_code, put.status_code, too_big.status_code) == (200, 200, 200, 413)


async def _drive(
    middleware: FrontDoor, messages: list[Message], headers: list[tuple[bytes, bytes]]
) -> tuple[int, list[Message]]:
    pulled = 0
    sent: list[Message] = []

    async def receive() -> Message:
        nonlocal pulled
        pulled += 1
        return messages[pulled - 1]

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/api/v3/x", "headers": headers}
    try:
        await middleware(scope, receive, send)
    except PayloadTooLarge:
        sent.append({"type": "raised 413"})
    return pulled, sent


def test_the_limit_reads_nothing_of_a_declared_oversized_body_and_stops_at_the_crossing_chunk() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    middleware = FrontDoor(app, settings=Settings(max_body_bytes=10), journal=Journal(5), faults=Faults())
    chunks: list[Message] = [{"type": "http.request", "body": b"x" * 6, "more_body": True}] * 100

    pulled, sent = asyncio.run(_drive(middleware, chunks, [(b"content-length", b"600")]))
    assert pulled == 0 and sent[0]["status"] == 413
    pulled, sent = asyncio.run(_drive(middleware, chunks, []))
    assert pulled == 2 and sent == [{"type": "raised 413"}]


# --- full-match patterns ------------------------------------------------------------------------------------


def _shipped_patterns() -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []

    def walk(node: object, where: str) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("pattern"), str):
                found.append((where, node["pattern"]))
            for value in node.values():
                walk(value, where)
        elif isinstance(node, list):
            for value in node:
                walk(value, where)

    schemas = data_dir("schemas")
    for path in sorted(schemas.rglob("*.json")):
        if "sources" not in path.parts:
            walk(json.loads(path.read_text(encoding="utf-8")), str(path.relative_to(schemas)))
    return found


def test_every_shipped_pattern_is_anchored_at_both_ends_of_the_string() -> None:
    patterns = _shipped_patterns()

    assert len(patterns) > 30
    for where, pattern in patterns:
        assert pattern.startswith("^") and pattern.endswith(END_OF_STRING), (where, pattern)


@pytest.mark.parametrize("junk", ["\n", "\r\n", " ", "\t", "x", "\u2028", "\n\n", "*1"])
def test_a_size_with_anything_after_it_is_refused(catalog: Catalog, junk: str) -> None:
    assert catalog.validate(DEV, {"size": "1024*1024"}) == []
    assert [v.path for v in catalog.validate(DEV, {"size": "1024*1024" + junk})] == ["size"]
    assert [v.path for v in catalog.validate(DEV, {"size": junk + "1024*1024"})] == ["size"]


@pytest.mark.parametrize(
    "size",
    [
        "\u0661\u0660\u0662\u0664*1024",
        "\uff11\uff10\uff12\uff14*1024",
        "1024\u00d71024",
        "1024*1024\u0000",
        "+1024*1024",
        "1024 * 1024",
    ],
)
def test_a_size_in_other_digits_or_signs_is_refused(catalog: Catalog, size: str) -> None:
    assert [v.path for v in catalog.validate(DEV, {"size": size})] == ["size"]


SIZE_SCHEMA = default_catalog().endpoints[DEV].properties["size"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(size=from_schema(SIZE_SCHEMA), junk=st.text(min_size=1, max_size=3))
def test_generated_sizes_are_accepted_and_any_suffix_refused(size: str, junk: str) -> None:
    catalog = default_catalog()
    width, _, height = size.partition("*")

    assert catalog.validate(DEV, {"size": size}) == []
    assert 256 <= int(width) <= 1536 and 256 <= int(height) <= 1536
    # Any suffix at all: a digit makes the height at least 2560, anything else is not a digit.
    assert [v.path for v in catalog.validate(DEV, {"size": size + junk})] == ["size"]


def test_a_size_with_a_trailing_newline_is_a_400_at_submit(live: Live) -> None:
    response = live.submit(DEV, {"prompt": "x", "size": "1024*1024\n"})

    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "size"


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node to run the patterns as ECMA-262 regexes")
def test_the_patterns_mean_the_same_in_ecma_262() -> None:
    """JSON Schema patterns are ECMA-262 regexes: a JavaScript validator must draw the same line."""
    cases = [
        ("1024*1024", True),
        ("1024*1024\n", False),
        ("256*1536", True),
        ("255*256", False),
        ("0123456789abcdef0123456789abcdef", True),
        ("0123456789abcdef0123456789abcdef\n", False),
        ("2025-01-02T03:04:05.123Z", True),
        ("2025-01-02T03:04:05Z\n", False),
    ]
    patterns = sorted({p for _, p in _shipped_patterns()})
    script = (
        "const [patterns, cases] = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        "console.log(JSON.stringify(patterns.map(p => cases.map(c => new RegExp(p, 'u').test(c)))));"
    )
    strings = [c for c, _ in cases]
    result = subprocess.run(
        ["node", "-e", script],
        input=json.dumps([patterns, strings]),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )

    ecma = json.loads(result.stdout)
    for pattern, answers in zip(patterns, ecma, strict=True):
        assert answers == [re.search(pattern, c) is not None for c in strings], pattern
    size_answers = ecma[patterns.index(SIZE_SCHEMA["pattern"])]
    assert size_answers[:4] == [valid for _, valid in cases[:4]]


# --- secrets and safe serving -------------------------------------------------------------------------------


def test_a_fingerprint_names_a_key_without_revealing_it() -> None:
    first, again, other = fingerprint("sk-live-123"), fingerprint("sk-live-123"), fingerprint("sk-live-124")

    assert first == again != other
    assert re.fullmatch(r"tk_[0-9a-f]{12}", first) and "123" not in first
    assert fingerprint("x\ud800") != fingerprint("x")  # any str, even one JSON would refuse


def _upload(live: Live, filename: str, data: bytes, mime: str) -> httpx.Response:
    response = live.http.post("/api/v3/media/upload/binary", files={"file": (filename, data, mime)})
    assert response.status_code == 200, response.text
    return httpx.get(response.json()["data"]["download_url"])


@pytest.mark.parametrize(
    ("mime", "attachment"),
    [
        ("text/html", True),
        ("image/svg+xml", True),
        ("application/xhtml+xml", True),
        ("text/xml", True),
        ("application/xml", True),
        ("application/rss+xml", True),
        ("image/png", False),
        ("text/plain", False),
    ],
)
def test_uploads_are_served_inert(live: Live, mime: str, attachment: bool) -> None:
    # Distinct bytes per type: uploads are stored by content hash, and the first upload of some bytes fixes their
    # type (the store's business, not this test's).
    served = _upload(live, "page.bin", f"<html><script>alert('{mime}')</script></html>".encode(), mime)

    assert served.headers["x-content-type-options"] == "nosniff"
    assert ("content-disposition" in served.headers) is attachment
    if attachment:
        assert served.headers["content-disposition"].startswith('attachment; filename="page.bin"')


@pytest.mark.parametrize(
    "name", ['evil"; x=1.svg', "back\\slash.svg", "cr\r\nlf.svg", "\u00e9\u202e.svg", "x\ud800.svg", "\x00\x7f.svg", ""]
)
def test_the_attachment_name_cannot_break_out_of_its_header(name: str) -> None:
    disposition = content_disposition(name)

    fallback = disposition.split('filename="', 1)[1].rsplit('"; filename*=', 1)[0]
    assert '"' not in fallback and "\\" not in fallback and all(" " <= c <= "~" for c in fallback)
    assert disposition.isascii() and all(" " <= c <= "~" for c in disposition)
    assert disposition.startswith('attachment; filename="')


def test_a_unicode_upload_name_is_served_as_an_exact_attachment_name(live: Live) -> None:
    served = _upload(live, "\u00e9t\u00e9\u202e.svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/svg+xml")

    assert served.headers["content-disposition"] == (
        "attachment; filename=\"_t__.svg\"; filename*=UTF-8''%C3%A9t%C3%A9%E2%80%AE.svg"
    )


@pytest.mark.parametrize("declared", ["image/png\n", "image/p\u00f1g", "image/png\x01", "text/html\r"])
def test_a_ticket_content_type_must_be_one_clean_media_type(live: Live, declared: str) -> None:
    response = live.http.post("/api/v3/media/uploads", json={"filename": "a.png", "size": 3, "content_type": declared})

    assert response.status_code == 400
    assert response.json()["errors"] == [{"path": "content_type", "message": "must be a media type such as image/png"}]


@pytest.mark.parametrize(
    "webhook",
    [
        "",
        "hooks.example.com/x",
        "ftp://127.0.0.1/x",
        "http://",
        "http:///x",
        "javascript:alert(1)",
        "http://127.0.0.1:99999/x",
        "http://127.0.0.1/a b",
        "http://127.0.0.1/\r\nX-Injected: 1",
        "http://127.0.0.1/" + "a" * 2100,
    ],
)
def test_a_webhook_must_be_an_absolute_http_url(live: Live, webhook: str) -> None:
    response = live.submit(T2I, {"prompt": "x"}, params={"webhook": webhook})

    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "webhook"
    assert live.backend.predictions(live.tenant) == []


@pytest.mark.parametrize(
    "webhook", ["http://127.0.0.1:9/hook", "https://hooks.example.com/x?a=1#f", "http://[::1]:8080/hook"]
)
def test_well_formed_webhooks_are_accepted_whatever_their_host(live: Live, webhook: str) -> None:
    # Reachability is the outbound guard's business at delivery time (a non-loopback host is recorded as blocked).
    assert live.submit(T2I, {"prompt": "x"}, params={"webhook": webhook}).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", f"/api/v3/{DEV}", "POST"),
        ("DELETE", "/api/v3/predictions/abc/result", "GET, HEAD"),
        ("POST", "/api/v3/predictions/abc/result", "GET, HEAD"),
        ("GET", "/api/v3/media/uploads", "POST"),
        ("PUT", "/api/v3/media/upload/binary", "POST"),
        ("GET", "/media/upload-slots/abc", "PUT"),
        ("PUT", "/_mock/reset", "POST"),
        ("PATCH", "/_mock/outcomes", "DELETE, GET, HEAD, POST"),
    ],
)
def test_a_405_names_the_allowed_methods(live: Live, method: str, path: str, allow: str) -> None:
    response = live.http.request(method, path)

    assert response.status_code == 405
    assert response.headers["allow"] == allow
    assert response.json()["code"] == 405


def test_an_unknown_path_is_still_a_404(live: Live) -> None:
    for method in ("GET", "POST"):
        assert live.http.request(method, "/nothing/here").status_code == 404
    assert live.http.get("/api/v3/nothing-here").status_code == 404


# --- input pixel limit --------------------------------------------------------------------------------------


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` but whose pixel data is a few bytes: measuring it must
    not decode (a decoder would need width * height * 3 bytes of memory)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00")) + chunk(b"IEND", b"")


def _real_png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 80, 20)).save(buffer, "PNG")
    return buffer.getvalue()


def _data_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


@pytest.mark.parametrize(("width", "height"), [(8000, 6000), (20_000, 20_000), (65_535, 65_535)])
def test_an_input_over_the_pixel_limit_is_a_400_naming_the_limit(live: Live, width: int, height: int) -> None:
    response = live.submit(EDIT, {"prompt": "x", "image": _data_uri(_png_header(width, height))})

    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["path"] == "image" and "the limit is 40000000 pixels" in error["message"]
    assert live.backend.predictions(live.tenant) == []


def test_the_pixel_limit_is_a_setting_and_applies_to_uploads_too(start_server: Callable[..., Live]) -> None:
    server = start_server(max_input_pixels=100 * 100)
    small, large = _real_png(100, 100), _png_header(101, 100)
    uploaded = server.http.post("/api/v3/media/upload/binary", files={"file": ("big.png", large, "image/png")})

    via_upload = server.submit(EDIT, {"prompt": "x", "image": uploaded.json()["data"]["download_url"]})
    inline = server.submit(EDIT, {"prompt": "x", "image": _data_uri(large)})

    assert (via_upload.status_code, inline.status_code) == (400, 400)
    assert "101x100 = 10100 pixels; the limit is 10000 pixels" in inline.json()["message"]
    assert server.submit(EDIT, {"prompt": "x", "image": _data_uri(small)}).status_code == 200


def test_input_images_are_measured_off_the_event_loop(live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    measured_on_loop: list[bool] = []
    real = images.image_size

    def spy(data: bytes, max_pixels: int | None = None) -> tuple[int, int]:
        try:
            asyncio.get_running_loop()
            measured_on_loop.append(True)
        except RuntimeError:
            measured_on_loop.append(False)
        return real(data, max_pixels)

    monkeypatch.setattr(images, "image_size", spy)

    # Measuring a PNG loads it (Pillow reads eXIf chunks after the pixels), hence a worker thread.
    assert live.submit(EDIT, {"prompt": "x", "image": _data_uri(_real_png(64, 64))}).status_code == 200
    assert measured_on_loop == [False]


# --- every hostile input class at every route family: a 4xx envelope, never a 5xx, and the server lives on ---

HOSTILE_BODIES = {
    **HOSTILE_JSON,
    "huge-body": b'{"prompt": "' + b"a" * (2 * 1024 * 1024) + b'"}',
    "trailing-newline-size": b'{"prompt": "x", "size": "1024*1024\\n"}',
    "odd-unicode": (
        '{"prompt": "\u202e\ufeff\u0000\U0010ffff", "filename": "\u2028.png", "size": "\u0661\u0660\u0662\u0664*1024"}'
    ).encode(),
}
BODY_ROUTES = {
    "submit": ("POST", f"/api/v3/{DEV}"),
    "upload-ticket": ("POST", "/api/v3/media/uploads"),
    "upload-binary": ("POST", "/api/v3/media/upload/binary"),
    "control-outcomes": ("POST", "/_mock/outcomes"),
    "control-scenario": ("POST", "/_mock/scenario"),
    "control-faults": ("POST", "/_mock/faults"),
}
ODD_SEGMENTS = ["%ED%A0%80", "%00", "%FF%FE", "..%2F..%2Fetc%2Fpasswd", "%E2%80%AE%F0%9F%92%A5", "a" * 5000, "%0D%0A"]
PATH_ROUTES = {
    "result": "/api/v3/predictions/{}/result",
    "prediction": "/api/v3/predictions/{}",
    "submit-model": "/api/v3/wavespeed-ai/{}",
    "download": "/media/uploads/{0}/{0}.png",
    "output": "/media/outputs/{0}/{0}",
    "upload-slot": "/media/upload-slots/{}",
    "control-prediction": "/_mock/predictions/{}",
}


def _refused(response: httpx.Response) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    body = response.json()
    assert body["code"] == response.status_code and isinstance(body["message"], str) and body["message"]


def _fresh_tenant_works(live: Live) -> None:
    fresh = httpx.Client(base_url=live.base_url, headers={"Authorization": f"Bearer fresh-{time.monotonic_ns()}"})
    with fresh:
        submitted = fresh.post(f"/api/v3/{T2I}", json={"prompt": "still alive"})
        assert submitted.status_code == 200, submitted.text
        polled = fresh.get(f"/api/v3/predictions/{submitted.json()['data']['id']}/result")
        assert polled.status_code == 200 and polled.json()["data"]["status"] in ("created", "processing", "completed")


@pytest.mark.parametrize("route", sorted(BODY_ROUTES))
@pytest.mark.parametrize("case", sorted(HOSTILE_BODIES))
def test_hostile_bodies_get_a_4xx_envelope_everywhere(live: Live, route: str, case: str) -> None:
    method, path = BODY_ROUTES[route]
    content_type = (
        "multipart/form-data; boundary=x"
        if route == "upload-binary" and case == "odd-unicode"
        else ("application/json")
    )

    response = live.http.request(method, path, content=HOSTILE_BODIES[case], headers={"Content-Type": content_type})

    _refused(response)
    _fresh_tenant_works(live)


@pytest.mark.parametrize("route", sorted(PATH_ROUTES))
@pytest.mark.parametrize("segment", ODD_SEGMENTS)
def test_odd_paths_get_a_4xx_envelope_everywhere(live: Live, route: str, segment: str) -> None:
    path = PATH_ROUTES[route].format(segment)
    method = "PUT" if route == "upload-slot" else "POST" if route == "submit-model" else "GET"

    response = live.http.request(method, path, content=b"{}")

    _refused(response)
    _fresh_tenant_works(live)


@pytest.mark.parametrize(
    "filename",
    [
        "\udcff.png",
        "../../etc/passwd",
        "a\x00b.png",
        "\u202egnp.exe",
        "x" * 1000,
        "CON",
        "\U0001f4a5.png",
        "..",
        " ",
        "\\\\server\\share\\a.png",
    ],
)
def test_odd_upload_filenames_are_stored_or_refused_never_a_5xx(live: Live, filename: str) -> None:
    encoded = filename.encode("utf-8", "surrogateescape")
    body = (
        b'--x\r\nContent-Disposition: form-data; name="file"; filename="' + encoded + b'"\r\n'
        b"Content-Type: image/png\r\n\r\n\x89PNG\r\n\x1a\nDATA\r\n--x--\r\n"
    )

    response = live.http.post(
        "/api/v3/media/upload/binary", content=body, headers={"Content-Type": "multipart/form-data; boundary=x"}
    )

    if response.status_code == 200:
        served = httpx.get(response.json()["data"]["download_url"])
        assert served.status_code == 200 and served.content.endswith(b"DATA")
        assert "/" not in response.json()["data"]["filename"]
    else:
        _refused(response)
    _fresh_tenant_works(live)


@pytest.mark.parametrize("declared", ["image/png\x01", "image/p\u00f1g", 'text/html; x="', "*/*", ""])
def test_odd_part_content_types_never_reach_a_header(live: Live, declared: str) -> None:
    raw = declared.encode("utf-8")
    body = (
        b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.bin"\r\n'
        b"Content-Type: " + raw + b"\r\n\r\nDATA-" + raw + b"\r\n--x--\r\n"
    )

    response = live.http.post(
        "/api/v3/media/upload/binary", content=body, headers={"Content-Type": "multipart/form-data; boundary=x"}
    )

    if response.status_code == 200:
        served = httpx.get(response.json()["data"]["download_url"])
        assert served.status_code == 200 and served.headers["x-content-type-options"] == "nosniff"
    else:
        _refused(response)
    _fresh_tenant_works(live)


def test_the_journal_of_hostile_bodies_still_renders(start_server: Callable[..., Live]) -> None:
    server = start_server()
    for case in ("nan", "lone-surrogate-value", "lone-surrogate-key", "deep-nesting", "duplicate-key"):
        _refused(
            server.http.post(f"/api/v3/{DEV}", content=HOSTILE_JSON[case], headers={"Content-Type": "application/json"})
        )

    journal = httpx.get(f"{server.base_url}/_mock/journal", params={"tenant": server.key})

    assert journal.status_code == 200
    bodies = [entry["body"] for entry in journal.json()["data"]]
    assert len(bodies) == 5 and all(isinstance(body, str) for body in bodies)  # kept as text, not half-parsed
