"""Any model path: a model without a schema is served by the generic model (or, in reject mode, a 404)."""

from __future__ import annotations

import base64
import io
import wave
from collections.abc import Callable

import av
import pytest
from PIL import Image

from mock_server.contract.generic import media_of
from mock_server.testing.client import FakeWaveSpeed
from tests.conftest import T2I, Live
from tests.fixtures.webhook_receiver import Receiver

FLUX_DEV = "wavespeed-ai/flux-dev"
VIDEO = "wavespeed-ai/wan-2.1/i2v-480p"
AUDIO = "minimax/speech-02-hd"
TYPO = "wavespeed-ai/flux-kontext-pro/text2image"


def fake_of(live: Live) -> FakeWaveSpeed:
    return FakeWaveSpeed(live.base_url, live.key, controller=live.running.app.state.mock.controller)


def download(live: Live, url: str) -> bytes:
    response = live.http.get(url)
    assert response.status_code == 200, response.text
    return response.content


def test_an_unknown_image_model_runs_the_whole_lifecycle_with_placeholders_as_asked(live: Live) -> None:
    response = live.submit(
        FLUX_DEV,
        {
            "prompt": "a fox",
            "size": "800*600",
            "num_images": 2,
            "output_format": "png",
            "guidance_scale": 3.5,
            "loras": [{"path": "x", "scale": 1}],
        },
    )

    assert response.status_code == 200, response.text
    assert response.headers["X-WaveSpeed-Mock-Generic"] == "1"
    assert "X-WaveSpeed-Mock-Near-Miss" not in response.headers
    data = response.json()["data"]
    assert (data["model"], data["status"]) == (FLUX_DEV, "created")
    statuses = [live.poll(data["id"])["status"] for _ in range(2)]
    assert statuses == ["processing", "completed"]
    done = live.poll(data["id"])
    assert len(done["outputs"]) == 2 and done["has_nsfw_contents"] == [False, False]
    for url in done["outputs"]:
        assert url.endswith(".png")
        picture = Image.open(io.BytesIO(download(live, url)))
        assert (picture.format, picture.size) == ("PNG", (800, 600))
    prediction = fake_of(live).prediction(data["id"])
    assert prediction["input"]["loras"] == [{"path": "x", "scale": 1}]  # kept as sent
    assert any(note.startswith(f"served generically: no schema for {FLUX_DEV}") for note in prediction["notes"])


@pytest.mark.parametrize(
    ("body", "size"),
    [
        ({"width": 640, "height": 320}, (640, 320)),
        ({"aspect_ratio": "16:9"}, (1360, 768)),
        ({}, (1024, 1024)),
        ({"size": "9000*100"}, (4096, 100)),
    ],
)
def test_generic_pictures_follow_size_width_height_and_aspect_ratio(
    live: Live, body: dict[str, object], size: tuple[int, int]
) -> None:
    done = live.run_to_end("bytedance/seedream-v5.0-pro", {"prompt": "p", **body})

    picture = Image.open(io.BytesIO(download(live, done["outputs"][0])))
    assert (picture.format, picture.size) == ("JPEG", size)


def test_values_the_generic_model_cannot_use_are_ignored_and_noted_never_rejected(live: Live) -> None:
    response = live.submit(FLUX_DEV, {"prompt": 7, "num_images": "two", "output_format": "tiff", "size": "big"})

    assert response.status_code == 200, response.text
    prediction_id = response.json()["data"]["id"]
    done = live.run_to_end(FLUX_DEV, {"num_images": 99})  # beyond 1..16: ignored too
    assert len(done["outputs"]) == 1
    notes = fake_of(live).prediction(prediction_id)["notes"]
    assert "num_images: value not usable (string), ignored" in notes
    assert "prompt: value not usable (integer), ignored" in notes
    assert "output_format 'tiff' is not one the fake makes for image: jpeg instead" in notes


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"[1, 2]", "must be a JSON object"),
        (b'"text"', "must be a JSON object"),
        (b'{"prompt": ', "not valid JSON"),
    ],
)
def test_non_objects_and_malformed_json_are_still_400(live: Live, content: bytes, message: str) -> None:
    response = live.http.post(f"/api/v3/{FLUX_DEV}", content=content, headers={"Content-Type": "application/json"})

    assert response.status_code == 400
    assert message in response.json()["message"]


def test_a_video_model_gets_a_decodable_mp4_of_the_asked_size_and_length(live: Live) -> None:
    done = live.run_to_end(VIDEO, {"prompt": "waves", "image": "https://example.com/a.png", "duration": 2})

    url = done["outputs"][0]
    assert url.endswith(".mp4")
    response = live.http.get(url)
    assert response.headers["content-type"] == "video/mp4"
    with av.open(io.BytesIO(response.content)) as container:
        stream = container.streams.video[0]
        frames = [frame.to_image() for frame in container.decode(video=0)]
    assert stream.codec_context.name == "h264"
    assert (stream.width, stream.height) == (854, 480)  # "480p" in the model's name, at 16:9
    assert len(frames) == 16  # 2 s at 8 frames per second
    assert frames[0].tobytes() != frames[-1].tobytes()  # it moves: the progress bar grows


def test_video_formats_sizes_and_base64(live: Live) -> None:
    gif = live.run_to_end("acme/text-to-video", {"size": "320*240", "output_format": "gif", "duration": 1})
    webp = live.run_to_end("acme/t2v", {"aspect_ratio": "9:16", "output_format": "webp", "duration": 1})
    inline = live.submit(
        "acme/video-maker", {"size": "64*48", "duration": 1, "enable_sync_mode": True, "enable_base64_output": True}
    ).json()["data"]

    animated = Image.open(io.BytesIO(download(live, gif["outputs"][0])))
    assert gif["outputs"][0].endswith(".gif")
    assert (animated.format, animated.size, animated.n_frames) == ("GIF", (320, 240), 8)
    tall = Image.open(io.BytesIO(download(live, webp["outputs"][0])))
    assert webp["outputs"][0].endswith(".webp") and (tall.format, tall.size) == ("WEBP", (480, 854))
    assert inline["status"] == "completed"
    with av.open(io.BytesIO(base64.b64decode(inline["outputs"][0]))) as container:
        assert (container.streams.video[0].width, container.streams.video[0].height) == (64, 48)


def test_an_audio_model_gets_a_wav_of_the_asked_length(live: Live) -> None:
    done = live.run_to_end(AUDIO, {"text": "hello", "duration": 2.5})

    url = done["outputs"][0]
    assert url.endswith(".wav")
    response = live.http.get(url)
    assert response.headers["content-type"] == "audio/wav"
    with wave.open(io.BytesIO(response.content)) as clip:
        assert (clip.getnchannels(), clip.getsampwidth()) == (1, 2)
        assert clip.getnframes() / clip.getframerate() == pytest.approx(2.5)


@pytest.mark.parametrize(
    ("model", "media"),
    [
        ("wavespeed-ai/wan-2.1/i2v-480p", "video"),
        ("wavespeed-ai/minimax-h3/text-to-video", "video"),
        ("bytedance/seedance-v1-pro-t2v-480p", "video"),
        ("acme/video", "video"),
        ("google/veo3", "video"),
        ("elevenlabs/text-to-speech", "audio"),
        ("acme/tts", "audio"),
        ("acme/video-to-audio", "audio"),
        ("wavespeed-ai/flux-dev", "image"),
        ("wavespeed-ai/z-image/turbo", "image"),
        ("acme/text2image", "image"),
    ],
)
def test_what_a_model_makes_follows_its_name(model: str, media: str) -> None:
    assert media_of(model) == media


def test_near_misses_of_known_ids_are_flagged_but_served(live: Live) -> None:
    response = live.submit(TYPO, {"prompt": "p"})
    live.submit(TYPO, {"prompt": "q"})
    live.submit(FLUX_DEV, {"prompt": "r"})

    assert response.status_code == 200
    assert response.headers["X-WaveSpeed-Mock-Near-Miss"] == T2I
    notes = fake_of(live).prediction(response.json()["data"]["id"])["notes"]
    assert f"near miss: did you mean {T2I}?" in notes
    served = {entry["model"]: entry for entry in fake_of(live).generic()}
    assert (served[TYPO]["count"], served[TYPO]["near_miss"], served[TYPO]["media"]) == (2, T2I, "image")
    assert (served[FLUX_DEV]["count"], served[FLUX_DEV]["near_miss"]) == (1, None)
    journal = fake_of(live).journal(method="POST", path=f"/api/v3/{TYPO}")
    assert "did you mean" in journal[0]["note"]
    listed = live.http.get("/_mock/generic", params={"tenant": live.key}).json()["data"]
    assert [entry["model"] for entry in listed] == [TYPO, FLUX_DEV]


def test_generic_models_are_not_in_the_catalog(live: Live) -> None:
    live.run_to_end(FLUX_DEV, {"prompt": "p"})

    listed = [model["model_id"] for model in live.http.get("/api/v3/models").json()["data"]]
    assert FLUX_DEV not in listed and T2I in listed


def test_outcomes_faults_and_webhooks_work_for_generic_models(live: Live, receiver: Receiver) -> None:
    fake = fake_of(live)
    fake.fail_next(code=1402, model=FLUX_DEV)
    fake.add_fault(path=f"/api/v3/{VIDEO}", status=503)

    failed = live.run_to_end(FLUX_DEV, {"prompt": "p"})
    faulted = live.submit(VIDEO, {"prompt": "p"})
    hooked = live.submit(AUDIO, {"text": "hi"}, params={"webhook": receiver.url}).json()["data"]
    live.poll(hooked["id"])
    live.poll(hooked["id"])

    assert (failed["status"], failed["code"]) == ("failed", 1402)
    assert faulted.status_code == 503
    delivered = receiver.wait_for(1)[0].json()
    assert (delivered["id"], delivered["status"]) == (hooked["id"], "completed")
    assert delivered["outputs"][0].endswith(".wav")


def test_reject_mode_answers_404_with_the_nearest_known_id(start_server: Callable[..., Live]) -> None:
    live = start_server(unknown_models="reject")

    typo = live.submit(TYPO, {"prompt": "p"})
    unknown = live.submit("acme/entirely-different", {"prompt": "p"})
    known = live.run_to_end(T2I, {"prompt": "p"})

    assert typo.status_code == 404
    body = typo.json()
    assert (body["code"], body["suggestion"], body["error_code"]) == (404, T2I, "model_not_found")
    assert f"did you mean {T2I!r}" in body["message"]
    assert unknown.status_code == 404 and "suggestion" not in unknown.json()
    assert known["status"] == "completed"
    assert fake_of(live).generic() == []
