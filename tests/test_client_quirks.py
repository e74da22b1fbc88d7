"""What each official client requires of a response (reference: wavespeed_api.md §2, §3, §8), checked on
every shape the fake produces: submitted, processing, completed, failed, sync, sync timeout, base64, upload."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from mock_server.testing.client import FakeWaveSpeed
from tests.conftest import DEV, T2I, Live

Shape = tuple[int, dict[str, Any]]  # (HTTP status, JSON body)


@pytest.fixture
def shapes(live: Live) -> Iterator[dict[str, Shape]]:
    """Every kind of answer a client can get, taken from a live fake."""
    fake = FakeWaveSpeed(live.base_url, live.key, controller=live.running.app.state.mock.controller)

    def call(response: httpx.Response) -> Shape:
        return response.status_code, response.json()

    submitted = live.submit(T2I, {"prompt": "x"})
    prediction_id = submitted.json()["data"]["id"]
    processing = live.http.get(f"/api/v3/predictions/{prediction_id}/result")
    completed = live.http.get(f"/api/v3/predictions/{prediction_id}/result")
    fake.fail_next(code=1402)
    failed_id = live.submit(T2I, {"prompt": "x"}).json()["data"]["id"]
    live.poll(failed_id)
    failed = live.http.get(f"/api/v3/predictions/{failed_id}/result")
    fake.enqueue(sync_timeout=True)
    sync_timeout = live.submit(T2I, {"prompt": "x", "enable_sync_mode": True})
    yield {
        "submitted": call(submitted),
        "processing": call(processing),
        "completed": call(completed),
        "failed": call(failed),
        "sync": call(live.submit(T2I, {"prompt": "x", "enable_sync_mode": True})),
        "sync-timeout": call(sync_timeout),
        "base64": call(
            live.submit(DEV, {"prompt": "x", "size": "256*256", "enable_base64_output": True, "enable_sync_mode": True})
        ),
    }
    fake.reset()


def go_client(status: int, body: dict[str, Any]) -> None:
    """wavespeed-go decodes into a typed struct and insists on HTTP 200 and a status."""
    assert status == 200
    data = body["data"]
    for name in ("id", "model", "status", "error", "created_at"):
        assert data.get(name) is None or isinstance(data[name], str), name
    assert isinstance(data.get("code", 0), int) and not isinstance(data.get("code", 0), bool)
    assert isinstance(data["urls"], dict) and all(isinstance(v, str) for v in data["urls"].values())
    assert isinstance(data["outputs"], list)
    assert data.get("status"), "missing status in response"


def java_client(status: int, body: dict[str, Any]) -> None:
    """wavespeed-java casts data.id, data.status and data.error to String (a number there is a crash)."""
    assert status == 200
    for name in ("id", "status", "error"):
        assert isinstance(body["data"][name], str), name


def legacy_python_client(status: int, body: dict[str, Any]) -> None:
    """client-python's pydantic model requires these fields and parses created_at as a datetime."""
    data = body["data"]
    for name in ("id", "model", "outputs", "has_nsfw_contents", "status", "created_at", "executionTime"):
        assert name in data, name
    assert isinstance(data["urls"]["get"], str)
    assert isinstance(data["executionTime"], int)
    dt.datetime.fromisoformat(data["created_at"].replace("Z", "+00:00"))


def ai_sdk_provider(status: int, body: dict[str, Any]) -> None:
    """ai-sdk-provider's zod schemas: numeric code, string id/status, typed optional fields."""
    assert isinstance(body["code"], int) and isinstance(body.get("message", ""), str)
    data = body["data"]
    assert isinstance(data["id"], str) and isinstance(data["status"], str)
    assert all(isinstance(o, str) for o in data.get("outputs") or [])
    assert data.get("error") is None or isinstance(data["error"], str)
    assert all(isinstance(v, (int, float)) for v in (data.get("timings") or {}).values())
    assert all(isinstance(v, bool) for v in data.get("has_nsfw_contents") or [])


def python_sdk(status: int, body: dict[str, Any]) -> None:
    """wavespeed 2.0.5 wants HTTP 200 exactly and calls .get on data: an object, never null."""
    assert status == 200 and isinstance(body["data"], dict)


def mcp_python(status: int, body: dict[str, Any]) -> None:
    """wavespeed_mcp raises on any top-level "error" key, even with HTTP 200."""
    assert "error" not in body


def envelope_clients(status: int, body: dict[str, Any]) -> None:
    """MCP-TS, the CLI, desktop, n8n and dify throw unless the body's code is 200 on success."""
    assert body["code"] == 200 and body["message"] == "success"


CLIENTS: list[Callable[[int, dict[str, Any]], None]] = [
    go_client,
    java_client,
    legacy_python_client,
    ai_sdk_provider,
    python_sdk,
    mcp_python,
    envelope_clients,
]


@pytest.mark.parametrize("client", CLIENTS, ids=lambda c: c.__name__)
def test_every_answer_satisfies_each_official_client(shapes: dict[str, Shape], client: Callable[..., None]) -> None:
    for name, (status, body) in shapes.items():
        try:
            client(status, body)
        except AssertionError as exc:
            raise AssertionError(f"{client.__name__} would reject the {name!r} answer: {exc}") from None


def test_failures_and_sync_timeouts_carry_what_clients_detect_them_by(shapes: dict[str, Shape]) -> None:
    failed = shapes["failed"][1]["data"]
    timeout = shapes["sync-timeout"][1]["data"]

    assert (failed["status"], failed["code"], failed["outputs"]) == ("failed", 1402, [])
    # Every SDK's rule: data.code == 5004, or processing with "Sync mode timed out" in the error.
    assert timeout["code"] == 5004 and timeout["status"] == "processing"
    assert "Sync mode timed out" in timeout["error"]


def test_urls_get_is_pollable_as_legacy_clients_do(live: Live) -> None:
    data = live.submit(T2I, {"prompt": "x"}).json()["data"]

    followed = live.http.get(data["urls"]["get"])

    assert followed.status_code == 200 and followed.json()["data"]["id"] == data["id"]


def test_errors_are_the_envelope_cli_and_mcp_clients_parse(live: Live) -> None:
    responses = [
        httpx.post(f"{live.base_url}/api/v3/{T2I}", json={"prompt": "x"}),
        live.submit(T2I, {"num_images": 99}),
        live.http.get("/api/v3/predictions/0123456789abcdef0123456789abcdef/result"),
    ]

    for response in responses:
        body = response.json()
        assert body["code"] == response.status_code and isinstance(body["message"], str) and body["message"]


def test_channel_attribution_headers_are_tolerated_and_recorded(live: Live) -> None:
    headers = {"X-Client-Name": "wavespeed-js", "X-Client-Version": "0.3.2", "X-Client-OS": "linux"}

    response = live.submit(T2I, {"prompt": "x"}, headers=headers)

    assert response.status_code == 200
    entry = live.running.app.state.mock.journal.find(tenant=live.tenant, method="POST")[-1]
    assert entry.headers["x-client-name"] == "wavespeed-js"
