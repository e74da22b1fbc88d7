"""The REST calls the official CLI (@wavespeed/cli) and MCP server (@wavespeed/mcp) make beside the SDK, sent with
plain httpx the way their src/lib/api.ts sends them, and read the way they read them (reference §1, §8)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.conftest import T2I, Live

# Both send these attribution headers on every call (reference §1); the fake must take them in its stride.
ATTRIBUTION = {"X-Client-Name": "wavespeed-cli", "X-Client-Version": "0.2.2", "X-Client-OS": "linux"}


def api_get(live: Live, path: str) -> Any:
    """apiGet: non-2xx → error from body.message [error_code]; 200 with code != 200 → error; else data."""
    response = live.http.get(path, headers=ATTRIBUTION)
    assert response.is_success, response.text
    body = response.json()
    assert body["code"] == 200, body
    return body["data"]


def api_post(live: Live, path: str, body: dict[str, Any]) -> Any:
    response = live.http.post(path, json=body, headers={**ATTRIBUTION, "Content-Type": "application/json"})
    assert response.is_success, response.text
    envelope = response.json()
    assert envelope["code"] == 200, envelope
    return envelope["data"]


def iso(moment: dt.datetime) -> str:
    """JavaScript's Date.prototype.toISOString()."""
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def test_models_and_one_models_schema_as_list_models_and_get_model_schema_read_them(live: Live) -> None:
    models = api_get(live, "/api/v3/models")

    by_id = {m["model_id"]: m for m in models}
    entry = by_id[T2I]
    assert isinstance(entry["name"], str) and isinstance(entry["base_price"], float)
    run = entry["api_schema"]["api_schemas"][0]
    assert (run["type"], run["method"], run["api_path"]) == ("model_run", "POST", f"/api/v3/{T2I}")
    schema = run["request_schema"]
    assert schema["type"] == "object" and "prompt" in schema["required"]
    assert set(schema["x-order-properties"]) == set(schema["properties"])
    assert schema["properties"]["aspect_ratio"]["enum"][:2] == ["21:9", "16:9"]


def test_balance_as_fetch_balance_reads_it(live: Live) -> None:
    assert api_get(live, "/api/v3/balance") == {"balance": 10.0}


def test_price_as_fetch_pricing_reads_it(live: Live) -> None:
    data = api_post(live, "/api/v3/model/price", {"model_id": T2I, "inputs": {"prompt": "a cat", "num_images": 2}})

    assert data["model_id"] == T2I
    assert data["price"] == data["discounted_price"] == pytest.approx(0.08)
    assert data.get("discount_rate") is None and data.get("currency", "USD") == "USD"
    assert data["unit_price"] == pytest.approx(0.08)  # what `wavespeed price` prints


def test_run_history_show_and_delete_as_the_cli_does_them(live: Live) -> None:
    submitted = api_post(live, f"/api/v3/{T2I}", {"prompt": "cli prompt"})  # submitPrediction, async
    prediction_id = submitted["id"]
    assert submitted["urls"]["get"].endswith(f"/api/v3/predictions/{prediction_id}/result")
    for _ in range(10):  # waitForPrediction (poll-count progression here: a few polls)
        item = api_get(live, f"/api/v3/predictions/{prediction_id}/result")
        if item["status"] in ("completed", "failed", "cancelled", "timeout"):
            break
    assert item["status"] == "completed" and isinstance(item["executionTime"], int)
    assert isinstance(item["outputs"][0], str) and item["error"] == ""

    now = dt.datetime.now(dt.timezone.utc)
    history = api_post(
        live,
        "/api/v3/predictions",
        {  # fetchHistory: the last 24 h by default
            "page": 1,
            "page_size": 20,
            "created_after": iso(now - dt.timedelta(days=1)),
            "created_before": iso(now + dt.timedelta(seconds=5)),
            "include_inputs": True,
        },
    )
    assert history["page"] == 1
    [listed] = history["items"]
    assert (listed["id"], listed["model"], listed["status"]) == (prediction_id, T2I, "completed")
    prompt = (listed.get("inputs") or {}).get("prompt") or (listed.get("input") or {}).get("prompt")
    assert prompt == "cli prompt"
    assert dt.datetime.fromisoformat(listed["created_at"].replace("Z", "+00:00")) <= now

    assert api_post(live, "/api/v3/predictions/delete", {"ids": [prediction_id]}) == {"deleted_count": 1}
    assert api_post(live, "/api/v3/predictions", {"page": 1, "page_size": 20})["items"] == []
    gone = live.http.get(f"/api/v3/predictions/{prediction_id}/result", headers=ATTRIBUTION)
    assert gone.status_code == 404 and gone.json()["message"]  # httpError shows body.message


def test_billings_and_usage_as_the_cli_reads_them(live: Live) -> None:
    live.run_to_end(T2I, {"prompt": "x"})
    now = dt.datetime.now(dt.timezone.utc)

    billings = api_post(live, "/api/v3/billings/search", {"page": 1, "page_size": 20})
    stats = api_post(
        live,
        "/api/v3/user/usage_stats",
        {"start_time": iso(now - dt.timedelta(days=7)), "end_time": iso(now + dt.timedelta(seconds=5))},
    )

    [record] = billings["items"]
    assert (billings["page"], billings["has_more"], record["billing_type"]) == (1, False, "deduct")
    assert record["price"] == pytest.approx(0.04) and record["prediction"]["model_uuid"] == T2I
    assert stats["summary"] == {"total_cost": 0.04, "total_requests": 1, "success_requests": 1}
    assert stats["per_model_usage"][0]["model_uuid"] == T2I


def test_an_error_names_what_went_wrong_as_http_error_shows_it(start_server: Callable[..., Live]) -> None:
    live = start_server(unknown_models="reject")

    response = live.http.post(
        "/api/v3/wavespeed-ai/flux-kontext-pro/text2image", json={"prompt": "x"}, headers=ATTRIBUTION
    )

    body = response.json()
    assert response.status_code == 404
    shown = f"{body['message']} [{body['error_code']}]" if body.get("error_code") else body["message"]
    assert shown.endswith(f"did you mean '{T2I}'? [model_not_found]")


def test_the_mcp_servers_run_model_path_on_a_model_without_a_schema(live: Live) -> None:
    """run_model: submit, then GET /result every 2 s until completed/failed/cancelled/timeout; reads id, model,
    status, outputs, error, created_at, executionTime."""
    data = api_post(live, "/api/v3/wavespeed-ai/wan-2.1/i2v-480p-lora", {"prompt": "x", "image": "https://a/b.png"})
    for _ in range(3):
        data = api_get(live, f"/api/v3/predictions/{data['id']}/result")

    assert (data["model"], data["status"]) == ("wavespeed-ai/wan-2.1/i2v-480p-lora", "completed")
    video = httpx.get(data["outputs"][0])
    assert data["outputs"][0].endswith(".mp4") and video.headers["content-type"] == "video/mp4"
