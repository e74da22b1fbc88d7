"""Log events: scenario loads, faults fired, queued outcomes used, webhook attempts; never an API key."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from mock_server.contract.tenants import fingerprint
from mock_server.http.app import create_app
from mock_server.logs import JsonFormatter, StderrHandler, StdoutHandler, logging_config
from mock_server.settings import PREFIX, Settings
from mock_server.testing.client import FakeWaveSpeed
from tests.conftest import T2I, Live
from tests.fixtures.webhook_receiver import WAIT, Receiver

SCENARIO = {
    "seed": 7,
    "behaviour": [{"model": "*", "progression": "polls"}],
    "outcomes": [{"outcome": {"status": "failed", "code": 1402}, "prompt_contains": "broken", "times": 2}],
    "faults": [{"path": "/api/v3/predictions/*/result", "status": 503, "times": 1}],
}


@pytest.fixture
def caplog_info(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="wavespeed_mock")
    return caplog


def events(caplog: pytest.LogCaptureFixture, *secrets: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(logger, event, fields) of every wavespeed_mock record, after checking none of them shows a secret."""
    found = []
    for record in caplog.records:
        if not record.name.startswith("wavespeed_mock."):
            continue
        fields: dict[str, Any] = getattr(record, "fields")  # noqa: B009 - set through `extra`
        for secret in secrets:
            assert secret not in record.getMessage() and secret not in json.dumps(fields), record.getMessage()
        found.append((record.name, getattr(record, "event"), fields))  # noqa: B009
    return found


def handle(live: Live) -> FakeWaveSpeed:
    return FakeWaveSpeed(live.base_url, live.key)


def test_fingerprint_is_a_short_stable_hash_of_the_key() -> None:
    assert fingerprint("ws-key") == "tk_" + hashlib.sha256(b"ws-key").hexdigest()[:12]
    assert fingerprint("ws-key") != fingerprint("ws-key2")


# --- the events -------------------------------------------------------------------------------------------


def test_a_scenario_file_is_one_event_with_its_source_and_counts(
    tmp_path: Path, caplog_info: pytest.LogCaptureFixture
) -> None:
    scenario = tmp_path / "scenario.json"
    scenario.write_text(json.dumps(SCENARIO), encoding="utf-8")

    create_app(Settings(scenario=str(scenario)))

    assert events(caplog_info) == [
        (
            "wavespeed_mock.scenario",
            "scenario.loaded",
            {"source": f"file {scenario}", "seed": 7, "behaviour": 1, "outcomes": 1, "faults": 1, "webhooks": False},
        )
    ]
    record = next(r for r in caplog_info.records if r.name == "wavespeed_mock.scenario")
    assert record.levelno == logging.INFO
    assert record.getMessage() == (
        f'scenario.loaded source="file {scenario}" seed=7 behaviour=1 outcomes=1 faults=1 webhooks=false'
    )


def test_a_scenario_through_the_control_api_is_logged_as_such(
    start_server: Callable[..., Live], caplog_info: pytest.LogCaptureFixture
) -> None:
    live = start_server()

    handle(live).apply_scenario({"webhooks": {"duplicate": True}})

    assert events(caplog_info) == [
        (
            "wavespeed_mock.scenario",
            "scenario.loaded",
            {"source": "control", "seed": None, "behaviour": 0, "outcomes": 0, "faults": 0, "webhooks": True},
        )
    ]


def test_a_queued_outcome_is_logged_when_a_prediction_uses_it(
    start_server: Callable[..., Live], caplog_info: pytest.LogCaptureFixture
) -> None:
    live = start_server()
    rule = handle(live).fail_next(code=1402)

    used = live.submit(T2I, {"prompt": "x"}).json()["data"]["id"]
    live.submit(T2I, {"prompt": "y"})  # the rule is spent: a plain success, nothing to log

    assert events(caplog_info, live.key) == [
        (
            "wavespeed_mock.outcomes",
            "outcome.applied",
            {
                "rule": rule["id"],
                "prediction": used,
                "model": T2I,
                "tenant": fingerprint(live.key),
                "outcome": {"status": "failed", "code": 1402},
                "remaining": 0,
            },
        )
    ]


def test_a_fired_fault_is_logged_with_the_request_it_hit(
    start_server: Callable[..., Live], caplog_info: pytest.LogCaptureFixture
) -> None:
    live = start_server()
    prediction_id = live.submit(T2I, {"prompt": "x"}).json()["data"]["id"]
    fault = handle(live).add_fault(path="/api/v3/predictions/*", status=429, retry_after=2, tenant=live.key)

    statuses = [live.http.get(f"/api/v3/predictions/{prediction_id}/result").status_code for _ in range(2)]

    assert statuses == [429, 200]
    assert events(caplog_info, live.key) == [
        (
            "wavespeed_mock.faults",
            "fault.fired",
            {
                "id": fault["id"],
                "action": "status",
                "status": 429,
                "retry_after": 2.0,
                "delay": 0.0,
                "method": "GET",
                "path": f"/api/v3/predictions/{prediction_id}/result",
                "tenant": fingerprint(live.key),
                "remaining": 0,
            },
        )
    ]


def test_every_webhook_attempt_is_logged_with_its_status_and_no_credentials(
    start_server: Callable[..., Live], receiver: Receiver, caplog_info: pytest.LogCaptureFixture
) -> None:
    live = start_server(webhook_retry_base=0.01)
    receiver.script.append(500)
    url = receiver.url.replace("http://", "http://user:s3cret@") + "?token=s3cret"
    prediction_id = live.submit(T2I, {"prompt": "x"}, params={"webhook": url}).json()["data"]["id"]
    for _ in range(2):
        live.poll(prediction_id)

    receiver.wait_for(2)
    assert live.running.app.state.mock.webhooks.wait_idle(WAIT)

    found = events(caplog_info, live.key, "s3cret")
    assert [(e, f["result"], f["attempt"], f["status"]) for _, e, f in found] == [
        ("webhook.delivery", "failed", 1, 500),
        ("webhook.delivery", "delivered", 2, 200),
    ]
    assert found[0][2] == {
        "result": "failed",
        "prediction": prediction_id,
        "event_id": prediction_id[:25],
        "status": 500,
        "error": None,
        "attempt": 1,
        "max_attempts": 4,
        "url": receiver.url,
        "latency_ms": found[0][2]["latency_ms"],
        "note": None,
        "tenant": fingerprint(live.key),
    }
    levels = [r.levelno for r in caplog_info.records if r.name == "wavespeed_mock.webhooks"]
    assert levels == [logging.WARNING, logging.INFO]


def test_refused_and_blocked_webhooks_are_logged_with_the_reason(
    start_server: Callable[..., Live], caplog_info: pytest.LogCaptureFixture
) -> None:
    live = start_server(webhook_retry_base=0.01)
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for url in (f"http://127.0.0.1:{port}/hook", "https://receiver.example/hook"):
        prediction_id = live.submit(T2I, {"prompt": url}, params={"webhook": url}).json()["data"]["id"]
        for _ in range(2):
            live.poll(prediction_id)
    assert live.running.app.state.mock.webhooks.wait_idle(WAIT)

    found = [f for _, _, f in events(caplog_info, live.key)]
    # The two predictions' attempts interleave: told apart by their receiver.
    refused = [f for f in found if f["url"] == f"http://127.0.0.1:{port}/hook"]
    blocked = [f for f in found if f not in refused]
    assert [(f["result"], f["attempt"], f["status"]) for f in refused] == [("failed", n, None) for n in range(1, 5)]
    assert all(f["error"] for f in refused)
    assert [(f["result"], f["url"], f["error"]) for f in blocked] == [
        ("blocked", "https://receiver.example/hook", None)
    ]


def test_ordinary_requests_log_nothing(
    start_server: Callable[..., Live], caplog_info: pytest.LogCaptureFixture
) -> None:
    live = start_server()

    data = live.run_to_end(T2I, {"prompt": "x"})
    live.http.get(data["outputs"][0])
    live.http.get("/api/v3/nothing-here")

    assert events(caplog_info) == []


# --- formats ------------------------------------------------------------------------------------------------


def test_the_json_formatter_writes_events_and_other_records_as_one_object() -> None:
    formatter = JsonFormatter()
    record = logging.LogRecord("wavespeed_mock.faults", logging.INFO, __file__, 1, "%s", ("ignored",), None)
    record.event, record.fields = "fault.fired", {"id": 3, "path": "/x", "level": "not the level"}
    other = logging.LogRecord("uvicorn.error", logging.ERROR, __file__, 1, "Started %s", ("server",), None)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        other.exc_info = sys.exc_info()

    event, plain = json.loads(formatter.format(record)), json.loads(formatter.format(other))

    assert list(event) == ["time", "level", "logger", "event", "id", "path"]
    assert (event["level"], event["logger"], event["event"], event["id"]) == (
        "INFO",
        "wavespeed_mock.faults",
        "fault.fired",
        3,
    )
    assert event["time"].endswith("Z") and len(event["time"]) == len("2025-01-01T00:00:00.000Z")
    assert (plain["event"], plain["message"], plain["level"]) == ("log", "Started server", "ERROR")
    assert "RuntimeError: boom" in plain["exception"]


class Served:
    """``wavespeed-mock serve`` on a free port, its stderr read line by line; terminated at teardown."""

    def __init__(self, *argv: str, env: dict[str, str]) -> None:
        environ = {k: v for k, v in os.environ.items() if not k.startswith(PREFIX)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mock_server", "serve", "--port", "0", *argv],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**environ, "PYTHONUNBUFFERED": "1", **env},
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no line with {text!r} in: {self.seen}"
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                continue
            self.seen.append(line)
            if text in line:
                return line

    def stop(self) -> list[str]:
        self.process.terminate()
        self.process.wait(30)
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        return self.seen


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_serve_logs_events_and_uvicorn_lines_in_the_chosen_format(fmt: str, tmp_path: Path) -> None:
    scenario = tmp_path / "scenario.json"
    scenario.write_text(json.dumps(SCENARIO), encoding="utf-8")
    key = "sk-live-do-not-log-me"
    # The format from the environment variable, as a container would set it; text is the default.
    served = Served("--scenario", str(scenario), env={"WAVESPEED_MOCK_LOG_FORMAT": "json"} if fmt == "json" else {})
    try:
        running = served.wait_for("Uvicorn running on http://127.0.0.1:")
        base_url = running.split("running on ", 1)[1].split()[0].rstrip('",')
        with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
            prediction_id = client.post(f"/api/v3/{T2I}", json={"prompt": "broken"}).json()["data"]["id"]
            assert client.get(f"/api/v3/predictions/{prediction_id}/result").status_code == 503
        served.wait_for("fault.fired")
    finally:
        lines = served.stop()

    assert key not in "\n".join(lines)
    if fmt == "text":
        assert lines[0] == (
            f'INFO:     wavespeed_mock.scenario scenario.loaded source="file {scenario}" seed=7 '
            "behaviour=1 outcomes=1 faults=1 webhooks=false"
        )
        applied = f"INFO:     wavespeed_mock.outcomes outcome.applied rule=1 prediction={prediction_id} "
        assert any(line.startswith(applied) for line in lines)
        assert "INFO:     Started server process" in "\n".join(lines)
        return
    objects = [json.loads(line) for line in lines]  # every line, uvicorn's included
    by_event = {o["event"]: o for o in objects}
    assert by_event["scenario.loaded"]["source"] == f"file {scenario}"
    assert by_event["outcome.applied"] == {
        **by_event["outcome.applied"],
        "logger": "wavespeed_mock.outcomes",
        "level": "INFO",
        "prediction": prediction_id,
        "tenant": fingerprint(key),
        "remaining": 1,
    }
    assert by_event["fault.fired"]["status"] == 503 and by_event["fault.fired"]["tenant"] == fingerprint(key)
    assert any(o["logger"] == "uvicorn.error" and o["message"].startswith("Started server process") for o in objects)
    assert all(set(o) >= {"time", "level", "logger", "event"} for o in objects)


def test_every_handler_of_the_server_config_writes_to_the_current_stream_not_that_of_configuration_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A test whose capture was closed must not break a server that logs (uvicorn's "Shutting down") later.
    handlers = logging_config()["handlers"]
    assert {spec["class"].rsplit(".", 1)[1] for spec in handlers.values()} == {"StderrHandler", "StdoutHandler"}
    for stream_name, handler in (("stderr", StderrHandler()), ("stdout", StdoutHandler())):
        configured_under = io.StringIO()
        monkeypatch.setattr(sys, stream_name, configured_under)
        configured_under.close()
        later = io.StringIO()
        monkeypatch.setattr(sys, stream_name, later)
        handler.emit(logging.makeLogRecord({"msg": "Shutting down", "levelno": logging.INFO}))
        assert "Shutting down" in later.getvalue()
