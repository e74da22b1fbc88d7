"""Prediction history (POST /api/v3/predictions) and deletion (POST /predictions/delete, DELETE /predictions/{id})."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator

from mock_server.contract.apischemas import schema
from mock_server.model.predictions import rfc3339
from mock_server.model.rules import make_outcome
from tests.conftest import T2I, Live

FLUX_DEV = "wavespeed-ai/flux-dev"


@pytest.fixture
def other(live: Live) -> Iterator[Live]:
    """A second tenant on the same server."""
    client = Live(live.running, key=live.key + "-other")
    yield client
    client.http.close()
    client.running.app.state.mock.store.reset(client.key)


def history(live: Live, **query: Any) -> dict[str, Any]:
    response = live.http.post("/api/v3/predictions", json=query)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    Draft202012Validator(schema("predictions-list.response")).validate(body)
    data: dict[str, Any] = body["data"]
    return data


def submit(live: Live, model: str = T2I, **body: Any) -> str:
    response = live.submit(model, {"prompt": "x", **body})
    assert response.status_code == 200, response.text
    prediction_id: str = response.json()["data"]["id"]
    return prediction_id


def test_history_lists_the_callers_predictions_newest_first_with_their_current_state(live: Live, other: Live) -> None:
    first = live.run_to_end(T2I, {"prompt": "first"})["id"]
    live.backend.rules.enqueue(make_outcome({"code": 1402}), tenant=live.tenant)
    failed = live.run_to_end(FLUX_DEV, {"prompt": "second"})["id"]
    waiting = submit(live)
    other.submit(T2I, {"prompt": "not mine"})

    data = history(live)

    assert (data["page"], data["page_size"], data["total"]) == (1, 20, 3)
    assert [i["id"] for i in data["items"]] == [waiting, failed, first]
    done, broken, created = data["items"][2], data["items"][1], data["items"][0]
    assert (done["status"], done["outputs"][0].endswith(".jpeg"), done["executionTime"] > 0) == (
        "completed",
        True,
        True,
    )
    assert done["urls"]["get"].endswith(f"/api/v3/predictions/{first}/result")
    assert (broken["status"], broken["code"], broken["error"]) == (
        "failed",
        1402,
        "Failed to download image from the provided URL.",
    )
    assert (created["status"], created["outputs"]) == ("created", [])
    assert "inputs" not in created
    assert history(live, include_inputs=True)["items"][0]["inputs"] == {"prompt": "x"}


def test_history_pages_and_filters(start_server: Callable[..., Live]) -> None:
    live = start_server(frozen_clock=True)
    clock = live.backend.clock
    start = clock.now()
    ids = []
    for n in range(5):
        ids.append(submit(live, FLUX_DEV if n % 2 else T2I))
        clock.advance(60)
    live.poll(ids[0])

    assert [i["id"] for i in history(live, page=2, page_size=2)["items"]] == [ids[2], ids[1]]
    assert history(live, page=4, page_size=2) == {"page": 4, "page_size": 2, "total": 5, "items": []}
    assert [i["id"] for i in history(live, model=FLUX_DEV)["items"]] == [ids[3], ids[1]]
    assert [i["id"] for i in history(live, status="processing")["items"]] == [ids[0]]
    window = history(live, created_after=rfc3339(start + 30), created_before=rfc3339(start + 150))
    assert [i["id"] for i in window["items"]] == [ids[2], ids[1]]
    # How the CLI and the desktop app send it: JavaScript's toISOString(), and a bare date.
    assert history(live, created_after="2000-01-01T00:00:00.000Z", created_before="2999-12-31")["total"] == 5


@pytest.mark.parametrize(
    "query",
    [
        {"page": 0},
        {"page_size": 101},
        {"page_size": "20"},
        {"status": "pending"},
        {"created_after": "yesterday"},
        {"created_before": "2026-13-45T00:00:00Z"},
        {"include_inputs": "yes"},
    ],
)
def test_history_queries_are_checked_by_their_schema(live: Live, query: dict[str, Any]) -> None:
    response = live.http.post("/api/v3/predictions", json=query)

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == 400 and body["errors"]


def test_history_needs_the_api_key(live: Live) -> None:
    assert httpx.post(f"{live.base_url}/api/v3/predictions", json={}).status_code == 401


def test_bulk_delete_counts_only_the_callers_own_predictions(live: Live, other: Live) -> None:
    mine = [submit(live), submit(live)]
    foreign = submit(other)

    response = live.http.post(
        "/api/v3/predictions/delete", json={"ids": [*mine, mine[0], foreign, "0" * 32, "not-an-id"]}
    )

    assert response.status_code == 200
    assert response.json()["data"] == {"deleted_count": 2}
    assert history(live)["total"] == 0
    assert other.poll(foreign)["status"] == "processing"


def test_bulk_delete_needs_a_list_of_ids(live: Live) -> None:
    for body in ({}, {"ids": "abc"}, {"ids": [1]}):
        assert live.http.post("/api/v3/predictions/delete", json=body).status_code == 400


def test_a_deleted_prediction_answers_404_and_so_do_its_outputs(live: Live) -> None:
    done = live.run_to_end(T2I, {"prompt": "x"})
    output = live.http.get(done["outputs"][0])
    assert output.status_code == 200

    response = live.http.delete(f"/api/v3/predictions/{done['id']}")

    assert response.status_code == 200
    assert response.json() == {"code": 200, "message": "success", "data": {"id": done["id"], "status": "deleted"}}
    poll = live.http.get(f"/api/v3/predictions/{done['id']}/result")
    assert poll.status_code == 404 and poll.json()["code"] == 404
    assert live.http.get(done["outputs"][0]).status_code == 404
    again = live.http.delete(f"/api/v3/predictions/{done['id']}")
    assert again.status_code == 404 and again.json()["code"] == 404


def test_another_keys_prediction_cannot_be_deleted(live: Live, other: Live) -> None:
    prediction_id = submit(other)

    assert live.http.delete(f"/api/v3/predictions/{prediction_id}").status_code == 404
    assert other.poll(prediction_id)["status"] == "processing"


def test_another_keys_prediction_cannot_be_polled_nor_moved_by_trying(live: Live, other: Live) -> None:
    prediction_id = submit(other)

    for path in (f"/api/v3/predictions/{prediction_id}/result", f"/api/v3/predictions/{prediction_id}"):
        for _ in range(3):
            refused = live.http.get(path)
            assert refused.status_code == 404 and refused.json()["code"] == 404
    # Its own first poll: the six refused polls neither counted nor moved it.
    assert other.poll(prediction_id)["status"] == "processing"
