"""``wavespeed-mock proxy``: pass-through, drift checking and lifecycle cassettes.

The upstream is our own fake (no drift expected) or a small app in this file that drifts on purpose; both, and
the proxy, run under uvicorn on loopback ports. Clients are the official Python SDK and plain httpx.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import io
import json
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest
import requests
import wavespeed
import wavespeed.api.client
from jsonschema import Draft202012Validator, FormatChecker
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from mock_server.cli import main
from mock_server.http.app import create_app
from mock_server.http.proxy import DRIFT_HEADER, UPSTREAM_ERROR_HEADER, ProxyConfig, RunningProxy, run_proxy_in_thread
from mock_server.http.server import RunningServer, run_in_thread
from mock_server.resources import data_dir
from mock_server.settings import Settings
from mock_server.testing.client import FakeWaveSpeed
from tests.conftest import DEV, EDIT, T2I

CASSETTE_SCHEMA = json.loads((data_dir("schemas") / "formats" / "cassette.json").read_text(encoding="utf-8"))


# --------------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def upstream() -> Iterator[RunningServer]:
    running = run_in_thread(create_app(Settings(progression="polls", latency_scale=0)))
    yield running
    running.stop()


@pytest.fixture
def key() -> str:
    return f"sk-proxytest-{uuid.uuid4().hex}"


@pytest.fixture
def start_proxy(tmp_path: Path) -> Iterator[Callable[..., RunningProxy]]:
    """A proxy in front of a URL, recording to tmp_path/cassettes and reporting to tmp_path/drift.json."""
    started: list[RunningProxy] = []

    def start(upstream_url: str, **options: Any) -> RunningProxy:
        options.setdefault("record_dir", tmp_path / "cassettes")
        options.setdefault("report_path", tmp_path / "drift.json")
        proxy = run_proxy_in_thread(ProxyConfig(upstream=upstream_url, **options))
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.stop()


class Spy:
    """Every response the official SDK received (it calls ``requests.get/post`` at module level)."""

    def __init__(self) -> None:
        self.responses: list[tuple[str, requests.Response]] = []

    def statuses(self) -> list[str]:
        found = []
        for _, response in self.responses:
            data = (
                response.json().get("data")
                if response.headers.get("content-type", "").startswith("application/json")
                else None
            )
            if isinstance(data, dict) and "status" in data:
                found.append(data["status"])
        return found

    def polls(self) -> int:
        return sum(1 for method, _ in self.responses if method == "get")


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> Spy:
    seen = Spy()
    for name in ("get", "post"):
        original = getattr(requests, name)

        def wrapper(*args: Any, _original: Any = original, _name: str = name, **kwargs: Any) -> requests.Response:
            response: requests.Response = _original(*args, **kwargs)
            seen.responses.append((_name, response))
            return response

        monkeypatch.setattr(wavespeed.api.client.requests, name, wrapper)
    return seen


def cassettes(directory: Path) -> list[dict[str, Any]]:
    """Every cassette in ``directory``, each checked against schemas/formats/cassette.json."""
    validator = Draft202012Validator(CASSETTE_SCHEMA, format_checker=FormatChecker())
    found = []
    for path in sorted(directory.glob("*.json")):
        document = json.loads(path.read_text(encoding="utf-8"))
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]
        assert not errors, f"{path.name} breaks the cassette schema: {errors}"
        found.append(document)
    return found


def the_cassette(directory: Path, prediction_id: str) -> dict[str, Any]:
    return next(c for c in cassettes(directory) if c["prediction_id"] == prediction_id)


def assert_no_secret(root: Path, *secrets: str) -> None:
    files = [p for p in root.rglob("*") if p.is_file()]
    assert files
    for path in files:
        data = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in data, f"{secret!r} leaked into {path}"
        assert b"Bearer" not in data and b"authorization" not in data.lower(), path


def report(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


def dedupe(statuses: list[str]) -> list[str]:
    return [s for i, s in enumerate(statuses) if i == 0 or statuses[i - 1] != s]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # closed again: nothing listens there


# ---------------------------------------------------------------------------------------- against our own fake


def test_sdk_round_trip_through_the_proxy_records_what_the_sdk_saw(
    upstream: RunningServer, start_proxy: Callable[..., RunningProxy], spy: Spy, key: str, tmp_path: Path
) -> None:
    proxy = start_proxy(upstream.base_url)
    client = wavespeed.Client(api_key=key, base_url=proxy.base_url, max_connection_retries=0)

    output = client.run(T2I, {"prompt": "a lighthouse at dusk", "aspect_ratio": "16:9"}, poll_interval=0.05)

    # No drift against our own fake: no header on any answer, nothing in the report.
    assert all(DRIFT_HEADER not in r.headers for _, r in spy.responses)
    drift = report(tmp_path / "drift.json")
    assert drift["findings"] == [] and drift["breaking"] == 0
    submitted = spy.responses[0][1].json()["data"]
    cassette = the_cassette(tmp_path / "cassettes", submitted["id"])
    assert cassette["model"] == T2I and cassette["request"]["input"] == {
        "prompt": "a lighthouse at dusk",
        "aspect_ratio": "16:9",
    }
    assert cassette["request"]["headers"]["x-client-name"] == "wavespeed-python"
    assert cassette["match"]["input"]["num_images"] == 1  # the documented default, filled in for matching
    assert "enable_sync_mode" not in cassette["match"]["input"]

    # The status sequence is exactly what the SDK's answers carried, in order, with their counts.
    seen = spy.statuses()
    assert [s["status"] for s in cassette["statuses"]] == dedupe(seen) == ["created", "processing", "completed"]
    assert sum(s["seen"] for s in cassette["statuses"]) == len(seen)
    assert cassette["polls"] == spy.polls()
    times = [s["at"] for s in cassette["statuses"]]
    assert times == sorted(times) and times[0] == cassette["submit"]["seconds"]
    assert cassette["final"]["status"] == "completed" and cassette["final"]["at"] == times[-1]
    assert cassette["errors"] == []

    # The outputs' metadata matches the file the SDK's URL serves.
    (url,) = output["outputs"]
    downloaded = httpx.get(url)
    picture = Image.open(io.BytesIO(downloaded.content))
    (recorded,) = cassette["outputs"]
    assert recorded["url"] == url and recorded["source"] == "recorder" and recorded["placeholder"] is False
    assert recorded["size"] == len(downloaded.content)
    assert recorded["sha256"] == hashlib.sha256(downloaded.content).hexdigest()
    assert recorded["content_type"] == downloaded.headers["content-type"] == "image/jpeg"
    assert (recorded["width"], recorded["height"], recorded["format"]) == (*picture.size, "jpeg") == (1360, 768, "jpeg")
    stored = tmp_path / "cassettes" / recorded["media"]
    assert stored.read_bytes() == downloaded.content
    assert recorded["media"] == f"media/{recorded['sha256']}.jpeg"
    assert_no_secret(tmp_path, key)


def test_outputs_are_stored_once_by_content_hash(
    upstream: RunningServer, start_proxy: Callable[..., RunningProxy], key: str, tmp_path: Path
) -> None:
    proxy = start_proxy(upstream.base_url)
    client = wavespeed.Client(api_key=key, base_url=proxy.base_url, max_connection_retries=0)
    body = {"prompt": "the same picture twice", "size": "256*256", "seed": 7, "output_format": "png"}

    client.run(DEV, body, poll_interval=0.01)
    client.run(DEV, body, poll_interval=0.01)

    recorded = [c["outputs"][0] for c in cassettes(tmp_path / "cassettes")]
    assert len(recorded) == 2 and recorded[0]["sha256"] == recorded[1]["sha256"]
    assert [p.name for p in (tmp_path / "cassettes" / "media").iterdir()] == [f"{recorded[0]['sha256']}.png"]
    assert len({c["match"]["digest"] for c in cassettes(tmp_path / "cassettes")}) == 1


def test_placeholders_replace_outputs_with_pictures_of_the_same_size_and_format(
    upstream: RunningServer, start_proxy: Callable[..., RunningProxy], key: str, tmp_path: Path
) -> None:
    proxy = start_proxy(upstream.base_url, placeholders=True)
    client = wavespeed.Client(api_key=key, base_url=proxy.base_url, max_connection_retries=0)

    output = client.run(
        DEV, {"prompt": "a private picture", "size": "320*256", "output_format": "webp"}, poll_interval=0.01
    )

    original = httpx.get(output["outputs"][0]).content
    (cassette,) = cassettes(tmp_path / "cassettes")
    (recorded,) = cassette["outputs"]
    stored = (tmp_path / "cassettes" / recorded["media"]).read_bytes()
    assert recorded["placeholder"] is True and stored != original
    assert recorded["sha256"] == hashlib.sha256(original).hexdigest()  # what was recorded is the original's
    assert recorded["media"] == f"media/{hashlib.sha256(stored).hexdigest()}.webp"
    with Image.open(io.BytesIO(stored)) as picture:
        assert (picture.size, picture.format) == ((320, 256), "WEBP")
    assert (recorded["width"], recorded["height"], recorded["format"]) == (320, 256, "webp")
    assert all(
        hashlib.sha256(p.read_bytes()).hexdigest() != recorded["sha256"]
        for p in (tmp_path / "cassettes" / "media").iterdir()
    )


def test_a_failed_prediction_records_its_task_error(
    upstream: RunningServer, start_proxy: Callable[..., RunningProxy], key: str, tmp_path: Path
) -> None:
    FakeWaveSpeed(upstream.base_url, key).fail_next(code=1402)
    proxy = start_proxy(upstream.base_url)
    client = wavespeed.Client(api_key=key, base_url=proxy.base_url, max_connection_retries=0)

    with pytest.raises(RuntimeError, match="Prediction failed"):
        client.run(EDIT, {"prompt": "broken", "image": "https://example.com/a.png"}, poll_interval=0.01)

    (cassette,) = cassettes(tmp_path / "cassettes")
    final = cassette["final"]
    assert final["status"] == "failed" and final["code"] == 1402 and final["error"]
    assert [s["status"] for s in cassette["statuses"]][-1] == "failed"
    (error,) = cassette["errors"]
    assert error == {
        "where": "result",
        "at": final["at"],
        "http_status": 200,
        "status": "failed",
        "code": 1402,
        "error": final["error"],
    }
    assert cassette["outputs"] == []
    assert report(tmp_path / "drift.json")["findings"] == []


def test_a_refused_submit_is_recorded_by_its_input(
    upstream: RunningServer, start_proxy: Callable[..., RunningProxy], key: str, tmp_path: Path
) -> None:
    proxy = start_proxy(upstream.base_url)

    answer = httpx.post(
        f"{proxy.base_url}/api/v3/{T2I}", json={"aspect_ratio": "1:1"}, headers={"Authorization": f"Bearer {key}"}
    )

    assert answer.status_code == 400 and DRIFT_HEADER not in answer.headers
    (cassette,) = cassettes(tmp_path / "cassettes")
    assert cassette["prediction_id"] is None and cassette["submit"]["http_status"] == 400
    (error,) = cassette["errors"]
    assert error["where"] == "submit" and error["code"] == 400 and "prompt" in error["message"]
    assert (tmp_path / "cassettes" / f"rejected-{cassette['match']['digest'][7:23]}.json").is_file()


def test_sync_base64_submit_is_measured_from_the_inline_output(
    upstream: RunningServer, start_proxy: Callable[..., RunningProxy], key: str, tmp_path: Path
) -> None:
    proxy = start_proxy(upstream.base_url)

    answer = httpx.post(
        f"{proxy.base_url}/api/v3/{DEV}",
        headers={"Authorization": f"Bearer {key}"},
        json={"prompt": "inline", "size": "256*320", "enable_sync_mode": True, "enable_base64_output": True},
        timeout=30,
    )

    assert answer.status_code == 200 and DRIFT_HEADER not in answer.headers
    data = answer.json()["data"]
    cassette = the_cassette(tmp_path / "cassettes", data["id"])
    assert cassette["request"]["sync"] is True and cassette["request"]["base64"] is True
    assert [s["status"] for s in cassette["statuses"]] == ["completed"] and cassette["polls"] == 0
    (recorded,) = cassette["outputs"]
    assert recorded["encoding"] == "base64" and recorded["url"] is None and recorded["source"] == "base64"
    assert (recorded["width"], recorded["height"], recorded["format"]) == (256, 320, "jpeg")
    assert recorded["sha256"] == hashlib.sha256(base64.b64decode(data["outputs"][0])).hexdigest()
    assert data["outputs"][0] not in (tmp_path / "cassettes" / f"{data['id']}.json").read_text()


def test_uploads_are_recorded_with_the_prediction_that_uses_them(
    upstream: RunningServer, start_proxy: Callable[..., RunningProxy], key: str, tmp_path: Path
) -> None:
    proxy = start_proxy(upstream.base_url)
    client = wavespeed.Client(api_key=key, base_url=proxy.base_url, max_connection_retries=0)
    source = next(p for p in sorted((data_dir("fixtures") / "images").iterdir()) if p.suffix == ".png")

    ticket_url = client.upload(str(source))  # the ticket goes through the proxy, the PUT straight upstream
    binary = httpx.post(
        f"{proxy.base_url}/api/v3/media/upload/binary",
        headers={"Authorization": f"Bearer {key}"},
        files={"file": ("second.png", source.read_bytes(), "image/png")},
    )
    binary_url = binary.json()["data"]["download_url"]
    client.run(
        "wavespeed-ai/flux-kontext-pro/multi",
        {"prompt": "combine", "images": [ticket_url, binary_url]},
        poll_interval=0.01,
    )

    (cassette,) = cassettes(tmp_path / "cassettes")
    size = source.stat().st_size
    flows = {u["flow"]: u for u in cassette["uploads"]}
    assert set(flows) == {"ticket", "binary"}
    assert flows["ticket"]["filename"] == source.name and flows["ticket"]["size"] == size
    assert flows["ticket"]["type"] == "image" and flows["ticket"]["content_type"] == "image/png"
    assert flows["binary"]["filename"] == "second.png" and flows["binary"]["size"] == size
    assert cassette["match"]["input"]["images"] == [
        f"[upload {source.name} bytes:{size}]",
        f"[upload second.png bytes:{size}]",
    ]
    assert "upload-slots" not in json.dumps(cassette)  # the presigned PUT slot is a credential


def test_secrets_never_reach_a_cassette_or_the_report(
    upstream: RunningServer,
    start_proxy: Callable[..., RunningProxy],
    key: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("DEBUG")
    proxy = start_proxy(upstream.base_url)
    hook = "http://127.0.0.1:9/hook?token=hook-secret-123&id=7"
    query = f"webhook={quote(hook, safe='')}&api_key={key}&token=first-token-321&token=second-token-654"
    inline = base64.b64encode(b"\x89PNG" + bytes(4000)).decode()

    answer = httpx.post(
        f"{proxy.base_url}/api/v3/{T2I}?{query}",
        headers={"Authorization": f"Bearer {key}", "Cookie": "session=cookie-secret-456"},
        json={
            "prompt": f"my key is {key}",
            "mask": inline,
            "image": "https://bucket.example/in.png?X-Amz-Signature=sig-secret-789&X-Amz-Date=1",
        },
    )
    prediction = answer.json()["data"]["id"]
    httpx.get(f"{proxy.base_url}/api/v3/predictions/{prediction}/result", headers={"Authorization": f"Bearer {key}"})

    cassette = the_cassette(tmp_path / "cassettes", prediction)
    assert cassette["request"]["webhook"] == "http://127.0.0.1:9/hook"
    assert cassette["request"]["query"]["api_key"] == "[REDACTED]"
    assert cassette["request"]["input"]["prompt"] == "my key is [REDACTED]"
    assert cassette["request"]["input"]["image"] == "https://bucket.example/in.png"
    assert cassette["request"]["input"]["mask"].startswith("[data-uri application/octet-stream sha256:")
    assert "cookie" not in cassette["request"]["headers"]
    assert_no_secret(
        tmp_path,
        key,
        "hook-secret-123",
        "cookie-secret-456",
        "sig-secret-789",
        "first-token-321",
        "second-token-654",
        inline[:100],
    )
    # The Authorization header is logged by nobody; the key this test also put in the query string shows up only
    # in httpx's own request lines (the test's client and the proxy's), never in the proxy's or the server's logs.
    assert f"Bearer {key}" not in caplog.text
    ours = [r.getMessage() for r in caplog.records if r.name.startswith(("wavespeed_mock", "uvicorn"))]
    assert not [m for m in ours if key in m]


def test_outputs_downloaded_through_the_proxy_are_measured(
    upstream: RunningServer, start_proxy: Callable[..., RunningProxy], key: str, tmp_path: Path
) -> None:
    proxy = start_proxy(upstream.base_url, fetch_outputs=False)
    client = wavespeed.Client(api_key=key, base_url=proxy.base_url, max_connection_retries=0)
    output = client.run(DEV, {"prompt": "fetched by the client", "size": "256*256"}, poll_interval=0.01)
    (unmeasured,) = cassettes(tmp_path / "cassettes")[0]["outputs"]
    assert unmeasured["sha256"] is None and unmeasured["source"] is None

    through = httpx.get(proxy.base_url + urlsplit(output["outputs"][0]).path)

    (measured,) = cassettes(tmp_path / "cassettes")[0]["outputs"]
    assert measured["source"] == "proxy" and measured["size"] == len(through.content)
    assert (measured["width"], measured["height"]) == (256, 256)


def test_without_record_nothing_is_written_but_drift_is_still_checked(
    upstream: RunningServer, start_proxy: Callable[..., RunningProxy], key: str, tmp_path: Path
) -> None:
    proxy = start_proxy(upstream.base_url, record_dir=None)
    client = wavespeed.Client(api_key=key, base_url=proxy.base_url, max_connection_retries=0)

    client.run(T2I, {"prompt": "unrecorded"}, poll_interval=0.01)
    proxy.stop()

    assert not (tmp_path / "cassettes").exists()
    assert report(tmp_path / "drift.json")["responses_checked"] >= 3


# --------------------------------------------------------------------------------------- an upstream that drifts

PREDICTION = "0123456789abcdef0123456789abcdef"


def _prediction(status: str, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": PREDICTION,
        "model": T2I,
        "outputs": [],
        "urls": {"get": f"https://x.invalid/{PREDICTION}/result"},
        "has_nsfw_contents": [],
        "status": status,
        "created_at": "2025-09-25T09:12:48.239112031Z",
        "error": "",
        "timings": {"inference": 0},
    }
    data.update(changes)
    return data


def drifting_app() -> Starlette:
    async def submit(request: Request) -> Response:
        return JSONResponse({"code": 200, "message": "success", "data": _prediction("queued", priority=5)})

    async def result(request: Request) -> Response:
        data = _prediction("completed", has_nsfw_contents=[False])
        data["output"] = [f"https://cdn.invalid/{PREDICTION}.jpeg"]
        del data["outputs"]
        return JSONResponse({"code": 200, "message": "success", "data": data})

    async def refuse(request: Request) -> Response:
        return JSONResponse({"error": "prompt is required"}, status_code=400)

    async def balance(request: Request) -> Response:
        return JSONResponse({"code": "200", "message": "success", "data": {"balance": 1.5}})

    async def gateway(request: Request) -> Response:
        return PlainTextResponse("<html>502 Bad Gateway</html>", status_code=502)

    async def accepted(request: Request) -> Response:
        return JSONResponse({"code": 200, "message": "success", "data": {"ok": True}}, status_code=202)

    async def echo(request: Request) -> Response:
        seen = {
            "method": request.method,
            "path": request.scope["raw_path"].decode(),
            "query": request.scope["query_string"].decode(),
            "body": (await request.body()).decode(),
            "headers": [[k.decode(), v.decode()] for k, v in request.headers.raw],
        }
        return JSONResponse(seen, headers={"X-Upstream-Marker": "yes", "Set-Cookie": "a=1"})

    async def compressed(request: Request) -> Response:
        body = gzip.compress(json.dumps({"code": 200, "message": "success", "data": {"balance": 2}}).encode(), mtime=0)
        return Response(body, media_type="application/json", headers={"Content-Encoding": "gzip"})

    async def hang(request: Request) -> Response:
        # Answers only once the caller has gone: the proxy's timeout is what ends the exchange.
        while not await request.is_disconnected():
            await asyncio.sleep(0.01)
        return Response(status_code=204)

    return Starlette(
        routes=[
            Route(f"/api/v3/{T2I}", submit, methods=["POST"]),
            Route("/api/v3/predictions/{id}/result", result, methods=["GET"]),
            Route(f"/api/v3/{DEV}", refuse, methods=["POST"]),
            Route("/api/v3/balance", balance, methods=["GET"]),
            Route("/api/v3/webhook/secret", gateway, methods=["GET"]),
            Route("/api/v3/model/pricing", accepted, methods=["POST"]),
            Route("/api/v3/compressed", compressed, methods=["GET"]),
            Route("/api/v3/slow", hang, methods=["GET"]),
            Route("/echo/{rest:path}", echo, methods=["GET", "POST", "PUT", "DELETE"]),
        ]
    )


@pytest.fixture(scope="module")
def drifting() -> Iterator[RunningServer]:
    running = run_in_thread(drifting_app())
    yield running
    running.stop()


def test_each_drift_is_named_in_the_header_and_the_report(
    drifting: RunningServer,
    start_proxy: Callable[..., RunningProxy],
    key: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    proxy = start_proxy(drifting.base_url)
    auth = {"Authorization": f"Bearer {key}"}

    with httpx.Client(base_url=proxy.base_url, headers=auth) as http:
        submitted = http.post(f"/api/v3/{T2I}", json={"prompt": "x"})
        polled = [http.get(f"/api/v3/predictions/{PREDICTION}/result") for _ in range(2)]
        refused = http.post(f"/api/v3/{DEV}", json={})
        balance = http.get("/api/v3/balance")
        gateway = http.get("/api/v3/webhook/secret")
        accepted = http.post("/api/v3/model/pricing", json={})

    # The client still gets exactly what the upstream said.
    assert submitted.json()["data"]["status"] == "queued" and refused.status_code == 400
    assert refused.json() == {"error": "prompt is required"} and gateway.text == "<html>502 Bad Gateway</html>"
    assert submitted.headers[DRIFT_HEADER] == (
        "2 findings (1 breaking): extra-field data.priority; new-status-value data.status"
    )
    assert polled[0].headers[DRIFT_HEADER] == "1 finding (1 breaking): renamed-field data.outputs -> data.output"
    assert refused.headers[DRIFT_HEADER] == "1 finding (1 breaking): error-shape-changed (error body)"
    assert balance.headers[DRIFT_HEADER] == "1 finding (1 breaking): type-changed code"
    assert gateway.headers[DRIFT_HEADER] == "1 finding (1 breaking): error-shape-changed (error body)"
    assert accepted.headers[DRIFT_HEADER] == "1 finding (1 breaking): status-changed (HTTP status)"

    found = {(f["endpoint"], f["kind"], f["location"]): f for f in report(tmp_path / "drift.json")["findings"]}
    assert set(found) == {
        ("submit", "extra-field", "data.priority"),
        ("submit", "new-status-value", "data.status"),
        ("result", "renamed-field", "data.outputs"),
        ("submit", "error-shape-changed", "(error body)"),
        ("GET /api/v3/balance", "type-changed", "code"),
        ("GET /api/v3/webhook/secret", "error-shape-changed", "(error body)"),
        ("POST /api/v3/model/pricing", "status-changed", "(HTTP status)"),
    }
    assert [k for k, f in found.items() if not f["breaking"]] == [("submit", "extra-field", "data.priority")]
    status = found[("submit", "new-status-value", "data.status")]
    assert status["new"] == "queued" and "created" in status["old"] and status["model"] == T2I
    renamed = found[("result", "renamed-field", "data.outputs")]
    assert (renamed["old"], renamed["new"], renamed["count"]) == ("data.outputs", "data.output", 2)
    assert found[("submit", "error-shape-changed", "(error body)")]["model"] == DEV
    assert found[("submit", "error-shape-changed", "(error body)")]["new"] == ["error"]

    # The report file is a drift report input: exit 1, every finding listed under "proxy".
    assert main(["drift", "report", str(tmp_path / "drift.json")]) == 1
    text = capsys.readouterr().out
    assert "proxy (1 file(s)): 7 finding(s), 6 breaking" in text and "renamed-field" in text
    assert_no_secret(tmp_path, key)


def test_the_answer_is_passed_through_byte_for_byte(
    drifting: RunningServer, start_proxy: Callable[..., RunningProxy], key: str
) -> None:
    proxy = start_proxy(drifting.base_url)
    headers = {
        "Authorization": f"Bearer {key}",
        "X-Custom": "kept",
        "Connection": "keep-alive, X-Custom-Hop",
        "X-Custom-Hop": "dropped",
        "Accept-Encoding": "br;q=1.0, gzip;q=0.8",
    }

    echoed = httpx.post(f"{proxy.base_url}/echo/a%2Fb/c?x=1&x=2&y=%2F", content=b"raw \x00 body", headers=headers)

    seen = echoed.json()
    sent = dict(seen["headers"])
    assert (seen["method"], seen["path"], seen["query"]) == ("POST", "/echo/a%2Fb/c", "x=1&x=2&y=%2F")
    assert seen["body"] == "raw \x00 body"
    assert sent["authorization"] == f"Bearer {key}" and sent["x-custom"] == "kept"
    assert "x-custom-hop" not in sent and sent["host"] == urlsplit(drifting.base_url).netloc
    assert sent["accept-encoding"] == "gzip;q=0.8"  # only what the proxy can undo to check the answer
    assert echoed.headers["x-upstream-marker"] == "yes" and echoed.headers["set-cookie"] == "a=1"

    def raw(url: str) -> tuple[int, bytes, str | None]:
        with httpx.stream("GET", url, headers={"Accept-Encoding": "gzip"}) as response:
            return response.status_code, b"".join(response.iter_raw()), response.headers.get("content-encoding")

    assert raw(f"{proxy.base_url}/api/v3/compressed") == raw(f"{drifting.base_url}/api/v3/compressed")
    assert raw(f"{proxy.base_url}/api/v3/compressed")[2] == "gzip"
    assert DRIFT_HEADER not in httpx.get(f"{proxy.base_url}/api/v3/compressed").headers  # checked once decoded


def test_an_unreachable_upstream_is_a_502_envelope_and_a_reported_failure(
    start_proxy: Callable[..., RunningProxy], key: str, tmp_path: Path
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    proxy = start_proxy(dead)

    answer = httpx.get(
        f"{proxy.base_url}/api/v3/predictions/{PREDICTION}/result", headers={"Authorization": f"Bearer {key}"}
    )

    assert answer.status_code == 502 and answer.headers[UPSTREAM_ERROR_HEADER] == "ConnectError"
    body = answer.json()
    assert body["code"] == 502 and body["message"].startswith(f"Upstream {dead} failed: ConnectError")
    (failure,) = report(tmp_path / "drift.json")["findings"]
    assert failure["kind"] == "upstream-failure" and failure["new"] == "ConnectError" and not failure["breaking"]
    assert failure["endpoint"] == "result"


def test_an_upstream_timeout_is_a_502_naming_it(
    drifting: RunningServer, start_proxy: Callable[..., RunningProxy], tmp_path: Path
) -> None:
    proxy = start_proxy(drifting.base_url, timeout=0.3)

    answer = httpx.get(f"{proxy.base_url}/api/v3/slow", timeout=10)

    assert answer.status_code == 502 and answer.headers[UPSTREAM_ERROR_HEADER] == "ReadTimeout"
    assert "ReadTimeout" in answer.json()["message"]
    (failure,) = report(tmp_path / "drift.json")["findings"]
    assert failure["kind"] == "upstream-failure" and failure["endpoint"] == "GET /api/v3/slow"


def test_the_proxy_command_refuses_bad_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["proxy", "--upstream", "ftp://example.com"]) == 2
    assert "--upstream must be an http(s) URL" in capsys.readouterr().err
    assert main(["proxy", "--upstream", "http://127.0.0.1:1", "--placeholders"]) == 2
    assert "--placeholders only applies with --record" in capsys.readouterr().err
