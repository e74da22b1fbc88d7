"""Price quotes (POST /api/v3/model/price and /model/pricing), the price table, and that the meter agrees."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from mock_server.contract.catalog import Catalog
from mock_server.contract.pricing import KONTEXT_PRICES
from mock_server.resources import data_dir
from tests.conftest import T2I, Live


def price(live: Live, model_id: str, inputs: dict[str, Any] | None = None, path: str = "price") -> dict[str, Any]:
    body: dict[str, Any] = {"model_id": model_id}
    if inputs is not None:
        body["inputs"] = inputs
    response = live.http.post(f"/api/v3/model/{path}", json=body)
    assert response.status_code == 200, response.text
    envelope = response.json()
    assert (envelope["code"], envelope["message"]) == (200, "success")
    data: dict[str, Any] = envelope["data"]
    return data


def test_every_served_kontext_endpoint_has_a_price_that_agrees_with_the_schemas_index(catalog: Catalog) -> None:
    index = json.loads((data_dir("schemas") / "index.json").read_text())["endpoints"]

    assert set(KONTEXT_PRICES) == set(catalog.endpoints)
    for entry in index:
        table = KONTEXT_PRICES[entry["model"]]
        endpoint = catalog.endpoints[entry["model"]]
        assert (endpoint.price_usd, endpoint.price_unit) == (table.usd, table.unit)
        if entry.get("price_usd") is not None:  # where the sources carry a price, it is the table's
            assert (entry["price_usd"], entry["price_unit"]) == (table.usd, table.unit)


@pytest.mark.parametrize(
    ("model", "inputs", "expected"),
    [
        (T2I, {"prompt": "x", "num_images": 3}, 0.12),  # per image
        (T2I, {"prompt": "x"}, 0.04),  # num_images defaults to 1
        (T2I, {"num_images": 9}, 0.04),  # beyond the schema's range: the default, as a submit would refuse it
        ("wavespeed-ai/flux-kontext-dev/multi", {"num_images": 4}, 0.03),  # per run, whatever it makes
        ("wavespeed-ai/flux-kontext-dev/multi-ultra-fast", {"num_images": 2}, 0.05),
        ("wavespeed-ai/flux-kontext-pro", {}, 0.04),  # assumed: pro family
        ("wavespeed-ai/flux-kontext-max/text-to-image", {}, 0.08),  # assumed: max family
        ("wavespeed-ai/flux-kontext-dev-lora", {"num_images": 2}, 0.05),  # assumed: dev's price
    ],
)
def test_price_answers_what_the_cli_and_mcp_server_read(
    live: Live, model: str, inputs: dict[str, Any], expected: float
) -> None:
    data = price(live, model, inputs)

    assert data["model_id"] == model
    assert data["price"] == data["discounted_price"] == data["unit_price"] == pytest.approx(expected)
    assert data["currency"] == "USD" and "discount_rate" not in data


def test_pricing_answers_what_the_desktop_app_reads(live: Live) -> None:
    data = price(live, T2I, {"num_images": 2}, path="pricing")

    assert data == {"model_id": T2I, "unit_price": pytest.approx(0.08), "currency": "USD"}


def test_unknown_models_are_quoted_the_generic_price_per_output(start_server: Callable[..., Live]) -> None:
    live = start_server(generic_price=0.05)

    data = price(live, "wavespeed-ai/flux-dev", {"num_images": 3})

    assert (data["price"], data["unit"], data["base_price"]) == (pytest.approx(0.15), "image", 0.05)


def test_generic_outputs_are_charged_the_generic_price(start_server: Callable[..., Live]) -> None:
    live = start_server(generic_price=0.25, starting_balance=5.0)

    live.run_to_end("wavespeed-ai/flux-dev", {"prompt": "p", "num_images": 3})

    assert live.http.get("/api/v3/balance").json()["data"]["balance"] == pytest.approx(5.0 - 0.75)


def test_in_reject_mode_an_unknown_model_has_no_price(start_server: Callable[..., Live]) -> None:
    live = start_server(unknown_models="reject")

    response = live.http.post("/api/v3/model/price", json={"model_id": "wavespeed-ai/flux-kontext-pro/text2image"})

    assert response.status_code == 404 and response.json()["suggestion"] == T2I


@pytest.mark.parametrize("body", [{}, {"model_id": 7}, {"model_id": T2I, "inputs": []}, [T2I]])
def test_price_bodies_are_checked_by_their_schema(live: Live, body: Any) -> None:
    response = live.http.post("/api/v3/model/price", json=body)

    assert response.status_code == 400
    assert response.json()["errors"]


def test_price_needs_the_api_key(live: Live) -> None:
    response = live.http.post("/api/v3/model/price", json={"model_id": T2I}, headers={"Authorization": ""})

    assert response.status_code == 401


def test_the_meter_charges_what_the_quote_said(live: Live) -> None:
    quoted = price(live, T2I, {"num_images": 2})["price"] + price(live, "wavespeed-ai/flux-dev", {})["price"]

    live.run_to_end(T2I, {"prompt": "x", "num_images": 2})
    live.run_to_end("wavespeed-ai/flux-dev", {"prompt": "x"})

    assert live.http.get("/api/v3/balance").json()["data"]["balance"] == pytest.approx(10.0 - quoted)
    listed = {m["model_id"]: m["base_price"] for m in live.http.get("/api/v3/models").json()["data"]}
    assert listed[T2I] == price(live, T2I)["base_price"]
