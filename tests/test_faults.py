"""HTTP fault injection over a real loopback socket: statuses, latency, broken connections, reproducibility."""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import wavespeed

from mock_server.http import app as app_module
from mock_server.http.faults import RAW_SEND, Faults, FaultSpec, FaultUnsupported, Latency, parse_fault
from mock_server.http.journal import Journal
from mock_server.settings import Settings
from tests.conftest import T2I, Live

CUT = (httpx.ReadError, httpx.RemoteProtocolError, httpx.ConnectError, httpx.WriteError)


def faults_of(live: Live) -> Faults:
    faults: Faults = live.running.app.state.mock.faults
    return faults


def journal_of(live: Live) -> Journal:
    journal: Journal = live.running.app.state.mock.journal
    return journal


def submitted(live: Live) -> str:
    response = live.submit(T2I, {"prompt": "x"})
    assert response.status_code == 200, response.text
    prediction_id: str = response.json()["data"]["id"]
    return prediction_id


# --- parsing -------------------------------------------------------------------------------------------


def test_the_action_is_inferred_and_429_gets_a_default_retry_after() -> None:
    rate_limited = parse_fault({"status": 429})
    slow = parse_fault({"latency": 0.1, "path": "/api/*", "method": "get", "tenant": "k"})

    assert (rate_limited.action, rate_limited.retry_after, rate_limited.times, rate_limited.path) == (
        "status",
        1,
        1,
        "*",
    )
    assert (slow.action, slow.latency, slow.method, slow.tenant) == ("latency", Latency("fixed", 0.1), "GET", "k")
    assert parse_fault({"status": 503, "latency": 0.1}).action == "status"
    assert parse_fault({"action": "reset", "latency": {"distribution": "exponential", "mean": 0.1}}).action == "reset"
    assert parse_fault({"status": 503, "retry_after": 2.5}).to_json()["retry_after"] == 2.5
    assert parse_fault({"status": 500, "times": None}).remaining is None


def test_unknown_keys_are_rejected_by_name() -> None:
    with pytest.raises(ValueError, match=r"unknown fault key\(s\) 'code', 'statuss'; allowed: path"):
        parse_fault({"statuss": 503, "code": 1})


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({}, "needs 'status', 'latency' or 'action'"),
        ({"status": 200}, "'status' must be an HTTP error status"),
        ({"status": "503"}, "'status' must be an HTTP error status"),
        ({"status": True}, "'status' must be an HTTP error status"),
        ({"action": "explode"}, "'action' must be one of status, latency, reset, empty, truncate"),
        ({"action": "status"}, "a 'status' fault needs 'status'"),
        ({"action": "latency"}, "a 'latency' fault needs 'latency'"),
        ({"action": "reset", "status": 500}, "'status' does not apply to action 'reset'"),
        ({"latency": 0.1, "retry_after": 1}, "'retry_after' only applies to a 'status' fault"),
        ({"status": 429, "retry_after": -1}, "'retry_after' must be a number >= 0"),
        ({"latency": -0.5}, "'latency' must be a number >= 0"),
        ({"latency": {"distribution": "pareto"}}, "'distribution' must be one of uniform, exponential, normal"),
        ({"latency": {"distribution": "uniform", "min": 1}}, "missing: max"),
        ({"latency": {"distribution": "normal", "mean": 1, "stddev": 1, "max": 2}}, "unknown: max"),
        ({"latency": {"distribution": "uniform", "min": 2, "max": 1}}, "min <= max"),
        ({"status": 503, "times": 0}, "'times' must be a positive integer or null"),
        ({"status": 503, "probability": 1.5}, "'probability' must be between 0 and 1"),
        ({"status": 503, "method": "GET /x"}, "'method' must be an HTTP method"),
        ({"status": 503, "path": ""}, "'path' must be a non-empty string"),
    ],
)
def test_bad_values_are_rejected_with_a_clear_message(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_fault(spec)


# --- sampling and matching -----------------------------------------------------------------------------


def test_latency_distributions_stay_in_bounds_and_follow_the_seed() -> None:
    uniform = parse_fault({"latency": {"distribution": "uniform", "min": 0.05, "max": 0.1}}).latency
    exponential = parse_fault({"latency": {"distribution": "exponential", "mean": 0.2}}).latency
    normal = parse_fault({"latency": {"distribution": "normal", "mean": 0.0, "stddev": 1.0}}).latency
    assert uniform is not None and exponential is not None and normal is not None

    def draws(latency: Latency, seed: int) -> list[float]:
        rng = random.Random(seed)
        return [latency.sample(rng) for _ in range(2000)]

    assert all(0.05 <= d <= 0.1 for d in draws(uniform, 1))
    assert draws(uniform, 1) == draws(uniform, 1) != draws(uniform, 2)
    assert min(draws(exponential, 1)) >= 0 and 0.15 < statistics.mean(draws(exponential, 1)) < 0.25
    clipped = draws(normal, 1)
    assert min(clipped) == 0.0 and clipped.count(0.0) > 500 and max(clipped) > 1
    assert Latency("fixed", value=0.3).sample(random.Random()) == 0.3


def test_faults_delay_draws_from_its_seeded_generator() -> None:
    spec = {"latency": {"distribution": "uniform", "min": 0, "max": 1}, "times": None}

    def delays(seed: int) -> list[float]:
        faults = Faults(seed)
        fault = faults.add(spec)
        return [faults.delay(fault) for _ in range(5)]

    assert delays(3) == delays(3) != delays(4)


def test_match_consumes_uses_and_honours_method_path_and_tenant() -> None:
    faults = Faults(seed=0)
    once = faults.add({"status": 500, "path": "/api/v3/predictions/*/result", "method": "GET", "tenant": "a"})
    twice = faults.add({"status": 502, "path": "/api/*", "times": 2})

    assert faults.match("POST", "/api/v3/predictions/1/result", "a").id == twice.id
    second = faults.match("GET", "/api/v3/predictions/1/result", "b")
    assert second is not None and (second.id, second.hits, second.remaining) == (twice.id, 2, 0)
    assert faults.match("GET", "/api/v3/predictions/1/result", "b") is None
    only = faults.match("get", "/api/v3/predictions/1/result", "a")
    assert only is not None and (only.id, only.hits) == (once.id, 1)
    assert faults.match("GET", "/api/v3/predictions/1/result", "a") is None
    assert faults.active() == []


def test_clear_and_reseed() -> None:
    faults = Faults(seed=5)
    faults.add({"status": 500, "tenant": "a", "times": None})
    faults.add({"status": 503, "times": None, "probability": 0.5})

    faults.clear(tenant="a")
    assert [f["status"] for f in faults.active()] == [503]
    first = [faults.match("GET", "/", None) is not None for _ in range(30)]
    faults.reseed(5)
    assert [faults.match("GET", "/", None) is not None for _ in range(30)] == first
    faults.clear()
    assert faults.active() == []


# --- over HTTP -----------------------------------------------------------------------------------------


def test_429_carries_retry_after_and_the_error_envelope(start_server: Callable[..., Live]) -> None:
    live = start_server()
    prediction_id = submitted(live)
    faults_of(live).add({"status": 429, "path": "/api/v3/predictions/*/result"})

    limited = live.http.get(f"/api/v3/predictions/{prediction_id}/result")

    assert limited.status_code == 429 and limited.headers["retry-after"] == "1"
    assert limited.json() == {"code": 429, "message": "Too Many Requests"}
    assert live.http.get(f"/api/v3/predictions/{prediction_id}/result").status_code == 200


# 504 on a submit lets the app run first (the task exists): tests/test_lifecycle_rules.py.
@pytest.mark.parametrize("status", [500, 502, 503, 418])
def test_error_statuses_answer_the_envelope_and_are_journaled(start_server: Callable[..., Live], status: int) -> None:
    live = start_server()
    faults_of(live).add({"status": status, "method": "POST", "message": "injected"})

    response = live.submit(T2I, {"prompt": "never reaches the backend"})

    assert response.status_code == status
    assert response.json() == {"code": status, "message": "injected"}
    assert "retry-after" not in response.headers
    assert live.backend.predictions(live.tenant) == []
    [recorded] = journal_of(live).entries()
    assert (recorded.status, recorded.note) == (status, f"fault 1: status {status}")
    assert recorded.body == {"prompt": "never reaches the backend"}


def test_retry_after_can_be_set_on_any_status(start_server: Callable[..., Live]) -> None:
    live = start_server()
    faults_of(live).add({"status": 503, "retry_after": 7})

    assert live.http.get("/anything").headers["retry-after"] == "7"


@pytest.mark.parametrize(
    ("times", "expected"),
    [
        (1, [503, 200, 200, 200]),
        (3, [503, 503, 503, 200]),
        (None, [503, 503, 503, 503]),
    ],
)
def test_one_shot_n_times_and_every_time(
    start_server: Callable[..., Live], times: int | None, expected: list[int]
) -> None:
    live = start_server()
    prediction_id = submitted(live)
    faults_of(live).add({"status": 503, "path": "/api/v3/predictions/*/result", "times": times})

    statuses = [live.http.get(f"/api/v3/predictions/{prediction_id}/result").status_code for _ in range(4)]

    assert statuses == expected
    assert len(faults_of(live).active()) == (1 if times is None else 0)


def test_faults_apply_to_their_tenant_only_and_never_to_the_control_api(start_server: Callable[..., Live]) -> None:
    live = start_server()
    faults_of(live).add({"status": 500, "tenant": live.tenant, "times": None})

    assert live.http.get("/_mock/health").status_code == 200
    assert live.http.get("/api/v3/predictions/x/result").status_code == 500
    other = httpx.get(f"{live.base_url}/api/v3/predictions/x/result", headers={"Authorization": "Bearer other"})
    assert other.status_code == 404


def test_probability_with_a_seed_repeats_the_same_sequence(start_server: Callable[..., Live]) -> None:
    def sequence() -> list[int]:
        live = start_server(seed=1234)
        faults_of(live).add({"status": 503, "probability": 0.5, "times": None})
        return [live.http.get("/api/v3/predictions/x/result").status_code for _ in range(24)]

    first, second = sequence(), sequence()

    assert first == second
    assert set(first) == {503, 404}


def test_fixed_latency_delays_the_answer(start_server: Callable[..., Live]) -> None:
    live = start_server()
    prediction_id = submitted(live)
    faults_of(live).add({"latency": 0.2, "path": "/api/v3/predictions/*"})

    started = time.perf_counter()
    response = live.http.get(f"/api/v3/predictions/{prediction_id}/result")
    elapsed = time.perf_counter() - started

    assert response.status_code == 200 and elapsed >= 0.2
    [polled] = journal_of(live).find(path="/api/v3/predictions/*")
    assert polled.latency_ms >= 200 and polled.note == "fault 1: latency 0.200 s"


def test_latency_then_status(start_server: Callable[..., Live]) -> None:
    live = start_server()
    faults_of(live).add({"status": 504, "latency": {"distribution": "uniform", "min": 0.1, "max": 0.15}})

    started = time.perf_counter()
    response = live.http.get("/whatever")

    assert response.status_code == 504 and time.perf_counter() - started >= 0.1


def test_concurrent_delayed_requests_wait_on_the_event_loop_not_in_turn(start_server: Callable[..., Live]) -> None:
    live = start_server()
    prediction_id = submitted(live)
    faults_of(live).add({"latency": 0.3, "path": "/api/v3/predictions/*", "times": None})

    async def burst() -> list[int]:
        async with httpx.AsyncClient(
            base_url=live.base_url,
            headers={"Authorization": f"Bearer {live.key}"},
            limits=httpx.Limits(max_connections=20),
            timeout=30,
        ) as client:
            responses = await asyncio.gather(
                *(client.get(f"/api/v3/predictions/{prediction_id}/result") for _ in range(20))
            )
        return [r.status_code for r in responses]

    started = time.perf_counter()
    statuses = asyncio.run(burst())
    elapsed = time.perf_counter() - started

    assert statuses == [200] * 20
    assert 0.3 <= elapsed < 3.0, elapsed  # one after the other: 6 s
    delayed = journal_of(live).find(path="/api/v3/predictions/*")
    assert peak_in_flight([(e.time, e.time + e.latency_ms / 1000) for e in delayed]) >= 10


def peak_in_flight(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    peak = current = 0
    for _, step in events:
        current += step
        peak = max(peak, current)
    return peak


def test_reset_raises_a_transport_error_and_the_server_keeps_serving(start_server: Callable[..., Live]) -> None:
    live = start_server()
    prediction_id = submitted(live)
    faults_of(live).add({"action": "reset", "path": "/api/v3/predictions/*/result"})

    with pytest.raises(CUT):
        live.http.get(f"/api/v3/predictions/{prediction_id}/result")

    assert live.http.get(f"/api/v3/predictions/{prediction_id}/result").status_code == 200
    cut, served = journal_of(live).find(path="/api/v3/predictions/*/result")
    assert (cut.status, cut.note, served.status) == (None, "fault 1: reset", 200)


def test_empty_closes_without_any_response(start_server: Callable[..., Live]) -> None:
    live = start_server()
    faults_of(live).add({"action": "empty", "method": "POST"})

    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        live.submit(T2I, {"prompt": "lost"})

    [recorded] = journal_of(live).entries()
    assert (recorded.status, recorded.note, recorded.body) == (None, "fault 1: empty", {"prompt": "lost"})


def test_truncate_announces_the_full_length_and_cuts_the_body(start_server: Callable[..., Live]) -> None:
    live = start_server()
    output = live.run_to_end(T2I, {"prompt": "x"})["outputs"][0]
    whole = httpx.get(output).content
    faults_of(live).add({"action": "truncate", "path": "/media/*"})

    received = bytearray()
    with httpx.stream("GET", output) as response:
        assert response.status_code == 200
        assert int(response.headers["content-length"]) == len(whole)
        with pytest.raises(httpx.RemoteProtocolError, match="incomplete|complete message body"):
            for chunk in response.iter_raw():
                received += chunk

    assert 0 < len(received) < len(whole) and whole.startswith(bytes(received))
    truncated = journal_of(live).find(kind="media")[-1]
    assert (truncated.status, truncated.note) == (None, "fault 1: truncate")


def test_truncate_is_seen_by_a_plain_get_as_an_error(start_server: Callable[..., Live]) -> None:
    live = start_server()
    faults_of(live).add({"action": "truncate"})

    with pytest.raises(httpx.RemoteProtocolError):
        live.http.get("/api/v3/predictions/x/result")


def test_connection_faults_without_a_real_connection_raise_a_clear_error() -> None:
    app = app_module.create_app(Settings(progression="polls"))
    app.state.mock.faults.add({"action": "reset"})

    async def call() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://mock") as client:
            await client.get("/api/v3/predictions/x/result", headers={"Authorization": "Bearer k"})

    with pytest.raises(FaultUnsupported, match="needs a real connection"):
        asyncio.run(call())
    assert RAW_SEND == app_module.RAW_SEND


def test_the_official_sdk_retries_503_polls_and_completes(start_server: Callable[..., Live]) -> None:
    live = start_server()
    faults_of(live).add({"path": "/api/v3/predictions/*/result", "status": 503, "times": 2})
    client = wavespeed.Client(api_key=live.key, base_url=live.base_url, retry_interval=0.01)

    output = client.run(T2I, {"prompt": "x"}, poll_interval=0.01)

    assert output["outputs"]
    journal = journal_of(live)
    assert journal.count(path="/api/v3/predictions/*/result", status=503) == 2
    assert journal.count(path="/api/v3/predictions/*/result", status=200) >= 1
    assert journal.count(method="POST", path=f"/api/v3/{T2I}") == 1


def test_active_lists_faults_as_json(start_server: Callable[..., Live]) -> None:
    live = start_server()
    fault: FaultSpec = faults_of(live).add(
        {"latency": {"distribution": "normal", "mean": 0.1, "stddev": 0.01}, "times": 3, "method": "GET"}
    )

    assert faults_of(live).active() == [
        {
            "id": fault.id,
            "action": "latency",
            "path": "*",
            "method": "GET",
            "tenant": None,
            "status": None,
            "retry_after": None,
            "latency": {"distribution": "normal", "mean": 0.1, "stddev": 0.01},
            "times": 3,
            "remaining": 3,
            "hits": 0,
            "probability": 1.0,
            "message": None,
        }
    ]
