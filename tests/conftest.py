from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from mock_server.contract.catalog import Catalog, default_catalog
from mock_server.contract.tenants import fingerprint
from mock_server.http.app import create_app
from mock_server.http.server import RunningServer, run_in_thread
from mock_server.model.backend import Backend
from mock_server.settings import Settings
from tests.fixtures.stopping import join_stopped, stop_soon

pytest_plugins = ["tests.fixtures.redis_server", "tests.fixtures.webhook_receiver"]

# The loggers `serve` configures (logs.logging_config) before it starts: a test that runs `serve` in-process leaves
# them at INFO with handlers on the real stderr, and a later test's background webhook delivery then prints a line
# into pytest's progress output.
_CONFIGURED_LOGGERS = ("", "wavespeed_mock", "uvicorn", "uvicorn.error", "uvicorn.access")


@pytest.fixture(autouse=True)
def _logging_as_it_was() -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in _CONFIGURED_LOGGERS]
    saved = [(logger.level, logger.propagate, list(logger.handlers), logger.disabled) for logger in loggers]
    yield
    for logger, (level, propagate, handlers, disabled) in zip(loggers, saved, strict=True):
        logger.setLevel(level)
        logger.propagate, logger.handlers, logger.disabled = propagate, handlers, disabled


T2I = "wavespeed-ai/flux-kontext-pro/text-to-image"
DEV = "wavespeed-ai/flux-kontext-dev"
EDIT = "wavespeed-ai/flux-kontext-max"


class Live:
    """A running fake plus an httpx client with its own tenant key."""

    def __init__(self, running: RunningServer, key: str) -> None:
        self.running = running
        self.key = key
        self.base_url = running.base_url
        self.http = httpx.Client(base_url=self.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30)

    @property
    def tenant(self) -> str:
        """How the fake names this client's tenant (the key's fingerprint)."""
        return fingerprint(self.key)

    @property
    def backend(self) -> Backend:
        backend: Backend = self.running.app.state.mock.backend
        return backend

    def submit(self, model: str, body: dict[str, Any], **kwargs: Any) -> httpx.Response:
        return self.http.post(f"/api/v3/{model}", json=body, **kwargs)

    def poll(self, prediction_id: str) -> dict[str, Any]:
        response = self.http.get(f"/api/v3/predictions/{prediction_id}/result")
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    def run_to_end(self, model: str, body: dict[str, Any], max_polls: int = 10) -> dict[str, Any]:
        response = self.submit(model, body)
        assert response.status_code == 200, response.text
        prediction_id = response.json()["data"]["id"]
        for _ in range(max_polls):
            data = self.poll(prediction_id)
            if data["status"] in ("completed", "failed", "cancelled", "timeout"):
                return data
        raise AssertionError(f"prediction {prediction_id} did not finish in {max_polls} polls")


@pytest.fixture(scope="session", autouse=True)
def _servers_stop_by_the_end_of_the_session() -> Iterator[None]:
    yield
    join_stopped()


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return default_catalog()


@pytest.fixture
def start_server() -> Iterator[Callable[..., Live]]:
    """Start a fake with the given settings on a free loopback port; stopped at teardown."""
    started: list[Live] = []

    def start(**settings: Any) -> Live:
        settings.setdefault("progression", "polls")
        app = create_app(Settings(**settings).validated())
        live = Live(run_in_thread(app), key=f"key-{uuid.uuid4().hex[:8]}")
        started.append(live)
        return live

    yield start
    for live in started:
        live.http.close()
        stop_soon(live.running)


@pytest.fixture(scope="module")
def shared_server() -> Iterator[RunningServer]:
    running = run_in_thread(create_app(Settings(progression="polls")))
    yield running
    stop_soon(running)


@pytest.fixture
def live(shared_server: RunningServer) -> Iterator[Live]:
    """A fresh tenant on the module's shared server (poll-count progression, one step per poll)."""
    client = Live(shared_server, key=f"key-{uuid.uuid4().hex[:8]}")
    yield client
    client.http.close()
    client.running.app.state.mock.store.reset(client.tenant)
