"""The fake's model layer: predictions from submit to outputs, and the media they reference.

Routes call this; it never sees a Request. Every piece of state lives in the ``Store`` (records, counters, blobs),
so any number of workers sharing one store agree; the only process-local things are caches of what the store
determines (rendered images) and the listeners ``create_app`` composes in.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import anyio.to_thread

from mock_server.contract.catalog import Catalog, Endpoint
from mock_server.contract.errors import BadRequest, Gone, NotFound
from mock_server.contract.generic import GenericEndpoint
from mock_server.http import outbound  # imports nothing of ours: a leaf, like settings
from mock_server.logs import event, get_logger
from mock_server.model import images
from mock_server.model.clock import Clock
from mock_server.model.generic import GenericModels, generic_spec
from mock_server.model.limits import RateLimiter, Slots
from mock_server.model.predictions import COMPLETED, Outcome, Prediction
from mock_server.model.replay import Replayer, shaped
from mock_server.model.rules import Rule, Rules
from mock_server.model.store import DELETE, SERVER_TTL, Record, Store
from mock_server.settings import Settings

LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")
FETCH_TIMEOUT = 10.0  # seconds for one --fetch-inputs download
_MAX_DIMENSION = (256, 1536)
KIND = "prediction"
_PLAIN = Outcome()  # a plain success, shared: nothing changes an Outcome once made


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


@dataclass(frozen=True)
class Submission:
    """What a route hands the model: an authenticated, schema-valid request."""

    tenant: str
    endpoint: Endpoint
    body: dict[str, Any]
    base_url: str
    request_host: str
    webhook: str | None = None
    notes: tuple[str, ...] = ()  # what the route noticed that a client cannot see (served generically, ...)


Listener = Callable[[Prediction], None]


class Backend:
    """Predictions of one fake (or of every worker sharing its store).

    Args:
        settings: behaviour of the server.
        catalog: the endpoints it serves.
        store: where all state lives.
        clock: the clock predictions age by (its offset is in the same store).
    """

    def __init__(self, settings: Settings, catalog: Catalog, store: Store, clock: Clock) -> None:
        self.settings = settings
        self.catalog = catalog
        self.store = store
        self.clock = clock
        self.rules = Rules(store)
        # --replay DIR: the recorded cassettes submits are matched against (model/replay.py); loaded once, here.
        self.replay = (
            Replayer.load(settings.replay, catalog, speed=settings.replay_speed, mode=settings.replay_mode)
            if settings.replay
            else None
        )
        self.generic = GenericModels(settings, catalog, store, clock)
        self.rate = RateLimiter(store, clock, settings.rate_window())
        self.slots = Slots(store, settings.max_concurrency, self._running, clock) if settings.max_concurrency else None
        self.images = images.ImageCache(settings.image_cache_bytes)
        self._ids = random.Random()
        self._unseeded_at: int | None = None  # the store version at which the id sequence was last read unseeded
        # Called once per prediction, by whichever worker moves it to a terminal state (charges, webhooks).
        self.on_terminal: list[Listener] = []
        # Called with each new prediction, on the server's loop (e.g. webhook timers).
        self.on_submit: list[Listener] = []
        if self.slots is not None:
            self.on_terminal.append(self._free_slot)

    # --- ids and randomness --------------------------------------------------------------------------

    def reseed(self, seed: int | None) -> None:
        """Make ids reproducible from here on (None: random again); shared by every worker on the store."""
        self.store.put("server", "ids", {"seed": seed, "n": 0}, ttl=SERVER_TTL)

    def new_id(self) -> str:
        """32 hex digits: random, or with a seed the same sequence on every run (and across workers)."""
        # Read first: unseeded (the usual case) needs no write, and on Redis a read is one round trip where an
        # atomic update is three. Unseeded at the store's current version (see Store.version): no read either.
        version = self.store.version()
        if version is not None and version == self._unseeded_at:
            return f"{self._ids.getrandbits(128):032x}"
        state = self.store.get("server", "ids")
        if state is None:  # the first id since the store was made (or reset)
            self.store.add("server", "ids", {"seed": self.settings.seed, "n": 0}, ttl=SERVER_TTL)
            state = self.store.get("server", "ids")
        if state is not None and state["seed"] is not None:
            state = self.store.update("server", "ids", _next_in_sequence)
        if state is None or state["seed"] is None:
            self._unseeded_at = version
            # Ids need to be unique, not unguessable; a generator of our own, because tests (hypothesis) reseed
            # the global one.
            return f"{self._ids.getrandbits(128):032x}"
        return hashlib.sha256(f"{state['seed']}:{state['n']}".encode()).hexdigest()[:32]

    # --- submit --------------------------------------------------------------------------------------

    async def submit(self, submission: Submission) -> dict[str, Any]:
        """Resolve inputs, choose the outcome, store the prediction, tell listeners, and (sync mode) wait for it.

        Returns the ``data`` object the API answers with.
        """
        endpoint, tenant = submission.endpoint, submission.tenant
        params = endpoint.known(submission.body)
        # Replay hook: a recorded cassette this submit matches (strict mode raises when none does).
        recording = (
            None
            if self.replay is None
            else self.replay.find(
                tenant,
                endpoint.model,
                submission.body,
                self.catalog,
                self.store,
                (submission.request_host, urlsplit(self.settings.public_url or "").netloc),
            )
        )
        image = _input_image(params)
        source, failure = (None, None) if image is None else await self.resolve_input(image, submission.request_host)
        prompt = str(params.get("prompt", ""))
        # A failed download decides the outcome; a queued rule is then left for the next prediction. A replayed
        # recording decides it instead of either.
        rule = None if failure or recording else self.rules.take_rule(tenant, endpoint.model, prompt)
        outcome = recording.outcome if recording else (failure or (rule.outcome if rule is not None else _PLAIN))
        behaviour = self.rules.behaviour_for(endpoint.model, tenant)
        scale = self.settings.latency_scale
        queue, run = behaviour.latency or (endpoint.latency[0] * scale, endpoint.latency[1] * scale)
        if outcome.latency is not None:
            run = outcome.latency
        prediction_id = self.new_id()
        seed = params.get("seed", endpoint.default("seed", -1))
        notes: list[str] = list(submission.notes)
        if seed is None or seed == -1:
            seed = int(prediction_id[:8], 16) % (2**31 - 1)
            notes.append(f"seed -1 resolved to {seed}")
        stored_source = None
        if source is not None:
            key = hashlib.sha256(source.data).hexdigest()
            self.store.put_blob(key, "application/octet-stream", source.data)
            stored_source = {"blob": key, "note": source.note, "width": source.size[0], "height": source.size[1]}
            notes.append(f"input image: {source.note}")
        prediction = Prediction(
            id=prediction_id,
            tenant=tenant,
            model=endpoint.model,
            input=submission.body,
            params=params,
            created_at=self.clock.now(),
            progression=behaviour.progression or self.settings.progression,
            queue_seconds=queue,
            run_seconds=run,
            poll_every=behaviour.poll_every or self.settings.poll_every,
            outcome=outcome,
            seed=int(seed),
            num_outputs=int(params.get("num_images", endpoint.default("num_images", 1))),
            base_url=submission.base_url,
            webhook=submission.webhook,
            source=stored_source,
            notes=notes,
            # Sync mode holds the connection open: it is started at once, outside --max-concurrency.
            queued=self.slots is not None and not params.get("enable_sync_mode"),
        )
        if recording is not None:  # replay hook: the prediction plays the recording back
            prediction = recording.replayed(prediction)
        self.store.put(KIND, prediction.id, prediction.to_record(), tenant=tenant)
        if rule is not None:
            _outcome_applied(rule, prediction)
        if prediction.queued:
            self.admit(tenant)
            prediction = self._read(prediction.id) or prediction  # started at once when a slot was free
        for listener in self.on_submit:
            listener(prediction)
        if params.get("enable_sync_mode"):
            prediction, timed_out = await self._wait_sync(prediction)
            return await self.view(prediction, submission.base_url, sync_timeout=timed_out)
        return await self.view(prediction, submission.base_url)

    # --- reading and advancing -----------------------------------------------------------------------

    def _change(
        self, prediction_id: str, move: Callable[[Prediction, float], None], *, tenant: str | None = None
    ) -> Prediction | None:
        """Apply ``move`` to the stored prediction atomically, then refresh its status; listeners hear of a
        prediction that this call (and no other worker's) brought to an end. With ``tenant``, another tenant's
        prediction is left as it is and reads as absent: the store checks the owner in the same atomic update, not
        by a read before it (on Redis, one round trip fewer per poll)."""
        finished: list[bool] = []
        if self.slots is not None:
            current = self.store.get(KIND, prediction_id)
            if current is not None and current.get("queued") and tenant in (None, current.get("tenant")):
                self.admit(current["tenant"])  # a slot may have freed since it was queued

        written: list[Prediction] = []  # what the (last, on Redis possibly retried) change wrote

        def change(record: Record) -> Record:
            finished.clear()
            prediction = Prediction.from_record(record)
            was_terminal = prediction.terminal
            now = self.clock.now()
            move(prediction, now)
            self._observe(prediction, now)
            if prediction.terminal and not was_terminal:
                finished.append(True)
            written[:] = [prediction]
            return prediction.to_record()

        record = self.store.update(KIND, prediction_id, change, tenant=tenant)
        if record is None:
            return None
        # The prediction just written is the stored one: no need to decode the record again.
        prediction = written[-1] if written else Prediction.from_record(record)
        if finished:
            for listener in self.on_terminal:
                listener(prediction)
        return prediction

    def poll(self, tenant: str, prediction_id: str) -> Prediction:
        """A client's poll: counted (poll progression), logged (polling audits), status brought up to date."""

        def count(prediction: Prediction, now: float) -> None:
            prediction.polls += 1
            self._observe(prediction, now)
            # Wall time, not the fake clock: polling audits judge the client's real pacing.
            prediction.log_poll(time.time())

        return self._existing(self._change(prediction_id, count, tenant=tenant), prediction_id)

    def get(self, tenant: str | None, prediction_id: str) -> Prediction:
        """A prediction with its status brought up to date (without counting a poll)."""
        return self._existing(self._change(prediction_id, lambda p, now: None, tenant=tenant), prediction_id)

    def find(self, tenant: str | None, prediction_id: str) -> Prediction:
        """A prediction as stored (status not refreshed)."""
        if tenant is not None:
            self._owned(tenant, prediction_id)
        return self._existing(self._read(prediction_id), prediction_id)

    def advance(self, tenant: str | None, prediction_id: str, steps: int = 1) -> Prediction:
        """Move one prediction ``steps`` lifecycle steps forward (a stuck one stays processing)."""

        def step(prediction: Prediction, now: float) -> None:
            if prediction.queued:  # told to move: it starts now, outside the concurrency limit
                prediction.queued, prediction.started_at, prediction.polls_at_start = False, now, prediction.polls
            prediction.forced_stage = min(2, prediction.stage(now) + steps)

        return self._existing(self._change(prediction_id, step, tenant=tenant), prediction_id)

    def predictions(self, tenant: str | None = None) -> list[Prediction]:
        return [Prediction.from_record(r) for r in self.store.records(KIND, tenant)]

    def tick(self) -> list[Prediction]:
        """Finish every prediction whose moment has come (and start queued ones whose slot freed, which may
        finish in turn); returns those that finished here."""
        finished: list[Prediction] = []
        while True:
            now = self.clock.now()
            progressed = False
            for prediction in self.predictions():
                due = prediction.due_at()
                if not prediction.terminal and due is not None and due <= now:
                    updated = self._change(prediction.id, lambda p, t: None)
                    if updated is not None and updated.terminal:
                        finished.append(updated)
                        progressed = True
            if self.slots is not None:
                for tenant in {p.tenant for p in self.predictions() if p.queued and not p.terminal}:
                    progressed = bool(self.admit(tenant)) or progressed
            if not progressed:
                return finished

    # --- concurrency slots (--max-concurrency) -------------------------------------------------------------

    def admit(self, tenant: str) -> list[Prediction]:
        """Give the tenant's free slots to its queued predictions, oldest first; returns those started.

        A queued prediction starts at the moment its slot was freed (or at its creation, if later), so the
        schedule is the same however late somebody looks. Running predictions whose time has come are settled
        first: their slots free as of when they ended.
        """
        if self.slots is None:
            return []
        now = self.clock.now()
        for prediction in self.predictions(tenant):
            due = prediction.due_at()
            if not prediction.queued and not prediction.terminal and due is not None and due <= now:
                self._change(prediction.id, lambda p, t: None)
        started: list[Prediction] = []
        for prediction in self.predictions(tenant):  # oldest first: first in, first out
            if not prediction.queued or prediction.terminal:
                continue
            freed_at = self.slots.acquire(tenant, prediction.id)
            if freed_at is None:
                break
            begin = max(prediction.created_at, freed_at)
            applied: list[bool] = []

            def start(record: Record, begin: float = begin, applied: list[bool] = applied) -> Record | None:
                applied.clear()
                if not record.get("queued"):
                    return None
                applied.append(True)
                return {**record, "queued": False, "started_at": begin, "polls_at_start": record["polls"]}

            record = self.store.update(KIND, prediction.id, start)
            if record is None or not applied:  # deleted, or started by another worker meanwhile
                self.slots.release(tenant, prediction.id, freed_at)
                continue
            started.append(Prediction.from_record(record))
        return started

    def _running(self, prediction_id: str) -> tuple[bool, float | None]:
        """Of a slot's holder: does it still run, and when did it end."""
        record = self.store.get(KIND, prediction_id)
        if record is None:
            return False, None
        prediction = Prediction.from_record(record)
        return not prediction.terminal, prediction.finished_at

    def _free_slot(self, prediction: Prediction) -> None:
        if self.slots is not None:
            ended = prediction.finished_at if prediction.finished_at is not None else self.clock.now()
            self.slots.release(prediction.tenant, prediction.id, ended)

    def delete(self, tenant: str, prediction_id: str) -> bool:
        if self.store.owner(KIND, prediction_id) != tenant:
            return False
        return self.store.delete(KIND, prediction_id)

    def _read(self, prediction_id: str) -> Prediction | None:
        record = self.store.get(KIND, prediction_id)
        return None if record is None else Prediction.from_record(record)

    def _owned(self, tenant: str, prediction_id: str) -> None:
        if self.store.owner(KIND, prediction_id) != tenant:
            raise NotFound(f"Prediction {prediction_id} not found")

    @staticmethod
    def _existing(prediction: Prediction | None, prediction_id: str) -> Prediction:
        if prediction is None:
            raise NotFound(f"Prediction {prediction_id} not found")
        return prediction

    def _observe(self, prediction: Prediction, now: float) -> None:
        if prediction.terminal:
            return
        stage = prediction.stage(now)
        if stage < 2:
            prediction.status = prediction.live_status(stage, now)
            return
        due = prediction.due_at()
        self._finish(prediction, min(due, now) if due is not None and prediction.forced_stage < 2 else now)

    def _finish(self, prediction: Prediction, when: float) -> None:
        """Outputs are named here and rendered when first downloaded (or inlined), outside any lock."""
        outcome = prediction.outcome
        prediction.finished_at = when
        if outcome.status == COMPLETED:
            count = prediction.num_outputs if outcome.outputs is None else min(outcome.outputs, prediction.num_outputs)
            flags = list(outcome.nsfw or ())[:count]
            prediction.nsfw = flags + [False] * (count - len(flags))
            prediction.outputs = [
                f"/media/outputs/{prediction.id}/{i}.{self.spec(prediction, i, None).ext}" for i in range(count)
            ]
        prediction.status = outcome.status

    # --- views ----------------------------------------------------------------------------------------

    async def view(self, prediction: Prediction, base_url: str, *, sync_timeout: float | None = None) -> dict[str, Any]:
        """The API's ``data`` object; base64 outputs are rendered off the event loop."""
        data = prediction.view(base_url, sync_timeout=sync_timeout)
        if prediction.params.get("enable_base64_output") and data["outputs"]:
            data["outputs"] = await anyio.to_thread.run_sync(self.inline_outputs, prediction)
        return data

    def inline_outputs(self, prediction: Prediction) -> list[str]:
        source = self._source_bytes(prediction)
        return [
            base64.b64encode(self.images.get_or_render(self.spec(prediction, i, source))).decode()
            for i in range(len(prediction.outputs))
        ]

    def view_now(self, prediction: Prediction, base_url: str) -> dict[str, Any]:
        """``view`` for callers off the event loop (the control plane, webhooks)."""
        data = prediction.view(base_url)
        if prediction.params.get("enable_base64_output") and data["outputs"]:
            data["outputs"] = self.inline_outputs(prediction)
        return data

    # --- outputs --------------------------------------------------------------------------------------

    def endpoint(self, model: str) -> Endpoint:
        """A model's endpoint: from the catalog, or the generic one for a path it does not know."""
        return self.catalog.get(model) or self.generic.endpoint(model)

    def spec(self, prediction: Prediction, index: int, source: bytes | None) -> images.Renderable:
        endpoint = self.endpoint(prediction.model)
        if isinstance(endpoint, GenericEndpoint):
            return generic_spec(endpoint, prediction, index)
        info = prediction.source
        input_size = _fit_box((info["width"], info["height"])) if info else None
        width, height = images.resolve_size(prediction.params, input_size=input_size)
        fmt = str(prediction.params.get("output_format", endpoint.default("output_format", "jpeg")))
        spec = images.ImageSpec(
            model=prediction.model,
            prompt=str(prediction.params.get("prompt", "")),
            seed=prediction.seed,
            index=index,
            width=width,
            height=height,
            fmt=fmt,
            params_digest=images.digest_params(prediction.params, exclude=images.NOT_PIXELS),
            source=source,
            source_note=info["note"] if info else None,
        )
        # Replay hook: a replayed output is drawn at its recorded size and format.
        return spec if prediction.script is None else shaped(spec, prediction.script, index)

    def _source_bytes(self, prediction: Prediction) -> bytes | None:
        if not prediction.source:
            return None
        found = self.store.get_blob(prediction.source["blob"])
        # An input evicted from the store is drawn again from its note, so the output stays decodable.
        return found[1] if found else images.stand_in(prediction.source["note"])

    def output(self, prediction_id: str, index: int, ext: str) -> Blob:
        """An output file, public like the real CDN links (no tenant check). CPU-heavy: call off the loop."""
        prediction = self._read(prediction_id)
        if prediction is None or prediction.status != COMPLETED or index >= len(prediction.outputs):
            raise NotFound(f"No output {index} for prediction {prediction_id}")
        ttl = self.settings.effective_output_ttl
        if prediction.finished_at is not None and self.clock.now() > prediction.finished_at + ttl:
            raise Gone(f"Output {index} of prediction {prediction_id} expired {ttl:g} s after the prediction ended")
        spec = self.spec(prediction, index, None)
        if spec.ext != ext:
            raise NotFound(f"Output {index} of {prediction_id} is .{spec.ext}, not .{ext}")
        if prediction.source:
            spec = self.spec(prediction, index, self._source_bytes(prediction))
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
            except (NotFound, Gone, ValueError):
                return None
        if len(segments) in (3, 4) and segments[:2] == ["media", "uploads"]:
            blob = self.upload_blob(segments[2].partition(".")[0])
            return blob.data if blob else None
        return None

    def upload_blob(self, key: str) -> Blob | None:
        """An upload's bytes by its download key: a ticket's slot token, or the content hash."""
        slot = self.store.get("slot", key)
        found = self.store.get_blob(slot["blob"] if slot and slot.get("blob") else key)
        return Blob(*found) if found else None

    async def resolve_input(self, value: str, request_host: str) -> tuple[InputImage, Outcome | None]:
        """Turn an ``image`` value into pixels. Returns a failure outcome when an opted-in download fails."""
        limit = self.settings.max_input_pixels
        try:
            if value.startswith("data:"):
                return await InputImage.measured(images.decode_data_uri(value)[1], "data URI", limit), None
            own = await anyio.to_thread.run_sync(self.own_media, value, request_host)
            if own is not None:
                return await InputImage.measured(own, f"served by this mock ({urlsplit(value).path})", limit), None
        except images.ImageInputError as exc:
            raise BadRequest(f"image: {exc}", errors=[{"path": "image", "message": str(exc)}]) from None
        if self.settings.fetch_inputs:
            try:  # loopback or --outbound-allow hosts only, no redirects, at most fetch_max_bytes
                data = await outbound.fetch(
                    value,
                    allow=self.settings.outbound_allow,
                    max_bytes=self.settings.fetch_max_bytes,
                    timeout=FETCH_TIMEOUT,
                )
                return await InputImage.measured(data, f"downloaded from {value}", limit), None
            except images.ImageTooLarge as exc:  # a client error whatever the source: 400 at submit
                raise BadRequest(f"image: {exc}", errors=[{"path": "image", "message": str(exc)}]) from None
            except (outbound.OutboundRefused, outbound.OutboundError, images.ImageInputError) as exc:
                failure = Outcome(
                    status="failed", code=1402, error=f"Failed to download image from the provided URL: {exc}"
                )
                return InputImage.of(images.stand_in(value), f"download failed: {value}"), failure
        stand_in = await anyio.to_thread.run_sync(images.stand_in, value)
        return InputImage.of(stand_in, f"stand-in for {value} (not fetched: offline)"), None

    # --- sync mode ------------------------------------------------------------------------------------

    async def _wait_sync(self, prediction: Prediction) -> tuple[Prediction, float | None]:
        """Hold a sync-mode submit until the prediction ends; also the sync timeout (seconds) if it did not."""
        timeout = self.settings.sync_timeout
        if prediction.outcome.sync_timeout:
            return self.advance(None, prediction.id, 1), timeout
        # Only time progression has a moment to wait for; other progressions finish a sync submit at once.
        due = prediction.due_at() if prediction.progression == "time" else None
        if prediction.outcome.stuck or (due is not None and due - self.clock.now() > timeout):
            await self.clock.sleep(timeout)
            current = self.get(None, prediction.id)
            if not current.terminal:

                def at_least_processing(p: Prediction, now: float) -> None:
                    p.forced_stage = max(p.forced_stage, 1)

                return self._existing(self._change(prediction.id, at_least_processing), prediction.id), timeout
            return current, None
        if due is not None:
            await self.clock.sleep(due - self.clock.now())

        def finish(p: Prediction, now: float) -> None:
            p.forced_stage = 2

        return self._existing(self._change(prediction.id, finish), prediction.id), None

    # --- housekeeping ---------------------------------------------------------------------------------

    def reset_images(self) -> None:
        self.images.clear()


def _input_image(params: dict[str, Any]) -> str | None:
    """The first input picture of an edit; ``params`` is schema-checked, so the types are right. A plain function
    rather than a coroutine: most submits have none, and then nothing need be awaited."""
    value = params.get("image")
    if not value and params.get("images"):
        value = params["images"][0]
    return value if isinstance(value, str) and value else None


def _fit_box(size: tuple[int, int]) -> tuple[int, int]:
    """An input image's size scaled into the documented 256..1536 per-side box, keeping its aspect."""
    width, height = size
    low, high = _MAX_DIMENSION
    scale = min(1.0, high / max(width, height))
    scale = max(scale, low / min(width, height)) if min(width, height) * scale < low else scale
    fitted = (max(low, min(high, round(width * scale))), max(low, min(high, round(height * scale))))
    return fitted


_log = get_logger("outcomes")


def _outcome_applied(rule: Rule, prediction: Prediction) -> None:
    event(
        _log,
        "outcome.applied",
        rule=rule.id,
        prediction=prediction.id,
        model=prediction.model,
        tenant=prediction.tenant,
        outcome=rule.outcome.to_record(),
        remaining=None if rule.times is None else rule.times - rule.used,
    )


__all__ = ["DELETE", "Backend", "Blob", "InputImage", "Submission"]


def _next_in_sequence(record: Record) -> Record | None:
    """The id sequence's next step when it is seeded; unseeded, nothing to write."""
    return {**record, "n": record["n"] + 1} if record["seed"] is not None else None
