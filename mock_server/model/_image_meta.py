"""Everything about the images except drawing them: formats, output sizes, input decoding, metadata.

The request side (:func:`digest_params`, :func:`resolve_size`, :func:`decode_data_uri`,
:func:`image_size`) and the file side (:func:`encode` writes the JSON facts into a PNG, JPEG or WebP
file, :func:`read_metadata` reads them back). Callers import the public names from
:mod:`mock_server.model.images`, which re-exports them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final

# Pillow is imported by the functions that decode or encode: starting a server (a test fixture) loads none of it.
if TYPE_CHECKING:
    from PIL import Image

MIME: Final[Mapping[str, str]] = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
"""Output format (the API's ``output_format`` value) -> Content-Type."""

EXT: Final[Mapping[str, str]] = {"jpeg": "jpeg", "png": "png", "webp": "webp"}
"""Output format -> file-name extension (without the dot) used in output URLs."""

FORMATS: Final[tuple[str, ...]] = ("jpeg", "png", "webp")

MAX_SIDE: Final = 16384
"""Largest width or height of an output image or stand-in."""

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
_MAX_METADATA_CHARS: Final = 60000  # a JPEG COM / APP1 segment holds at most 65533 bytes
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


class ImageTooLarge(ImageInputError):
    """An input image whose header declares more pixels than the server accepts (nothing was decoded)."""


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
    for h in range(16, MAX_SIDE + 1, 16):
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


def image_size(data: bytes, max_pixels: int | None = None) -> tuple[int, int]:
    """(width, height) of an encoded image as displayed, i.e. after its EXIF orientation.

    Only the header is read (``Image.open`` is lazy), so ``max_pixels`` is checked before any pixel is decoded.

    Raises :class:`ImageTooLarge` over ``max_pixels`` (or over Pillow's own decompression-bomb limit), and
    :class:`ImageInputError` when Pillow cannot identify the bytes.
    """
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            width, height = im.size
            if max_pixels is not None and width * height > max_pixels:
                raise ImageTooLarge(
                    f"input image is {width}x{height} = {width * height} pixels; the limit is {max_pixels} pixels"
                )
            orientation = im.getexif().get(_EXIF_ORIENTATION)
    except ImageTooLarge:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:  # the warning, when an error
        limit = f"the limit is {max_pixels} pixels" if max_pixels is not None else "too many pixels"
        raise ImageTooLarge(f"input image is larger than Pillow will open ({limit})") from exc
    except Exception as exc:  # Pillow raises many types for corrupt input
        raise ImageInputError(f"input image could not be decoded: {exc}") from exc
    if orientation in (5, 6, 7, 8):
        return height, width
    return width, height


# --------------------------------------------------------------------------------------------------
# metadata


def _metadata_json(meta: dict[str, Any]) -> str:
    """Compact ASCII JSON, the prompt shortened (``prompt_truncated``) to fit a JPEG segment."""
    text = json.dumps(meta, ensure_ascii=True, sort_keys=True, separators=(",", ":"))
    prompt = meta.get("prompt")
    while len(text) > _MAX_METADATA_CHARS and isinstance(prompt, str) and prompt:
        prompt = prompt[: len(prompt) // 2]
        meta = {**meta, "prompt": prompt, "prompt_truncated": True}
        text = json.dumps(meta, ensure_ascii=True, sort_keys=True, separators=(",", ":"))
    return text


def encode(image: Image.Image, fmt: str, meta: dict[str, Any]) -> bytes:
    """``image`` as ``fmt`` bytes carrying ``meta`` as JSON (see :func:`read_metadata` for where)."""
    # Every codec loads on the first encode, whatever its format: the first picture of each format then does not
    # also pay for an import (a few milliseconds for JPEG).
    from PIL import Image, JpegImagePlugin, WebPImagePlugin  # noqa: F401
    from PIL.PngImagePlugin import PngInfo

    meta_json = _metadata_json(meta)
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
    from PIL import Image

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
