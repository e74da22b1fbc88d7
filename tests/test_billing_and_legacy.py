"""Billing records, usage statistics (both from the fake's own records) and the legacy /api/v2/ paths."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from PIL import Image

from mock_server.contract.apischemas import schema
from mock_server.model.predictions import rfc3339
from mock_server.model.rules import make_outcome
from mock_server.testing.fixtures_data import image_path
from tests.conftest import T2I, Live

FLUX_DEV = "wavespeed-ai/flux-dev"


def post(live: Live, path: str, body: dict[str, Any], answer: str) -> dict[str, Any]:
    response = live.http.post(path, json=body)
    assert response.status_code == 200, response.text
    envelope: dict[str, Any] = response.json()
    Draft202012Validator(schema(answer)).validate(envelope)
    data: dict[str, Any] = envelope["data"]
    return data


def billings(live: Live, **query: Any) -> dict[str, Any]:
    return post(live, "/api/v3/billings/search", query, "billings-search.response")


def usage(live: Live, **query: Any) -> dict[str, Any]:
    return post(live, "/api/v3/user/usage_stats", query, "usage-stats.response")


@pytest.fixture
def spent(start_server: Callable[..., Live]) -> Live:
    """A fake whose clock moves only when told, with three charged predictions on two days and one failure."""
    live = start_server(frozen_clock=True)
    live.run_to_end(T2I, {"prompt": "a", "num_images": 2})
    live.backend.clock.advance(24 * 3600)
    live.run_to_end(FLUX_DEV, {"prompt": "b"})
    live.run_to_end(T2I, {"prompt": "c"})
    live.backend.rules.enqueue(make_outcome({"code": 5000}), tenant=live.tenant)
    live.run_to_end(T2I, {"prompt": "d"})
    return live


def test_billing_records_list_each_charge_newest_first(spent: Live) -> None:
    data = billings(spent)

    assert (data["page"], data["total"], data["has_more"]) == (1, 3, False)
    prices = [(item["prediction"]["model_uuid"], item["price"]) for item in data["items"]]
    assert prices == [(T2I, 0.04), (FLUX_DEV, 0.01), (T2I, 0.08)]
    first = data["items"][-1]
    assert (first["billing_type"], first["prediction"]["status"], first["consumption"]) == (
        "deduct",
        "completed",
        {"outputs": 2, "unit_price": 0.04, "unit": "image"},
    )
    assert spent.key not in str(data)  # the key is named by a stable hash only
    balance = spent.http.get("/api/v3/balance").json()["data"]["balance"]
    assert balance == pytest.approx(10.0 - sum(item["price"] for item in data["items"]))


def test_billing_records_page_and_filter(spent: Live) -> None:
    key = billings(spent)["items"][0]["access_key_uuid"]
    now = spent.backend.clock.now()

    assert [i["price"] for i in billings(spent, page=2, page_size=2)["items"]] == [0.08]
    assert billings(spent, page=1, page_size=2)["has_more"] is True
    assert billings(spent, model_uuid=FLUX_DEV)["total"] == 1
    assert billings(spent, billing_type="refund")["total"] == 0
    assert billings(spent, access_key_uuid=key)["total"] == 3
    assert billings(spent, access_key_uuid="another-key")["total"] == 0
    assert billings(spent, start_time=rfc3339(now - 3600))["total"] == 2
    assert billings(spent, end_time=rfc3339(now - 3600))["total"] == 1


def test_usage_stats_add_up_costs_per_model_and_per_day(spent: Live) -> None:
    data = usage(spent, start_time="2000-01-01", end_time=rfc3339(spent.backend.clock.now() + 1))

    assert data["summary"] == {"total_cost": pytest.approx(0.13), "total_requests": 4, "success_requests": 3}
    by_model = {row["model_uuid"]: row for row in data["per_model_usage"]}
    assert (by_model[T2I]["total_cost"], by_model[T2I]["total_count"], by_model[T2I]["unit_price"]) == (
        pytest.approx(0.12),
        2,
        0.04,
    )
    assert (by_model[T2I]["model_type"], by_model[FLUX_DEV]["model_type"]) == ("text-to-image", "image")
    assert [(day["amount"], day["count"]) for day in data["daily_usage"]] == [(0.08, 1), (0.05, 2)]
    assert usage(spent, model_uuid=FLUX_DEV)["summary"] == {
        "total_cost": 0.01,
        "total_requests": 1,
        "success_requests": 1,
    }


def test_usage_stats_default_to_the_last_seven_days_and_keep_charges_of_deleted_predictions(spent: Live) -> None:
    for item in billings(spent)["items"]:
        spent.http.delete(f"/api/v3/predictions/{item['prediction']['uuid']}")

    assert usage(spent)["summary"] == {"total_cost": pytest.approx(0.13), "total_requests": 1, "success_requests": 0}
    spent.backend.clock.advance(8 * 24 * 3600)
    assert usage(spent)["summary"]["total_cost"] == 0


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v3/billings/search", {"page_size": 500}),
        ("/api/v3/billings/search", {"billing_type": "charge"}),
        ("/api/v3/user/usage_stats", {"start_time": "last week"}),
        ("/api/v3/user/usage_stats", {"model_uuid": 3}),
    ],
)
def test_billing_and_usage_bodies_are_checked_by_their_schema(live: Live, path: str, body: dict[str, Any]) -> None:
    response = live.http.post(path, json=body)

    assert response.status_code == 400 and response.json()["errors"]


def test_the_v2_result_path_answers_like_v3(live: Live) -> None:
    prediction_id = live.submit(T2I, {"prompt": "x"}).json()["data"]["id"]

    v2 = [live.http.get(f"/api/v2/predictions/{prediction_id}/result").json()["data"] for _ in range(2)]

    assert [data["status"] for data in v2] == ["processing", "completed"]
    assert v2[1]["urls"]["get"].endswith(f"/api/v3/predictions/{prediction_id}/result")
    assert live.poll(prediction_id) == v2[1]
    assert live.http.get("/api/v2/predictions/" + "0" * 32 + "/result").status_code == 404


def test_the_v2_binary_upload_answers_like_v3(live: Live) -> None:
    picture = image_path("target-96x96.jpg").read_bytes()

    response = live.http.post("/api/v2/media/upload/binary", files={"file": ("t.jpg", picture, "image/jpeg")})

    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert (data["type"], data["filename"], data["size"]) == ("image", "t.jpg", len(picture))
    downloaded = Image.open(io.BytesIO(live.http.get(data["download_url"]).content))
    assert downloaded.size == (96, 96)
