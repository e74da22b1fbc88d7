"""The request journal: what it records over a real socket, its bounds, its filters, what it leaves out."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from mock_server.http.faults import Faults
from mock_server.http.front import FrontDoor
from mock_server.http.journal import TEXT_LIMIT, Journal, JournalEntry, decode_body
from mock_server.settings import Settings
from tests.conftest import T2I, Live


def journal_of(live: Live) -> Journal:
    journal: Journal = live.running.app.state.mock.journal
    return journal


def entry(path: str = "/x", **fields: Any) -> JournalEntry:
    values: dict[str, Any] = {
        "method": "GET",
        "path": path,
        "query": {},
        "headers": {},
        "body": None,
        "status": 200,
        "latency_ms": 1.0,
        "tenant": "t",
        "kind": "api",
    }
    values.update(fields)
    return JournalEntry(**values)


def test_a_submit_is_recorded_with_query_redacted_headers_json_body_status_latency_and_tenant(
    start_server: Callable[..., Live],
) -> None:
    live = start_server()
    before = time.time()

    response = live.http.post(
        f"/api/v3/{T2I}",
        params={"trace": "1", "tag": ["a", "b"]},
        json={"prompt": "a red bicycle"},
        headers={"X-Trace": "abc"},
    )

    assert response.status_code == 200
    [recorded] = journal_of(live).entries()
    assert (recorded.method, recorded.path, recorded.kind) == ("POST", f"/api/v3/{T2I}", "api")
    assert recorded.query == {"trace": "1", "tag": ["a", "b"]}
    assert recorded.headers["authorization"] == "Bearer ***"
    assert recorded.headers["x-trace"] == "abc" and recorded.headers["content-type"] == "application/json"
    assert recorded.body == {"prompt": "a red bicycle"}
    assert recorded.status == 200 and recorded.note is None
    assert recorded.latency_ms > 0
    assert before <= recorded.time <= time.time()
    assert recorded.tenant == live.tenant
    as_json = recorded.to_json()
    assert as_json["tenant"] == live.tenant and as_json["seq"] == recorded.seq >= 1
    assert live.key not in json.dumps(as_json)  # the journal keeps the key's fingerprint, never the key


def test_media_downloads_and_polls_are_recorded_with_their_kind(start_server: Callable[..., Live]) -> None:
    live = start_server()
    output = live.run_to_end(T2I, {"prompt": "x"})["outputs"][0]

    download = httpx.get(output)

    assert download.status_code == 200 and download.content
    journal = journal_of(live)
    [media] = journal.find(kind="media")
    assert media.path == httpx.URL(output).path and media.status == 200 and media.tenant is None
    assert journal.count(path="/api/v3/predictions/*/result", kind="api") >= 2


def test_unread_text_and_binary_bodies_are_recorded_on_unmatched_requests(start_server: Callable[..., Live]) -> None:
    live = start_server()

    live.http.post("/nowhere", content=b"plain words", headers={"Content-Type": "text/plain"})
    live.http.put("/nowhere/either", content=b"\x89PNG\r\n\x1a\n\x00\xff", headers={"Content-Type": "text/plain"})
    live.http.post("/upload-here", files={"file": ("a.png", b"12345")})

    text, binary, multipart = journal_of(live).unmatched(tenant=live.tenant)
    assert (text.status, text.body) == (404, "plain words")
    assert binary.body == "<10 bytes binary>"
    assert isinstance(multipart.body, str) and multipart.body.endswith(" bytes binary>")


def test_body_decoding_keeps_json_bounds_text_and_summarises_binary() -> None:
    long_text = ("é" * TEXT_LIMIT).encode()

    assert decode_body(b"", 0, "application/json") is None
    assert decode_body(b'{"a": [1, 2]}', 13, "application/json; charset=utf-8") == {"a": [1, 2]}
    assert decode_body(b"{not json", 9, "application/json") == "{not json"
    assert decode_body(long_text[:TEXT_LIMIT], len(long_text), "text/plain") == "é" * (TEXT_LIMIT // 2)
    assert decode_body(b"\x00\xff\xfe", 3, "") == "<3 bytes binary>"
    assert decode_body(b"--b\r\n", 2048, "multipart/form-data; boundary=b") == "<2048 bytes binary>"


def test_the_cap_drops_the_oldest_entries_and_counts_them(start_server: Callable[..., Live]) -> None:
    live = start_server(journal_cap=3)
    journal = journal_of(live)

    for i in range(5):
        live.http.get(f"/page/{i}")

    assert [e.path for e in journal.entries()] == ["/page/2", "/page/3", "/page/4"]
    assert (journal.dropped, journal.cap) == (2, 3)
    seqs = [e.seq for e in journal.entries()]
    assert seqs == sorted(seqs) and len(set(seqs)) == 3
    with pytest.raises(ValueError, match="positive"):
        Journal(0)


def test_find_count_and_unmatched_filter_by_every_field(start_server: Callable[..., Live]) -> None:
    live = start_server()
    other = httpx.Client(base_url=live.base_url, headers={"Authorization": "Bearer other-tenant"})
    prediction_id = live.submit(T2I, {"prompt": "a red bicycle"}).json()["data"]["id"]
    live.poll(prediction_id)
    live.http.get("/api/v3/no/such/thing")
    other.post(f"/api/v3/{T2I}", json={"prompt": "a blue boat"})
    other.get("/missing")
    other.close()
    journal = journal_of(live)

    assert journal.count() == 5
    assert [e.body for e in journal.find(method="post")] == [{"prompt": "a red bicycle"}, {"prompt": "a blue boat"}]
    assert journal.count(path=f"/api/v3/predictions/{prediction_id}/result") == 1
    assert journal.count(path="/api/v3/predictions/*") == 1
    assert journal.count(path="/api/*", tenant=live.tenant) == 3
    assert journal.count(status=404) == 2 and journal.count(status=200, tenant="other-tenant") == 1
    assert [e.body for e in journal.find(body_contains="bicycle")] == [{"prompt": "a red bicycle"}]
    assert journal.count(kind="api") == 4 and journal.count(kind="webhook") == 0
    assert [e.path for e in journal.unmatched()] == ["/api/v3/no/such/thing", "/missing"]
    assert [e.path for e in journal.unmatched(tenant="other-tenant")] == ["/missing"]
    assert journal.entries(tenant="other-tenant", status=404) == journal.unmatched(tenant="other-tenant")

    journal.clear(tenant="other-tenant")
    assert {e.tenant for e in journal.entries()} == {live.tenant}
    journal.clear()
    assert journal.entries() == [] and len(journal) == 0


def test_control_api_and_openapi_document_are_not_recorded(start_server: Callable[..., Live]) -> None:
    live = start_server()

    assert live.http.get("/_mock/health").status_code == 200
    assert live.http.get("/openapi.json").status_code == 200
    live.http.get("/api/v3/predictions/0/result")

    assert [e.path for e in journal_of(live).entries()] == ["/api/v3/predictions/0/result"]


def test_webhook_deliveries_are_recorded_with_redacted_credentials() -> None:
    journal = Journal(10)

    recorded = journal.record_delivery(
        "http://127.0.0.1:9/hook",
        204,
        b'{"id": "p1", "status": "completed"}',
        {"Content-Type": "application/json", "Authorization": "Bearer sk-secret"},
        12.5,
        "tenant-1",
        note="attempt 1",
    )

    assert (recorded.kind, recorded.method, recorded.path, recorded.status) == (
        "webhook",
        "POST",
        "http://127.0.0.1:9/hook",
        204,
    )
    assert recorded.body == {"id": "p1", "status": "completed"}
    assert recorded.headers == {"content-type": "application/json", "authorization": "Bearer ***"}
    assert (recorded.tenant, recorded.note, recorded.latency_ms) == ("tenant-1", "attempt 1", 12.5)
    assert journal.find(kind="webhook", path="http://127.0.0.1:9/*") == [recorded]


def test_recording_from_many_threads_keeps_the_bound_and_unique_increasing_numbers() -> None:
    journal = Journal(100)

    def record_many() -> None:
        for _ in range(500):
            journal.record(entry())

    threads = [threading.Thread(target=record_many) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    seqs = [e.seq for e in journal.entries()]
    assert len(seqs) == 100 and journal.dropped == 3900
    assert seqs == sorted(seqs) and seqs[-1] == 4000


def test_an_unhandled_exception_is_recorded_as_the_500_the_client_gets() -> None:
    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("boom")

    journal = Journal(5)
    transport = httpx.ASGITransport(app=FrontDoor(broken, settings=Settings(), journal=journal, faults=Faults()))

    async def call() -> None:
        async with httpx.AsyncClient(transport=transport, base_url="http://mock") as client:
            await client.get("/anything")

    with pytest.raises(RuntimeError, match="boom"):
        asyncio.run(call())
    [recorded] = journal.entries()
    assert (recorded.status, recorded.note) == (500, "unhandled RuntimeError")
