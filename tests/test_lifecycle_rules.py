"""Lifecycle rules: unpolled webhooks, task codes on every failure, a 504 that still creates the task, output
expiry, the opt-in rate limit and concurrency queue (also across workers sharing a Redis store)."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from PIL import Image

from mock_server.http.app import create_app
from mock_server.http.server import run_in_thread
from mock_server.settings import Settings
from mock_server.testing.client import FakeWaveSpeed
from tests.conftest import T2I, Live
from tests.fixtures.webhook_receiver import Receiver

TERMINAL = ("completed", "failed", "cancelled", "timeout")


def fake_of(live: Live) -> FakeWaveSpeed:
    return FakeWaveSpeed(live.base_url, live.key, controller=live.running.app.state.mock.controller)


def submit(live: Live, body: dict[str, Any] | None = None, **kwargs: Any) -> str:
    response = live.submit(T2I, body or {"prompt": "x"}, **kwargs)
    assert response.status_code == 200, response.text
    prediction_id: str = response.json()["data"]["id"]
    return prediction_id


def status(live: Live, prediction_id: str) -> str:
    """The status as the fake sees it, without counting a poll."""
    found: str = fake_of(live).prediction(prediction_id)["status"]
    return found


# --- a webhook prediction nobody polls still ends ------------------------------------------------------------


def test_with_poll_progression_a_webhook_prediction_also_moves_a_step_per_second(
    start_server: Callable[..., Live], receiver: Receiver
) -> None:
    live = start_server(frozen_clock=True, poll_every=2)
    fake = fake_of(live)
    hooked = submit(live, params={"webhook": receiver.url})
    plain = submit(live)

    steps = []
    for _ in range(4):  # poll_every 2: one step per 2 s of the clock
        steps.append(status(live, hooked))
        fake.advance_clock(1)
    delivered = receiver.wait_for(1)[0].json()

    assert steps == ["created", "created", "processing", "processing"]
    assert (delivered["id"], delivered["status"]) == (hooked, "completed")
    assert status(live, plain) == "created"  # without a webhook only polls move it


def test_polls_still_move_a_webhook_prediction_before_its_time(
    start_server: Callable[..., Live], receiver: Receiver
) -> None:
    live = start_server(frozen_clock=True)
    prediction_id = submit(live, params={"webhook": receiver.url})

    assert [live.poll(prediction_id)["status"] for _ in range(2)] == ["processing", "completed"]
    assert receiver.wait_for(1)[0].json()["status"] == "completed"


# --- data.code on every failure ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("outcome", "code", "error"),
    [
        ({"status": "failed"}, 1405, "Task failed."),
        ({"status": "failed", "code": 1200}, 1200, "Content moderation: the request was flagged by the safety system."),
        ({"status": "cancelled"}, 1405, "Prediction was cancelled."),
        ({"status": "timeout"}, 5004, "Prediction timed out."),
        ({"status": "timeout", "code": 5003, "error": "busy"}, 5003, "busy"),
    ],
)
def test_every_failure_carries_a_task_code(
    live: Live, receiver: Receiver, outcome: dict[str, Any], code: int, error: str
) -> None:
    fake_of(live).enqueue(**outcome, times=2)

    polled = live.run_to_end(T2I, {"prompt": "x"})
    hooked = submit(live, params={"webhook": receiver.url})
    live.poll(hooked)
    live.poll(hooked)
    listed = live.http.post("/api/v3/predictions", json={"status": outcome["status"]}).json()["data"]["items"]

    assert (polled["status"], polled["code"], polled["error"]) == (outcome["status"], code, error)
    delivered = receiver.wait_for(1)[0].json()
    assert (delivered["code"], delivered["error"]) == (code, error)
    assert {(item["code"], item["error"]) for item in listed} == {(code, error)}


def test_successes_carry_no_task_code(live: Live) -> None:
    assert "code" not in live.run_to_end(T2I, {"prompt": "x"})


# --- a gateway timeout on a submit still creates the task -----------------------------------------------------


@pytest.mark.parametrize("sync", [True, False])
def test_a_504_fault_on_a_submit_answers_504_after_the_task_was_created(live: Live, sync: bool) -> None:
    fake = fake_of(live)
    fake.add_fault(path=f"/api/v3/{T2I}", status=504)

    response = live.submit(T2I, {"prompt": "gateway", "enable_sync_mode": sync})

    assert response.status_code == 504
    assert response.json() == {"code": 504, "message": "Gateway Timeout"}
    [prediction] = fake.predictions()
    assert prediction["input"]["prompt"] == "gateway"
    assert prediction["status"] == ("completed" if sync else "created")
    assert "after the app ran" in fake.journal(method="POST")[0]["note"]


def test_other_fault_statuses_on_a_submit_never_reach_the_app(live: Live) -> None:
    fake = fake_of(live)
    fake.add_fault(path=f"/api/v3/{T2I}", status=503)

    assert live.submit(T2I, {"prompt": "x", "enable_sync_mode": True}).status_code == 503
    assert fake.predictions() == []


# --- output URLs expire --------------------------------------------------------------------------------------


def test_output_urls_expire_after_the_output_ttl_with_410(start_server: Callable[..., Live]) -> None:
    live = start_server(frozen_clock=True, output_ttl=60)
    done = live.run_to_end(T2I, {"prompt": "x"})
    url = done["outputs"][0]

    fresh = live.http.get(url)
    fake_of(live).advance_clock(59)
    still = live.http.get(url)
    fake_of(live).advance_clock(2)
    gone = live.http.get(url)

    assert Image.open(io.BytesIO(fresh.content)).size == (1024, 1024) and still.status_code == 200
    assert gone.status_code == 410
    assert gone.json()["code"] == 410 and "expired" in gone.json()["message"]
    assert live.poll(done["id"])["outputs"] == [url]  # the prediction itself is still kept


def test_by_default_outputs_live_as_long_as_the_prediction(start_server: Callable[..., Live]) -> None:
    live = start_server(frozen_clock=True, record_ttl=3600)

    assert live.backend.settings.effective_output_ttl == 3600


# --- --rate-limit ---------------------------------------------------------------------------------------------


def test_submits_beyond_the_rate_limit_get_429_with_retry_after(start_server: Callable[..., Live]) -> None:
    live = start_server(frozen_clock=True, rate_limit="2/min")
    other = Live(live.running, key=live.key + "-other")
    first = submit(live)
    submit(live)

    limited = live.submit(T2I, {"prompt": "x"})
    wait = int(limited.headers["Retry-After"])

    assert limited.status_code == 429
    body = limited.json()
    assert (body["code"], body["error_code"]) == (429, "rate_limited")
    assert "2 submits per 60 s" in body["message"]
    assert 1 <= wait <= 60
    assert live.poll(first)["status"] == "processing"  # polls are not limited
    assert other.submit(T2I, {"prompt": "x"}).status_code == 200  # per key
    fake_of(live).advance_clock(wait)
    assert live.submit(T2I, {"prompt": "x"}).status_code == 200  # a new window
    other.http.close()


def test_rate_limits_are_written_n_per_unit() -> None:
    assert Settings(rate_limit="5/s").rate_window() == (5, 1.0)
    assert Settings(rate_limit="100/hour").rate_window() == (100, 3600.0)
    assert Settings(rate_limit="7").rate_window() == (7, 60.0)
    with pytest.raises(ValueError, match="rate_limit must look like 10/min"):
        Settings(rate_limit="0/min").validated()


# --- --max-concurrency ------------------------------------------------------------------------------------------


def test_beyond_max_concurrency_predictions_wait_in_created_first_in_first_out(
    start_server: Callable[..., Live],
) -> None:
    live = start_server(max_concurrency=1)
    first, second, third = submit(live), submit(live), submit(live)

    assert [live.poll(second)["status"] for _ in range(3)] == ["created"] * 3  # waiting polls move nothing
    assert [live.poll(first)["status"] for _ in range(2)] == ["processing", "completed"]
    assert live.poll(third)["status"] == "created"  # the freed slot went to the older one
    assert [live.poll(second)["status"] for _ in range(2)] == ["processing", "completed"]
    assert [live.poll(third)["status"] for _ in range(2)] == ["processing", "completed"]


def test_a_queued_prediction_starts_when_its_slot_frees_however_late_anyone_looks(
    start_server: Callable[..., Live],
) -> None:
    live = start_server(max_concurrency=2, progression="time", frozen_clock=True)
    fake = fake_of(live)
    runs = [submit(live) for _ in range(3)]  # T2I: 0.5 s queue + 6 s generation

    fake.advance_clock(6.5)
    assert [status(live, p) for p in runs] == ["completed", "completed", "created"]
    fake.advance_clock(60)  # nobody looked in between: the third started at 6.5 s all the same
    third = live.poll(runs[2])
    assert third["status"] == "completed" and third["executionTime"] == 13000


def test_sync_submits_and_forced_steps_are_not_held_by_the_queue(start_server: Callable[..., Live]) -> None:
    live = start_server(max_concurrency=1)
    submit(live)
    waiting = submit(live)

    synced = live.submit(T2I, {"prompt": "now", "enable_sync_mode": True}).json()["data"]
    forced = fake_of(live).advance(waiting)

    assert synced["status"] == "completed"
    assert forced["status"] == "processing"


def test_a_deleted_prediction_frees_its_slot(start_server: Callable[..., Live]) -> None:
    live = start_server(max_concurrency=1)
    running, waiting = submit(live), submit(live)
    assert live.poll(waiting)["status"] == "created"

    live.http.delete(f"/api/v3/predictions/{running}")

    assert live.poll(waiting)["status"] == "processing"


def test_queued_webhook_predictions_are_delivered_without_polls(
    start_server: Callable[..., Live], receiver: Receiver
) -> None:
    live = start_server(max_concurrency=1, frozen_clock=True)
    ids = [submit(live, params={"webhook": receiver.url}) for _ in range(2)]

    fake_of(live).advance_clock(2)  # the first ends at 2 s; the second starts then
    assert [status(live, p) for p in ids] == ["completed", "created"]
    fake_of(live).advance_clock(2)

    assert sorted(r.json()["id"] for r in receiver.wait_for(2)) == sorted(ids)


# --- the limits hold across workers sharing a Redis store -----------------------------------------------------


@pytest.fixture
def two_workers(redis_url: str) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """Two apps (as two workers) on one Redis store, with one tenant's client on each."""
    settings = Settings(
        store=redis_url, progression="polls", rate_limit="3/min", max_concurrency=1, frozen_clock=True
    ).validated()
    servers = [run_in_thread(create_app(settings)) for _ in range(2)]
    clients = [
        httpx.Client(base_url=s.base_url, headers={"Authorization": "Bearer shared-key"}, timeout=30) for s in servers
    ]
    yield clients[0], clients[1]
    for client in clients:
        client.close()
    for server in servers:
        server.stop()


def test_rate_limit_and_concurrency_hold_across_workers(two_workers: tuple[httpx.Client, httpx.Client]) -> None:
    one, two = two_workers
    ids = [client.post(f"/api/v3/{T2I}", json={"prompt": "x"}).json()["data"]["id"] for client in (one, two, one)]

    assert two.post(f"/api/v3/{T2I}", json={"prompt": "x"}).status_code == 429

    def poll(client: httpx.Client, prediction_id: str) -> str:
        found: str = client.get(f"/api/v3/predictions/{prediction_id}/result").json()["data"]["status"]
        return found

    assert [poll(two, ids[1]), poll(one, ids[2])] == ["created", "created"]
    assert [poll(two, ids[0]), poll(one, ids[0])] == ["processing", "completed"]
    assert [poll(one, ids[2]), poll(two, ids[1])] == ["created", "processing"]  # first in, first out


@pytest.fixture
def two_plain_workers(redis_url: str) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    settings = Settings(store=redis_url, progression="polls").validated()
    servers = [run_in_thread(create_app(settings)) for _ in range(2)]
    clients = [
        httpx.Client(base_url=s.base_url, headers={"Authorization": "Bearer redis-key"}, timeout=30) for s in servers
    ]
    yield clients[0], clients[1]
    for client in clients:
        client.close()
    for server in servers:
        server.stop()


def test_generic_models_history_and_billing_are_shared_by_workers(
    two_plain_workers: tuple[httpx.Client, httpx.Client],
) -> None:
    one, two = two_plain_workers
    video = one.post("/api/v3/acme/text-to-video", json={"duration": 1, "size": "64*48"}).json()["data"]["id"]
    two.post("/api/v3/acme/text-to-video", json={})
    for client in (two, one):
        client.get(f"/api/v3/predictions/{video}/result")

    done = one.get(f"/api/v3/predictions/{video}/result").json()["data"]
    assert done["status"] == "completed"
    assert two.get(done["outputs"][0]).headers["content-type"] == "video/mp4"
    [served] = two.get("/_mock/generic", params={"tenant": "redis-key"}).json()["data"]
    assert (served["model"], served["count"]) == ("acme/text-to-video", 2)
    assert two.post("/api/v3/predictions", json={}).json()["data"]["total"] == 2
    assert one.post("/api/v3/billings/search", json={}).json()["data"]["total"] == 1
    assert two.post("/api/v3/predictions/delete", json={"ids": [video]}).json()["data"] == {"deleted_count": 1}
    assert one.get(f"/api/v3/predictions/{video}/result").status_code == 404
