"""Tests for mock_server.model.images: the placeholder output images of the fake server."""

from __future__ import annotations

import base64
import io
import math
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageChops, ImageOps, ImageStat

from mock_server.model import _imaging
from mock_server.model.images import (
    ASPECT_RESOLUTIONS,
    EXT,
    FORMATS,
    METADATA_KEY,
    MIME,
    ImageCache,
    ImageInputError,
    ImageSpec,
    aspect_resolution,
    decode_data_uri,
    digest_params,
    image_size,
    read_metadata,
    render,
    resolve_size,
    stand_in,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "images"
FIXTURE_FILES = {"shapes-64x48.png": (64, 48), "target-96x96.jpg": (96, 96), "badge-48x64.png": (48, 64)}
PIL_FORMAT = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}
MODEL = "wavespeed-ai/flux-kontext-pro"


def spec(**changes: object) -> ImageSpec:
    base = ImageSpec(
        model=MODEL,
        prompt="a red fox in the snow, golden hour",
        seed=42,
        index=0,
        width=256,
        height=256,
        fmt="png",
        params_digest=digest_params({"guidance_scale": 3.5, "num_images": 1}),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def decode(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def mean_abs_diff(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute per-channel difference, 0..255."""
    diff = ImageChops.difference(a.convert("RGB"), b.convert("RGB"))
    return sum(ImageStat.Stat(diff).mean) / 3


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


# --------------------------------------------------------------------------------------------------
# size, format, determinism


@pytest.mark.parametrize("fmt", FORMATS)
def test_render_is_a_real_image_of_the_requested_size_and_format(fmt: str) -> None:
    im = decode(render(spec(fmt=fmt, width=320, height=200)))
    assert im.format == PIL_FORMAT[fmt]
    assert im.size == (320, 200)
    assert im.mode == "RGB"


@settings(max_examples=25, deadline=None)
@given(
    width=st.integers(256, 1536),
    height=st.integers(256, 1536),
    fmt=st.sampled_from(FORMATS),
    index=st.integers(0, 3),
)
def test_rendered_size_is_exact(width: int, height: int, fmt: str, index: int) -> None:
    im = decode(render(spec(width=width, height=height, fmt=fmt, index=index)))
    assert (im.format, im.size) == (PIL_FORMAT[fmt], (width, height))


@pytest.mark.parametrize("size", [(1, 1), (7, 300), (300, 7), (17, 17)])
def test_tiny_and_thin_sizes_render(size: tuple[int, int]) -> None:
    assert decode(render(spec(width=size[0], height=size[1]))).size == size


@pytest.mark.parametrize("fmt", FORMATS)
def test_render_is_byte_identical_for_equal_specs(fmt: str) -> None:
    a, b = spec(fmt=fmt), spec(fmt=fmt)
    assert a is not b and a == b and a.digest() == b.digest()
    assert render(a) == render(b)


def test_edit_render_is_byte_identical_for_equal_specs() -> None:
    source = fixture_bytes("target-96x96.jpg")
    assert render(spec(source=source, fmt="jpeg")) == render(spec(source=bytes(source), fmt="jpeg"))


@pytest.mark.parametrize(
    "change",
    [{"index": 1}, {"seed": 43}, {"prompt": "a blue whale in deep water"}, {"params_digest": "f" * 64}],
    ids=["index", "seed", "prompt", "params_digest"],
)
def test_different_request_gives_visibly_different_picture(change: dict[str, object]) -> None:
    a, b = spec(), spec(**change)
    assert a.digest() != b.digest()
    data_a, data_b = render(a), render(b)
    assert data_a != data_b
    assert mean_abs_diff(decode(data_a), decode(data_b)) > 12


@settings(max_examples=25, deadline=None)
@given(seed_a=st.integers(0, 2**31 - 1), seed_b=st.integers(0, 2**31 - 1))
def test_distinct_seeds_give_distinct_images(seed_a: int, seed_b: int) -> None:
    a, b = spec(seed=seed_a, width=64, height=64), spec(seed=seed_b, width=64, height=64)
    assert (render(a) == render(b)) == (seed_a == seed_b)


@pytest.mark.parametrize("change", [{"model": "wavespeed-ai/flux-kontext-max"}, {"source_note": "x"}])
def test_digest_covers_every_field(change: dict[str, object]) -> None:
    assert spec().digest() != spec(**change).digest()


def test_digest_covers_source_bytes() -> None:
    assert spec(source=b"\x89PNG-a").digest() != spec(source=b"\x89PNG-b").digest()
    assert spec(source=b"").digest() != spec().digest()


@pytest.mark.parametrize(
    "bad",
    [{"fmt": "gif"}, {"fmt": "jpg"}, {"seed": -1}, {"index": -1}, {"width": 0}, {"height": 100_000}],
)
def test_spec_rejects_bad_fields(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        spec(**bad)


def test_spec_mime_and_ext() -> None:
    assert set(MIME) == set(EXT) == set(FORMATS)
    assert MIME == {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
    for fmt in FORMATS:
        assert spec(fmt=fmt).mime == MIME[fmt]
        assert spec(fmt=fmt).ext == EXT[fmt]
        assert Image.open(io.BytesIO(render(spec(fmt=fmt, width=32, height=32)))).get_format_mimetype() == MIME[fmt]


# --------------------------------------------------------------------------------------------------
# visible stamp


def _white_text_rows(im: Image.Image) -> list[int]:
    """Rows with stamp-text pixels: pure white pixels on the dark panel at the left edge."""
    gray = im.convert("L")
    width, height = gray.size
    rows = []
    for y in range(height):
        row = gray.crop((0, y, max(1, width // 3), y + 1))
        if row.getextrema()[1] >= 250 and ImageStat.Stat(row).median[0] < 110:
            rows.append(y)
    return rows


@pytest.mark.parametrize("side", [256, 1536])
def test_stamp_is_drawn_in_a_band_at_the_bottom_and_scales_with_the_image(side: int) -> None:
    im = decode(render(spec(width=side, height=side)))
    rows = _white_text_rows(im)
    assert rows, "no stamp text found"
    # the band covers the bottom fifth or so, with text on three lines
    assert min(rows) > side * 0.7
    band = im.convert("L").crop((0, int(side * 0.85), side // 3, side))
    assert ImageStat.Stat(band).median[0] < 110
    assert max(rows) - min(rows) > side * 0.1  # font grows with the image: ~ side/22 per line


def test_stamp_changes_with_prompt_in_the_band() -> None:
    # same look key except the prompt -> whole picture differs; check the band holds text that differs
    a = decode(render(spec(prompt="alpha prompt")))
    b = decode(render(spec(prompt="omega prompt")))
    band = (0, 200, 256, 256)
    assert mean_abs_diff(a.crop(band), b.crop(band)) > 1


def test_edit_stamp_has_an_extra_line() -> None:
    plain = _white_text_rows(decode(render(spec(width=512, height=512))))
    edit = _white_text_rows(decode(render(spec(width=512, height=512, source=fixture_bytes("shapes-64x48.png")))))
    assert min(edit) < min(plain)  # four lines start higher than three


@pytest.mark.parametrize(
    "prompt",
    [
        "",
        "x" * 5000,
        "line one\nline two\ttab\x00nul",
        "emoji \U0001f98a and \u00e9\u00e8 and \u4e2d\u6587",
        "\ud800lone",
    ],
    ids=["empty", "long", "controls", "unicode", "lone-surrogate"],
)
def test_any_prompt_renders_and_round_trips(prompt: str) -> None:
    data = render(spec(prompt=prompt, fmt="jpeg"))
    assert decode(data).size == (256, 256)
    assert read_metadata(data)["prompt"] == prompt


# --------------------------------------------------------------------------------------------------
# metadata


@pytest.mark.parametrize("fmt", FORMATS)
def test_metadata_round_trip(fmt: str) -> None:
    s = spec(fmt=fmt, width=300, height=200, seed=123456789, index=2, prompt="caf\u00e9 \U0001f98a")
    meta = read_metadata(render(s))
    assert meta["generator"] == METADATA_KEY
    assert {k: meta[k] for k in ("model", "prompt", "seed", "index", "width", "height", "params_digest")} == {
        "model": s.model,
        "prompt": s.prompt,
        "seed": s.seed,
        "index": s.index,
        "width": 300,
        "height": 200,
        "params_digest": s.params_digest,
    }
    assert meta["format"] == fmt
    assert meta["edit"] is False
    assert meta["spec_digest"] == s.digest()


@pytest.mark.parametrize("fmt", FORMATS)
def test_metadata_of_an_edit_names_its_source(fmt: str) -> None:
    source = fixture_bytes("shapes-64x48.png")
    meta = read_metadata(render(spec(fmt=fmt, source=source, source_note="fixtures/images/shapes-64x48.png")))
    assert meta["edit"] is True
    assert meta["source_note"] == "fixtures/images/shapes-64x48.png"
    assert len(meta["source_sha256"]) == 64


def test_metadata_containers() -> None:
    png = decode(render(spec(fmt="png")))
    assert METADATA_KEY in png.info  # tEXt chunk
    jpeg = decode(render(spec(fmt="jpeg")))
    assert b'"generator":"wavespeed-mock"' in jpeg.info["comment"]
    assert "wavespeed-mock" in jpeg.getexif()[0x010E]  # EXIF ImageDescription
    webp = decode(render(spec(fmt="webp")))
    assert "wavespeed-mock" in webp.getexif()[0x010E]


def test_huge_prompt_is_truncated_in_jpeg_metadata_only() -> None:
    prompt = "a very long prompt " * 10_000
    meta = read_metadata(render(spec(fmt="jpeg", prompt=prompt)))
    assert meta["prompt_truncated"] is True
    assert prompt.startswith(meta["prompt"]) and 0 < len(meta["prompt"]) < len(prompt)


@pytest.mark.parametrize("fmt", FORMATS)
def test_read_metadata_of_foreign_image_is_empty(fmt: str) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(buffer, PIL_FORMAT[fmt])
    assert read_metadata(buffer.getvalue()) == {}


def test_read_metadata_of_garbage_raises() -> None:
    with pytest.raises(ImageInputError):
        read_metadata(b"not an image")


# --------------------------------------------------------------------------------------------------
# edits


def _fitted_source(name: str, size: tuple[int, int]) -> Image.Image:
    im = Image.open(FIXTURES / name)
    if im.mode == "RGBA":
        flat = Image.new("RGB", im.size, (236, 236, 236))
        flat.paste(im, mask=im.getchannel("A"))
        im = flat
    return ImageOps.fit(im.convert("RGB"), size, method=Image.Resampling.BILINEAR)


@pytest.mark.parametrize("name", sorted(FIXTURE_FILES))
@pytest.mark.parametrize("size", [(256, 256), (384, 256), (240, 320)])
def test_edit_is_visibly_the_same_picture(name: str, size: tuple[int, int]) -> None:
    source = fixture_bytes(name)
    edited = decode(render(spec(width=size[0], height=size[1], source=source, prompt="make it sunset")))
    assert edited.size == size
    reference = _fitted_source(name, size)
    unrelated = decode(render(spec(width=size[0], height=size[1], prompt="make it sunset")))
    d_edit, d_unrelated = mean_abs_diff(edited, reference), mean_abs_diff(unrelated, reference)
    assert d_edit < 0.5 * d_unrelated, (d_edit, d_unrelated)
    assert d_edit > 5  # but visibly edited


@settings(max_examples=25, deadline=None, derandomize=True)  # a statistical bound: fixed examples, no flakes
@given(prompt=st.text(max_size=40), seed=st.integers(0, 2**31 - 1), index=st.integers(0, 3))
def test_edit_closeness_property(prompt: str, seed: int, index: int) -> None:
    size = (256, 192)
    reference = _fitted_source("target-96x96.jpg", size)
    s = spec(width=size[0], height=size[1], prompt=prompt, seed=seed, index=index)
    edited = decode(render(replace(s, source=fixture_bytes("target-96x96.jpg"))))
    unrelated = decode(render(s))
    assert mean_abs_diff(edited, reference) < 0.55 * mean_abs_diff(unrelated, reference)


def test_edits_with_different_index_differ() -> None:
    source = fixture_bytes("target-96x96.jpg")
    a = decode(render(spec(source=source, index=0)))
    b = decode(render(spec(source=source, index=1)))
    assert mean_abs_diff(a, b) > 5


def test_edit_follows_exif_orientation() -> None:
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    Image.new("RGB", (80, 40), (200, 30, 30)).save(buffer, "JPEG", exif=exif.tobytes())
    data = buffer.getvalue()
    assert image_size(data) == (40, 80)
    width, height = resolve_size({}, input_size=image_size(data))
    assert decode(render(spec(width=width, height=height, source=data))).size == (40, 80)


@pytest.mark.parametrize("bad", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40])
def test_undecodable_source_raises_image_input_error(bad: bytes) -> None:
    with pytest.raises(ImageInputError, match="could not be decoded"):
        render(spec(source=bad))
    assert issubclass(ImageInputError, ValueError)


def test_truncated_source_raises_image_input_error() -> None:
    data = fixture_bytes("target-96x96.jpg")
    with pytest.raises(ImageInputError):
        render(spec(source=data[: len(data) // 3]))


def test_edit_of_large_source_is_downscaled() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (3000, 2000), (10, 120, 200)).save(buffer, "JPEG")
    im = decode(render(spec(width=300, height=200, source=buffer.getvalue())))
    assert im.size == (300, 200)


# --------------------------------------------------------------------------------------------------
# sizes


def test_aspect_table_is_about_one_megapixel_multiple_of_16_and_close_in_ratio() -> None:
    assert list(ASPECT_RESOLUTIONS) == ["21:9", "16:9", "4:3", "3:2", "1:1", "2:3", "3:4", "9:16", "9:21"]
    for ratio, (width, height) in ASPECT_RESOLUTIONS.items():
        a, b = (int(x) for x in ratio.split(":"))
        assert width % 16 == 0 and height % 16 == 0, ratio
        assert abs(width * height / (1024 * 1024) - 1) <= 0.03, ratio
        assert abs(math.log((width / height) / (a / b))) < 0.01, ratio
        assert ASPECT_RESOLUTIONS[f"{b}:{a}"] == (height, width), ratio
        assert aspect_resolution(a, b) == (width, height), ratio
        assert resolve_size({"aspect_ratio": ratio}) == (width, height)


def test_aspect_resolution_is_best_among_candidates() -> None:
    # no multiple-of-16 pair within 3 % of 1 MP has a closer ratio than the table's 16:9 entry
    width, height = ASPECT_RESOLUTIONS["16:9"]
    best = abs(math.log(width / height / (16 / 9)))
    for h in range(16, 4097, 16):
        for w in range(16, 4097, 16):
            if abs(w * h / 2**20 - 1) <= 0.03:
                assert abs(math.log(w / h / (16 / 9))) >= best - 1e-12


def test_resolve_size_precedence() -> None:
    both = {"size": "800*600", "aspect_ratio": "16:9"}
    assert resolve_size(both, input_size=(10, 20)) == (800, 600)
    assert resolve_size({"aspect_ratio": "9:16"}, input_size=(10, 20)) == (768, 1360)
    assert resolve_size({"prompt": "x"}, input_size=(640, 480)) == (640, 480)
    assert resolve_size({}) == (1024, 1024)
    assert resolve_size({}, default=(512, 768)) == (512, 768)
    assert resolve_size({"size": None, "aspect_ratio": ""}, input_size=(33, 44)) == (33, 44)
    assert resolve_size({"size": "", "aspect_ratio": None}) == (1024, 1024)


@settings(max_examples=25, deadline=None)
@given(width=st.integers(256, 1536), height=st.integers(256, 1536), sep=st.sampled_from(["*", "x"]))
def test_resolve_size_parses_size(width: int, height: int, sep: str) -> None:
    assert resolve_size({"size": f"{width}{sep}{height}", "aspect_ratio": "1:1"}) == (width, height)


def test_resolve_size_other_ratios_and_errors() -> None:
    width, height = resolve_size({"aspect_ratio": "5:4"})
    assert width % 16 == 0 and height % 16 == 0 and abs(width / height - 1.25) < 0.02
    with pytest.raises(ValueError):
        resolve_size({"size": "big"})
    with pytest.raises(ValueError):
        resolve_size({"aspect_ratio": "wide"})


# --------------------------------------------------------------------------------------------------
# data URIs and input sizes


def _png(size: tuple[int, int] = (5, 3)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (9, 9, 9)).save(buffer, "PNG")
    return buffer.getvalue()


def test_decode_data_uri_round_trip() -> None:
    data = _png()
    b64 = base64.b64encode(data).decode()
    assert decode_data_uri(f"data:image/png;base64,{b64}") == ("image/png", data)
    assert decode_data_uri(f"DATA:Image/PNG;name=x.png;base64,{b64}") == ("image/png", data)
    wrapped = "\n".join(b64[i : i + 20] for i in range(0, len(b64), 20))
    assert decode_data_uri(f"data:image/png;base64,{wrapped}\n") == ("image/png", data)
    assert decode_data_uri(f"data:image/png;base64,{b64.rstrip('=')}")[1] == data
    assert image_size(decode_data_uri(f"data:image/png;base64,{b64}")[1]) == (5, 3)


@given(payload=st.binary(min_size=1, max_size=200), subtype=st.sampled_from(["png", "jpeg", "webp", "svg+xml"]))
@settings(max_examples=25)
def test_decode_data_uri_any_bytes(payload: bytes, subtype: str) -> None:
    uri = f"data:image/{subtype};base64," + base64.b64encode(payload).decode()
    assert decode_data_uri(uri) == (f"image/{subtype}", payload)


@pytest.mark.parametrize(
    "uri",
    [
        "",
        "https://example.com/x.png",
        "data:,hello",
        "data:text/plain;base64,aGVsbG8=",
        "data:image/png,rawbytes",
        "data:image/png;base64,",
        "data:image/png;base64,!!!!",
        "data:image/png;base64,aGVsb",  # impossible base64 length
        "data:;base64,aGVsbG8=",
        "data:image/;base64,aGVsbG8=",
    ],
)
def test_decode_data_uri_errors(uri: str) -> None:
    with pytest.raises(ImageInputError):
        decode_data_uri(uri)


def test_decode_data_uri_rejects_non_strings() -> None:
    with pytest.raises(ImageInputError):
        decode_data_uri(b"data:image/png;base64,aGVsbG8=")  # type: ignore[arg-type]


def test_image_size() -> None:
    for name, size in FIXTURE_FILES.items():
        assert image_size(fixture_bytes(name)) == size
    with pytest.raises(ImageInputError):
        image_size(b"GIF89a-not-really")


# --------------------------------------------------------------------------------------------------
# stand-ins


def test_stand_in_is_deterministic_png_with_label_metadata() -> None:
    url = "https://cdn.example.com/uploads/my%20cat.jpg?sig=abc"
    data = stand_in(url)
    assert data == stand_in(url)
    im = decode(data)
    assert (im.format, im.size) == ("PNG", (768, 768))
    assert read_metadata(data) == {
        "generator": METADATA_KEY,
        "stand_in": True,
        "url": url,
        "width": 768,
        "height": 768,
    }
    assert stand_in(url, 300, 200) != data
    assert decode(stand_in(url, 300, 200)).size == (300, 200)
    assert mean_abs_diff(im, decode(stand_in("https://cdn.example.com/uploads/dog.jpg"))) > 12


def test_stand_in_label_is_at_the_top() -> None:
    rows = _white_text_rows(decode(stand_in("https://example.com/a.png", 512, 512)))
    assert rows and max(rows) < 512 * 0.3


@pytest.mark.parametrize("url", ["not a url", "http://[::1", "https://example.com/", "s3://bucket/key/file.webp", ""])
def test_stand_in_odd_urls(url: str) -> None:
    assert decode(stand_in(url, 64, 64)).size == (64, 64)


def test_stand_in_works_as_edit_source() -> None:
    source = stand_in("https://example.com/x.jpg", 256, 256)
    note = "stand-in for https://example.com/x.jpg"
    meta = read_metadata(render(spec(source=source, source_note=note, fmt="webp")))
    assert meta["source_note"] == note


# --------------------------------------------------------------------------------------------------
# params digest


def test_digest_params() -> None:
    a = digest_params({"guidance_scale": 3.5, "num_inference_steps": 28, "prompt": "x", "seed": 1})
    b = digest_params({"num_inference_steps": 28, "guidance_scale": 3.5, "prompt": "y", "seed": -1})
    assert a == b  # key order and excluded keys do not matter
    assert a != digest_params({"guidance_scale": 3.0, "num_inference_steps": 28})
    assert digest_params({"enable_sync_mode": True, "output_format": "png"}) == digest_params({})
    assert digest_params({"x": 1}, exclude=()) != digest_params({"x": 1}, exclude=("x",))
    assert len(a) == 64


# --------------------------------------------------------------------------------------------------
# cache


def test_cache_hits_and_misses() -> None:
    cache = ImageCache()
    s = spec()
    first = cache.get_or_render(s)
    assert (cache.hits, cache.misses, len(cache)) == (0, 1, 1)
    assert cache.get_or_render(spec()) is first
    assert (cache.hits, cache.misses) == (1, 1)
    assert s in cache and spec(index=9) not in cache and "x" not in cache
    assert cache.current_bytes == len(first)
    cache.get_or_render(spec(index=1))
    assert (cache.hits, cache.misses, len(cache)) == (1, 2, 2)
    cache.clear()
    assert (cache.hits, cache.misses, len(cache), cache.current_bytes) == (0, 0, 0, 0)


def test_cache_is_bounded_by_bytes_and_evicts_least_recently_used() -> None:
    specs = [spec(index=i, width=64, height=64) for i in range(4)]
    sizes = [len(render(s)) for s in specs]
    cache = ImageCache(max_bytes=sizes[0] + sizes[1] + sizes[2] - 1)  # room for two of the first three
    cache.get_or_render(specs[0])
    cache.get_or_render(specs[1])
    cache.get_or_render(specs[0])  # 0 is now the most recently used
    cache.get_or_render(specs[2])  # evicts 1
    assert specs[0] in cache and specs[2] in cache and specs[1] not in cache
    assert cache.current_bytes <= cache.max_bytes
    for s in specs * 3:
        cache.get_or_render(s)
        assert cache.current_bytes <= cache.max_bytes
        assert cache.current_bytes == sum(len(render(x)) for x in specs if x in cache)


def test_cache_does_not_keep_oversized_images() -> None:
    cache = ImageCache(max_bytes=10)
    data = cache.get_or_render(spec())
    assert data == render(spec())
    assert len(cache) == 0 and cache.current_bytes == 0
    cache.get_or_render(spec())
    assert (cache.hits, cache.misses) == (0, 2)
    with pytest.raises(ValueError):
        ImageCache(max_bytes=-1)


def test_cache_is_thread_safe() -> None:
    cache = ImageCache()
    specs = [spec(index=i, width=48, height=48) for i in range(4)]
    expected = {s: render(s) for s in specs}
    barrier = threading.Barrier(8)

    def work(n: int) -> bool:
        barrier.wait()
        return all(cache.get_or_render(specs[(n + k) % 4]) == expected[specs[(n + k) % 4]] for k in range(25))

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert all(pool.map(work, range(8)))
    assert cache.hits + cache.misses == 200
    assert 4 <= cache.misses <= 4 * 8 and len(cache) == 4


# --------------------------------------------------------------------------------------------------
# committed fixture images


@pytest.mark.parametrize("name", sorted(FIXTURE_FILES))
def test_fixture_images_are_small_real_images(name: str) -> None:
    path = FIXTURES / name
    assert path.stat().st_size < 8 * 1024
    im = decode(path.read_bytes())
    assert im.size == FIXTURE_FILES[name]
    assert im.format == ("JPEG" if name.endswith(".jpg") else "PNG")


class _Libc:
    """Stands in for glibc's handle: records mallopt calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def gnu_get_libc_version(self) -> bytes:
        return b"2.36"

    def mallopt(self, param: int, value: int) -> int:
        self.calls.append((param, value))
        return 1


@pytest.fixture
def fake_libc(monkeypatch: pytest.MonkeyPatch) -> _Libc:
    import ctypes

    libc = _Libc()
    monkeypatch.setattr(ctypes, "CDLL", lambda name: libc)
    monkeypatch.setattr(_imaging.sys, "platform", "linux")
    for name in _imaging._MALLOC_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    return libc


def test_picture_buffers_stay_on_the_heap(fake_libc: _Libc) -> None:
    # Unwrapped: the cached function has already run in this process.
    _imaging.heap_for_pictures.__wrapped__()
    assert fake_libc.calls == [(-3, 32 * 1024 * 1024), (-1, 64 * 1024 * 1024)]


@pytest.mark.parametrize("name", ["MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES"])
def test_a_user_s_malloc_tunables_are_left_alone(fake_libc: _Libc, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv(name, "1048576")
    _imaging.heap_for_pictures.__wrapped__()
    assert fake_libc.calls == []


def test_malloc_is_left_alone_off_glibc(fake_libc: _Libc, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(_Libc, "gnu_get_libc_version")
    _imaging.heap_for_pictures.__wrapped__()
    assert fake_libc.calls == []


def test_rendering_sets_the_heap_up_once_per_process() -> None:
    render(ImageSpec(model=MODEL, prompt="p", seed=1, index=0, width=32, height=32, fmt="png", params_digest=""))
    assert _imaging.heap_for_pictures.cache_info().currsize == 1
