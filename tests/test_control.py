"""Scenario control through both doors — the /_mock/ HTTP API and the Python object — and what clients see."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import wavespeed

from mock_server.http.app import create_app
from mock_server.settings import Settings
from mock_server.testing.client import ControlError, FakeWaveSpeed
from tests.conftest import DEV, EDIT, T2I, Live


@pytest.fixture(params=["http", "python"])
def fake(request: pytest.FixtureRequest, live: Live) -> Iterator[FakeWaveSpeed]:
    """The same handle, talking over HTTP (/_mock/) or straight to the in-process server state."""
    controller = live.running.app.state.mock.controller if request.param == "python" else None
    handle = FakeWaveSpeed(live.base_url, live.key, controller=controller)
    yield handle
    # Everything: a model's behaviour (behave) is server-wide, and the module's tests share one server.
    handle.reset(everything=True)


def sdk(live: Live) -> wavespeed.Client:
    return wavespeed.Client(api_key=live.key, base_url=live.base_url, max_connection_retries=0)


@pytest.mark.parametrize("code", [1200, 1400, 1401, 1402, 1403, 5000, 5003])
def test_queued_failure_carries_the_task_code_and_message(live: Live, fake: FakeWaveSpeed, code: int) -> None:
    fake.fail_next(code=code)

    data = live.run_to_end(T2I, {"prompt": "x"})

    assert (data["status"], data["code"], data["outputs"]) == ("failed", code, [])
    assert data["error"]


def test_sdk_raises_with_the_message_of_a_1402_failure(live: Live, fake: FakeWaveSpeed) -> None:
    fake.fail_next(code=1402)

    with pytest.raises(RuntimeError, match="Failed to download image from the provided URL"):
        sdk(live).run(EDIT, {"prompt": "x", "image": "https://example.com/a.png"}, poll_interval=0.01)


def test_sdk_raises_its_sync_timeout_error_and_the_task_stays_queryable(live: Live, fake: FakeWaveSpeed) -> None:
    fake.enqueue(sync_timeout=True)

    with pytest.raises(RuntimeError, match=r"Sync mode timed out \(task_id: [0-9a-f]{32}\)") as raised:
        sdk(live).run(T2I, {"prompt": "x"}, enable_sync_mode=True)

    task_id = str(raised.value).split("task_id: ")[1][:32]
    assert live.run_to_end(T2I, {"prompt": "y"})["status"] == "completed"
    assert live.poll(task_id)["status"] in ("processing", "completed")


def test_nsfw_flags_and_fewer_outputs(live: Live, fake: FakeWaveSpeed) -> None:
    fake.enqueue(nsfw=[True, False], outputs=2)

    data = live.run_to_end(T2I, {"prompt": "x", "num_images": 4})

    assert len(data["outputs"]) == 2
    assert data["has_nsfw_contents"] == [True, False]


@pytest.mark.parametrize("status", ["cancelled", "timeout"])
def test_cancelled_and_timeout_statuses_end_the_prediction(live: Live, fake: FakeWaveSpeed, status: str) -> None:
    fake.enqueue(status=status)

    data = live.run_to_end(T2I, {"prompt": "x"})

    assert data["status"] == status and data["error"]
    with pytest.raises(RuntimeError, match=f"Prediction {status}"):
        fake.enqueue(status=status)
        sdk(live).run(T2I, {"prompt": "x"}, poll_interval=0.01)


def test_stuck_predictions_stay_processing(live: Live, fake: FakeWaveSpeed) -> None:
    fake.enqueue(stuck=True)
    prediction_id = live.submit(T2I, {"prompt": "x"}).json()["data"]["id"]

    statuses = {live.poll(prediction_id)["status"] for _ in range(6)}
    fake.advance(prediction_id, steps=5)

    assert statuses == {"processing"}
    assert live.poll(prediction_id)["status"] == "processing"


def test_outcomes_match_on_model_and_prompt_substring(live: Live, fake: FakeWaveSpeed) -> None:
    fake.enqueue(model=DEV, prompt_contains="forbidden", status="failed", code=1200, times=None)

    other_model = live.run_to_end(T2I, {"prompt": "forbidden fruit"})
    other_prompt = live.run_to_end(DEV, {"prompt": "apples"})
    matched = [live.run_to_end(DEV, {"prompt": f"forbidden {i}"})["status"] for i in range(2)]

    assert (other_model["status"], other_prompt["status"]) == ("completed", "completed")
    assert matched == ["failed", "failed"]


def test_outcomes_of_one_tenant_do_not_reach_another(live: Live, fake: FakeWaveSpeed) -> None:
    fake.fail_next(code=5000)
    stranger = httpx.Client(base_url=live.base_url, headers={"Authorization": "Bearer stranger"})

    prediction_id = stranger.post(f"/api/v3/{T2I}", json={"prompt": "x"}).json()["data"]["id"]
    for _ in range(2):
        stranger.get(f"/api/v3/predictions/{prediction_id}/result")

    assert stranger.get(f"/api/v3/predictions/{prediction_id}/result").json()["data"]["status"] == "completed"
    assert live.run_to_end(T2I, {"prompt": "x"})["status"] == "failed"


def test_progression_and_latency_per_model(live: Live, fake: FakeWaveSpeed) -> None:
    fake.behave(model=DEV, progression="polls", poll_every=3)
    fake.behave(model=T2I, progression="manual")

    dev_id = live.submit(DEV, {"prompt": "x"}).json()["data"]["id"]
    t2i_id = live.submit(T2I, {"prompt": "x"}).json()["data"]["id"]
    dev_statuses = [live.poll(dev_id)["status"] for _ in range(6)]
    t2i_statuses = [live.poll(t2i_id)["status"] for _ in range(3)]
    fake.advance(t2i_id, steps=2)

    assert dev_statuses == ["created", "created", "processing", "processing", "processing", "completed"]
    assert t2i_statuses == ["created"] * 3
    assert live.poll(t2i_id)["status"] == "completed"


def test_time_progression_is_driven_by_advancing_the_clock(start_server) -> None:  # type: ignore[no-untyped-def]
    server = start_server(progression="time", frozen_clock=True)
    handle = FakeWaveSpeed(server.base_url, server.key)
    handle.behave(model=T2I, latency=[1.0, 4.0])
    prediction_id = server.submit(T2I, {"prompt": "x"}).json()["data"]["id"]

    before = server.poll(prediction_id)["status"]
    handle.advance_clock(2.0)
    middle = server.poll(prediction_id)["status"]
    finished = handle.advance_clock(3.0)["finished"]

    assert (before, middle) == ("created", "processing")
    assert finished == [prediction_id]
    assert server.poll(prediction_id)["timings"]["inference"] == 4000


def test_seed_makes_ids_and_drawn_seeds_reproducible(live: Live, fake: FakeWaveSpeed) -> None:
    def run() -> tuple[str, int]:
        fake.seed(1234)
        data = live.submit(DEV, {"prompt": "x", "seed": -1}).json()["data"]
        return data["id"], fake.prediction(data["id"])["seed"]

    assert run() == run()


def test_prediction_view_shows_polls_notes_and_outcome(live: Live, fake: FakeWaveSpeed) -> None:
    fake.fail_next(code=1403)
    prediction_id = live.submit(T2I, {"prompt": "x"}).json()["data"]["id"]
    live.poll(prediction_id)

    seen = fake.prediction(prediction_id)

    assert seen["polls"] == 1 and seen["outcome"]["code"] == 1403
    assert [p["id"] for p in fake.predictions()] == [prediction_id]


def test_reset_forgets_only_this_tenant(live: Live, fake: FakeWaveSpeed) -> None:
    mine = live.submit(T2I, {"prompt": "x"}).json()["data"]["id"]
    stranger = httpx.Client(base_url=live.base_url, headers={"Authorization": "Bearer other-tenant"})
    theirs = stranger.post(f"/api/v3/{T2I}", json={"prompt": "x"}).json()["data"]["id"]

    fake.reset()

    assert live.http.get(f"/api/v3/predictions/{mine}/result").status_code == 404
    assert stranger.get(f"/api/v3/predictions/{theirs}/result").status_code == 200


@pytest.mark.parametrize(
    ("outcome", "message"),
    [
        ({"code": 9999}, "error-code table"),
        ({"status": "exploded"}, 'status: "exploded" is not one of "completed", "failed"'),
        ({"nsfw": "yes"}, "list of booleans"),
        ({"colour": "red"}, "colour: unknown field; allowed: code, error"),
    ],
)
def test_bad_control_requests_are_refused_clearly(fake: FakeWaveSpeed, outcome: dict, message: str) -> None:
    with pytest.raises(ControlError, match=message):
        fake.enqueue(**outcome)


def test_control_http_errors_use_the_envelope(live: Live) -> None:
    response = httpx.post(f"{live.base_url}/_mock/outcomes", json={"outcome": {"code": 1}, "bogus": 1})

    assert response.status_code == 400
    assert response.json()["code"] == 400 and "bogus" in response.json()["message"]


def test_serve_reads_a_declarative_scenario_file(tmp_path: Path) -> None:
    scenario = tmp_path / "scenario.json"
    scenario.write_text(
        json.dumps(
            {
                "seed": 7,
                "behaviour": [{"model": "*", "progression": "manual"}],
                "outcomes": [{"outcome": {"status": "failed", "code": 1402}, "model": EDIT, "times": None}],
            }
        )
    )

    app = create_app(Settings(scenario=str(scenario)))

    rules = app.state.mock.controller.outcomes()
    assert rules[0]["outcome"] == {"status": "failed", "code": 1402} and rules[0]["times"] is None
    assert app.state.mock.backend.rules.behaviour_for(DEV).progression == "manual"


def test_a_broken_scenario_file_is_a_clear_start_up_error(tmp_path: Path) -> None:
    scenario = tmp_path / "scenario.json"
    scenario.write_text(json.dumps({"outcomes": [{"outcome": {"code": 42}}]}))

    with pytest.raises(ValueError, match="scenario file .*error-code table"):
        create_app(Settings(scenario=str(scenario)))


def test_faults_and_the_journal_through_either_door(live: Live, fake: FakeWaveSpeed) -> None:
    fake.add_fault(path="/api/v3/predictions/*/result", status=429, retry_after=2, times=1)
    fake.add_fault(path="/api/v3/predictions/*/result", status=503, times=1)
    prediction_id = live.submit(T2I, {"prompt": "x"}).json()["data"]["id"]

    first = live.http.get(f"/api/v3/predictions/{prediction_id}/result")
    second = live.http.get(f"/api/v3/predictions/{prediction_id}/result")
    third = live.http.get(f"/api/v3/predictions/{prediction_id}/result")
    live.http.get("/api/v3/nothing-here")

    assert (first.status_code, first.headers["retry-after"], first.json()["code"]) == (429, "2", 429)
    assert (second.status_code, third.status_code) == (503, 200)
    assert [e["status"] for e in fake.journal(method="GET", path="/api/v3/predictions/*/result")] == [429, 503, 200]
    assert fake.count(method="POST") == 1
    assert [e["path"] for e in fake.unmatched()] == ["/api/v3/nothing-here"]
    assert all(e["headers"]["authorization"] == "Bearer ***" for e in fake.journal())


def test_a_fault_for_one_tenant_spares_the_others(live: Live, fake: FakeWaveSpeed) -> None:
    fake.add_fault(path="/api/v3/*", status=500, times=None)
    stranger = httpx.Client(base_url=live.base_url, headers={"Authorization": "Bearer spared"})

    assert live.submit(T2I, {"prompt": "x"}).status_code == 500
    assert stranger.post(f"/api/v3/{T2I}", json={"prompt": "x"}).status_code == 200
    fake.clear_faults()
    assert live.submit(T2I, {"prompt": "x"}).status_code == 200


def test_webhook_tricks_are_configurable_through_either_door(live: Live, fake: FakeWaveSpeed) -> None:
    settings = fake.configure_webhooks(duplicate=True, bad_signature=True)

    assert settings["duplicate"] and settings["bad_signature"]
    assert fake.deliveries() == []


def test_the_python_handle_offers_every_http_control_operation() -> None:
    from mock_server.http.control import OPERATIONS

    handle_names = {name for name in dir(FakeWaveSpeed) if not name.startswith("_")}
    # Two operations are spelled for people on the handle: journal_count → count, behave keeps its name.
    aliases = {"journal_count": "count"}
    missing = [op.name for op in OPERATIONS if aliases.get(op.name, op.name) not in handle_names]
    assert missing == []


def test_outcome_listing_and_clearing_through_either_door(fake: FakeWaveSpeed) -> None:
    fake.fail_next(code=5003, times=2)

    assert [r["outcome"]["code"] for r in fake.outcomes()] == [5003]
    fake.clear_outcomes()
    assert fake.outcomes() == []
    assert fake.health()["ok"] is True


def test_an_outcome_of_no_outputs_completes_with_none(live: Live, fake: FakeWaveSpeed) -> None:
    fake.enqueue(outputs=0)

    data = live.run_to_end(T2I, {"prompt": "x", "num_images": 2})

    assert (data["status"], data["outputs"], data["has_nsfw_contents"]) == ("completed", [], [])
