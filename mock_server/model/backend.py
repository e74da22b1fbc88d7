"""The fake's model layer: predictions from submit to outputs, and the media they reference.

Routes call this; it never sees a Request. State lives on one Backend per app, keyed by tenant.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from mock_server.contract.catalog import Catalog, Endpoint
from mock_server.contract.errors import BadRequest, NotFound
from mock_server.http import outbound  # imports nothing of ours: a leaf, like settings
from mock_server.model import images
from mock_server.model.clock import Clock
from mock_server.model.predictions import COMPLETED, PROCESSING, Outcome, Prediction
from mock_server.model.rules import Scenario
from mock_server.model.store import MemoryStore
from mock_server.settings import Settings

LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")
FETCH_TIMEOUT = 10.0  # seconds for one --fetch-inputs download
# Transport flags change how outputs travel, not what they look like.
_NOT_PIXELS = ("enable_sync_mode", "enable_base64_output", "prompt", "seed")
_MAX_DIMENSION = (256, 1536)


@dataclass(frozen=True)
class Blob:
    mime: str
    data: bytes


@dataclass(frozen=True)
class InputImage:
    """An edit input after resolution: its bytes (real or a stand-in) and how they were obtained."""

    data: bytes
    note: str
    size: tuple[int, int]  # measured once here, not on every output download

    @classmethod
    def of(cls, data: bytes, note: str, max_pixels: int | None = None) -> InputImage:
        """Raises images.ImageInputError when the bytes are not a picture, ImageTooLarge over ``max_pixels``."""
        return cls(data, note, images.image_size(data, max_pixels))

    @classmethod
    async def measured(cls, data: bytes, note: str, max_pixels: int) -> InputImage:
        """:meth:`of` in a worker thread: Pillow parsing a hostile header must not stall the event loop."""
        return await asyncio.to_thread(cls.of, data, note, max_pixels)


class Blobs:
    """Content-addressed bytes (uploads, resolved inputs): the key is the SHA-256 of the content."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, Blob] = {}

    def put(self, data: bytes, mime: str) -> str:
        key = hashlib.sha256(data).hexdigest()
        with self._lock:
            self._items.setdefault(key, Blob(mime, data))
        return key

    def get(self, key: str) -> Blob | None:
        with self._lock:
            return self._items.get(key)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class Backend:
    def __init__(self, settings: Settings, catalog: Catalog, clock: Clock | None = None) -> None:
        self.settings = settings
        self.catalog = catalog
        self.clock = clock or Clock(frozen=settings.frozen_clock)
        self.store = MemoryStore()
        self.scenario = Scenario()
        self.blobs = Blobs()
        self.upload_keys: dict[str, str] = {}  # upload ticket token → content key of its bytes (uploads.py)
        self.images = images.ImageCache(settings.image_cache_bytes)
        self.rng = random.Random(settings.seed)
        self._sources: dict[str, InputImage] = {}  # prediction id → its resolved input image
        self.on_terminal: list[Callable[[Prediction], None]] = []

    # --- ids and randomness --------------------------------------------------------------------------

    def reseed(self, seed: int | None) -> None:
        self.rng.seed(seed)

    def new_id(self) -> str:
        return f"{self.rng.getrandbits(128):032x}"

    # --- submit --------------------------------------------------------------------------------------

    def submit(self, tenant: str, endpoint: Endpoint, body: dict[str, Any], *, base_url: str,
               webhook: str | None = None, source: InputImage | None = None) -> Prediction:
        params = endpoint.known(body)
        prompt = str(params.get("prompt", ""))
        outcome = self.scenario.take(tenant, endpoint.model, prompt)
        behaviour = self.scenario.behaviour_for(endpoint.model, tenant)
        queue, run = behaviour.latency or tuple(s * self.settings.latency_scale for s in endpoint.latency)
        if outcome.latency is not None:
            run = outcome.latency
        seed = params.get("seed", endpoint.default("seed", -1))
        if seed is None or seed == -1:
            seed = self.rng.randrange(0, 2**31 - 1)
        num = params.get("num_images", endpoint.default("num_images", 1))
        prediction = Prediction(
            id=self.new_id(),
            tenant=tenant,
            model=endpoint.model,
            input=body,
            params=params,
            created_at=self.clock.now(),
            progression=behaviour.progression or self.settings.progression,
            queue_seconds=queue,
            run_seconds=run,
            poll_every=behaviour.poll_every or self.settings.poll_every,
            outcome=outcome,
            seed=int(seed),
            num_outputs=int(num),
            base_url=base_url,
            webhook=webhook,
        )
        if params.get("seed", -1) == -1:
            prediction.notes.append(f"seed -1 resolved to {prediction.seed}")
        if source is not None:
            self._sources[prediction.id] = source
            prediction.notes.append(f"input image: {source.note}")
        self.store.add(prediction)
        return prediction

    # --- reading and advancing -----------------------------------------------------------------------

    def get(self, tenant: str, prediction_id: str, *, poll: bool = False) -> Prediction:
        with self.store.locked():
            prediction = self.store.get(tenant, prediction_id)
            if prediction is None:
                raise NotFound(f"Prediction {prediction_id} not found")
            if poll:
                prediction.polls += 1
            self._observe(prediction)
            if poll:
                # Wall time, not the fake clock: polling audits judge the client's real pacing.
                prediction.poll_log.append((time.time(), prediction.status))
            return prediction

    def advance(self, tenant: str | None, prediction_id: str, steps: int = 1) -> Prediction:
        """Move one prediction ``steps`` lifecycle steps forward (a stuck one stays processing)."""
        with self.store.locked():
            prediction = self.find(tenant, prediction_id)
            now = self.clock.now()
            prediction.forced_stage = min(2, prediction.stage(now) + steps)
            self._observe(prediction)
            return prediction

    def finish_now(self, prediction: Prediction) -> None:
        """Drive a prediction to its terminal state now (sync mode)."""
        with self.store.locked():
            prediction.forced_stage = 2
            self._observe(prediction)

    def tick(self) -> list[Prediction]:
        """Finish every time-progressed prediction whose moment has come; returns those that finished."""
        finished: list[Prediction] = []
        with self.store.locked():
            for prediction in self.store.list():
                if not prediction.terminal and prediction.due_at() is not None:
                    self._observe(prediction)
                    if prediction.terminal:
                        finished.append(prediction)
        return finished

    def find(self, tenant: str | None, prediction_id: str) -> Prediction:
        prediction = self.store.find(prediction_id) if tenant is None else self.store.get(tenant, prediction_id)
        if prediction is None:
            raise NotFound(f"Prediction {prediction_id} not found")
        return prediction

    def refresh(self, prediction: Prediction) -> None:
        """Bring a prediction's cached status up to date (call with the store locked)."""
        self._observe(prediction)

    def _observe(self, prediction: Prediction) -> None:
        if prediction.terminal:
            return
        now = self.clock.now()
        stage = prediction.stage(now)
        if stage < 2:
            prediction.status = ("created", PROCESSING)[stage]
            return
        due = prediction.due_at()
        self._finish(prediction, min(due, now) if due is not None and prediction.forced_stage < 2 else now)

    def _finish(self, prediction: Prediction, when: float) -> None:
        outcome = prediction.outcome
        prediction.finished_at = when
        if outcome.status == COMPLETED:
            count = prediction.num_outputs if outcome.outputs is None else min(outcome.outputs, prediction.num_outputs)
            flags = list(outcome.nsfw or ())[:count]
            prediction.nsfw = flags + [False] * (count - len(flags))
            specs = [self.spec(prediction, i) for i in range(count)]
            if prediction.params.get("enable_base64_output"):
                prediction.outputs = [base64.b64encode(self.images.get_or_render(s)).decode() for s in specs]
            else:
                prediction.outputs = [f"/media/outputs/{prediction.id}/{s.index}.{s.ext}" for s in specs]
        prediction.status = outcome.status
        for listener in self.on_terminal:
            listener(prediction)

    # --- outputs --------------------------------------------------------------------------------------

    def spec(self, prediction: Prediction, index: int) -> images.ImageSpec:
        endpoint = self.catalog.endpoints[prediction.model]
        source = self._sources.get(prediction.id)
        input_size = _fit_box(source.size) if source is not None else None
        width, height = images.resolve_size(prediction.params, input_size=input_size)
        fmt = str(prediction.params.get("output_format", endpoint.default("output_format", "jpeg")))
        return images.ImageSpec(
            model=prediction.model,
            prompt=str(prediction.params.get("prompt", "")),
            seed=prediction.seed,
            index=index,
            width=width,
            height=height,
            fmt=fmt,
            params_digest=images.digest_params(prediction.params, exclude=_NOT_PIXELS),
            source=source.data if source else None,
            source_note=source.note if source else None,
        )

    def output(self, prediction_id: str, index: int, ext: str) -> Blob:
        prediction = self.store.find(prediction_id)
        if prediction is None or prediction.status != COMPLETED or index >= len(prediction.outputs):
            raise NotFound(f"No output {index} for prediction {prediction_id}")
        spec = self.spec(prediction, index)
        if spec.ext != ext:
            raise NotFound(f"Output {index} of {prediction_id} is .{spec.ext}, not .{ext}")
        return Blob(spec.mime, self.images.get_or_render(spec))

    # --- inputs ---------------------------------------------------------------------------------------

    def own_media(self, url: str, request_host: str) -> bytes | None:
        """Bytes of a URL this server serves (an earlier output or an upload), without any network."""
        parts = urlsplit(url)
        public = urlsplit(self.settings.public_url or "").netloc
        if parts.netloc not in (request_host, public) and parts.hostname not in LOOPBACK:
            return None
        segments = parts.path.strip("/").split("/")
        if len(segments) == 4 and segments[:2] == ["media", "outputs"]:
            index, _, ext = segments[3].partition(".")
            try:
                return self.output(segments[2], int(index), ext).data
            except (NotFound, ValueError):
                return None
        if len(segments) in (3, 4) and segments[:2] == ["media", "uploads"]:
            key = segments[2].partition(".")[0]
            blob = self.blobs.get(self.upload_keys.get(key, key))
            return blob.data if blob else None
        return None

    async def resolve_input(self, value: str, request_host: str) -> tuple[InputImage, Outcome | None]:
        """Turn an ``image`` value into pixels. Returns a failure outcome when an opted-in download fails."""
        limit = self.settings.max_input_pixels
        try:
            if value.startswith("data:"):
                return await InputImage.measured(images.decode_data_uri(value)[1], "data URI", limit), None
            own = self.own_media(value, request_host)
            if own is not None:
                return await InputImage.measured(own, f"served by this mock ({urlsplit(value).path})", limit), None
        except images.ImageInputError as exc:
            raise BadRequest(f"image: {exc}", errors=[{"path": "image", "message": str(exc)}]) from None
        if self.settings.fetch_inputs:
            try:  # loopback or --outbound-allow hosts only, no redirects, at most fetch_max_bytes
                data = await outbound.fetch(value, allow=self.settings.outbound_allow,
                                            max_bytes=self.settings.fetch_max_bytes, timeout=FETCH_TIMEOUT)
                return await InputImage.measured(data, f"downloaded from {value}", limit), None
            except images.ImageTooLarge as exc:  # a client error whatever the source: 400 at submit
                raise BadRequest(f"image: {exc}", errors=[{"path": "image", "message": str(exc)}]) from None
            except (outbound.OutboundRefused, outbound.OutboundError, images.ImageInputError) as exc:
                failure = Outcome(status="failed", code=1402,
                                  error=f"Failed to download image from the provided URL: {exc}")
                return InputImage.of(images.stand_in(value), f"download failed: {value}"), failure
        return InputImage.of(images.stand_in(value), f"stand-in for {value} (not fetched: offline)"), None

    # --- housekeeping ---------------------------------------------------------------------------------

    def reset(self, tenant: str | None = None) -> int:
        with self.store.locked():
            gone = [p.id for p in self.store.list(tenant)]
            for pid in gone:
                self._sources.pop(pid, None)
            removed = self.store.reset(tenant)
        self.scenario.reset(tenant)
        if tenant is None:
            self.images.clear()
        return removed


def _fit_box(size: tuple[int, int]) -> tuple[int, int]:
    """An input image's size scaled into the documented 256..1536 per-side box, keeping its aspect."""
    width, height = size
    low, high = _MAX_DIMENSION
    scale = min(1.0, high / max(width, height))
    scale = max(scale, low / min(width, height)) if min(width, height) * scale < low else scale
    fitted = (max(low, min(high, round(width * scale))), max(low, min(high, round(height * scale))))
    return fitted


async def wait_sync(backend: Backend, prediction: Prediction) -> float | None:
    """Hold a sync-mode submit until the prediction ends; the sync timeout (seconds) if it did not."""
    timeout = backend.settings.sync_timeout
    if prediction.outcome.sync_timeout:
        backend.advance(prediction.tenant, prediction.id, 1)
        return timeout
    due = prediction.due_at()
    if prediction.outcome.stuck or (due is not None and due - backend.clock.now() > timeout):
        await backend.clock.sleep(timeout)
        backend.get(prediction.tenant, prediction.id)
        if not prediction.terminal:
            prediction.forced_stage = max(prediction.forced_stage, 1)
            backend.get(prediction.tenant, prediction.id)
            return timeout
    elif due is not None:
        await backend.clock.sleep(due - backend.clock.now())
    backend.finish_now(prediction)
    return None
