"""Uploads as the official clients do them: the SDK ticket + PUT flow, the Go-style multipart form, downloads."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import wavespeed
from PIL import Image, ImageChops, ImageStat

from mock_server.resources import data_dir
from tests.conftest import EDIT, Live


def fixture_path(suffix: str = ".png") -> Path:
    return next(p for p in sorted((data_dir("fixtures") / "images").iterdir()) if p.suffix == suffix)


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def difference(a: Image.Image, b: Image.Image) -> float:
    b = b.convert("RGB").resize(a.size)
    return float(sum(ImageStat.Stat(ImageChops.difference(a.convert("RGB"), b)).mean) / 3)


def ticket(live: Live, body: object) -> httpx.Response:
    return live.http.post("/api/v3/media/uploads", json=body)


def put(url: str, data: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.put(url, content=data, headers=headers or {})


def multipart(
    live: Live, data: bytes, filename: str = "shapes.png", content_type: str = "application/octet-stream"
) -> httpx.Response:
    # What the Go SDK's multipart.Writer.CreateFormFile sends: the part typed application/octet-stream.
    return live.http.post("/api/v3/media/upload/binary", files={"file": (filename, data, content_type)})


# --- the SDK ticket flow ------------------------------------------------------------------------------------


def test_sdk_upload_returns_a_url_an_edit_derives_its_output_from(live: Live) -> None:
    client = wavespeed.Client(api_key=live.key, base_url=live.base_url, max_connection_retries=0)
    source = fixture_path()

    url = client.upload(str(source))
    edited = client.run(EDIT, {"prompt": "make it blue", "image": url, "seed": 1}, poll_interval=0.01)
    unrelated = client.run(
        EDIT, {"prompt": "make it blue", "image": "https://example.com/other.png", "seed": 1}, poll_interval=0.01
    )

    assert url.startswith(f"{live.base_url}/media/uploads/") and url.endswith("/" + source.name)
    assert httpx.get(url).content == source.read_bytes()
    prediction = next(p for p in live.backend.predictions(live.tenant) if p.input.get("image") == url)
    assert any("served by this mock" in note for note in prediction.notes)
    original = decode(source.read_bytes())
    output = decode(httpx.get(edited["outputs"][0]).content)
    other = decode(httpx.get(unrelated["outputs"][0]).content)
    assert difference(output, original) < difference(other, original)


def test_ticket_answers_the_envelope_with_a_put_instruction_on_this_server(live: Live) -> None:
    response = ticket(live, {"filename": "photo.jpg", "size": 5, "content_type": "image/jpeg"})

    assert response.status_code == 200
    body = response.json()
    assert (body["code"], body["message"]) == (200, "success")
    data = body["data"]
    assert data["upload"]["method"] == "PUT"
    assert data["upload"]["url"].startswith(live.base_url + "/")
    assert data["upload"]["headers"] == {"Content-Type": "image/jpeg"}
    assert data["download_url"].startswith(live.base_url + "/media/uploads/")
    assert (data["type"], data["filename"], data["size"]) == ("image", "photo.jpg", 5)


def test_put_needs_no_authorization_and_the_download_serves_the_bytes_with_their_type(live: Live) -> None:
    data = ticket(live, {"filename": "clip.mp4", "size": 4}).json()["data"]

    stored = put(data["upload"]["url"], b"abcd", data["upload"]["headers"])
    download = httpx.get(data["download_url"])

    assert data["type"] == "video" and data["upload"]["headers"] == {"Content-Type": "video/mp4"}
    assert stored.status_code == 200
    assert (download.status_code, download.content) == (200, b"abcd")
    assert download.headers["content-type"] == "video/mp4"


def test_put_with_an_authorization_header_is_refused(live: Live) -> None:
    data = ticket(live, {"filename": "a.png", "size": 3}).json()["data"]

    response = put(data["upload"]["url"], b"abc", {**data["upload"]["headers"], "Authorization": f"Bearer {live.key}"})

    assert response.status_code == 400
    assert "Authorization" in response.json()["message"]


def test_a_spent_upload_url_cannot_be_reused_and_an_unknown_one_is_404(live: Live) -> None:
    data = ticket(live, {"filename": "a.png", "size": 3}).json()["data"]
    assert put(data["upload"]["url"], b"abc", data["upload"]["headers"]).status_code == 200

    again = put(data["upload"]["url"], b"abc", data["upload"]["headers"])
    unknown = put(f"{live.base_url}/media/upload-slots/nope", b"abc")

    assert again.status_code == 409 and again.json()["code"] == 409
    assert unknown.status_code == 404 and unknown.json()["code"] == 404


def test_a_put_whose_length_differs_from_the_ticket_is_400_and_the_slot_stays_usable(live: Live) -> None:
    data = ticket(live, {"filename": "a.png", "size": 3}).json()["data"]

    short = put(data["upload"]["url"], b"ab", data["upload"]["headers"])
    retry = put(data["upload"]["url"], b"abc", data["upload"]["headers"])

    assert short.status_code == 400 and "declared size 3" in short.json()["message"]
    assert retry.status_code == 200


def test_a_put_with_another_content_type_than_the_ticket_is_refused(live: Live) -> None:
    data = ticket(live, {"filename": "a.png", "size": 3}).json()["data"]

    response = put(data["upload"]["url"], b"abc", {"Content-Type": "text/plain"})

    assert response.status_code == 403


def test_the_download_url_is_404_until_the_bytes_arrive(live: Live) -> None:
    data = ticket(live, {"filename": "a.png", "size": 3}).json()["data"]

    response = httpx.get(data["download_url"])

    assert response.status_code == 404 and response.json()["code"] == 404


@pytest.mark.parametrize(
    ("body", "paths"),
    [
        ({}, ["filename", "size"]),
        ({"filename": "", "size": "12"}, ["filename", "size"]),
        ({"filename": "a.png", "size": 0}, ["size"]),
        ({"filename": "a.png", "size": True}, ["size"]),
        ({"filename": "a.png", "size": 3, "content_type": "png"}, ["content_type"]),
    ],
)
def test_a_bad_ticket_is_400_listing_every_problem(live: Live, body: dict[str, object], paths: list[str]) -> None:
    response = ticket(live, body)

    assert response.status_code == 400
    assert [e["path"] for e in response.json()["errors"]] == paths
    assert all(p in response.json()["message"] for p in paths)


def test_a_ticket_body_that_is_not_a_json_object_is_400(live: Live) -> None:
    not_json = live.http.post("/api/v3/media/uploads", content=b"{nope", headers={"Content-Type": "application/json"})
    a_list = ticket(live, ["a.png", 3])

    assert (not_json.status_code, a_list.status_code) == (400, 400)


def test_a_ticket_needs_the_api_key(live: Live) -> None:
    response = httpx.post(f"{live.base_url}/api/v3/media/uploads", json={"filename": "a.png", "size": 3})

    assert response.status_code == 401


def test_too_large_is_413_at_the_ticket_and_at_the_put(start_server) -> None:  # type: ignore[no-untyped-def]
    server = start_server(upload_max_bytes=100)

    refused = ticket(server, {"filename": "big.png", "size": 101})
    data = ticket(server, {"filename": "ok.png", "size": 100}).json()["data"]
    oversized = put(data["upload"]["url"], b"x" * 101, data["upload"]["headers"])

    assert refused.status_code == 413 and refused.json()["code"] == 413
    assert oversized.status_code == 413


def test_the_sdk_surfaces_a_too_large_ticket_as_an_error(start_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server = start_server(upload_max_bytes=10)
    path = tmp_path / "big.png"
    path.write_bytes(b"x" * 11)

    with pytest.raises(RuntimeError, match="HTTP 413"):
        wavespeed.Client(api_key=server.key, base_url=server.base_url, max_connection_retries=0).upload(str(path))


# --- the multipart form (Go SDK) ----------------------------------------------------------------------------


def test_multipart_upload_answers_type_url_filename_and_size(live: Live) -> None:
    source = fixture_path()

    response = multipart(live, source.read_bytes(), filename=source.name)

    assert response.status_code == 200
    data = response.json()["data"]
    assert (data["type"], data["filename"], data["size"]) == ("image", source.name, source.stat().st_size)
    download = httpx.get(data["download_url"])
    assert download.content == source.read_bytes() and download.headers["content-type"] == "image/png"


def test_multipart_without_a_known_extension_is_typed_by_its_bytes(live: Live) -> None:
    jpeg = fixture_path(".jpg").read_bytes()

    data = multipart(live, jpeg, filename="blob").json()["data"]

    assert data["type"] == "image"
    assert httpx.get(data["download_url"]).headers["content-type"] == "image/jpeg"


def test_multipart_without_the_file_field_is_400(live: Live) -> None:
    wrong_field = live.http.post("/api/v3/media/upload/binary", files={"image": ("a.png", b"abc")})
    plain_field = live.http.post("/api/v3/media/upload/binary", data={"file": "not a file"})
    not_multipart = live.http.post("/api/v3/media/upload/binary", json={"file": "x"})

    assert [r.status_code for r in (wrong_field, plain_field, not_multipart)] == [400, 400, 400]
    assert wrong_field.json()["errors"] == [{"path": "file", "message": "required"}]


def test_multipart_over_the_limit_is_413(start_server) -> None:  # type: ignore[no-untyped-def]
    server = start_server(upload_max_bytes=1000)

    at_limit = multipart(server, b"x" * 1000)
    over = multipart(server, b"x" * 1001)

    assert at_limit.status_code == 200
    assert over.status_code == 413 and over.json()["code"] == 413


def test_a_streamed_multipart_body_is_cut_off_once_far_past_the_limit(start_server) -> None:  # type: ignore[no-untyped-def]
    server = start_server(upload_max_bytes=1000)

    def body() -> Iterator[bytes]:
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.bin"\r\n\r\n'
        for _ in range(64):  # 4 MiB announced by no Content-Length (chunked)
            yield b"x" * 65536
        yield b"\r\n--b--\r\n"

    response = server.http.post(
        "/api/v3/media/upload/binary", content=body(), headers={"Content-Type": "multipart/form-data; boundary=b"}
    )

    assert response.status_code == 413
    assert server.backend.store.get_blob(hashlib.sha256(b"x" * 1000).hexdigest()) is None


# --- storage ------------------------------------------------------------------------------------------------


def test_the_same_content_is_stored_once_whichever_way_it_arrives(live: Live) -> None:
    data = fixture_path().read_bytes()
    key = hashlib.sha256(data).hexdigest()

    first = multipart(live, data, filename="one.png").json()["data"]
    second = multipart(live, data, filename="two.png").json()["data"]
    slot = ticket(live, {"filename": "three.png", "size": len(data)}).json()["data"]
    put(slot["upload"]["url"], data, slot["upload"]["headers"])

    assert first["download_url"].split("/")[-2] == second["download_url"].split("/")[-2] == key
    token = slot["download_url"].split("/")[-2]
    assert live.running.app.state.mock.uploads.content_key(token) == key
    assert live.backend.store.get_blob(key) is not None
    assert [s.filename for s in live.running.app.state.mock.uploads.uploads(live.tenant)] == [
        "one.png",
        "two.png",
        "three.png",
    ]


def test_a_multipart_upload_url_is_an_edit_input_served_by_this_mock(live: Live) -> None:
    url = multipart(live, fixture_path().read_bytes()).json()["data"]["download_url"]

    data = live.run_to_end(EDIT, {"prompt": "x", "image": url})

    prediction = live.backend.find(live.tenant, data["id"])
    assert prediction is not None and any("served by this mock" in note for note in prediction.notes)


def test_reset_of_a_tenant_retires_its_ticket_urls(live: Live) -> None:
    slot = ticket(live, {"filename": "a.png", "size": 3}).json()["data"]
    put(slot["upload"]["url"], b"abc", slot["upload"]["headers"])

    live.running.app.state.mock.store.reset(live.tenant)

    assert httpx.get(slot["download_url"]).status_code == 404
    assert live.running.app.state.mock.uploads.uploads(live.tenant) == []


def test_an_uploaded_file_that_is_not_a_picture_is_a_400_as_an_edit_input(live: Live) -> None:
    uploaded = live.http.post(
        "/api/v3/media/upload/binary", files={"file": ("notes.txt", b"not a picture", "text/plain")}
    ).json()["data"]

    response = live.submit("wavespeed-ai/flux-kontext-max", {"prompt": "x", "image": uploaded["download_url"]})

    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "image"
