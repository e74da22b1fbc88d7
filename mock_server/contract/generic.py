"""Models no schema describes, served by one generic model: what it accepts, what it acts on, what it makes.

The real API serves hundreds of models; the fake has schemas for a few. A client that runs any other model path
still gets the whole lifecycle, with placeholder outputs whose kind (image, video, audio) follows the model's name.
What it accepts is ``schemas/api/generic-model.request.json``: any JSON object. Its ``x-acts-on`` lists the
fields the placeholder honours, each with the schema a value must match to be used (the value is ignored
otherwise, never rejected).
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, cached_property, lru_cache
from typing import Any, Literal

from mock_server.contract.catalog import Endpoint, Violation, _path, _reason
from mock_server.contract.validators import CompiledSchema
from mock_server.resources import data_dir

Media = Literal["image", "video", "audio"]

# A model path this close to a known id (difflib ratio, case-insensitive) is most likely a typo of it: flagged
# even when served. 0.88 flags "flux-kontext-pro/text2image" (0.92) but not "flux-dev" against
# "flux-kontext-dev" (0.84), a different model that really exists.
NEAR_MISS_CUTOFF = 0.88
# How far a suggestion in the reject-mode 404 may be from what was asked.
SUGGESTION_CUTOFF = 0.4
GENERIC_QUEUE_SECONDS = 0.5

# Words of a model path that say what it makes. A "to" target wins ("video-to-audio" makes audio); then any
# video word; then any audio word; everything else makes images.
_TO_VIDEO = {"t2v", "i2v", "v2v", "s2v", "a2v", "r2v", "2video", "to-video", "img2vid", "txt2vid"}
_TO_AUDIO = {"t2a", "v2a", "tts", "t2s", "t2m", "2audio", "to-audio", "to-speech", "to-music", "to-sound"}
_TO_IMAGE = {"t2i", "i2i", "2image", "to-image", "txt2img", "img2img"}
_VIDEO_WORDS = {
    "video",
    "videos",
    "animate",
    "animation",
    "lipsync",
    "wan",
    "kling",
    "hailuo",
    "seedance",
    "veo",
    "veo2",
    "veo3",
    "sora",
    "ltx",
    "vidu",
    "pixverse",
    "framepack",
    "mochi",
}
_AUDIO_WORDS = {"audio", "speech", "voice", "music", "song", "sound", "sfx", "mmaudio", "elevenlabs"}
_WORD = re.compile(r"[a-z0-9.]+")


def media_of(model: str) -> Media:
    """What a model makes, judged from its path: ``…/text-to-video``, ``wan-2.1/i2v-480p`` → video, ``…/tts`` →
    audio, anything else → image."""
    name = model.lower()
    words = set(_WORD.findall(name))  # "wan-2.1/i2v-480p" → wan, 2.1, i2v, 480p
    targets = {f"to-{t}" for t in ("video", "audio", "speech", "music", "sound", "image") if f"to-{t}" in name}
    glued = {w[w.index("2", 1) :] for w in words if "2" in w[1:]}  # "text2video" → "2video"
    tokens = words | targets | glued
    media: Media
    for found, media in (
        (_TO_VIDEO, "video"),
        (_TO_AUDIO, "audio"),
        (_TO_IMAGE, "image"),
        (_VIDEO_WORDS, "video"),
        (_AUDIO_WORDS, "audio"),
    ):
        if tokens & found:
            return media
    return "image"


@cache
def request_schema() -> dict[str, Any]:
    """The shipped generic request schema (read once)."""
    path = data_dir("schemas") / "api" / "generic-model.request.json"
    schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return schema


@cache
def _validators() -> tuple[CompiledSchema, dict[str, CompiledSchema]]:
    schema = request_schema()
    return CompiledSchema(schema), {name: CompiledSchema(sub) for name, sub in schema["x-acts-on"].items()}


def validate(body: Any) -> list[Violation]:
    """Violations of the generic request schema: only "not a JSON object" can be one."""
    return [Violation(_path(e), _reason(e)) for e in _validators()[0].iter_errors(body)]


@dataclass(frozen=True)
class GenericEndpoint(Endpoint):
    """An endpoint made up for a model path the catalog does not know."""

    media: Media = "image"

    @cached_property
    def properties(self) -> dict[str, Any]:
        acts_on: dict[str, Any] = self.request_schema["x-acts-on"]
        return acts_on

    def known(self, body: dict[str, Any]) -> dict[str, Any]:
        """The fields the generic model acts on whose values match their ``x-acts-on`` schema."""
        checks = _validators()[1]
        return {k: v for k, v in body.items() if k in checks and checks[k].is_valid(v)}

    def ignored(self, body: dict[str, Any]) -> list[str]:
        """Fields the generic model would act on, sent with a value it cannot use."""
        checks = _validators()[1]
        return [k for k, v in body.items() if k in checks and not checks[k].is_valid(v)]


@lru_cache(maxsize=1024)  # pure: the same path and settings always make the same endpoint
def generic_endpoint(model: str, *, price: float, latency: float) -> GenericEndpoint:
    return GenericEndpoint(
        model=model,
        kind="generic",
        request_schema=request_schema(),
        submit_schema={},
        result_schema={},
        price_usd=price,
        price_unit="image",  # per output, whatever its kind
        latency=(GENERIC_QUEUE_SECONDS, latency),
        media=media_of(model),
    )


def nearest(model: str, known: Iterable[str], cutoff: float) -> str | None:
    """The known id most like ``model`` (case-insensitive), if one is at least ``cutoff`` alike."""
    by_lower = {k.lower(): k for k in known}
    found = difflib.get_close_matches(model.lower(), list(by_lower), n=1, cutoff=cutoff)
    return by_lower[found[0]] if found else None


def near_miss(model: str, known: Iterable[str]) -> str | None:
    """The known id ``model`` is most likely a typo of, or None."""
    return nearest(model, known, NEAR_MISS_CUTOFF)
