"""The fake server over a real loopback socket: envelope, lifecycle, auth, validation, sync, base64, routing."""

from __future__ import annotations

import asyncio
import base64
import gc
import io
import re
import socket

import httpx
import pytest
from jsonschema import Draft202012Validator, FormatChecker
from PIL import Image

from mock_server.contract.catalog import Catalog
from mock_server.http.app import create_app
from mock_server.settings import Settings
from tests.conftest import DEV, EDIT, T2I, Live

HEX32 = re.compile(r"^[0-9a-f]{32}$")
RFC3339_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")


def check(schema: dict, instance: object) -> None:
    errors = list(Draft202012Validator(schema, format_checker=FormatChecker()).iter_errors(instance))
    assert not errors, [e.message for e in errors]


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_submit_answers_the_documented_envelope_with_client_required_types(live: Live, catalog: Catalog) -> None:
    response = live.submit(T2I, {"prompt": "a red bicycle"})

    assert response.status_code == 200
    body = response.json()
    check(catalog.endpoints[T2I].submit_schema, body)
    data = body["data"]
    assert (body["code"], body["message"]) == (200, "success")
    assert HEX32.match(data["id"])
    assert data["model"] == T2I
    assert data["status"] == "created"
    assert data["outputs"] == [] and data["has_nsfw_contents"] == []
    assert data["urls"]["get"] == f"{live.base_url}/api/v3/predictions/{data['id']}/result"
    assert RFC3339_Z.match(data["created_at"])
    assert data["error"] == ""
    assert isinstance(data["timings"]["inference"], int) and isinstance(data["executionTime"], int)


def test_poll_count_progression_moves_forward_and_terminal_state_never_changes(live: Live, catalog: Catalog) -> None:
    prediction_id = live.submit(T2I, {"prompt": "x", "num_images": 2}).json()["data"]["id"]

    seen = [live.poll(prediction_id) for _ in range(5)]

    assert [d["status"] for d in seen] == ["processing", "completed", "completed", "completed", "completed"]
    assert all(d == seen[1] for d in seen[2:])
    check(catalog.result_schema, {"code": 200, "message": "success", "data": seen[1]})
    assert len(seen[1]["outputs"]) == 2 and seen[1]["has_nsfw_contents"] == [False, False]
    assert seen[1]["timings"]["inference"] > 0


def test_prediction_alias_without_result_suffix_serves_the_same_prediction(live: Live) -> None:
    prediction_id = live.submit(T2I, {"prompt": "x"}).json()["data"]["id"]

    alias = live.http.get(f"/api/v3/predictions/{prediction_id}").json()["data"]

    assert alias["id"] == prediction_id and alias["status"] == "processing"


@pytest.mark.parametrize(
    ("body", "size", "fmt"),
    [
        ({"prompt": "p", "aspect_ratio": "16:9"}, (1360, 768), "JPEG"),
        ({"prompt": "p"}, (1024, 1024), "JPEG"),
    ],
)
def test_outputs_download_as_images_of_the_requested_size_and_format(
    live: Live, body: dict, size: tuple[int, int], fmt: str
) -> None:
    data = live.run_to_end(T2I, body)

    download = live.http.get(data["outputs"][0])

    assert download.status_code == 200
    assert download.headers["content-type"] == "image/jpeg"
    image = decode(download.content)
    assert (image.size, image.format) == (size, fmt)


@pytest.mark.parametrize(("fmt", "mime", "pil"), [("png", "image/png", "PNG"), ("webp", "image/webp", "WEBP")])
def test_dev_outputs_follow_size_and_output_format(live: Live, fmt: str, mime: str, pil: str) -> None:
    data = live.run_to_end(DEV, {"prompt": "p", "size": "512*384", "output_format": fmt, "seed": 3})

    download = live.http.get(data["outputs"][0])

    assert download.headers["content-type"] == mime
    image = decode(download.content)
    assert (image.size, image.format) == ((512, 384), pil)


def test_num_images_gives_distinct_outputs(live: Live) -> None:
    data = live.run_to_end(T2I, {"prompt": "p", "num_images": 3, "seed": 5})

    blobs = [live.http.get(url).content for url in data["outputs"]]

    assert len(set(blobs)) == 3


def test_same_model_parameters_prompt_and_seed_give_byte_identical_images(live: Live) -> None:
    body = {"prompt": "same", "seed": 42, "size": "320*256"}
    first = live.http.get(live.run_to_end(DEV, body)["outputs"][0]).content
    hits_before = live.backend.images.hits

    again = live.http.get(live.run_to_end(DEV, body)["outputs"][0]).content
    other_seed = live.http.get(live.run_to_end(DEV, {**body, "seed": 43})["outputs"][0]).content

    assert again == first
    assert other_seed != first
    assert live.backend.images.hits == hits_before + 1  # the identical request came from the cache


def test_seed_minus_one_draws_a_seed_and_records_it(live: Live) -> None:
    data = live.run_to_end(DEV, {"prompt": "p", "seed": -1, "size": "256*256"})

    prediction = live.backend.find(live.tenant, data["id"])

    assert prediction is not None and prediction.seed >= 0
    assert prediction.input["seed"] == -1  # what the client sent is kept as sent
    assert any(note.startswith("seed -1 resolved to") for note in prediction.notes)


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Basic abc"}, {"Authorization": ""}, {"Authorization": "Bearer"}],
    ids=["missing", "basic", "empty-header", "no-key"],
)
def test_missing_or_malformed_bearer_gets_401_in_the_error_envelope(
    live: Live, catalog: Catalog, headers: dict[str, str]
) -> None:
    response = httpx.post(f"{live.base_url}/api/v3/{T2I}", json={"prompt": "x"}, headers=headers)

    assert response.status_code == 401
    check(catalog.error_schema, response.json())


def test_api_key_option_restricts_the_accepted_keys(start_server) -> None:  # type: ignore[no-untyped-def]
    server = start_server(api_keys=("good",))
    url = f"{server.base_url}/api/v3/{T2I}"

    assert httpx.post(url, json={"prompt": "x"}, headers={"Authorization": "Bearer bad"}).status_code == 401
    assert httpx.post(url, json={"prompt": "x"}, headers={"Authorization": "Bearer good"}).status_code == 200


def test_a_prediction_is_visible_only_to_the_key_that_created_it(live: Live) -> None:
    prediction_id = live.submit(T2I, {"prompt": "x"}).json()["data"]["id"]

    response = httpx.get(
        f"{live.base_url}/api/v3/predictions/{prediction_id}/result", headers={"Authorization": "Bearer somebody-else"}
    )

    assert response.status_code == 404
    assert response.json()["code"] == 404


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("POST", "/api/v3/billings/nothing/here", 404),  # unknown model paths are served generically
        ("GET", f"/api/v3/{T2I}", 405),
        ("POST", "/api/v3/predictions/abc/result", 405),
        ("DELETE", "/api/v3/predictions/abc/result", 405),
        ("GET", "/nothing/here", 404),
        ("GET", "/api/v3/predictions/0123456789abcdef0123456789abcdef/result", 404),
    ],
)
def test_routing_errors_use_the_error_envelope(
    live: Live, catalog: Catalog, method: str, path: str, status: int
) -> None:
    response = live.http.request(method, path, json={"prompt": "x"} if method == "POST" else None)

    assert response.status_code == status
    check(catalog.error_schema, response.json())
    assert response.json()["code"] == status


def test_validation_400_lists_every_violation_with_path_and_reason(live: Live, catalog: Catalog) -> None:
    response = live.submit(
        "wavespeed-ai/flux-kontext-dev-ultra-fast",
        {"size": "100*2000", "num_images": 9, "output_format": "gif", "seed": "7"},
    )

    assert response.status_code == 400
    body = response.json()
    check(catalog.error_schema, body)
    paths = {e["path"] for e in body["errors"]}
    assert paths == {"prompt", "size", "num_images", "output_format", "seed"}
    for path in paths:
        assert path in body["message"]
    assert "between 256 and 1536" in body["message"]


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"{not json", "not valid JSON"), (b"[1, 2]", "JSON object"), (b"\xff\xfe", "not valid JSON")],
)
def test_malformed_bodies_get_400(live: Live, content: bytes, reason: str) -> None:
    response = live.http.post(f"/api/v3/{T2I}", content=content, headers={"Content-Type": "application/json"})

    assert response.status_code == 400
    assert reason in response.json()["message"]


def test_unknown_fields_are_accepted_and_kept_by_default(live: Live) -> None:
    data = live.submit(T2I, {"prompt": "x", "my_extra": {"a": 1}}).json()["data"]

    prediction = live.backend.find(live.tenant, data["id"])

    assert prediction is not None and prediction.input["my_extra"] == {"a": 1}


def test_unknown_fields_can_be_rejected(start_server) -> None:  # type: ignore[no-untyped-def]
    server = start_server(unknown_fields="reject")

    response = server.submit(T2I, {"prompt": "x", "my_extra": 1})

    assert response.status_code == 400
    assert response.json()["errors"] == [{"path": "my_extra", "message": "is not a parameter of this model"}]


def test_manual_progression_moves_only_when_advanced(start_server) -> None:  # type: ignore[no-untyped-def]
    server = start_server(progression="manual")
    prediction_id = server.submit(T2I, {"prompt": "x"}).json()["data"]["id"]

    statuses = [server.poll(prediction_id)["status"] for _ in range(3)]
    server.backend.advance(server.tenant, prediction_id)
    after_one = server.poll(prediction_id)["status"]
    server.backend.advance(server.tenant, prediction_id)

    assert statuses == ["created"] * 3
    assert after_one == "processing"
    assert server.poll(prediction_id)["status"] == "completed"


def test_time_progression_follows_the_clock(start_server) -> None:  # type: ignore[no-untyped-def]
    server = start_server(progression="time", frozen_clock=True)
    prediction_id = server.submit(EDIT, {"prompt": "x", "image": "https://example.com/a.png"}).json()["data"]["id"]
    queue, run = server.backend.catalog.endpoints[EDIT].latency

    first = server.poll(prediction_id)["status"]
    server.backend.clock.advance(queue)
    second = server.poll(prediction_id)["status"]
    server.backend.clock.advance(run)
    final = server.poll(prediction_id)

    assert (first, second, final["status"]) == ("created", "processing", "completed")
    assert final["timings"]["inference"] == int(run * 1000)
    assert final["executionTime"] == int((queue + run) * 1000)


def test_sync_mode_returns_the_finished_prediction(live: Live, catalog: Catalog) -> None:
    response = live.submit(T2I, {"prompt": "x", "enable_sync_mode": True})

    body = response.json()
    check(catalog.endpoints[T2I].submit_schema, body)
    assert body["data"]["status"] == "completed" and len(body["data"]["outputs"]) == 1


def test_sync_mode_past_the_timeout_answers_5004_and_stays_pollable(start_server) -> None:  # type: ignore[no-untyped-def]
    server = start_server(progression="time", frozen_clock=True, sync_timeout=1.0)

    response = server.submit(EDIT, {"prompt": "x", "image": "https://example.com/a.png", "enable_sync_mode": True})

    assert response.status_code == 200
    data = response.json()["data"]
    assert (data["status"], data["code"]) == ("processing", 5004)
    assert data["error"].startswith("Sync mode timed out after 1 seconds.")
    server.backend.clock.advance(60)
    assert server.poll(data["id"])["status"] == "completed"


def test_base64_mode_returns_naked_base64_of_the_image(live: Live) -> None:
    data = live.run_to_end(
        DEV, {"prompt": "x", "size": "256*320", "output_format": "png", "enable_base64_output": True}
    )

    image = decode(base64.b64decode(data["outputs"][0], validate=True))

    assert not data["outputs"][0].startswith("data:")
    assert (image.size, image.format) == ((256, 320), "PNG")


def test_webhook_with_base64_is_rejected_with_the_documented_body(live: Live, catalog: Catalog) -> None:
    response = live.submit(
        DEV, {"prompt": "x", "enable_base64_output": True}, params={"webhook": "http://127.0.0.1:9/hook"}
    )

    assert response.status_code == 400
    check(catalog.error_schema, response.json())
    assert response.json()["error"].startswith("webhook callback does not support base64 output")


def test_openapi_document_is_served(live: Live) -> None:
    document = live.http.get("/openapi.json").json()

    assert document["openapi"].startswith("3.1")
    assert f"/api/v3/{T2I}" in document["paths"]


@pytest.mark.parametrize(
    ("model", "body"),
    [
        (T2I, {"prompt": "", "output_format": None, "size": {}, "images": 5}),
        (DEV, {"aspect_ratio": [], "images": {"a": 1}}),
        ("wavespeed-ai/flux-kontext-max/multi", {"prompt": "", "images": [], "seed": [1], "num_images": "x"}),
    ],
    ids=["pro-t2i", "dev", "max-multi"],
)
def test_unknown_fields_are_kept_but_never_acted_on(live: Live, model: str, body: dict) -> None:
    # Found by the conformance suite: parameters another endpoint documents were read here unchecked.
    data = live.run_to_end(model, body)

    assert data["status"] == "completed"
    assert decode(live.http.get(data["outputs"][0]).content).size == (1024, 1024)
    prediction = live.backend.find(live.tenant, data["id"])
    assert prediction is not None and prediction.input == body


def test_nagle_is_turned_off_once_per_connection_and_forgotten_with_it() -> None:
    # What uvicorn hands the app with --workers: a connection that still has Nagle's algorithm on.
    app = create_app(Settings())
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    accepted, _ = listener.accept()
    accepted.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
    tuned: list[str] = []

    class Transport:
        def get_extra_info(self, name: str) -> object:
            tuned.append(name)
            return accepted if name == "socket" else None

    class Cycle:  # uvicorn's send is a bound method of the request's cycle, which holds the transport
        def __init__(self, transport: Transport) -> None:
            self.transport = transport

        async def send(self, message: dict) -> None:
            pass

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def health(cycle: Cycle) -> None:
        scope = {"type": "http", "method": "GET", "path": "/_mock/health", "headers": [], "query_string": b""}
        await app(scope, receive, cycle.send)

    transport = Transport()
    for _ in range(3):
        asyncio.run(health(Cycle(transport)))
    assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    assert tuned == ["socket"]  # once, not per request
    known = id(transport)
    assert known in app._tuned
    del transport
    gc.collect()
    assert known not in app._tuned  # a new connection at the same address is tuned anew
    for sock in (client, accepted, listener):
        sock.close()
