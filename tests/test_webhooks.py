"""Webhooks against a real receiver on another loopback port, verified with the documented recipe (reference §5)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import socket
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from mock_server.contract.catalog import Catalog
from mock_server.http.app import create_app
from mock_server.http.webhooks import WebhookDispatcher
from mock_server.model.rules import make_outcome
from mock_server.settings import Settings
from tests.conftest import T2I, Live
from tests.fixtures.webhook_receiver import WAIT, Receiver

FAST = {"webhook_retry_base": 0.01}


def verify(secret: str, headers: dict[str, str], body: bytes, now: float | None = None) -> bool:
    """The docs' verifier: strip whsec_, HMAC-SHA256 over id.timestamp.body with the rest as text key, hex,
    compare in constant time, reject timestamps more than 300 s away."""
    version, _, received = headers["webhook-signature"].partition(",")
    timestamp = headers["webhook-timestamp"]
    if version != "v3" or abs((now or time.time()) - int(timestamp)) > 300:
        return False
    key = secret[len("whsec_") :] if secret.startswith("whsec_") else secret
    message = f"{headers['webhook-id']}.{timestamp}.".encode() + body
    expected = hmac.new(key.encode("utf-8"), message, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, received)


def dispatcher(server: Live) -> WebhookDispatcher:
    webhooks: WebhookDispatcher = server.running.app.state.mock.webhooks
    return webhooks


def secret_of(server: Live) -> str:
    response = server.http.get("/api/v3/webhook/secret")
    assert response.status_code == 200
    secret: str = response.json()["data"]["secret"]
    return secret


def submit(server: Live, url: str, body: dict[str, Any] | None = None) -> str:
    response = server.submit(T2I, body or {"prompt": "a kite"}, params={"webhook": url})
    assert response.status_code == 200, response.text
    prediction_id: str = response.json()["data"]["id"]
    return prediction_id


def finish(server: Live, prediction_id: str) -> dict[str, Any]:
    for _ in range(10):
        data = server.poll(prediction_id)
        if data["status"] in ("completed", "failed"):
            return data
    raise AssertionError(f"{prediction_id} did not finish")


def idle(server: Live) -> None:
    assert dispatcher(server).wait_idle(WAIT), "webhook deliveries still pending"


@pytest.fixture
def server(start_server: Callable[..., Live]) -> Live:
    return start_server(**FAST)


# --- payload and signature ----------------------------------------------------------------------------------


def test_a_completed_prediction_posts_the_bare_prediction_signed_as_documented(
    server: Live, receiver: Receiver
) -> None:
    body = {"prompt": "a kite", "num_images": 2}
    prediction_id = submit(server, receiver.url, body)
    polled = finish(server, prediction_id)

    [hook] = receiver.wait_for(1)

    payload = hook.json()
    assert "code" not in payload and "data" not in payload
    assert payload["id"] == prediction_id and payload["status"] == "completed"
    assert payload["input"] == body
    assert payload["outputs"] == polled["outputs"] and len(payload["outputs"]) == 2
    assert payload["urls"]["get"] == f"{server.base_url}/api/v3/predictions/{prediction_id}/result"
    assert hook.headers["content-type"] == "application/json"
    assert hook.headers["webhook-id"] == prediction_id[:25]
    assert abs(int(hook.headers["webhook-timestamp"]) - time.time()) < 300
    assert verify(secret_of(server), hook.headers, hook.body)


def test_the_verifier_rejects_a_tampered_body_and_a_stale_timestamp(server: Live, receiver: Receiver) -> None:
    finish(server, submit(server, receiver.url))
    [hook] = receiver.wait_for(1)
    secret = secret_of(server)

    assert verify(secret, hook.headers, hook.body)
    assert not verify(secret, hook.headers, hook.body.replace(b"completed", b"failed"))
    assert not verify(secret, hook.headers, hook.body, now=int(hook.headers["webhook-timestamp"]) + 301)


def test_a_failed_prediction_is_delivered_with_its_task_code(server: Live, receiver: Receiver) -> None:
    server.backend.rules.enqueue(make_outcome({"status": "failed", "code": 1402}), tenant=server.tenant)
    prediction_id = submit(server, receiver.url)
    finish(server, prediction_id)

    [hook] = receiver.wait_for(1)

    payload = hook.json()
    assert (payload["id"], payload["status"], payload["code"]) == (prediction_id, "failed", 1402)
    assert payload["error"].startswith("Failed to download image") and payload["outputs"] == []
    assert verify(secret_of(server), hook.headers, hook.body)


def test_the_secret_endpoint_needs_the_key_and_answers_a_whsec_secret(server: Live) -> None:
    anonymous = httpx.get(f"{server.base_url}/api/v3/webhook/secret")
    secret = secret_of(server)

    assert anonymous.status_code == 401
    assert secret.startswith("whsec_") and len(base64.b64decode(secret.removeprefix("whsec_"))) == 32


def test_a_configured_secret_signs_and_a_seed_makes_the_random_one_reproducible(
    start_server: Callable[..., Live], receiver: Receiver
) -> None:
    configured = start_server(webhook_secret="whsec_configured-secret", **FAST)
    seeded = [start_server(seed=7), start_server(seed=7)]

    finish(configured, submit(configured, receiver.url))
    [hook] = receiver.wait_for(1)

    assert secret_of(configured) == "whsec_configured-secret"
    assert verify("whsec_configured-secret", hook.headers, hook.body)
    assert secret_of(seeded[0]) == secret_of(seeded[1])


def test_sync_mode_submits_deliver_too(server: Live, receiver: Receiver) -> None:
    prediction_id = submit(server, receiver.url, {"prompt": "x", "enable_sync_mode": True})

    [hook] = receiver.wait_for(1)

    assert (hook.json()["id"], hook.json()["status"]) == (prediction_id, "completed")


# --- retries ------------------------------------------------------------------------------------------------


def test_a_500_is_retried_with_the_same_webhook_id_and_both_attempts_are_recorded(
    server: Live, receiver: Receiver
) -> None:
    receiver.script.append(500)
    prediction_id = submit(server, receiver.url)
    finish(server, prediction_id)

    first, second = receiver.wait_for(2)
    idle(server)

    assert first.headers["webhook-id"] == second.headers["webhook-id"] and first.body == second.body
    assert verify(secret_of(server), second.headers, second.body)
    records = dispatcher(server).deliveries(server.tenant)
    assert [(r["attempt"], r["status"]) for r in records] == [(1, 500), (2, 200)]
    assert {r["event_id"] for r in records} == {prediction_id[:25]}
    journal = server.running.app.state.mock.journal
    if journal is not None:
        entries = journal.find(kind="webhook", tenant=server.tenant)
        assert [e.status for e in entries] == [500, 200]


def test_delivery_gives_up_after_four_attempts(server: Live, receiver: Receiver) -> None:
    receiver.script.extend([503] * 10)
    finish(server, submit(server, receiver.url))

    receiver.wait_for(4)
    idle(server)

    assert len(receiver.received) == 4
    assert [r["status"] for r in dispatcher(server).deliveries(server.tenant)] == [503] * 4


def test_a_refused_connection_counts_as_a_failed_attempt(server: Live) -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    finish(server, submit(server, f"http://127.0.0.1:{port}/hook"))

    idle(server)

    records = dispatcher(server).deliveries(server.tenant)
    assert [(r["attempt"], r["status"]) for r in records] == [(1, None), (2, None), (3, None), (4, None)]
    assert all(r["error"] for r in records)


# --- allowlist ----------------------------------------------------------------------------------------------


def test_a_host_outside_the_allowlist_is_never_contacted(server: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    contacted: list[str] = []
    real_send = httpx.AsyncClient.send

    async def guarded(self: httpx.AsyncClient, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        if request.url.host == "192.0.2.10":
            contacted.append(str(request.url))
            raise AssertionError("the webhook sender contacted a blocked host")
        return await real_send(self, request, **kwargs)

    monkeypatch.setattr(httpx.AsyncClient, "send", guarded)
    finish(server, submit(server, "http://192.0.2.10/hook"))

    idle(server)

    assert contacted == []
    [record] = dispatcher(server).deliveries(server.tenant)
    assert (record["status"], record["note"]) == (None, "blocked: host not in the webhook allowlist")
    journal = server.running.app.state.mock.journal
    if journal is not None:
        [entry] = journal.find(kind="webhook", tenant=server.tenant)
        assert entry.status is None and entry.note == "blocked: host not in the webhook allowlist"


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://127.0.0.1:9/hook", True),
        ("http://127.8.9.10/hook", True),
        ("http://localhost:9/hook", True),
        ("http://[::1]:9/hook", True),
        ("https://hooks.example.test/x", True),
        ("http://192.0.2.10/hook", False),
        ("http://example.com/hook", False),
        ("ftp://127.0.0.1/hook", False),
        ("not a url", False),
    ],
)
def test_loopback_and_configured_hosts_are_allowed(catalog: Catalog, url: str, allowed: bool) -> None:
    settings = Settings(webhook_allow=("hooks.example.test",))

    assert WebhookDispatcher(settings, create_app(settings, catalog=catalog).state.mock.backend).allowed(url) is allowed


# --- adversarial delivery -----------------------------------------------------------------------------------


def test_duplicate_mode_delivers_every_event_twice_with_the_same_id(server: Live, receiver: Receiver) -> None:
    dispatcher(server).configure(tenant=server.key, duplicate=True)
    finish(server, submit(server, receiver.url))

    first, second = receiver.wait_for(2)
    idle(server)

    assert len(receiver.received) == 2
    assert first.headers["webhook-id"] == second.headers["webhook-id"] and first.body == second.body
    assert all(verify(secret_of(server), r.headers, r.body) for r in (first, second))
    assert [r["note"] for r in dispatcher(server).deliveries(server.tenant)] == [None, "duplicate"]


def test_out_of_order_mode_delivers_the_newer_event_first(server: Live, receiver: Receiver) -> None:
    dispatcher(server).configure(tenant=server.key, out_of_order=True, hold_seconds=WAIT)
    older = submit(server, receiver.url, {"prompt": "first"})
    newer = submit(server, receiver.url, {"prompt": "second"})
    finish(server, older)
    finish(server, newer)

    hooks = receiver.wait_for(2)

    assert [h.json()["id"] for h in hooks] == [newer, older]


def test_out_of_order_mode_releases_a_lone_event_after_the_hold(server: Live, receiver: Receiver) -> None:
    dispatcher(server).configure(tenant=server.key, out_of_order=True, hold_seconds=0.05)
    prediction_id = submit(server, receiver.url)
    finish(server, prediction_id)

    [hook] = receiver.wait_for(1)

    assert hook.json()["id"] == prediction_id


def test_bad_signature_mode_signs_with_the_wrong_key(server: Live, receiver: Receiver) -> None:
    dispatcher(server).configure(tenant=server.key, bad_signature=True)
    finish(server, submit(server, receiver.url))

    [hook] = receiver.wait_for(1)

    assert hook.headers["webhook-signature"].startswith("v3,")
    assert not verify(secret_of(server), hook.headers, hook.body)


def test_delay_mode_holds_each_delivery(server: Live, receiver: Receiver) -> None:
    dispatcher(server).configure(tenant=server.key, delay=0.3)
    prediction_id = submit(server, receiver.url)
    finish(server, prediction_id)
    finished_at = time.time()

    [hook] = receiver.wait_for(1)

    assert hook.at - finished_at >= 0.25


def test_adversarial_settings_apply_per_tenant_and_reset_clears_them(
    start_server: Callable[..., Live], receiver: Receiver
) -> None:
    server = start_server(**FAST)
    webhooks = dispatcher(server)
    webhooks.configure(tenant="someone-else", duplicate=True)
    finish(server, submit(server, receiver.url))
    receiver.wait_for(1)
    idle(server)

    webhooks.configure(duplicate=True)
    webhooks.reset()

    assert len(receiver.received) == 1
    assert webhooks.adversary(server.key) == webhooks.adversary("someone-else")
    assert not webhooks.adversary(server.key).duplicate
    assert webhooks.deliveries() == []


# --- nobody polls -------------------------------------------------------------------------------------------


def test_a_time_progressed_prediction_nobody_polls_still_delivers(
    start_server: Callable[..., Live], receiver: Receiver
) -> None:
    server = start_server(progression="time", latency_scale=0.01, **FAST)
    prediction_id = submit(server, receiver.url)

    [hook] = receiver.wait_for(1)

    prediction = server.backend.find(server.tenant, prediction_id)
    assert prediction is not None and prediction.polls == 0
    assert (hook.json()["id"], hook.json()["status"]) == (prediction_id, "completed")


def test_with_a_frozen_clock_advancing_it_and_ticking_delivers(
    start_server: Callable[..., Live], receiver: Receiver
) -> None:
    server = start_server(progression="time", frozen_clock=True, **FAST)
    prediction_id = submit(server, receiver.url)

    server.backend.clock.advance(3600)
    finished = server.backend.tick()

    [hook] = receiver.wait_for(1)
    assert [p.id for p in finished] == [prediction_id] == [hook.json()["id"]]
