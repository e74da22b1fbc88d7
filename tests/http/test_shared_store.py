"""``serve --store redis://… --workers 2`` as a real subprocess on a real redis-server: the workers agree on
everything, each webhook is delivered once, and a restart loses nothing."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import T2I
from tests.fixtures.redis_server import RedisServer, free_port
from tests.fixtures.webhook_receiver import Receiver

KEY = "shared-store-tenant"
HEADERS = {"Authorization": f"Bearer {KEY}"}
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


class Serve:
    """``wavespeed-mock serve`` in a subprocess; stopped (and waited for) at teardown."""

    def __init__(self, store_url: str, workers: int = 2) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mock_server",
                "serve",
                "--port",
                str(self.port),
                "--store",
                store_url,
                "--workers",
                str(workers),
                "--progression",
                "polls",
                "--log-level",
                "warning",
                "--webhook-retry-base",
                "0.01",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        deadline = time.monotonic() + 60
        while True:  # readiness: poll with a deadline
            try:
                if httpx.get(f"{self.base_url}/_mock/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"serve did not start (exit {self.process.returncode})")
            time.sleep(0.05)
        # Eight kept-alive connections, used in turn: the kernel spreads connections over both workers, so
        # consecutive requests for one prediction land on different workers.
        self.clients = [httpx.Client(base_url=self.base_url, timeout=30, headers=HEADERS) for _ in range(8)]
        self.turn = 0

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        self.turn += 1
        return self.clients[self.turn % len(self.clients)].request(method, path, **kwargs)

    def fresh(self, method: str, path: str) -> httpx.Response:
        with httpx.Client(base_url=self.base_url, timeout=30, headers=HEADERS) as client:
            return client.request(method, path)

    def stop(self) -> None:
        for client in getattr(self, "clients", []):
            client.close()
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def shared(redis_url: str) -> Iterator[tuple[str, list[Serve]]]:
    started: list[Serve] = []
    yield redis_url, started
    for server in started:
        server.stop()


def start(shared: tuple[str, list[Serve]]) -> Serve:
    url, started = shared
    server = Serve(url)
    started.append(server)
    return server


def test_two_workers_on_redis_agree_deliver_once_and_survive_a_restart(
    shared: tuple[str, list[Serve]], receiver: Receiver
) -> None:
    server = start(shared)
    pids = {server.fresh("GET", "/_mock/health").json()["data"]["pid"] for _ in range(40)}
    assert len(pids) == 2, f"requests should reach both workers, saw {pids}"

    ids: list[str] = []
    for i in range(200):
        query = {"webhook": receiver.url} if i % 4 == 0 else None
        response = server.request("POST", f"/api/v3/{T2I}", json={"prompt": f"p{i}"}, params=query)
        assert response.status_code == 200, response.text
        ids.append(response.json()["data"]["id"])

    finished: Counter[str] = Counter()
    for number, prediction_id in enumerate(ids):
        seen: list[str] = []
        for _ in range(4):  # poll-count progression: created → processing → completed, counted across workers
            response = server.request("GET", f"/api/v3/predictions/{prediction_id}/result")
            assert response.status_code == 200, f"{prediction_id}: {response.status_code} {response.text}"
            seen.append(response.json()["data"]["status"])
        if number % 4:
            assert seen == ["processing", "completed", "completed", "completed"], seen
        else:  # with a webhook, a second of the clock also moves it a step: it may have finished unpolled
            assert seen in (["processing", "completed", "completed", "completed"], ["completed"] * 4), seen
        finished[prediction_id] += seen.count("completed") > 0
    assert set(finished.values()) == {1} and len(finished) == 200

    hooked = ids[::4]
    received = receiver.wait_for(len(hooked))
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline and len(receiver.received) == len(hooked):
        time.sleep(0.05)  # a duplicate, if any, would arrive within this bounded window
    delivered = Counter(r.json()["id"] for r in receiver.received)
    assert sorted(delivered) == sorted(hooked) and set(delivered.values()) == {1}
    assert len(received) == len(hooked)

    ticket = server.request("POST", "/api/v3/media/uploads", json={"filename": "a.png", "size": len(PNG)}).json()
    put = httpx.put(ticket["data"]["upload"]["url"], content=PNG, headers=ticket["data"]["upload"]["headers"])
    assert put.status_code == 200
    binary = server.request("POST", "/api/v3/media/upload/binary", files={"file": ("b.png", PNG, "image/png")})
    uploads = [ticket["data"]["download_url"], binary.json()["data"]["download_url"]]
    output = server.request("GET", f"/api/v3/predictions/{ids[0]}/result").json()["data"]["outputs"][0]

    server.stop()
    restarted = start(shared)
    for prediction_id in ids:
        data = restarted.request("GET", f"/api/v3/predictions/{prediction_id}/result").json()["data"]
        assert data["status"] == "completed"
    for url in uploads:
        assert httpx.get(url.replace(f":{server.port}", f":{restarted.port}")).content == PNG
    image = httpx.get(output.replace(f":{server.port}", f":{restarted.port}"))
    assert image.status_code == 200 and image.content[:2] == b"\xff\xd8"
    assert len(receiver.received) == len(hooked)  # the restart re-delivered nothing


def test_a_times_one_rule_fires_once_and_counters_add_up_across_workers(shared: tuple[str, list[Serve]]) -> None:
    server = start(shared)
    rule = {"outcome": {"status": "failed", "code": 1402}, "prompt_contains": "once", "times": 1, "tenant": KEY}
    assert server.request("POST", "/_mock/outcomes", json=rule).status_code == 200
    fault = {"status": 503, "path": "/api/v3/balance", "times": 3}
    assert server.request("POST", "/_mock/faults", json=fault).status_code == 200

    ids = [
        server.request("POST", f"/api/v3/{T2I}", json={"prompt": f"once {i}"}).json()["data"]["id"] for i in range(20)
    ]
    statuses = []
    for prediction_id in ids:
        for _ in range(2):
            data = server.request("GET", f"/api/v3/predictions/{prediction_id}/result").json()["data"]
        statuses.append(data["status"])
    assert statuses.count("failed") == 1 and statuses.count("completed") == 19

    balance_statuses = [server.request("GET", "/api/v3/balance").status_code for _ in range(6)]
    assert balance_statuses.count(503) == 3
    balance = server.request("GET", "/api/v3/balance").json()["data"]["balance"]
    assert balance == pytest.approx(10.0 - 19 * 0.04)
    journal = server.request("GET", "/_mock/journal/count", params={"tenant": KEY, "method": "POST"}).json()
    assert journal["data"] == 20


def test_memory_store_with_several_workers_is_a_clear_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mock_server", "serve", "--workers", "2"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "needs a shared store" in result.stderr and "Traceback" not in result.stderr


def test_redis_server_fixture_is_real(redis_server: RedisServer) -> None:
    assert redis_server.process.poll() is None
