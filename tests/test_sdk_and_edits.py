"""The official Python SDK against the fake, unmodified; edit endpoints deriving outputs from their inputs."""

from __future__ import annotations

import base64
import io

import httpx
import pytest
import wavespeed
from PIL import Image, ImageChops, ImageStat

from mock_server.model.images import read_metadata
from mock_server.resources import data_dir
from tests.conftest import DEV, EDIT, T2I, Live


def sdk(live: Live) -> wavespeed.Client:
    return wavespeed.Client(api_key=live.key, base_url=live.base_url, max_connection_retries=0)


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_sdk_run_polls_until_completed_and_outputs_decode(live: Live) -> None:
    output = sdk(live).run(T2I, {"prompt": "a lighthouse", "aspect_ratio": "3:2", "num_images": 2}, poll_interval=0.01)

    images = [decode(live.http.get(url).content) for url in output["outputs"]]
    assert [(i.size, i.format) for i in images] == [((1248, 832), "JPEG")] * 2


def test_sdk_run_in_sync_mode_gets_outputs_from_the_submit(live: Live) -> None:
    output = sdk(live).run(DEV, {"prompt": "x", "size": "640*480", "output_format": "webp"}, enable_sync_mode=True)

    image = decode(live.http.get(output["outputs"][0]).content)
    assert (image.size, image.format) == ((640, 480), "WEBP")
    assert len(live.backend.predictions(live.tenant)) == 1


def test_sdk_base64_request_returns_decodable_images(live: Live) -> None:
    output = sdk(live).run(
        DEV,
        {"prompt": "x", "size": "288*352", "output_format": "png", "enable_base64_output": True},
        poll_interval=0.01,
    )

    image = decode(base64.b64decode(output["outputs"][0]))
    assert (image.size, image.format) == ((288, 352), "PNG")


def test_sdk_get_result_reads_a_prediction_by_id(live: Live) -> None:
    prediction_id = live.submit(T2I, {"prompt": "x"}).json()["data"]["id"]

    result = sdk(live).get_result(prediction_id)

    assert result["data"]["id"] == prediction_id


def _fixture_image() -> bytes:
    path = next(p for p in sorted((data_dir("fixtures") / "images").iterdir()) if p.suffix == ".png")
    return path.read_bytes()


def _difference(a: Image.Image, b: Image.Image) -> float:
    b = b.convert("RGB").resize(a.size)
    return float(sum(ImageStat.Stat(ImageChops.difference(a.convert("RGB"), b)).mean) / 3)


def test_edit_from_a_data_uri_is_visibly_the_same_picture_and_follows_its_size(live: Live) -> None:
    source = _fixture_image()
    data_uri = "data:image/png;base64," + base64.b64encode(source).decode()

    edited = decode(
        live.http.get(
            live.run_to_end(EDIT, {"prompt": "make it blue", "image": data_uri, "seed": 1})["outputs"][0]
        ).content
    )
    unrelated = decode(
        live.http.get(
            live.run_to_end(EDIT, {"prompt": "make it blue", "image": "https://example.com/other.png", "seed": 1})[
                "outputs"
            ][0]
        ).content
    )

    original = decode(source)
    assert edited.width / edited.height == pytest.approx(original.width / original.height, rel=0.05)
    assert _difference(edited, original) < _difference(unrelated, original)


def test_edit_of_a_previous_output_derives_from_it(live: Live) -> None:
    first_url = live.run_to_end(T2I, {"prompt": "a garden", "seed": 9})["outputs"][0]

    second = live.run_to_end(EDIT, {"prompt": "add snow", "image": first_url, "seed": 2})

    prediction = live.backend.find(live.tenant, second["id"])
    assert prediction is not None
    assert any("served by this mock" in note for note in prediction.notes)
    first = decode(live.http.get(first_url).content)
    edited = decode(live.http.get(second["outputs"][0]).content)
    assert edited.size == first.size
    assert read_metadata(live.http.get(second["outputs"][0]).content)["prompt"] == "add snow"


def test_foreign_image_urls_are_never_fetched_and_a_stand_in_is_recorded(
    live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    fetched: list[str] = []

    async def refuse(self: httpx.AsyncClient, request: httpx.Request, **kwargs: object) -> httpx.Response:
        fetched.append(str(request.url))
        raise httpx.ConnectError("network is off limits in tests")

    monkeypatch.setattr(httpx.AsyncClient, "send", refuse)  # the server runs in this process

    data = live.run_to_end(EDIT, {"prompt": "x", "image": "http://192.0.2.1/photo.jpg"})

    prediction = live.backend.find(live.tenant, data["id"])
    assert fetched == []
    assert data["status"] == "completed"
    assert prediction is not None and any("stand-in" in note for note in prediction.notes)


def test_opted_in_fetch_failure_fails_the_task_with_1402(start_server, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    async def refuse(self: httpx.AsyncClient, request: httpx.Request, **kwargs: object) -> httpx.Response:
        raise httpx.ConnectError("unreachable")

    monkeypatch.setattr(httpx.AsyncClient, "send", refuse)
    server = start_server(fetch_inputs=True)

    data = server.run_to_end(EDIT, {"prompt": "x", "image": "http://192.0.2.1/photo.jpg"})

    assert (data["status"], data["code"]) == ("failed", 1402)
    assert data["error"].startswith("Failed to download image")


def test_an_undecodable_data_uri_is_a_400(live: Live) -> None:
    response = live.submit(EDIT, {"prompt": "x", "image": "data:image/png;base64,bm90IGFuIGltYWdl"})

    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "image"


def test_image_metadata_carries_the_stamp_facts(live: Live) -> None:
    data = live.run_to_end(DEV, {"prompt": "metadata please", "seed": 77, "size": "256*256", "output_format": "png"})

    meta = read_metadata(live.http.get(data["outputs"][0]).content)

    assert (meta["model"], meta["prompt"], meta["seed"], meta["index"]) == (DEV, "metadata please", 77, 0)
