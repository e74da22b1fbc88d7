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

import hashlib
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Final, Protocol, runtime_checkable
from urllib.parse import unquote, urlsplit

from mock_server.model._image_meta import (
    ASPECT_RESOLUTIONS,
    DIGEST_EXCLUDED_PARAMS,
    EXT,
    FORMATS,
    MAX_SIDE,
    METADATA_KEY,
    MIME,
    ImageInputError,
    ImageTooLarge,
    aspect_resolution,
    decode_data_uri,
    digest_params,
    encode,
    image_size,
    read_metadata,
    resolve_size,
)
from mock_server.model._imaging import Line, Stream, background, clean, edit, open_source, shapes, stamp

# Pillow is imported where pictures are drawn and encoded (_imaging, _image_meta), not with this module.
if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "ASPECT_RESOLUTIONS",
    "DIGEST_EXCLUDED_PARAMS",
    "EXT",
    "FORMATS",
    "METADATA_KEY",
    "MIME",
    "ImageCache",
    "ImageInputError",
    "ImageTooLarge",
    "ImageSpec",
    "Renderable",
    "aspect_resolution",
    "decode_data_uri",
    "draw",
    "digest_params",
    "image_size",
    "read_metadata",
    "render",
    "resolve_size",
    "stand_in",
]

_PROMPT_EXCERPT_CHARS: Final = 90
# Parameters left out of an output's params_digest: transport flags change how outputs travel, not what they look
# like; prompt and seed are fields of the spec themselves.
NOT_PIXELS: Final = ("enable_sync_mode", "enable_base64_output", "prompt", "seed")


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
        if not (1 <= self.width <= MAX_SIDE and 1 <= self.height <= MAX_SIDE):
            raise ValueError(f"size must be within 1..{MAX_SIDE} per side, not {self.width}x{self.height}")
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

    def render(self) -> bytes:
        return render(self)

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


def _look_key(spec: ImageSpec) -> bytes:
    """What the picture's content derives from: not the size, format or source note."""
    source_hash = hashlib.sha256(spec.source).hexdigest() if spec.source is not None else None
    facts = [spec.model, spec.prompt, spec.seed, spec.index, spec.params_digest, source_hash]
    return json.dumps(facts, ensure_ascii=True).encode("ascii")


def _stamp_lines(spec: ImageSpec) -> list[Line]:
    prompt = clean(spec.prompt)
    excerpt = prompt if len(prompt) <= _PROMPT_EXCERPT_CHARS else prompt[: _PROMPT_EXCERPT_CHARS - 3] + "..."
    lines: list[Line] = [
        ("", spec.model, True),
        ("", f'"{excerpt}"' if excerpt else "(empty prompt)", False),
        ("", f"seed {spec.seed} | #{spec.index} | {spec.width}x{spec.height} {spec.fmt} | mock", False),
    ]
    if spec.source is not None:
        lines.append(("edit of ", spec.source_note or "the input image", True))
    return lines


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


# --------------------------------------------------------------------------------------------------
# public rendering


def render(spec: ImageSpec) -> bytes:
    """The encoded output image for ``spec``: exactly ``width x height`` in ``fmt``, byte-deterministic.

    Raises :class:`ImageInputError` when ``spec.source`` is given but cannot be decoded.
    """
    return encode(draw(spec), spec.fmt, _metadata(spec))


def draw(spec: ImageSpec, stamp_lines: list[Line] | None = None, *, stamp_at_top: bool = False) -> Image.Image:
    """The picture of ``render`` before encoding (video frames start from it); ``stamp_lines`` replace the stamp."""
    stream = Stream(_look_key(spec))
    if spec.source is not None:
        picture = edit(open_source(spec.source, spec.width, spec.height), stream)
    else:
        picture = background(stream, spec.width, spec.height)
        shapes(picture, stream)
    stamp(
        picture,
        _stamp_lines(spec) if stamp_lines is None else stamp_lines,
        stream.color(val=(0.85, 1.0)),
        at_top=stamp_at_top,
    )
    return picture


def stand_in(url: str, width: int = 768, height: int = 768) -> bytes:
    """A deterministic PNG standing in for an input image URL the server does not fetch (offline CI).

    Labelled "stand-in" with the URL's host and file name, drawn from a hash of the URL; the PNG text
    chunk ``wavespeed-mock`` holds ``{"generator", "stand_in": true, "url", "width", "height"}``.
    """
    if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
        raise ValueError(f"size must be within 1..{MAX_SIDE} per side, not {width}x{height}")
    stream = Stream(b"stand-in\n" + url.encode("utf-8", "surrogatepass"))
    picture = background(stream, width, height)
    shapes(picture, stream)
    host, path = "", url
    if "://" in url:
        try:
            parts = urlsplit(url)
        except ValueError:  # e.g. an unbalanced IPv6 bracket
            pass
        else:
            host, path = parts.hostname or parts.netloc, parts.path
    basename = unquote(path.rstrip("/").rsplit("/", 1)[-1]) or "/"
    lines: list[Line] = [
        ("", "STAND-IN (not fetched)", False),
        ("", host or url[:60], False),
        ("", basename, True),
    ]
    # at the top: the stamp of an edit of this stand-in goes at the bottom
    stamp(picture, lines, stream.color(val=(0.85, 1.0)), at_top=True)
    meta = {"generator": METADATA_KEY, "stand_in": True, "url": url, "width": width, "height": height}
    return encode(picture, "png", meta)


@runtime_checkable
class Renderable(Protocol):
    """An output file described by everything that determines it: an image, a video or an audio clip."""

    @property
    def mime(self) -> str: ...

    @property
    def ext(self) -> str: ...

    def digest(self) -> str: ...

    def render(self) -> bytes: ...


class ImageCache:
    """A thread-safe LRU cache of rendered outputs keyed by :meth:`Renderable.digest`, bounded by bytes.

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
        if not isinstance(spec, Renderable):
            return False
        key = spec.digest()
        with self._lock:
            return key in self._entries

    def get_or_render(self, spec: Renderable) -> bytes:
        """The cached image for ``spec``, rendering (and caching) it on a miss."""
        key = spec.digest()
        with self._lock:
            cached = self._entries.get(key)
            if cached is not None:
                self._entries.move_to_end(key)
                self._hits += 1
                return cached
            self._misses += 1
        data = spec.render()
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
