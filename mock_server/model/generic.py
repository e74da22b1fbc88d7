"""Which model paths were served generically, and how an unknown path is answered (``--unknown-models``).

A count per (tenant, model) lives in the store (kind ``generic``), so every worker adds to the same figure and a
tenant reset forgets its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from mock_server.contract.catalog import Catalog
from mock_server.contract.errors import NotFound
from mock_server.contract.generic import SUGGESTION_CUTOFF, GenericEndpoint, generic_endpoint, near_miss, nearest
from mock_server.contract.jsonbody import json_type
from mock_server.model import images, media
from mock_server.model.clock import Clock
from mock_server.model.predictions import Prediction, rfc3339
from mock_server.model.store import Record, Store
from mock_server.settings import Settings

KIND = "generic"


MODEL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,99}(?:/[A-Za-z0-9][A-Za-z0-9._+-]{0,99}){1,5}")


class GenericModels:
    """Made-up endpoints for unknown model paths, and the record of which ones clients used."""

    def __init__(self, settings: Settings, catalog: Catalog, store: Store, clock: Clock) -> None:
        self.settings = settings
        self.catalog = catalog
        self.store = store
        self.clock = clock

    def endpoint(self, model: str) -> GenericEndpoint:
        """The generic endpoint of a path (whatever the mode: predictions made earlier still need it)."""
        # Unscaled, like the catalog's latencies: the backend applies --latency-scale to both.
        return generic_endpoint(model, price=self.settings.generic_price, latency=self.settings.generic_latency)

    def resolve(self, model: str) -> GenericEndpoint:
        """The endpoint a submit to an unknown ``model`` is served by; in reject mode a 404 naming the nearest
        known id instead."""
        if not MODEL_ID.fullmatch(model) or ".." in model:
            # Real ids are owner/model[/variant...] in plain ASCII; anything else is a client bug, not a model.
            raise NotFound(
                f"Model {model[:120]!r} not found: a model id is owner/model[/variant], each part letters, "
                "digits, '.', '_', '+' or '-'",
                extra={"error_code": "model_not_found"},
            )
        if self.settings.unknown_models == "reject":
            suggestion = nearest(model, self.catalog.endpoints, SUGGESTION_CUTOFF)
            hint = f"; did you mean {suggestion!r}?" if suggestion else ""
            extra: dict[str, Any] = {"error_code": "model_not_found"}
            if suggestion:
                extra["suggestion"] = suggestion
            raise NotFound(f"Model {model!r} not found{hint}", extra=extra)
        return self.endpoint(model)

    def near_miss(self, model: str) -> str | None:
        """The known id an unknown path most likely misspells."""
        return near_miss(model, self.catalog.endpoints)

    def record(self, tenant: str, endpoint: GenericEndpoint, near: str | None) -> None:
        """Count one submit served generically (atomic, so concurrent workers add up)."""
        now = self.clock.now()
        key = f"{tenant}|{endpoint.model}"
        fresh = {
            "model": endpoint.model,
            "media": endpoint.media,
            "near_miss": near,
            "count": 1,
            "first_at": now,
            "last_at": now,
        }

        def count(record: Record) -> Record:
            return {**record, "count": record["count"] + 1, "last_at": now}

        if self.store.update(KIND, key, count) is None and not self.store.add(KIND, key, fresh, tenant=tenant):
            self.store.update(KIND, key, count)  # another worker created it in between

    def served(self, tenant: str | None = None) -> list[dict[str, Any]]:
        """Each model served generically (to one tenant, or to all added up), most used first."""
        return summarize(self.store.records(KIND, tenant))


def summarize(records: Iterable[Record]) -> list[dict[str, Any]]:
    by_model: dict[str, dict[str, Any]] = {}
    for record in records:
        seen = by_model.setdefault(
            record["model"],
            {
                "model": record["model"],
                "media": record["media"],
                "near_miss": record["near_miss"],
                "count": 0,
                "first_at": record["first_at"],
                "last_at": record["last_at"],
            },
        )
        seen["count"] += record["count"]
        seen["first_at"] = min(seen["first_at"], record["first_at"])
        seen["last_at"] = max(seen["last_at"], record["last_at"])
    return [
        {**s, "first_at": rfc3339(s["first_at"]), "last_at": rfc3339(s["last_at"])}
        for s in sorted(by_model.values(), key=lambda s: (-s["count"], s["model"]))
    ]


def generic_spec(endpoint: GenericEndpoint, prediction: Prediction, index: int) -> images.Renderable:
    """A generic model's output: its kind from the model's name, its size, format and length from the
    parameters it acts on (adjustments are noted at submit by ``generic_notes``)."""
    params = prediction.params
    prompt = str(params.get("prompt", ""))
    digest = images.digest_params(params, exclude=images.NOT_PIXELS)
    fmt = generic_format(endpoint, params)[0]
    if endpoint.media == "audio":
        seconds = media.clamp_seconds(params.get("duration"), "audio")[0]
        return media.AudioSpec(prediction.model, prompt, prediction.seed, index, seconds, digest)
    (width, height), _ = media.output_size(params, endpoint.media, prediction.model)
    if endpoint.media == "video":
        seconds = media.clamp_seconds(params.get("duration"), "video")[0]
        return media.VideoSpec(prediction.model, prompt, prediction.seed, index, width, height, seconds, fmt, digest)
    return images.ImageSpec(
        model=prediction.model,
        prompt=prompt,
        seed=prediction.seed,
        index=index,
        width=width,
        height=height,
        fmt=fmt,
        params_digest=digest,
    )


def generic_format(endpoint: GenericEndpoint, params: dict[str, Any]) -> tuple[str, list[str]]:
    """The output format of a generic model: the requested one when its kind can be made, else the default."""
    formats = {"image": media.IMAGE_FORMATS, "video": media.VIDEO_FORMATS, "audio": media.AUDIO_FORMATS}
    default = media.DEFAULT_FORMAT[endpoint.media]
    wanted = params.get("output_format")
    if wanted is None:
        return default, []
    if str(wanted).lower() in formats[endpoint.media]:
        return str(wanted).lower(), []
    return default, [f"output_format {wanted!r} is not one the fake makes for {endpoint.media}: {default} instead"]


def generic_notes(endpoint: GenericEndpoint, body: dict[str, Any]) -> list[str]:
    """What a generic model will not do as asked, for the prediction's notes."""
    params = endpoint.known(body)
    notes = [f"{name}: value not usable ({json_type(body[name])}), ignored" for name in endpoint.ignored(body)]
    notes += generic_format(endpoint, params)[1]
    if endpoint.media != "audio":
        notes += media.output_size(params, endpoint.media, endpoint.model)[1]
    if endpoint.media != "image":
        notes += media.clamp_seconds(params.get("duration"), endpoint.media)[1]
    return notes
