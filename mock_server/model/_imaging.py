"""Drawing the placeholder pictures: hashed gradients and shapes, the edit look, the text stamp.

Deterministic: every choice comes from a :class:`Stream` keyed by the caller, and only Pillow
primitives are used (no per-pixel Python loops).
"""

from __future__ import annotations

import colorsys
import functools
import hashlib
import io
import math
import os
import sys
from typing import TYPE_CHECKING, Final, TypeAlias

from mock_server.model._image_meta import ImageInputError

# Pillow is imported by the functions that draw: starting a server (a test fixture) loads none of it.
if TYPE_CHECKING:
    from PIL import Image, ImageDraw, ImageFont


# glibc's malloc tunables (mallopt parameter numbers) and the values pictures want; see heap_for_pictures.
_M_TRIM_THRESHOLD: Final = -1
_M_MMAP_THRESHOLD: Final = -3
_MMAP_THRESHOLD: Final = 32 * 1024 * 1024  # glibc's own ceiling for its moving threshold
_TRIM_THRESHOLD: Final = 64 * 1024 * 1024
_MALLOC_SETTINGS: Final = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")


@functools.cache
def heap_for_pictures() -> None:
    """Have glibc serve picture buffers from its heap and keep what they free, once per process.

    By default glibc maps every allocation above 128 KiB (a 1024x1024 picture is 4 MiB) straight from the kernel
    and unmaps it when freed, raising that threshold only as it sees such frees: the first renders of each size in
    a fresh process, which is what a test run's fixture server does, then fault in every page anew (~1,700 faults,
    a third of a 1024x1024 JPEG's render time). Left alone where the user set these tunables, and off glibc."""
    if sys.platform != "linux" or any(name in os.environ for name in _MALLOC_SETTINGS):
        return
    import ctypes

    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 (present on glibc only; musl's mallopt does nothing)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
    mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)


class Stream:
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


def background(stream: Stream, width: int, height: int) -> Image.Image:
    """A three-colour gradient in a hashed direction: cheap at any size (1-D resizes, flips of one row or column,
    and the colours as a palette)."""
    from PIL import Image, ImageOps

    heap_for_pictures()
    ramp = Image.linear_gradient("L")  # 256x256, black at the top to white at the bottom
    column = ramp.crop((0, 0, 1, 256)).resize((1, height), Image.Resampling.BILINEAR)
    row = ramp.crop((0, 0, 1, 256)).transpose(Image.Transpose.ROTATE_270)
    row = row.resize((width, 1), Image.Resampling.BILINEAR)
    # Flipped before the stretch to full size, which copies each one unchanged: the same picture, a fraction of
    # the work.
    if stream.unit() < 0.5:
        column = ImageOps.flip(column)
    if stream.unit() < 0.5:
        row = ImageOps.mirror(row)
    vertical = column.resize((width, height), Image.Resampling.NEAREST)
    horizontal = row.resize((width, height), Image.Resampling.NEAREST)
    mix = Image.blend(vertical, horizontal, stream.between(0.2, 0.8))
    base_hue = stream.unit()
    dark = stream.color(hue=base_hue, val=(0.15, 0.45))
    mid = stream.color(hue=base_hue + stream.between(0.15, 0.45))
    light = stream.color(hue=base_hue + stream.between(0.5, 0.85), sat=(0.25, 0.7), val=(0.8, 1.0))
    # ImageOps.colorize of one 256-level ramp is the palette; mapping the picture through it is one pass, where
    # colorizing the picture itself converts it to RGB and then maps every channel.
    palette = ImageOps.colorize(ramp.crop((0, 0, 1, 256)), dark, light, mid=mid).tobytes()
    mix.putpalette(palette)
    return mix.convert("RGB")


def shapes(image: Image.Image, stream: Stream) -> None:
    """A hashed composition of translucent ellipses, rectangles, triangles and lines, plus a ring."""
    from PIL import ImageDraw

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


def open_source(data: bytes, width: int, height: int) -> Image.Image:
    """Decode an input image, upright and flattened to RGB, cover-fitted (centre crop) to width x height."""
    from PIL import Image, ImageOps

    heap_for_pictures()
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


def edit(picture: Image.Image, stream: Stream) -> Image.Image:
    """A visible, recognisable edit: hashed hue rotation (10-20 degrees), a light tint, a frame and a ring."""
    from PIL import Image, ImageDraw

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


def clean(text: str) -> str:
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
        candidate = "..." + text[len(text) - mid :] if keep_end else text[:mid] + "..."
        if draw.textlength(candidate, font=font) <= max_width:
            lo = mid
        else:
            hi = mid - 1
    if keep_end:
        return "..." + text[len(text) - lo :] if lo else "..."
    return text[:lo] + "..." if lo else "..."


Line: TypeAlias = tuple[str, str, bool]
"""One stamp line: (fixed prefix, body, keep_end): the body is shortened to fit, at its start when keep_end."""


def stamp(image: Image.Image, lines: list[Line], accent: tuple[int, int, int], *, at_top: bool = False) -> None:
    """Draw ``lines`` on a dark translucent panel at the bottom-left (or top-left) corner of the image.

    The font scales with the image's shorter side (about 1/28 of it, at least 11 px); the panel is as
    wide as the longest line, so short stamps hide little of the picture.
    """
    from PIL import ImageDraw, ImageFont

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
        texts.append(prefix + _fit(draw, clean(body), font, room, keep_end=keep_end))
    panel_w = min(width, round(left + pad + max((draw.textlength(t, font=font) for t in texts), default=0)))
    panel_h = min(height, pad * 2 + line_px * len(texts))
    top = 0 if at_top else height - panel_h
    draw.rectangle((0, top, panel_w - 1, top + panel_h - 1), fill=(0, 0, 0, 170))
    draw.rectangle((0, top, bar - 1, top + panel_h - 1), fill=accent)
    for i, text in enumerate(texts):
        draw.text((left, top + pad + i * line_px), text, font=font, fill=(255, 255, 255))
