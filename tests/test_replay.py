"""``serve --replay DIR``: cassettes recorded by the proxy, played back by the fake.

The round trip is real: our own fake (polls progression, no latency) is the upstream, the recording proxy sits in
front of it, and the official Python SDK drives both the recording and the replay, which must look the same to
it. Everything runs on loopback; time moves only through the fake's clock.
"""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import requests
import wavespeed
import wavespeed.api.client
from PIL import Image

from mock_server.cli import main
from mock_server.contract.cassette import match_key, problems
from mock_server.contract.catalog import default_catalog
from mock_server.http.app import create_app
from mock_server.http.proxy import ProxyConfig, RunningProxy, run_proxy_in_thread
from mock_server.http.server import RunningServer, run_in_thread
from mock_server.resources import data_dir
from mock_server.settings import Settings
from tests.conftest import DEV, EDIT, T2I
from tests.fixtures.webhook_receiver import Receiver

MULTI = "wavespeed-ai/flux-kontext-pro/multi"
RECORDING_KEY = f"sk-replay-recording-{uuid.uuid4().hex}"

# The three recorded runs: a text-to-image with two outputs at 16:9, an edit asking for PNG, a failed edit.
T2I_INPUT = {"prompt": "two lighthouses at dusk", "aspect_ratio": "16:9", "num_images": 2}
PNG_INPUT = {"prompt": "as a png", "image": "https://example.com/cat.jpg", "output_format": "png", "size": "512*384"}
FAIL_INPUT = {"prompt": "this one breaks", "image": "https://example.com/missing.png"}


# --------------------------------------------------------------------------------------------- what the SDK saw


@dataclass
class Seen:
    """What a client can see of one ``run``: statuses, outputs (decoded), the task error."""

    ids: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)  # consecutive repeats collapsed
    codes: list[int] = field(default_factory=list)  # data.code of any answer that carried one
    outputs: list[tuple[int, int, str]] = field(default_factory=list)  # (width, height, Pillow format)
    error: str | None = None  # the SDK's exception text, the task id taken out

    def visible(self) -> tuple[list[str], list[int], list[tuple[int, int, str]], str | None]:
        return self.statuses, self.codes, self.outputs, self.error


def drive(base_url: str, key: str, model: str, body: dict[str, Any]) -> Seen:
    """Run ``model`` with the official SDK against ``base_url``, noting every answer it got."""
    seen = Seen()
    with pytest.MonkeyPatch.context() as patch:
        for name in ("get", "post"):
            original = getattr(requests, name)

            def wrapper(*args: Any, _original: Any = original, **kwargs: Any) -> requests.Response:
                response: requests.Response = _original(*args, **kwargs)
                data = response.json().get("data") if response.status_code == 200 else None
                if isinstance(data, dict) and "status" in data:
                    if data.get("id") and data["id"] not in seen.ids:
                        seen.ids.append(data["id"])
                    if not seen.statuses or seen.statuses[-1] != data["status"]:
                        seen.statuses.append(data["status"])
                    if isinstance(data.get("code"), int):
                        seen.codes.append(data["code"])
                return response

            # The SDK calls requests.get/post at module level: patching its module sees every exchange.
            patch.setattr(wavespeed.api.client.requests, name, wrapper)
        client = wavespeed.Client(api_key=key, base_url=base_url, max_connection_retries=0)
        try:
            result = client.run(model, body, poll_interval=0.05)
        except RuntimeError as exc:
            seen.error = re.sub(r"task_id: [^)]*", "task_id: …", str(exc))
            return seen
    for url in result["outputs"]:
        with Image.open(io.BytesIO(httpx.get(url).content)) as picture:
            seen.outputs.append((*picture.size, str(picture.format)))
    return seen


# --------------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def upstream() -> Iterator[RunningServer]:
    running = run_in_thread(create_app(Settings(progression="polls", latency_scale=0)))
    yield running
    running.stop()


@pytest.fixture
def start_proxy() -> Iterator[Callable[[str, Path], RunningProxy]]:
    started: list[RunningProxy] = []

    def start(upstream_url: str, record_dir: Path) -> RunningProxy:
        proxy = run_proxy_in_thread(ProxyConfig(upstream=upstream_url, record_dir=record_dir))
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.stop()


@dataclass
class Recorded:
    directory: Path
    seen: dict[str, Seen]  # by run name: t2i, png, failed


def queue_failure(upstream: RunningServer, key: str, model: str, code: int) -> None:
    answer = httpx.post(
        f"{upstream.base_url}/_mock/outcomes",
        json={"outcome": {"status": "failed", "code": code}, "model": model, "tenant": key},
    )
    assert answer.status_code == 200, answer.text


@pytest.fixture(scope="module")
def recorded(upstream: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorded]:
    """The three runs, made through the recording proxy with the SDK."""
    directory = tmp_path_factory.mktemp("replay") / "cassettes"
    proxy = run_proxy_in_thread(ProxyConfig(upstream=upstream.base_url, record_dir=directory))
    try:
        seen = {
            "t2i": drive(proxy.base_url, RECORDING_KEY, T2I, T2I_INPUT),
            "png": drive(proxy.base_url, RECORDING_KEY, DEV, PNG_INPUT),
        }
        queue_failure(upstream, RECORDING_KEY, EDIT, 1402)
        seen["failed"] = drive(proxy.base_url, RECORDING_KEY, EDIT, FAIL_INPUT)
    finally:
        proxy.stop()
    yield Recorded(directory, seen)


@pytest.fixture
def start_fake() -> Iterator[Callable[..., RunningServer]]:
    started: list[RunningServer] = []

    def start(**settings: Any) -> RunningServer:
        running = run_in_thread(create_app(Settings(**settings).validated()))
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


@pytest.fixture(scope="module")
def replaying(recorded: Recorded) -> Iterator[RunningServer]:
    running = run_in_thread(create_app(Settings(replay=str(recorded.directory), replay_speed=0)))
    yield running
    running.stop()


def key() -> str:
    return f"sk-replay-{uuid.uuid4().hex}"


def the_cassette(directory: Path, prediction_id: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((directory / f"{prediction_id}.json").read_text(encoding="utf-8"))
    return document


# ------------------------------------------------------------------------------------------------ round trip


def test_the_recording_saw_what_the_round_trip_compares(recorded: Recorded) -> None:
    t2i, png, failed = recorded.seen["t2i"], recorded.seen["png"], recorded.seen["failed"]
    assert t2i.statuses == ["created", "processing", "completed"] and t2i.error is None
    assert t2i.outputs == [(1360, 768, "JPEG")] * 2
    assert png.outputs == [(512, 384, "PNG")]
    assert failed.statuses == ["created", "processing", "failed"] and failed.codes == [1402]
    assert failed.error is not None and "Failed to download image" in failed.error
    for cassette in recorded.directory.glob("*.json"):
        assert problems(json.loads(cassette.read_text(encoding="utf-8"))) == []


@pytest.mark.parametrize("run", ["t2i", "png", "failed"])
def test_a_replay_looks_to_the_sdk_as_the_recording_did(recorded: Recorded, replaying: RunningServer, run: str) -> None:
    model, body = {"t2i": (T2I, T2I_INPUT), "png": (DEV, PNG_INPUT), "failed": (EDIT, FAIL_INPUT)}[run]
    original = recorded.seen[run]

    # Another API key than the recording's: a cassette is not tied to the key it was recorded with.
    replayed = drive(replaying.base_url, key(), model, body)

    assert replayed.visible() == original.visible()
    assert replayed.ids != original.ids  # a new prediction of this fake, not the recorded one
    described = httpx.get(f"{replaying.base_url}/_mock/predictions/{replayed.ids[0]}").json()["data"]
    assert f"replaying cassette {original.ids[0]}.json" in described["notes"]


def test_the_replayed_outputs_have_the_recorded_sizes_and_formats(recorded: Recorded, replaying: RunningServer) -> None:
    cassette = the_cassette(recorded.directory, recorded.seen["png"].ids[0])
    (output,) = cassette["outputs"]
    replayed = drive(replaying.base_url, key(), DEV, PNG_INPUT)
    assert replayed.outputs == [(output["width"], output["height"], output["format"].upper())]


def test_no_cassette_holds_the_api_key(recorded: Recorded) -> None:
    files = [p for p in recorded.directory.rglob("*") if p.is_file()]
    assert len([p for p in files if p.suffix == ".json"]) == 3 and len(files) > 3  # cassettes and their media
    for path in files:
        data = path.read_bytes()
        assert RECORDING_KEY.encode() not in data, f"the API key leaked into {path}"
        assert b"Bearer" not in data, path


def test_sync_mode_and_base64_behave_as_the_fake_does(recorded: Recorded, replaying: RunningServer) -> None:
    # The transport flags are not part of the match: the async recording answers a sync, inline request.
    answer = httpx.post(
        f"{replaying.base_url}/api/v3/{DEV}",
        headers={"Authorization": f"Bearer {key()}"},
        json={**PNG_INPUT, "enable_sync_mode": True, "enable_base64_output": True},
        timeout=30,
    )

    assert answer.status_code == 200, answer.text
    data = answer.json()["data"]
    assert data["status"] == "completed" and len(data["outputs"]) == 1
    with Image.open(io.BytesIO(base64.b64decode(data["outputs"][0], validate=True))) as picture:
        assert (picture.size, picture.format) == ((512, 384), "PNG")
    # Sync mode alone (the text-to-image model has no base64 flag): the outputs are links.
    answer = httpx.post(
        f"{replaying.base_url}/api/v3/{T2I}",
        headers={"Authorization": f"Bearer {key()}"},
        json={**T2I_INPUT, "enable_sync_mode": True},
        timeout=30,
    )
    data = answer.json()["data"]
    assert data["status"] == "completed" and [urlsplit(u).path.rsplit(".")[-1] for u in data["outputs"]] == [
        "jpeg",
        "jpeg",
    ]


# ----------------------------------------------------------------------------------------------- no match


def test_strict_mode_names_the_nearest_cassette_and_what_differs(recorded: Recorded, replaying: RunningServer) -> None:
    t2i = f"{recorded.seen['t2i'].ids[0]}.json"

    refused = drive(replaying.base_url, key(), T2I, {**T2I_INPUT, "prompt": "three lighthouses"})
    assert refused.error is not None and "HTTP 404" in refused.error and t2i in refused.error

    answer = httpx.post(
        f"{replaying.base_url}/api/v3/{T2I}",
        headers={"Authorization": f"Bearer {key()}"},
        json={**T2I_INPUT, "prompt": "three lighthouses", "num_images": 1},
    )
    body = answer.json()
    assert answer.status_code == 404 and body["code"] == 404 and body["error_code"] == "replay_no_match"
    assert body["nearest"] == {
        "cassette": t2i,
        "model": T2I,
        "differences": [
            {"key": "num_images", "recorded": 2, "sent": 1},
            {"key": "prompt", "recorded": "two lighthouses at dusk", "sent": "three lighthouses"},
        ],
    }
    assert (
        f'Nearest: {t2i}, which differs in num_images: recorded 2, sent 1; prompt: recorded "two lighthouses '
        'at dusk", sent "three lighthouses".'
    ) in body["message"]
    assert "--replay-mode lenient" in body["message"]


def test_without_a_cassette_of_the_model_the_nearest_is_of_another(
    recorded: Recorded, replaying: RunningServer
) -> None:
    answer = httpx.post(
        f"{replaying.base_url}/api/v3/{MULTI}",
        headers={"Authorization": f"Bearer {key()}"},
        json={"prompt": "this one breaks", "images": ["https://example.com/missing.png"]},
    )
    body = answer.json()
    assert answer.status_code == 404
    # The failed edit shares the prompt and the default guidance_scale: more equal keys than the other cassettes.
    failed = f"{recorded.seen['failed'].ids[0]}.json"
    assert body["nearest"]["cassette"] == failed and body["nearest"]["model"] == EDIT
    assert f"Nearest: {failed}, recorded for {EDIT} (no cassette is of {MULTI})." in body["message"]


def test_lenient_mode_lets_the_generated_fake_answer(
    recorded: Recorded, start_fake: Callable[..., RunningServer]
) -> None:
    fake = start_fake(replay=str(recorded.directory), replay_speed=0, replay_mode="lenient", progression="polls")

    generated = drive(fake.base_url, key(), T2I, {"prompt": "not recorded", "aspect_ratio": "1:1"})
    replayed = drive(fake.base_url, key(), T2I, T2I_INPUT)

    assert generated.error is None and generated.outputs == [(1024, 1024, "JPEG")]
    assert replayed.visible() == recorded.seen["t2i"].visible()


# ------------------------------------------------------------------------------------------------- timing


def retimed(recorded: Recorded, target: Path) -> dict[str, Any]:
    """The text-to-image cassette with statuses at 0.5 s (created), 2 s (processing) and 6 s (completed)."""
    cassette = the_cassette(recorded.directory, recorded.seen["t2i"].ids[0])
    cassette["statuses"] = [
        {"status": "created", "at": 0.5, "seen": 1},
        {"status": "processing", "at": 2.0, "seen": 3},
        {"status": "completed", "at": 6.0, "seen": 1},
    ]
    cassette["final"]["at"] = 6.0
    assert problems(cassette) == []
    target.mkdir()
    (target / "retimed.json").write_text(json.dumps(cassette), encoding="utf-8")
    return cassette


@pytest.mark.parametrize("speed", [1.0, 2.0])
def test_the_recorded_timings_play_on_the_fake_clock(
    recorded: Recorded, start_fake: Callable[..., RunningServer], tmp_path: Path, speed: float
) -> None:
    retimed(recorded, tmp_path / "retimed")
    fake = start_fake(replay=str(tmp_path / "retimed"), replay_speed=speed, frozen_clock=True)
    http = httpx.Client(base_url=fake.base_url, headers={"Authorization": f"Bearer {key()}"})

    def status() -> str:
        data = http.get(f"/api/v3/predictions/{prediction}/result").json()["data"]
        return str(data["status"])

    def advance(seconds: float) -> list[str]:
        answer = httpx.post(f"{fake.base_url}/_mock/clock/advance", json={"seconds": seconds / speed})
        finished: list[str] = answer.json()["data"]["finished"]
        return finished

    submitted = http.post(f"/api/v3/{T2I}", json=T2I_INPUT).json()["data"]
    prediction = submitted["id"]
    assert submitted["status"] == "created"
    assert [status() for _ in range(5)] == ["created"] * 5  # polls do not move a timed replay
    assert advance(1.99) == [] and status() == "created"
    assert advance(0.01) == [] and status() == "processing"
    assert advance(3.99) == [] and status() == "processing"
    assert advance(0.01) == [prediction]  # finished by the clock itself, not by a poll
    data = http.get(f"/api/v3/predictions/{prediction}/result").json()["data"]
    assert data["status"] == "completed" and len(data["outputs"]) == 2
    assert data["executionTime"] == 6000 / speed


def test_speed_zero_answers_each_recorded_status_once(
    recorded: Recorded, start_fake: Callable[..., RunningServer], tmp_path: Path
) -> None:
    cassette = retimed(recorded, tmp_path / "retimed")
    cassette["statuses"][1:1] = [{"status": "queued", "at": 1.0, "seen": 2}]  # a status of the real API's own
    (tmp_path / "retimed" / "retimed.json").write_text(json.dumps(cassette), encoding="utf-8")
    fake = start_fake(replay=str(tmp_path / "retimed"), replay_speed=0, frozen_clock=True)
    http = httpx.Client(base_url=fake.base_url, headers={"Authorization": f"Bearer {key()}"})

    prediction = http.post(f"/api/v3/{T2I}", json=T2I_INPUT).json()["data"]["id"]
    statuses = [http.get(f"/api/v3/predictions/{prediction}/result").json()["data"]["status"] for _ in range(4)]

    assert statuses == ["queued", "processing", "completed", "completed"]


def test_a_forced_step_moves_a_replay_through_its_recorded_statuses(
    recorded: Recorded, start_fake: Callable[..., RunningServer], tmp_path: Path
) -> None:
    retimed(recorded, tmp_path / "retimed")
    fake = start_fake(replay=str(tmp_path / "retimed"), frozen_clock=True)
    http = httpx.Client(base_url=fake.base_url, headers={"Authorization": f"Bearer {key()}"})
    prediction = http.post(f"/api/v3/{T2I}", json=T2I_INPUT).json()["data"]["id"]

    def advance() -> str:
        answer = httpx.post(f"{fake.base_url}/_mock/predictions/{prediction}/advance", json={"steps": 1})
        return str(answer.json()["data"]["status"])

    assert [advance(), advance()] == ["processing", "completed"]
    data = http.get(f"/api/v3/predictions/{prediction}/result").json()["data"]
    assert data["status"] == "completed" and len(data["outputs"]) == 2


def test_at_speed_zero_a_webhook_client_gets_its_delivery_without_polling(
    recorded: Recorded, replaying: RunningServer, receiver: Receiver
) -> None:
    answer = httpx.post(
        f"{replaying.base_url}/api/v3/{T2I}",
        params={"webhook": receiver.url},
        json=T2I_INPUT,
        headers={"Authorization": f"Bearer {key()}"},
    )
    assert answer.status_code == 200, answer.text

    [hook] = receiver.wait_for(1)

    data = hook.json()
    assert data["id"] == answer.json()["data"]["id"] and data["status"] == "completed" and len(data["outputs"]) == 2


# ------------------------------------------------------------------------------------- sequences and refusals


def test_cassettes_of_one_request_replay_in_recorded_order(
    upstream: RunningServer,
    start_proxy: Callable[[str, Path], RunningProxy],
    start_fake: Callable[..., RunningServer],
    tmp_path: Path,
) -> None:
    # A client that retried: the first attempt failed, the second completed.
    recording = key()
    proxy = start_proxy(upstream.base_url, tmp_path / "retry")
    body = {"prompt": "retried", "size": "256*256"}
    queue_failure(upstream, recording, DEV, 5003)
    first = drive(proxy.base_url, recording, DEV, body)
    second = drive(proxy.base_url, recording, DEV, body)
    assert first.codes == [5003] and second.outputs == [(256, 256, "JPEG")]
    fake = start_fake(replay=str(tmp_path / "retry"), replay_speed=0)

    tenant = key()
    replayed = [drive(fake.base_url, tenant, DEV, body) for _ in range(3)]

    assert [r.visible() for r in replayed] == [first.visible(), second.visible(), first.visible()]
    # Each API key replays the sequence from its start.
    assert drive(fake.base_url, key(), DEV, body).visible() == first.visible()


def test_a_refused_submit_replays_its_refusal(
    upstream: RunningServer,
    start_proxy: Callable[[str, Path], RunningProxy],
    start_fake: Callable[..., RunningServer],
    tmp_path: Path,
) -> None:
    recording = key()
    httpx.post(
        f"{upstream.base_url}/_mock/faults",
        json={"status": 403, "message": "Insufficient balance", "path": f"/api/v3/{T2I}", "tenant": recording},
    )
    proxy = start_proxy(upstream.base_url, tmp_path / "refused")
    refused = httpx.post(
        f"{proxy.base_url}/api/v3/{T2I}", json={"prompt": "no money"}, headers={"Authorization": f"Bearer {recording}"}
    )
    assert refused.status_code == 403
    fake = start_fake(replay=str(tmp_path / "refused"), replay_speed=0)

    answer = httpx.post(
        f"{fake.base_url}/api/v3/{T2I}", json={"prompt": "no money"}, headers={"Authorization": f"Bearer {key()}"}
    )

    assert answer.status_code == 403
    assert answer.json() == {"code": 403, "message": refused.json()["message"]}


def test_uploads_match_by_file_name_and_size(
    upstream: RunningServer,
    start_proxy: Callable[[str, Path], RunningProxy],
    start_fake: Callable[..., RunningServer],
    tmp_path: Path,
) -> None:
    source = data_dir("fixtures") / "images" / "shapes-64x48.png"
    recording = key()
    proxy = start_proxy(upstream.base_url, tmp_path / "uploads")
    url = wavespeed.Client(api_key=recording, base_url=proxy.base_url).upload(str(source))
    original = drive(proxy.base_url, recording, DEV, {"prompt": "from an upload", "image": url})
    fake = start_fake(replay=str(tmp_path / "uploads"), replay_speed=0)

    tenant = key()
    own_url = wavespeed.Client(api_key=tenant, base_url=fake.base_url).upload(str(source))
    replayed = drive(fake.base_url, tenant, DEV, {"prompt": "from an upload", "image": own_url})

    assert own_url != url and replayed.visible() == original.visible()


# ------------------------------------------------------------------------------------------ stores and start-up


def test_a_replay_lives_in_a_redis_store(
    recorded: Recorded, start_fake: Callable[..., RunningServer], redis_url: str
) -> None:
    fake = start_fake(replay=str(recorded.directory), replay_speed=0, store=redis_url)

    assert drive(fake.base_url, key(), T2I, T2I_INPUT).visible() == recorded.seen["t2i"].visible()


def test_the_settings_come_from_flags_and_the_environment(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "WAVESPEED_MOCK_REPLAY": str(tmp_path),
            "WAVESPEED_MOCK_REPLAY_SPEED": "0.5",
            "WAVESPEED_MOCK_REPLAY_MODE": "lenient",
        }
    )
    assert (settings.replay, settings.replay_speed, settings.replay_mode) == (str(tmp_path), 0.5, "lenient")
    assert Settings().replay is None and Settings().replay_speed == 1.0 and Settings().replay_mode == "strict"
    with pytest.raises(ValueError, match="replay_speed must not be negative"):
        Settings(replay_speed=-1).validated()


def test_a_bad_cassette_is_a_one_line_start_up_error(
    recorded: Recorded, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "bad"
    shutil.copytree(recorded.directory, directory)
    broken = directory / f"{recorded.seen['png'].ids[0]}.json"
    document = json.loads(broken.read_text(encoding="utf-8"))
    del document["match"]
    broken.write_text(json.dumps(document), encoding="utf-8")

    with pytest.raises(ValueError, match=re.escape(str(broken))):
        create_app(Settings(replay=str(directory)))
    assert main(["serve", "--replay", str(directory), "--port", "0"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and str(broken) in error and "'match' is a required property" in error

    broken.write_text("{not json", encoding="utf-8")
    assert main(["serve", "--replay", str(directory)]) == 2
    assert f"{broken}: not readable JSON" in capsys.readouterr().err
    assert main(["serve", "--replay", str(tmp_path / "nowhere")]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_the_match_key_is_the_recorders(recorded: Recorded) -> None:
    for path in recorded.directory.glob("*.json"):
        cassette = json.loads(path.read_text(encoding="utf-8"))
        normalized, digest = match_key(cassette["model"], cassette["request"]["input"], default_catalog())
        assert (normalized, digest) == (cassette["match"]["input"], cassette["match"]["digest"])
