"""Placeholder videos and audio clips for generically served models, and the output size of their pictures.

Like the images they are deterministic (equal specs, equal bytes), stamped with the model, prompt and seed, and
made offline with no codec library: MP4 (H.264) by ``_mp4``, animated GIF and WebP by Pillow, WAV by ``wave``.
A video is the placeholder picture with a progress bar and a marker moving along its bottom edge, so it plays
visibly and the frames after the first stay small.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import struct
import wave
from array import array
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from mock_server.model import images
from mock_server.model._imaging import Line, Stream
from mock_server.model._mp4 import mp4

# Pillow is imported by the functions that draw: starting a server (a test fixture) loads none of it.
if TYPE_CHECKING:
    from PIL import Image

IMAGE_FORMATS = images.FORMATS
VIDEO_FORMATS = ("mp4", "gif", "webp")
AUDIO_FORMATS = ("wav",)
DEFAULT_FORMAT = {"image": "jpeg", "video": "mp4", "audio": "wav"}
_VIDEO_MIME = {"mp4": "video/mp4", "gif": "image/gif", "webp": "image/webp"}

IMAGE_SIDES = (16, 4096)
VIDEO_MAX_SIDE = 1920  # bigger requests are scaled down (aspect kept): an I_PCM first frame is ~1.5 bytes/pixel
VIDEO_FPS = 8
VIDEO_SECONDS = (1.0, 30.0)
VIDEO_DEFAULT_SECONDS = 5.0
AUDIO_SECONDS = (0.5, 60.0)
AUDIO_DEFAULT_SECONDS = 3.0
AUDIO_RATE = 22050
# Resolution classes video model names carry ("wan-2.1/t2v-480p"): the short side.
_VIDEO_CLASSES = (
    ("2160p", 2160),
    ("4k", 2160),
    ("1440p", 1440),
    ("1080p", 1080),
    ("720p", 720),
    ("580p", 580),
    ("540p", 540),
    ("480p", 480),
    ("360p", 360),
)
_VIDEO_DEFAULT_SHORT_SIDE = 480
_PENTATONIC = (0, 2, 4, 7, 9, 12, 14, 16)


def output_size(params: Mapping[str, Any], media: str, model: str) -> tuple[tuple[int, int], list[str]]:
    """The (width, height) of a generic output and notes on what was adjusted.

    ``size`` wins, then ``width`` + ``height``, then ``aspect_ratio``, then the model's default: 1024x1024 for
    pictures; for videos the resolution class in the model name (``480p``, ``720p``, ...) at 16:9, else 832x480.
    """
    notes: list[str] = []
    size: tuple[int, int] | None = None
    if params.get("size"):
        width, _, height = str(params["size"]).replace("x", "*").replace("X", "*").partition("*")
        size = (int(width), int(height))
    elif params.get("width") and params.get("height"):
        size = (int(params["width"]), int(params["height"]))
    short = next((side for word, side in _VIDEO_CLASSES if word in model.lower()), _VIDEO_DEFAULT_SHORT_SIDE)
    if size is None and params.get("aspect_ratio"):
        w, _, h = str(params["aspect_ratio"]).partition(":")
        ratio = (int(w), int(h))
        size = _at_short_side(ratio, short) if media == "video" else images.aspect_resolution(*ratio)
    if size is None:
        size = (1024, 1024) if media != "video" else _at_short_side((16, 9), short)
    if media == "video":
        return _video_size(size, notes), notes
    low, high = IMAGE_SIDES
    kept = (min(high, max(low, size[0])), min(high, max(low, size[1])))
    if kept != size:
        notes.append(f"output size {size[0]}x{size[1]} kept within {low}..{high} per side: {kept[0]}x{kept[1]}")
    return kept, notes


def _at_short_side(ratio: tuple[int, int], short: int) -> tuple[int, int]:
    w, h = ratio
    if w >= h:
        return (2 * round(short * w / h / 2), short)
    return (short, 2 * round(short * h / w / 2))


def _video_size(size: tuple[int, int], notes: list[str]) -> tuple[int, int]:
    width, height = size
    scale = min(1.0, VIDEO_MAX_SIDE / max(width, height))
    # H.264 4:2:0 crops in 2-pixel steps: both sides even, at least 2.
    fitted = (max(2, 2 * round(width * scale / 2)), max(2, 2 * round(height * scale / 2)))
    if fitted != size:
        notes.append(
            f"video size {width}x{height} made {fitted[0]}x{fitted[1]} (even sides, at most {VIDEO_MAX_SIDE} px)"
        )
    return fitted


def clamp_seconds(value: Any, media: str) -> tuple[float, list[str]]:
    low, high = VIDEO_SECONDS if media == "video" else AUDIO_SECONDS
    default = VIDEO_DEFAULT_SECONDS if media == "video" else AUDIO_DEFAULT_SECONDS
    if value is None:
        return default, []
    kept = min(high, max(low, float(value)))
    return kept, [] if kept == float(value) else [f"duration {value:g} s kept within {low:g}..{high:g}: {kept:g} s"]


def _digest(spec: Any) -> str:
    h = hashlib.sha256()
    for f in fields(spec):
        h.update(json.dumps([f.name, getattr(spec, f.name)], ensure_ascii=True).encode("ascii") + b"\n")
    return h.hexdigest()


def _stream(spec: Any) -> Stream:
    return Stream(
        json.dumps([type(spec).__name__, spec.model, spec.prompt, spec.seed, spec.index, spec.params_digest]).encode()
    )


@dataclass(frozen=True)
class VideoSpec:
    """Everything that determines one placeholder video."""

    model: str
    prompt: str
    seed: int
    index: int
    width: int
    height: int
    seconds: float
    fmt: str  # mp4 | gif | webp
    params_digest: str

    @property
    def mime(self) -> str:
        return _VIDEO_MIME[self.fmt]

    @property
    def ext(self) -> str:
        return self.fmt

    @property
    def frame_count(self) -> int:
        return max(1, round(self.seconds * VIDEO_FPS))

    def digest(self) -> str:
        return _digest(self)

    def render(self) -> bytes:
        from PIL import Image

        still = images.ImageSpec(
            model=self.model,
            prompt=self.prompt,
            seed=self.seed,
            index=self.index,
            width=self.width,
            height=self.height,
            fmt="png",
            params_digest=self.params_digest,
        )
        excerpt = self.prompt if len(self.prompt) <= 90 else self.prompt[:87] + "..."
        lines: list[Line] = [
            ("", self.model, True),
            ("", f'"{excerpt}"' if excerpt else "(empty prompt)", False),
            (
                "",
                f"seed {self.seed} | #{self.index} | {self.width}x{self.height} {self.fmt} | {self.seconds:g} s | mock",
                False,
            ),
        ]
        base = images.draw(still, lines, stamp_at_top=True)  # the bottom edge is the progress bar's
        color = _stream(self).color(val=(0.85, 1.0))
        frames = [_frame(base, n, self.frame_count, color) for n in range(self.frame_count)]
        if self.fmt == "mp4":
            return mp4(frames, VIDEO_FPS)
        buffer = io.BytesIO()
        if self.fmt == "gif":
            # One palette for every frame: quantizing each frame on its own is most of a GIF's cost.
            palette = frames[-1].quantize(255)
            frames = [frame.quantize(palette=palette, dither=Image.Dither.NONE) for frame in frames]
            options: dict[str, Any] = {}
        else:
            options = {"lossless": False, "quality": 60}
        frames[0].save(
            buffer,
            format=self.fmt.upper(),
            save_all=True,
            append_images=frames[1:],
            duration=1000 // VIDEO_FPS,
            loop=0,
            **options,
        )
        return buffer.getvalue()


def _frame(base: Image.Image, number: int, count: int, color: tuple[int, int, int]) -> Image.Image:
    """The base picture with a progress bar along the bottom and a marker riding on it."""
    from PIL import ImageDraw

    frame = base.copy()
    width, height = frame.size
    bar = max(2, height // 40)
    done = round(width * (number + 1) / count)
    draw = ImageDraw.Draw(frame)
    draw.rectangle((0, height - bar, width, height), fill=(20, 20, 20))
    draw.rectangle((0, height - bar, max(0, done - 1), height), fill=color)
    side = max(2, bar * 2)
    left = min(width - side, max(0, done - side))
    draw.rectangle((left, max(0, height - bar - side), left + side - 1, height - bar - 1), fill=color)
    return frame


@dataclass(frozen=True)
class AudioSpec:
    """Everything that determines one placeholder audio clip: a short melody drawn from the request."""

    model: str
    prompt: str
    seed: int
    index: int
    seconds: float
    params_digest: str
    fmt: str = "wav"

    @property
    def mime(self) -> str:
        return "audio/wav"

    @property
    def ext(self) -> str:
        return "wav"

    def digest(self) -> str:
        return _digest(self)

    def render(self) -> bytes:
        stream = _stream(self)
        root = 220.0 * 2 ** (stream.integer(0, 11) / 12)
        note_seconds = 0.25
        samples = array("h")
        total = round(self.seconds * AUDIO_RATE)
        per_note = round(note_seconds * AUDIO_RATE)
        for start in range(0, total, per_note):
            frequency = root * 2 ** (_PENTATONIC[stream.integer(0, len(_PENTATONIC) - 1)] / 12)
            length = min(per_note, total - start)
            step = 2 * math.pi * frequency / AUDIO_RATE
            # A short fade at both ends of every note: no clicks between notes.
            fade = max(1, min(length // 2, AUDIO_RATE // 200))
            samples.extend(
                int(9000 * math.sin(step * i) * min(1.0, i / fade, (length - i) / fade)) for i in range(length)
            )
        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(AUDIO_RATE)
            out.writeframes(
                samples.tobytes() if struct.pack("=h", 1) == struct.pack("<h", 1) else _little_endian(samples)
            )
        return buffer.getvalue()


def _little_endian(samples: array[int]) -> bytes:
    swapped = array("h", samples)
    swapped.byteswap()
    return swapped.tobytes()
