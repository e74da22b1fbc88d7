"""Placeholder images for the fake server's prediction outputs.

Every output is a real, decodable image of exactly the requested size and format, rendered
deterministically from an :class:`ImageSpec`: equal specs give byte-identical files, and a different
prompt, seed, output index or parameter digest gives a visibly different picture. Each image carries

* a visible stamp (model, prompt excerpt, seed, output index, and "edit of ..." for edits) whose font
  scales with the image, so it reads at 256 px and at 1536 px; and
* the same facts as JSON metadata under the key :data:`METADATA_KEY` -- a PNG ``tEXt`` chunk, a JPEG
  comment plus EXIF ``ImageDescription``, a WebP EXIF ``ImageDescription`` -- read back by
  :func:`read_metadata`.

Edit endpoints pass the input image's bytes as ``ImageSpec.source``: the output is that picture
cover-fitted (centre crop) to the output size with a hue rotation and tint derived from the request, a
thin frame, a marker ring and the stamp -- visibly the same picture, edited.

Nothing here touches the network or the clock; rendering uses only Pillow primitives (no per-pixel
Python loops), so a 1024x1024 JPEG takes a few tens of milliseconds.
"""

from __future__ import annotations

import base64
import binascii
import colorsys
import hashlib
import io
import json
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Final, TypeAlias
from urllib.parse import unquote, urlsplit

from PIL import Image, ImageDraw, ImageFont, ImageOps
from PIL.PngImagePlugin import PngInfo

__all__ = [
    "ASPECT_RESOLUTIONS",
    "DIGEST_EXCLUDED_PARAMS",
    "EXT",
    "FORMATS",
    "METADATA_KEY",
    "MIME",
    "ImageCache",
    "ImageInputError",
    "ImageSpec",
    "aspect_resolution",
    "decode_data_uri",
    "digest_params",
    "image_size",
    "read_metadata",
    "render",
    "resolve_size",
    "stand_in",
]

MIME: Final[Mapping[str, str]] = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
"""Output format (the API's ``output_format`` value) -> Content-Type."""

EXT: Final[Mapping[str, str]] = {"jpeg": "jpeg", "png": "png", "webp": "webp"}
"""Output format -> file-name extension (without the dot) used in output URLs."""

FORMATS: Final[tuple[str, ...]] = ("jpeg", "png", "webp")

METADATA_KEY: Final = "wavespeed-mock"
"""PNG text key (and JSON ``generator`` value) under which the render facts are stored."""

ASPECT_RESOLUTIONS: Final[Mapping[str, tuple[int, int]]] = {
    "21:9": (1568, 672),
    "16:9": (1360, 768),
    "4:3": (1200, 896),
    "3:2": (1248, 832),
    "1:1": (1024, 1024),
    "2:3": (832, 1248),
    "3:4": (896, 1200),
    "9:16": (768, 1360),
    "9:21": (672, 1568),
}
"""``aspect_ratio`` -> (width, height); see :func:`resolve_size` for the rule that produced it."""

DIGEST_EXCLUDED_PARAMS: Final[frozenset[str]] = frozenset(
    {
        "prompt",  # ImageSpec.prompt
        "seed",  # ImageSpec.seed
        "size",  # ImageSpec.width / height
        "aspect_ratio",  # ImageSpec.width / height
        "output_format",  # ImageSpec.fmt
        "image",  # ImageSpec.source
        "images",  # ImageSpec.source
        "enable_base64_output",  # transport only: same picture either way
        "enable_sync_mode",  # transport only: same picture either way
    }
)
"""Request parameters :func:`digest_params` leaves out by default: they are ImageSpec fields already,
or only change how the result is delivered."""

_MEGAPIXEL: Final = 1024 * 1024
_AREA_TOLERANCE: Final = 0.03
_MAX_SIDE: Final = 16384
_MAX_METADATA_CHARS: Final = 60000  # a JPEG COM / APP1 segment holds at most 65533 bytes
_PROMPT_EXCERPT_CHARS: Final = 90
_JPEG_QUALITY: Final = 90
_WEBP_QUALITY: Final = 85
_WEBP_METHOD: Final = 2  # 0 (fast) .. 6 (small); 2 keeps a 1024x1024 encode around 50 ms
_PNG_COMPRESS_LEVEL: Final = 3  # zlib 3: ~25 % larger than 6 and clearly faster
_EXIF_IMAGE_DESCRIPTION: Final = 0x010E
_EXIF_SOFTWARE: Final = 0x0131
_EXIF_ORIENTATION: Final = 0x0112
_DATA_URI: Final = re.compile(
    r"data:(?P<mime>image/[A-Za-z0-9][A-Za-z0-9.+-]*)(?P<params>(?:;[^;,]*)*?);base64,(?P<payload>.*)",
    re.IGNORECASE | re.DOTALL,
)
_SIZE: Final = re.compile(r"\s*(\d+)\s*[*xX]\s*(\d+)\s*")


class ImageInputError(ValueError):
    """An input image (bytes or data URI) that cannot be decoded."""


@dataclass(frozen=True)
class ImageSpec:
    """Everything that determines one output image.

    ``seed`` is the effective seed (the server replaces ``-1`` by a concrete one before rendering);
    ``index`` is the output's position in ``outputs``; ``fmt`` is ``"jpeg"``, ``"png"`` or ``"webp"``;
    ``params_digest`` is a hash of the remaining request parameters (see :func:`digest_params`);
    ``source`` holds the input image's bytes for edit endpoints and ``source_note`` a short human
    description of it (e.g. ``"stand-in for https://example.com/x.jpg"``), drawn in the stamp.
    """

    model: str
    prompt: str
    seed: int
    index: int
    width: int
    height: int
    fmt: str
    params_digest: str
    source: bytes | None = None
    source_note: str | None = None

    def __post_init__(self) -> None:
        if self.fmt not in MIME:
            raise ValueError(f"fmt must be one of {', '.join(FORMATS)}, not {self.fmt!r}")
        if not (1 <= self.width <= _MAX_SIDE and 1 <= self.height <= _MAX_SIDE):
            raise ValueError(f"size must be within 1..{_MAX_SIDE} per side, not {self.width}x{self.height}")
        if self.seed < 0:
            raise ValueError(f"seed must be the effective (non-negative) seed, not {self.seed}")
        if self.index < 0:
            raise ValueError(f"index must be >= 0, not {self.index}")

    @property
    def mime(self) -> str:
        return MIME[self.fmt]

    @property
    def ext(self) -> str:
        return EXT[self.fmt]

    def digest(self) -> str:
        """SHA-256 (hex) over every field, the source bytes included: the cache key."""
        h = hashlib.sha256()
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bytes):
                h.update(b"B%d:" % len(value))
                h.update(value)
            else:
                h.update(json.dumps([f.name, value], ensure_ascii=True).encode("ascii"))
            h.update(b"\n")
        return h.hexdigest()


# --------------------------------------------------------------------------------------------------
# request helpers


def digest_params(params: Mapping[str, Any], *, exclude: Iterable[str] = DIGEST_EXCLUDED_PARAMS) -> str:
    """SHA-256 (hex) of a request's parameters minus ``exclude``, for ``ImageSpec.params_digest``.

    Canonical JSON (sorted keys), so key order does not matter; values JSON cannot encode are
    hashed by their ``str()``.
    """
    excluded = frozenset(exclude)
    rest = {k: v for k, v in params.items() if k not in excluded}
    text = json.dumps(rest, sort_keys=True, ensure_ascii=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def aspect_resolution(ratio_w: int, ratio_h: int) -> tuple[int, int]:
    """The ~1 MP output size for an aspect ratio ``ratio_w:ratio_h`` (the rule behind ASPECT_RESOLUTIONS).

    Among (width, height) pairs of multiples of 16 whose area is within 3 % of 1024*1024, take the
    one whose width/height is closest to the ratio (log distance); ties go to the area closest to
    1024*1024, then to the smaller width.
    """
    if ratio_w <= 0 or ratio_h <= 0:
        raise ValueError(f"aspect ratio terms must be positive, not {ratio_w}:{ratio_h}")
    target = ratio_w / ratio_h
    best: tuple[float, float, int, int] | None = None
    for h in range(16, _MAX_SIDE + 1, 16):
        exact = h * target / 16
        for w in {max(1, math.floor(exact)) * 16, max(1, math.ceil(exact)) * 16}:
            area_error = abs(w * h / _MEGAPIXEL - 1)
            if area_error > _AREA_TOLERANCE:
                continue
            # rounded so that mirrored ratios (16:9 / 9:16) pick mirrored sizes
            key = (round(abs(math.log(w / h / target)), 12), round(area_error, 12), w, h)
            if best is None or key < best:
                best = key
    if best is None:  # only for absurd ratios, where no multiple-of-16 pair is near 1 MP
        raise ValueError(f"no ~1 megapixel size for aspect ratio {ratio_w}:{ratio_h}")
    return best[2], best[3]


def resolve_size(
    params: Mapping[str, Any],
    *,
    input_size: tuple[int, int] | None = None,
    default: tuple[int, int] = (1024, 1024),
) -> tuple[int, int]:
    """The output (width, height) for a request.

    Precedence: ``size`` (``"W*H"``) -> ``aspect_ratio`` -> ``input_size`` (edits follow their input
    image) -> ``default``. Absent, ``None`` and empty-string values count as not given. Size strings
    are assumed schema-validated (``W*H``; ``WxH`` is accepted too).

    ``aspect_ratio`` maps to a ~1 megapixel base resolution (:data:`ASPECT_RESOLUTIONS`): both sides
    multiples of 16, area within 3 % of 1024*1024, aspect as close as possible::

        ratio   width x height   area vs 1024*1024   width/height vs ratio
        21:9    1568 x 672       +0.5 %              exact (2.333)
        16:9    1360 x 768       -0.4 %              -0.4 % (1.771)
        4:3     1200 x 896       +2.5 %              +0.4 % (1.339)
        3:2     1248 x 832       -1.0 %              exact (1.500)
        1:1     1024 x 1024      exact               exact
        2:3     832 x 1248       (3:2 transposed)
        3:4     896 x 1200       (4:3 transposed)
        9:16    768 x 1360       (16:9 transposed)
        9:21    672 x 1568       (21:9 transposed)

    Any other ``"a:b"`` ratio is computed by the same rule (:func:`aspect_resolution`).
    """
    size = params.get("size")
    if size not in (None, ""):
        match = _SIZE.fullmatch(str(size))
        if match is None:
            raise ValueError(f"size must look like 'W*H', not {size!r}")
        return int(match.group(1)), int(match.group(2))
    ratio = params.get("aspect_ratio")
    if ratio not in (None, ""):
        ratio_text = str(ratio).strip()
        if ratio_text in ASPECT_RESOLUTIONS:
            return ASPECT_RESOLUTIONS[ratio_text]
        parts = ratio_text.split(":")
        if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
            raise ValueError(f"aspect_ratio must look like 'W:H', not {ratio!r}")
        return aspect_resolution(int(parts[0]), int(parts[1]))
    if input_size is not None:
        return input_size
    return default


def decode_data_uri(uri: str) -> tuple[str, bytes]:
    """``data:image/<type>[;params];base64,<payload>`` -> (mime type in lower case, decoded bytes).

    Whitespace inside the payload and missing ``=`` padding are tolerated; anything else that is not a
    base64 image data URI raises :class:`ImageInputError`. The bytes are not checked to be an image.
    """
    match = _DATA_URI.fullmatch(uri.strip()) if isinstance(uri, str) else None
    if match is None:
        shown = uri[:40] + "..." if isinstance(uri, str) and len(uri) > 40 else uri
        raise ImageInputError(f"not a base64 image data URI (data:image/...;base64,...): {shown!r}")
    payload = "".join(match.group("payload").split())
    if not payload:
        raise ImageInputError("data URI has an empty base64 payload")
    if len(payload) % 4 == 1:
        raise ImageInputError("data URI payload is not valid base64 (bad length)")
    payload += "=" * (-len(payload) % 4)
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ImageInputError(f"data URI payload is not valid base64: {exc}") from exc
    if not data:
        raise ImageInputError("data URI has an empty base64 payload")
    return match.group("mime").lower(), data


def image_size(data: bytes) -> tuple[int, int]:
    """(width, height) of an encoded image as displayed, i.e. after its EXIF orientation.

    Raises :class:`ImageInputError` when Pillow cannot identify the bytes.
    """
    try:
        with Image.open(io.BytesIO(data)) as im:
            width, height = im.size
            orientation = im.getexif().get(_EXIF_ORIENTATION)
    except Exception as exc:  # Pillow raises many types for corrupt input
        raise ImageInputError(f"input image could not be decoded: {exc}") from exc
    if orientation in (5, 6, 7, 8):
        return height, width
    return width, height


# --------------------------------------------------------------------------------------------------
# deterministic "randomness"


class _Stream:
    """Deterministic numbers from SHA-256 in counter mode: stable across Python and platform versions."""

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._counter = 0
        self._buffer = b""

    def _take(self, n: int) -> bytes:
        while len(self._buffer) < n:
            self._buffer += hashlib.sha256(self._key + self._counter.to_bytes(8, "big")).digest()
            self._counter += 1
        out, self._buffer = self._buffer[:n], self._buffer[n:]
        return out

    def unit(self) -> float:
        """A float in [0, 1)."""
        return int.from_bytes(self._take(4), "big") / 2**32

    def between(self, lo: float, hi: float) -> float:
        return lo + (hi - lo) * self.unit()

    def integer(self, lo: int, hi: int) -> int:
        """An int in [lo, hi]."""
        return lo + int.from_bytes(self._take(4), "big") % (hi - lo + 1)

    def color(
        self,
        *,
        hue: float | None = None,
        sat: tuple[float, float] = (0.45, 0.95),
        val: tuple[float, float] = (0.35, 0.98),
    ) -> tuple[int, int, int]:
        h = self.unit() if hue is None else hue % 1.0
        r, g, b = colorsys.hsv_to_rgb(h, self.between(*sat), self.between(*val))
        return round(r * 255), round(g * 255), round(b * 255)


def _look_key(spec: ImageSpec) -> bytes:
    """What the picture's content derives from: not the size, format or source note."""
    source_hash = hashlib.sha256(spec.source).hexdigest() if spec.source is not None else None
    facts = [spec.model, spec.prompt, spec.seed, spec.index, spec.params_digest, source_hash]
    return json.dumps(facts, ensure_ascii=True).encode("ascii")


# --------------------------------------------------------------------------------------------------
# drawing


def _background(stream: _Stream, width: int, height: int) -> Image.Image:
    """A three-colour gradient in a hashed direction: cheap at any size (1-D resizes + a LUT)."""
    ramp = Image.linear_gradient("L")  # 256x256, black at the top to white at the bottom
    column = ramp.crop((0, 0, 1, 256)).resize((1, height), Image.Resampling.BILINEAR)
    row = ramp.crop((0, 0, 1, 256)).transpose(Image.Transpose.ROTATE_270)
    row = row.resize((width, 1), Image.Resampling.BILINEAR)
    vertical = column.resize((width, height), Image.Resampling.NEAREST)
    horizontal = row.resize((width, height), Image.Resampling.NEAREST)
    if stream.unit() < 0.5:
        vertical = ImageOps.flip(vertical)
    if stream.unit() < 0.5:
        horizontal = ImageOps.mirror(horizontal)
    mix = Image.blend(vertical, horizontal, stream.between(0.2, 0.8))
    base_hue = stream.unit()
    dark = stream.color(hue=base_hue, val=(0.15, 0.45))
    mid = stream.color(hue=base_hue + stream.between(0.15, 0.45))
    light = stream.color(hue=base_hue + stream.between(0.5, 0.85), sat=(0.25, 0.7), val=(0.8, 1.0))
    return ImageOps.colorize(mix, dark, light, mid=mid)


def _shapes(image: Image.Image, stream: _Stream) -> None:
    """A hashed composition of translucent ellipses, rectangles, triangles and lines, plus a ring."""
    width, height = image.size
    draw = ImageDraw.Draw(image, "RGBA")
    unit = max(1, min(width, height))
    for _ in range(stream.integer(4, 6)):
        kind = stream.integer(0, 3)
        cx, cy = stream.between(0.05, 0.95) * width, stream.between(0.05, 0.8) * height
        rx, ry = stream.between(0.08, 0.3) * unit, stream.between(0.08, 0.3) * unit
        fill = (*stream.color(), stream.integer(120, 220))
        box = (cx - rx, cy - ry, cx + rx, cy + ry)
        if kind == 0:
            draw.ellipse(box, fill=fill)
        elif kind == 1:
            draw.rectangle(box, fill=fill)
        elif kind == 2:
            angle = stream.between(0, 2 * math.pi)
            points = [
                (cx + rx * math.cos(angle + k * 2 * math.pi / 3), cy + ry * math.sin(angle + k * 2 * math.pi / 3))
                for k in range(3)
            ]
            draw.polygon(points, fill=fill)
        else:
            end = (stream.between(0, 1) * width, stream.between(0, 1) * height)
            draw.line([(cx, cy), end], fill=fill, width=max(1, round(unit * stream.between(0.01, 0.03))))
    # a solid ring so even near-identical palettes differ in layout
    cx, cy = stream.between(0.15, 0.85) * width, stream.between(0.15, 0.6) * height
    r = stream.between(0.06, 0.14) * unit
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=stream.color(val=(0.85, 1.0)), width=max(1, round(r / 5)))


def _hue_rotation(degrees: float) -> tuple[float, ...]:
    """An RGB->RGB matrix for ``Image.convert`` rotating hue while keeping luminance (CSS hue-rotate)."""
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    return (
        0.213 + c * 0.787 - s * 0.213, 0.715 - c * 0.715 - s * 0.715, 0.072 - c * 0.072 + s * 0.928, 0.0,
        0.213 - c * 0.213 + s * 0.143, 0.715 + c * 0.285 + s * 0.140, 0.072 - c * 0.072 - s * 0.283, 0.0,
        0.213 - c * 0.213 - s * 0.787, 0.715 - c * 0.715 + s * 0.715, 0.072 + c * 0.928 + s * 0.072, 0.0,
    )  # fmt: skip


def _open_source(data: bytes, width: int, height: int) -> Image.Image:
    """Decode an input image, upright and flattened to RGB, cover-fitted (centre crop) to width x height."""
    try:
        with Image.open(io.BytesIO(data)) as opened:
            side = max(width, height)
            opened.draft("RGB", (side, side))  # JPEG: decode at a reduced scale when much larger
            upright = ImageOps.exif_transpose(opened)
            upright.load()
    except Exception as exc:  # Pillow raises many types for corrupt input
        raise ImageInputError(f"source image could not be decoded: {exc}") from exc
    if upright.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in upright.info:
        rgba = upright.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (236, 236, 236))
        flat.paste(rgba, mask=rgba.getchannel("A"))
    else:
        flat = upright.convert("RGB")
    return ImageOps.fit(flat, (width, height), method=Image.Resampling.BILINEAR)


def _edit(picture: Image.Image, stream: _Stream) -> Image.Image:
    """A visible, recognisable edit: hashed hue rotation (10-20 degrees), a light tint, a frame and a ring."""
    sign = 1 if stream.unit() < 0.5 else -1
    rotated = picture.convert("RGB", _hue_rotation(sign * stream.between(10, 20)))
    tint = Image.new("RGB", picture.size, stream.color(sat=(0.6, 1.0), val=(0.7, 1.0)))
    edited = Image.blend(rotated, tint, stream.between(0.05, 0.08))
    width, height = edited.size
    frame = max(1, round(min(width, height) / 128))
    draw = ImageDraw.Draw(edited, "RGBA")
    draw.rectangle((0, 0, width - 1, height - 1), outline=stream.color(val=(0.85, 1.0)), width=frame)
    # a hashed marker ring, so edits of one picture also differ in layout
    unit = min(width, height)
    cx, cy = stream.between(0.15, 0.85) * width, stream.between(0.15, 0.6) * height
    r = stream.between(0.05, 0.1) * unit
    ring = (*stream.color(val=(0.85, 1.0)), 200)
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=ring, width=max(1, round(r / 8)))
    return edited


def _clean(text: str) -> str:
    """Printable, single-line text the stamp font can draw (lone surrogates and controls -> space)."""
    text = text.encode("utf-8", "replace").decode("utf-8")
    return " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())


def _fit(
    draw: ImageDraw.ImageDraw,
    text: str,
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    max_width: float,
    *,
    keep_end: bool = False,
) -> str:
    """``text`` shortened with "..." (at the end, or at the start when ``keep_end``) to fit max_width."""
    if draw.textlength(text, font=font) <= max_width:
        return text
    lo, hi = 0, len(text)
    while lo < hi:  # longest kept length that fits
        mid = (lo + hi + 1) // 2
        candidate = "..." + text[len(text) - mid:] if keep_end else text[:mid] + "..."
        if draw.textlength(candidate, font=font) <= max_width:
            lo = mid
        else:
            hi = mid - 1
    if keep_end:
        return "..." + text[len(text) - lo:] if lo else "..."
    return text[:lo] + "..." if lo else "..."


_Line: TypeAlias = tuple[str, str, bool]
"""One stamp line: (fixed prefix, body, keep_end): the body is shortened to fit, at its start when keep_end."""


def _stamp(image: Image.Image, lines: list[_Line], accent: tuple[int, int, int], *, at_top: bool = False) -> None:
    """Draw ``lines`` on a dark translucent panel at the bottom-left (or top-left) corner of the image.

    The font scales with the image's shorter side (about 1/28 of it, at least 11 px); the panel is as
    wide as the longest line, so short stamps hide little of the picture.
    """
    width, height = image.size
    font_px = max(11, round(min(width, height) / 28))
    font = ImageFont.load_default(size=font_px)
    line_px = round(font_px * 1.2)
    pad = max(2, font_px // 3)
    bar = max(2, font_px // 4)
    left = bar + pad
    draw = ImageDraw.Draw(image, "RGBA")
    texts: list[str] = []
    for prefix, body, keep_end in lines:
        room = width - left - pad - draw.textlength(prefix, font=font)
        texts.append(prefix + _fit(draw, _clean(body), font, room, keep_end=keep_end))
    panel_w = min(width, round(left + pad + max((draw.textlength(t, font=font) for t in texts), default=0)))
    panel_h = min(height, pad * 2 + line_px * len(texts))
    top = 0 if at_top else height - panel_h
    draw.rectangle((0, top, panel_w - 1, top + panel_h - 1), fill=(0, 0, 0, 170))
    draw.rectangle((0, top, bar - 1, top + panel_h - 1), fill=accent)
    for i, text in enumerate(texts):
        draw.text((left, top + pad + i * line_px), text, font=font, fill=(255, 255, 255))


def _stamp_lines(spec: ImageSpec) -> list[_Line]:
    prompt = _clean(spec.prompt)
    excerpt = prompt if len(prompt) <= _PROMPT_EXCERPT_CHARS else prompt[: _PROMPT_EXCERPT_CHARS - 3] + "..."
    lines: list[_Line] = [
        ("", spec.model, True),
        ("", f'"{excerpt}"' if excerpt else "(empty prompt)", False),
        ("", f"seed {spec.seed} | #{spec.index} | {spec.width}x{spec.height} {spec.fmt} | mock", False),
    ]
    if spec.source is not None:
        lines.append(("edit of ", spec.source_note or "the input image", True))
    return lines


# --------------------------------------------------------------------------------------------------
# metadata


def _metadata(spec: ImageSpec) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "generator": METADATA_KEY,
        "model": spec.model,
        "prompt": spec.prompt,
        "seed": spec.seed,
        "index": spec.index,
        "width": spec.width,
        "height": spec.height,
        "format": spec.fmt,
        "params_digest": spec.params_digest,
        "edit": spec.source is not None,
        "spec_digest": spec.digest(),
    }
    if spec.source is not None:
        meta["source_sha256"] = hashlib.sha256(spec.source).hexdigest()
        meta["source_note"] = spec.source_note
    return meta


def _metadata_json(meta: dict[str, Any]) -> str:
    """Compact ASCII JSON, the prompt shortened (``prompt_truncated``) to fit a JPEG segment."""
    text = json.dumps(meta, ensure_ascii=True, sort_keys=True, separators=(",", ":"))
    prompt = meta.get("prompt")
    while len(text) > _MAX_METADATA_CHARS and isinstance(prompt, str) and prompt:
        prompt = prompt[: len(prompt) // 2]
        meta = {**meta, "prompt": prompt, "prompt_truncated": True}
        text = json.dumps(meta, ensure_ascii=True, sort_keys=True, separators=(",", ":"))
    return text


def _encode(image: Image.Image, fmt: str, meta_json: str) -> bytes:
    buffer = io.BytesIO()
    if fmt == "png":
        info = PngInfo()
        info.add_text(METADATA_KEY, meta_json)
        image.save(buffer, "PNG", pnginfo=info, compress_level=_PNG_COMPRESS_LEVEL)
    else:
        exif = Image.Exif()
        exif[_EXIF_IMAGE_DESCRIPTION] = meta_json
        exif[_EXIF_SOFTWARE] = METADATA_KEY
        if fmt == "jpeg":
            comment = meta_json.encode("ascii")
            image.save(buffer, "JPEG", quality=_JPEG_QUALITY, exif=exif.tobytes(), comment=comment)
        else:
            image.save(buffer, "WEBP", quality=_WEBP_QUALITY, method=_WEBP_METHOD, exif=exif.tobytes())
    return buffer.getvalue()


def read_metadata(data: bytes) -> dict[str, Any]:
    """The JSON facts :func:`render` / :func:`stand_in` stored in a PNG, JPEG or WebP file.

    Looks at the PNG text chunk ``wavespeed-mock``, the JPEG comment and the EXIF ``ImageDescription``
    (JPEG, WebP, PNG). Returns ``{}`` for a decodable image without such metadata; raises
    :class:`ImageInputError` when the bytes are not an image.
    """
    candidates: list[str | bytes] = []
    try:
        with Image.open(io.BytesIO(data)) as im:
            text_chunks = getattr(im, "text", None)  # PNG: also reads chunks after the image data
            if isinstance(text_chunks, dict) and METADATA_KEY in text_chunks:
                candidates.append(text_chunks[METADATA_KEY])
            comment = im.info.get("comment")
            if isinstance(comment, (str, bytes)):
                candidates.append(comment)
            description = im.getexif().get(_EXIF_IMAGE_DESCRIPTION)
            if isinstance(description, (str, bytes)):
                candidates.append(description)
    except Exception as exc:  # Pillow raises many types for corrupt input
        raise ImageInputError(f"image could not be decoded: {exc}") from exc
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, dict) and value.get("generator") == METADATA_KEY:
            return value
    return {}


# --------------------------------------------------------------------------------------------------
# public rendering


def render(spec: ImageSpec) -> bytes:
    """The encoded output image for ``spec``: exactly ``width x height`` in ``fmt``, byte-deterministic.

    Raises :class:`ImageInputError` when ``spec.source`` is given but cannot be decoded.
    """
    stream = _Stream(_look_key(spec))
    if spec.source is not None:
        picture = _edit(_open_source(spec.source, spec.width, spec.height), stream)
    else:
        picture = _background(stream, spec.width, spec.height)
        _shapes(picture, stream)
    _stamp(picture, _stamp_lines(spec), stream.color(val=(0.85, 1.0)))
    return _encode(picture, spec.fmt, _metadata_json(_metadata(spec)))


def stand_in(url: str, width: int = 768, height: int = 768) -> bytes:
    """A deterministic PNG standing in for an input image URL the server does not fetch (offline CI).

    Labelled "stand-in" with the URL's host and file name, drawn from a hash of the URL; the PNG text
    chunk ``wavespeed-mock`` holds ``{"generator", "stand_in": true, "url", "width", "height"}``.
    """
    if not (1 <= width <= _MAX_SIDE and 1 <= height <= _MAX_SIDE):
        raise ValueError(f"size must be within 1..{_MAX_SIDE} per side, not {width}x{height}")
    stream = _Stream(b"stand-in\n" + url.encode("utf-8", "surrogatepass"))
    picture = _background(stream, width, height)
    _shapes(picture, stream)
    host, path = "", url
    if "://" in url:
        try:
            parts = urlsplit(url)
        except ValueError:  # e.g. an unbalanced IPv6 bracket
            pass
        else:
            host, path = parts.hostname or parts.netloc, parts.path
    basename = unquote(path.rstrip("/").rsplit("/", 1)[-1]) or "/"
    lines: list[_Line] = [
        ("", "STAND-IN (not fetched)", False),
        ("", host or url[:60], False),
        ("", basename, True),
    ]
    # at the top: the stamp of an edit of this stand-in goes at the bottom
    _stamp(picture, lines, stream.color(val=(0.85, 1.0)), at_top=True)
    meta = {"generator": METADATA_KEY, "stand_in": True, "url": url, "width": width, "height": height}
    return _encode(picture, "png", json.dumps(meta, ensure_ascii=True, sort_keys=True, separators=(",", ":")))


class ImageCache:
    """A thread-safe LRU cache of rendered images keyed by :meth:`ImageSpec.digest`, bounded by bytes.

    Renders happen outside the lock, so two threads missing the same spec at once may both render it
    (the results are identical). An image larger than ``max_bytes`` is returned but not kept.
    """

    def __init__(self, max_bytes: int = 64 * 1024 * 1024) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, not {max_bytes}")
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, bytes] = OrderedDict()
        self._bytes = 0
        self._hits = 0
        self._misses = 0

    @property
    def hits(self) -> int:
        with self._lock:
            return self._hits

    @property
    def misses(self) -> int:
        with self._lock:
            return self._misses

    @property
    def current_bytes(self) -> int:
        """Total size of the cached images."""
        with self._lock:
            return self._bytes

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __contains__(self, spec: object) -> bool:
        if not isinstance(spec, ImageSpec):
            return False
        key = spec.digest()
        with self._lock:
            return key in self._entries

    def get_or_render(self, spec: ImageSpec) -> bytes:
        """The cached image for ``spec``, rendering (and caching) it on a miss."""
        key = spec.digest()
        with self._lock:
            cached = self._entries.get(key)
            if cached is not None:
                self._entries.move_to_end(key)
                self._hits += 1
                return cached
            self._misses += 1
        data = render(spec)
        with self._lock:
            if key not in self._entries and len(data) <= self.max_bytes:
                self._entries[key] = data
                self._bytes += len(data)
                while self._bytes > self.max_bytes:
                    _, evicted = self._entries.popitem(last=False)
                    self._bytes -= len(evicted)
        return data

    def clear(self) -> None:
        """Drop every cached image and reset the hit and miss counters."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0
            self._hits = 0
            self._misses = 0
