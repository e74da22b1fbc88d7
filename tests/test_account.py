"""The balance endpoint and its per-tenant price meter."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from mock_server.contract.catalog import Catalog
from mock_server.http.account import Accounts
from mock_server.model.rules import make_outcome
from tests.conftest import Live

PRICED = "wavespeed-ai/flux-kontext-pro"  # $0.04 per image in the schemas index
PER_RUN = "wavespeed-ai/flux-kontext-dev/multi"  # $0.03 per run
ASSUMED = "wavespeed-ai/flux-kontext-max/text-to-image"  # no documented price: the max family's, assumed


def balance(server: Live) -> float:
    response = server.http.get("/api/v3/balance")
    assert response.status_code == 200
    body = response.json()
    assert (body["code"], body["message"]) == (200, "success")
    value: float = body["data"]["balance"]
    return value


def accounts(server: Live) -> Accounts:
    meter: Accounts = server.running.app.state.mock.accounts
    return meter


def test_a_new_key_starts_with_the_configured_balance(start_server: Callable[..., Live]) -> None:
    default, configured = start_server(), start_server(starting_balance=1.5)

    assert (balance(default), balance(configured)) == (10.0, 1.5)


def test_balance_needs_the_api_key(live: Live) -> None:
    response = httpx.get(f"{live.base_url}/api/v3/balance")

    assert response.status_code == 401 and response.json()["code"] == 401


def test_a_completed_prediction_is_charged_its_catalog_price_per_output(live: Live, catalog: Catalog) -> None:
    live.run_to_end(PRICED, {"prompt": "x", "image": "https://example.com/a.png"})
    live.run_to_end(PER_RUN, {"prompt": "x", "images": ["https://example.com/a.png"], "num_images": 2})

    expected = catalog.endpoints[PRICED].cost(1) + catalog.endpoints[PER_RUN].cost(2)
    assert expected == pytest.approx(0.07)
    assert balance(live) == pytest.approx(10.0 - expected)
    assert accounts(live).spent(live.tenant) == pytest.approx(expected)
    assert accounts(live).charged(live.tenant) == 2


def test_failed_predictions_are_free_and_assumed_prices_are_charged(live: Live) -> None:
    live.backend.rules.enqueue(make_outcome({"status": "failed", "code": 5000}), tenant=live.tenant)
    failed = live.run_to_end(PRICED, {"prompt": "x", "image": "https://example.com/a.png"})

    assert failed["status"] == "failed"
    assert balance(live) == 10.0
    live.run_to_end(ASSUMED, {"prompt": "x"})
    assert balance(live) == pytest.approx(9.92)


def test_each_key_has_its_own_meter(live: Live) -> None:
    other = Live(live.running, key=live.key + "-other")
    try:
        live.run_to_end(PRICED, {"prompt": "x", "image": "https://example.com/a.png"})

        assert balance(other) == 10.0
        assert balance(live) == pytest.approx(9.96)
    finally:
        other.http.close()


def test_a_time_progressed_prediction_is_charged_when_due_without_polls(start_server: Callable[..., Live]) -> None:
    server = start_server(progression="time", frozen_clock=True)
    server.submit(PRICED, {"prompt": "x", "image": "https://example.com/a.png"})
    before = balance(server)

    server.backend.clock.advance(3600)

    assert (before, balance(server)) == (10.0, pytest.approx(9.96))


def test_the_account_balance_variant_names_its_currency(live: Live) -> None:
    data = live.http.get("/api/v3/account/balance").json()["data"]

    assert data == {"balance": 10.0, "currency": "USD"}


def test_reset_and_set_balance_restart_the_meter(live: Live) -> None:
    live.run_to_end(PRICED, {"prompt": "x", "image": "https://example.com/a.png"})
    meter = accounts(live)

    live.running.app.state.mock.store.reset(live.tenant)
    after_reset = balance(live)
    meter.set_balance(live.tenant, 0.05)
    live.run_to_end(PRICED, {"prompt": "x", "image": "https://example.com/a.png"})
    live.run_to_end(PRICED, {"prompt": "x", "image": "https://example.com/a.png"})

    assert after_reset == 10.0
    assert balance(live) == pytest.approx(-0.03)  # never refused: the real API's answer to no credit is unknown
