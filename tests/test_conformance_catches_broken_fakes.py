"""The conformance suite can fail: pointed (as ``--target URL``) at deliberately broken variants of the fake, it
reports each break precisely (endpoint, field path, expected vs observed). Also: the URL path respects the
budget, ``--dry-run`` sends nothing, and the runner never reports "nothing ran" as success.

Every server here is started in this process on a loopback port; the suite runs in a subprocess
(``python -m mock_server.cli conformance ...``), so its hypothesis profile and plugins never touch ours.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mock_server.contract.catalog import Catalog, Violation
from mock_server.http.app import create_app
from mock_server.http.server import RunningServer, run_in_thread
from mock_server.settings import Settings
from mock_server.testing.conformance_runner import main as conformance_main

KEY = "conformance-test-key"
T2I = "wavespeed-ai/flux-kontext-pro/text-to-image"
T2I_ID = "pro/text-to-image"  # the suite's parametrize id for T2I (the owner prefix dropped)
PRICED = "wavespeed-ai/flux-kontext-dev-ultra-fast"  # $0.02 per image in schemas/index.json
RUN_TIMEOUT = 120

Rewrite = Callable[[Scope, int, bytes], tuple[int, bytes]]


# --- broken variants: small ASGI wrappers and a lenient catalog around create_app -------------------------


class RewriteResponses:
    """ASGI middleware: buffer each HTTP response and let ``rewrite(scope, status, body)`` change it."""

    def __init__(self, app: ASGIApp, rewrite: Rewrite) -> None:
        self.app = app
        self.rewrite = rewrite

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            status, body = self.rewrite(scope, start["status"], b"".join(chunks))
            headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, capture)


class CountRequests:
    """ASGI middleware counting every HTTP request that reaches the server."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.count = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.count += 1
        await self.app(scope, receive, send)


def json_rewrite(change: Callable[[Scope, int, Any], tuple[int, Any] | None]) -> Rewrite:
    def rewrite(scope: Scope, status: int, body: bytes) -> tuple[int, bytes]:
        try:
            document = json.loads(body)
        except ValueError:
            return status, body
        changed = change(scope, status, document)
        return (status, body) if changed is None else (changed[0], json.dumps(changed[1]).encode())

    return rewrite


def drop_urls(scope: Scope, status: int, document: Any) -> tuple[int, Any] | None:
    data = document.get("data") if isinstance(document, dict) else None
    if isinstance(data, dict) and "urls" in data:
        del data["urls"]
        return status, document
    return None


def flip_terminal_status() -> Callable[[Scope, int, Any], tuple[int, Any] | None]:
    terminal_answers: dict[str, int] = {}

    def change(scope: Scope, status: int, document: Any) -> tuple[int, Any] | None:
        data = document.get("data") if isinstance(document, dict) else None
        if scope["method"] != "GET" or not isinstance(data, dict) or data.get("status") != "completed":
            return None
        seen = terminal_answers[data["id"]] = terminal_answers.get(data["id"], 0) + 1
        if seen < 2:
            return None
        data.update(status="processing", outputs=[], has_nsfw_contents=[])
        return status, document

    return change


def bad_request_as_500(scope: Scope, status: int, document: Any) -> tuple[int, Any] | None:
    if scope["method"] == "POST" and status == 400:
        return 500, {"code": 500, "message": "Internal Server Error"}
    return None


def wrong_size_outputs(scope: Scope, status: int, body: bytes) -> tuple[int, bytes]:
    if not scope["path"].startswith("/media/outputs/") or status != 200:
        return status, body
    with Image.open(io.BytesIO(body)) as image:
        fmt = str(image.format)
        resized = image.convert("RGB").resize((image.width + 16, image.height))
    out = io.BytesIO()
    resized.save(out, fmt)
    return status, out.getvalue()


class LenientNumImages(Catalog):
    """Accepts an integer num_images outside the documented range (wrong types are still refused)."""

    def validate(self, model: str, body: Any, *, strict: bool = False) -> list[Violation]:
        return [
            v
            for v in super().validate(model, body, strict=strict)
            if not (v.path == "num_images" and ("maximum" in v.message or "minimum" in v.message))
        ]


# --- running the suite ----------------------------------------------------------------------------------------


@dataclass
class Run:
    code: int
    output: str
    report: dict[str, Any]

    def violations(self, **match: str) -> list[dict[str, Any]]:
        return [v for v in self.report.get("violations", []) if all(v.get(k) == want for k, want in match.items())]


def settings(**overrides: Any) -> Settings:
    wanted: dict[str, Any] = {
        "progression": "polls",
        "api_keys": (KEY,),
        "latency_scale": 0.0,
        "log_level": "critical",
        "starting_balance": 1e9,
        **overrides,
    }
    known = {f.name for f in fields(Settings)}
    return Settings(**{k: v for k, v in wanted.items() if k in known}).validated()


@pytest.fixture
def serve() -> Iterator[Callable[[Any], RunningServer]]:
    started: list[RunningServer] = []

    def start(app: Any) -> RunningServer:
        running = run_in_thread(app)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


def run_suite(tmp_path: Path, *args: str, key: str | None = KEY) -> Run:
    report = tmp_path / "drift.json"
    env = {k: v for k, v in os.environ.items() if k != "WAVESPEED_API_KEY"}
    if key is not None:
        env["WAVESPEED_API_KEY"] = key
    command = [
        sys.executable,
        "-m",
        "mock_server.cli",
        "conformance",
        "--report",
        str(report),
        "--hypothesis-seed=0",
        *args,
    ]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    document = json.loads(report.read_text()) if report.exists() else {}
    return Run(done.returncode, done.stdout + done.stderr, document)


def url_target(running: RunningServer, *extra: str) -> list[str]:
    return ["--target", running.base_url, "--poll-interval", "0", "--budget", "500", *extra]


def assert_reported(run: Run, **match: str) -> dict[str, Any]:
    found = run.violations(**match)
    assert run.code == 1, run.output[-3000:]
    assert found, f"no violation matching {match}; report: {json.dumps(run.report.get('violations'), indent=1)}"
    entry = found[0]
    line = (
        f"{entry['endpoint']}: {entry['where']} {entry['path']}: expected {entry['expected']}; "
        f"observed {entry['observed']}"
    )
    assert line in run.output, f"{line!r} not in the text report"
    return entry


# --- the broken variants are caught -----------------------------------------------------------------------------


def test_missing_data_urls_is_reported_with_the_schema_requirement(serve, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    running = serve(RewriteResponses(create_app(settings()), json_rewrite(drop_urls)))

    run = run_suite(
        tmp_path, *url_target(running, "--max-examples", "3", "-k", f"valid_request_is_accepted and {T2I_ID}")
    )

    entry = assert_reported(run, endpoint=T2I, path="data.urls")
    assert (entry["where"], entry["expected"], entry["observed"]) == (
        "submit response",
        "required property present",
        "missing",
    )


def test_accepting_an_out_of_range_num_images_is_reported(serve, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    running = serve(create_app(settings(), catalog=LenientNumImages()))

    run = run_suite(
        tmp_path, *url_target(running, "--max-examples", "150", "-k", f"invalid_request_is_rejected and {T2I_ID}")
    )

    entry = assert_reported(run, endpoint=T2I, path="num_images", observed="HTTP 200 accepted")
    assert entry["expected"].startswith("a 4xx rejection (num_images m")  # "...maximum is 4, sent 9" or minimum


def test_outputs_of_the_wrong_size_are_reported(serve, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    running = serve(RewriteResponses(create_app(settings()), wrong_size_outputs))

    run = run_suite(tmp_path, *url_target(running, "--max-examples", "3", "-k", f"outputs and {T2I_ID}"))

    entry = assert_reported(run, endpoint=T2I, path="data.outputs[0] size")
    expected_size, observed_size = entry["expected"].split(" ")[0], entry["observed"]
    width, height = map(int, expected_size.split("x"))
    assert observed_size == f"{width + 16}x{height}"
    assert "aspect_ratio" in entry["expected"] or "default" in entry["expected"]


def test_a_terminal_status_that_changes_later_is_reported(serve, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    running = serve(RewriteResponses(create_app(settings()), json_rewrite(flip_terminal_status())))

    run = run_suite(tmp_path, *url_target(running, "--max-examples", "3", "-k", f"lifecycle and {T2I_ID}"))

    entry = assert_reported(run, endpoint=T2I, path="data.status", observed="'processing'")
    assert entry["expected"].startswith("'completed'")
    assert "terminal" in entry["expected"] and "after the terminal one" in entry["where"]


def test_a_bad_request_answered_with_500_is_reported(serve, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    running = serve(RewriteResponses(create_app(settings()), json_rewrite(bad_request_as_500)))

    run = run_suite(
        tmp_path, *url_target(running, "--max-examples", "3", "-k", f"invalid_request_is_rejected and {T2I_ID}")
    )

    found = run.violations(endpoint=T2I, where="submit")
    assert run.code == 1 and found, run.output[-3000:]
    entry = found[0]
    assert entry["expected"].startswith("a 4xx rejection (")
    assert entry["observed"].startswith("HTTP 500 ")
    assert entry["path"] in create_app(settings()).state.mock.backend.catalog.endpoints[T2I].properties  # mutated field
    assert f"{T2I}: submit {entry['path']}: expected a 4xx rejection" in run.output


# --- the URL path: budget, dry run --------------------------------------------------------------------------------


def test_url_target_spends_at_most_the_budget(serve, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    app = create_app(settings())
    running = serve(app)

    run = run_suite(
        tmp_path,
        "--target",
        running.base_url,
        "--poll-interval",
        "0",
        "--budget",
        "2",
        "--max-examples",
        "3",
        "-k",
        f"valid_request_is_accepted or lifecycle or {T2I_ID}",
    )

    accepted = len(app.state.mock.backend.predictions())
    assert run.code == 0, run.output[-3000:]
    assert accepted == 2
    assert run.report["budget"]["spent"] == 2 and run.report["budget"]["limit"] == 2
    assert run.report["budget"]["estimated_cost_usd"] > 0
    guarded = [s for s in run.report["skipped"] if s["reason"].startswith("cost guard: the budget of 2")]
    assert guarded, run.report["skipped"]
    assert run.report["counts"]["passed"] > 0  # the free probes ran (first) and passed


def test_dry_run_sends_nothing_and_prints_the_requests_and_their_cost(serve, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    counter = CountRequests(create_app(settings()))
    running = serve(counter)

    run = run_suite(
        tmp_path,
        "--target",
        running.base_url,
        "--dry-run",
        "--max-examples",
        "2",
        "-k",
        "flux-kontext-dev-ultra-fast and (valid_request or invalid_request)",
        key=None,
    )

    assert counter.count == 0
    assert run.code == 0, run.output[-3000:]
    assert f"POST /api/v3/{PRICED} {{" in run.output
    assert "(est. $0.020)" in run.output  # dev-ultra-fast: $0.02 per image, one image in a paid run
    assert "estimated cost of the first 1 paid prediction(s) the budget allows: $0.020" in run.output
    planned = run.report["planned_requests"]
    assert {p["path"] for p in planned} == {f"/api/v3/{PRICED}"}
    assert sorted(p["estimated_cost_usd"] for p in planned) == [0.0, 0.02]


# --- the runner ------------------------------------------------------------------------------------------------


def test_selecting_nothing_is_not_a_success(tmp_path: Path) -> None:
    run = run_suite(tmp_path, "-k", "no_such_property")

    assert run.code == 5
    assert "not a pass" in run.output


def test_a_url_target_without_a_key_is_refused_before_anything_runs(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WAVESPEED_API_KEY", raising=False)

    code = conformance_main(["--target", "http://127.0.0.1:9"])

    assert code == 2
    assert "WAVESPEED_API_KEY" in capsys.readouterr().err


def test_help_documents_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        conformance_main(["--help"])

    text = capsys.readouterr().out
    assert exited.value.code == 0
    for option in (
        "--target",
        "--budget",
        "--dry-run",
        "--report",
        "--junitxml",
        "--profile",
        "--max-examples",
        "-k",
        "WAVESPEED_API_KEY",
        "exit status",
    ):
        assert option in text
