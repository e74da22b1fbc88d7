"""Predictions and their lifecycle: created → processing → completed | failed | cancelled | timeout.

The status is derived, on every read, from stored timestamps and counters (time since creation, polls
seen, steps forced by a test), never from timers, so it holds wherever the state is stored. The first
read that derives a terminal state freezes it: terminal states never change.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
from dataclasses import dataclass, field, fields
from typing import Any

from mock_server.model.script import Script

CREATED, PROCESSING, COMPLETED, FAILED, CANCELLED, TIMEOUT = (
    "created",
    "processing",
    "completed",
    "failed",
    "cancelled",
    "timeout",
)
TERMINAL = (COMPLETED, FAILED, CANCELLED, TIMEOUT)
_STAGES = (CREATED, PROCESSING)

# Task-level error codes of the real API (reference §3) and the message each one carries by default.
TASK_ERRORS = {
    1200: "Content moderation: the request was flagged by the safety system.",
    1400: "Missing required parameter.",
    1401: "Invalid parameter.",
    1402: "Failed to download image from the provided URL.",
    1403: "Task execution failed.",
    1405: "Task failed.",
    5000: "Internal server error.",
    5003: "Service unavailable, please retry later.",
    5004: "Timeout.",
}
SYNC_TIMEOUT_CODE = 5004
# The task code a failure carries when its outcome names none: every failed, cancelled or timed-out prediction
# answers a data.code, and the same status always the same one.
DEFAULT_CODES = {FAILED: 1405, CANCELLED: 1405, TIMEOUT: 5004}
# With poll progression, a prediction that has a webhook also moves one step per poll_every x this many seconds
# of the clock, so a client that only waits for its webhook (and never polls) still gets it.
UNPOLLED_STEP_SECONDS = 1.0
POLL_LOG_CAP = 200  # per prediction: enough for any polling audit, bounded for a client that polls forever
_POLL_SEP = ";"
# A float's repr and one of the API's statuses make an entry of at most 36 characters, so a trim down to the last
# POLL_LOG_CAP entries always leaves fewer than this: the log is trimmed about once per POLL_LOG_CAP polls.
_POLL_LOG_TRIM_AT = 2 * POLL_LOG_CAP * 32


@dataclass
class Outcome:
    """How a prediction ends. The default is a plain success; scenarios queue others."""

    status: str = COMPLETED
    code: int | None = None
    error: str | None = None
    nsfw: tuple[bool, ...] | None = None  # one flag per output
    outputs: int | None = None  # fewer outputs than asked
    stuck: bool = False  # never leaves processing
    sync_timeout: bool = False  # a sync-mode submit answers 5004 at once
    latency: float | None = None  # seconds of generation, overriding the model's

    def to_record(self) -> dict[str, Any]:
        """The fields that differ from their defaults (a plain success is ``{"status": "completed"}``), written out
        one by one: every submit and poll writes one. A 0 is a value here (no outputs, no latency), not a default."""
        record: dict[str, Any] = {"status": self.status}
        if self.code is not None:
            record["code"] = self.code
        if self.error is not None:
            record["error"] = self.error
        if self.nsfw is not None:
            record["nsfw"] = list(self.nsfw)  # a record holds JSON's types (Store.update hands it back as it is)
        if self.outputs is not None:
            record["outputs"] = self.outputs
        if self.stuck:
            record["stuck"] = True
        if self.sync_timeout:
            record["sync_timeout"] = True
        if self.latency is not None:
            record["latency"] = self.latency
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Outcome:
        if record == _PLAIN_RECORD:  # most predictions: one comparison instead of binding keyword arguments
            return cls()
        nsfw = record.get("nsfw")
        return cls(**{**record, "nsfw": tuple(nsfw) if nsfw is not None else None})

    def task_code(self) -> int:
        return self.code if self.code is not None else DEFAULT_CODES.get(self.status, 1405)

    def error_text(self) -> str:
        if self.error:
            return self.error
        if self.code is not None:
            return TASK_ERRORS.get(self.code, "Task failed.")
        return {FAILED: "Task failed.", CANCELLED: "Prediction was cancelled.", TIMEOUT: "Prediction timed out."}.get(
            self.status, ""
        )


@dataclass
class Prediction:
    id: str
    tenant: str
    model: str
    input: dict[str, Any]  # exactly what the client sent
    params: dict[str, Any]  # the documented, schema-checked subset of input: what the fake acts on
    created_at: float  # clock seconds
    progression: str  # time | polls | manual
    queue_seconds: float  # time mode: created → processing
    run_seconds: float  # time mode: processing → terminal
    poll_every: int
    outcome: Outcome
    seed: int  # the effective seed (-1 replaced by a drawn one)
    num_outputs: int
    base_url: str  # how the client reached us at submit time (webhooks use it)
    webhook: str | None = None
    source: dict[str, Any] | None = None  # the resolved input image: {"blob", "note", "width", "height"}
    polls: int = 0
    forced_stage: int = 0
    status: str = CREATED  # cached; authoritative once terminal
    finished_at: float | None = None
    outputs: list[str] = field(default_factory=list)  # output paths (or base64 strings) once completed
    nsfw: list[bool] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what the fake did that a client cannot see
    # The polls answered, as "<wall time> <status>;" text: every poll reads and rewrites the whole record, and one
    # string is copied where a list of [time, status] pairs made a well-polled prediction's poll 1.7x dearer
    # (bench/instructions.py). It is trimmed back to the last POLL_LOG_CAP entries, which ``poll_log`` shows, once
    # it is twice as long as that many typical entries.
    polled: str = ""
    script: Script | None = None  # --replay: the recorded lifecycle this prediction plays back (model/replay.py)
    # --max-concurrency: a queued prediction waits in "created" for a slot; its lifecycle (latency, polls, the
    # unpolled-webhook clock) starts when it gets one. Records written before these fields existed are unqueued.
    queued: bool = False
    started_at: float | None = None  # when it left the queue (None: at created_at)
    polls_at_start: int = 0  # polls answered while it waited, which do not move it

    def to_record(self) -> dict[str, Any]:
        record = dict(vars(self))  # the fields, shallow, as the store serializes them at once
        record["outcome"] = self.outcome.to_record()
        record["script"] = self.script.to_record() if self.script is not None else None
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Prediction:
        values = dict(record)
        values["outcome"] = Outcome.from_record(values.get("outcome") or {})
        if "poll_log" in values:  # a record from before the log was text (a Redis store shared across versions)
            values["polled"] = "".join(_poll_entry(t, s) for t, s in values.pop("poll_log"))
        script = values.get("script")
        values["script"] = Script.from_record(script) if script else None
        if values.keys() == _FIELDS:
            # A record this version wrote (every field, no other) becomes the instance's own dict: every poll reads
            # one, and binding 30 keyword arguments whose names are decoded strings, not the interned parameter
            # names, costs Python a string comparison per name and parameter (4.6 µs where this takes 0.3).
            prediction = cls.__new__(cls)
            prediction.__dict__ = values
            return prediction
        return cls(**values)

    def log_poll(self, wall_time: float) -> None:
        """Note a poll and the status it answered."""
        polled = self.polled + _poll_entry(wall_time, self.status)
        if len(polled) > _POLL_LOG_TRIM_AT:  # measured in characters: counting entries cost 5% of a poll
            polled = _POLL_SEP.join(polled.split(_POLL_SEP)[-POLL_LOG_CAP - 1 :])
        self.polled = polled

    @property
    def poll_log(self) -> list[tuple[float, str]]:
        """(wall time, status answered) of the last POLL_LOG_CAP polls, oldest first."""
        entries = self.polled.split(_POLL_SEP)[:-1][-POLL_LOG_CAP:]
        return [(float(t), s) for t, _, s in (e.partition(" ") for e in entries)]

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def start(self) -> float:
        """When its lifecycle started: at creation, or when a concurrency slot freed for it."""
        return self.created_at if self.started_at is None else self.started_at

    def stage(self, now: float) -> int:
        """0 created, 1 processing, 2 finished — from the clock, the poll counter and forced steps."""
        if self.terminal:
            return 2
        if self.script is not None:  # replay: the recording decides (stage 1 covers all its middle steps)
            position = self.script.position(now - self.created_at, self.polls)
            derived = 2 if position >= self.script.end else min(position, 1)
        elif self.queued:
            derived = 0
        elif self.progression == "time":
            elapsed = now - self.start
            derived = 0 if elapsed < self.queue_seconds else 1 if elapsed < self.queue_seconds + self.run_seconds else 2
        elif self.progression == "polls":
            derived = min(2, (self.polls - self.polls_at_start) // self.poll_every)
            if self.webhook is not None:
                steps = int((now - self.start) // (self.poll_every * UNPOLLED_STEP_SECONDS))
                derived = max(derived, min(2, steps))
        else:
            derived = 0
        stage = max(derived, self.forced_stage)
        return min(stage, 1) if self.outcome.stuck else min(stage, 2)

    def live_status(self, stage: int, now: float) -> str:
        """The status a read answers before the end: created/processing, or a replayed recording's own steps (a
        forced step moves at least as far into them as it says)."""
        if self.script is None:
            return _STAGES[stage]
        return self.script.status_at(max(self.script.position(now - self.created_at, self.polls), stage))

    def due_at(self) -> float | None:
        """When it finishes on its own: time progression, or poll progression with a webhook (None: it waits
        for polls, a slot or a test)."""
        if self.outcome.stuck or self.terminal or self.queued:
            return None
        if self.progression == "time":
            return self.start + self.queue_seconds + self.run_seconds
        if self.progression == "polls" and self.webhook is not None:
            return self.start + 2 * self.poll_every * UNPOLLED_STEP_SECONDS
        return None

    def inference_ms(self) -> int:
        return int(round(self.run_seconds * 1000))

    def execution_ms(self) -> int:
        if self.finished_at is None:
            return 0
        if self.progression == "time":
            return int(round((self.finished_at - self.created_at) * 1000))
        return int(round((self.queue_seconds + self.run_seconds) * 1000))

    def view(self, base_url: str, *, sync_timeout: float | None = None) -> dict[str, Any]:
        """The ``data`` object as the real API sends it, links absolute for the caller's base URL."""
        completed = self.status == COMPLETED
        inline = bool(self.params.get("enable_base64_output"))
        outputs = [o if inline else base_url + o for o in self.outputs] if completed else []
        data: dict[str, Any] = {
            "id": self.id,
            "model": self.model,
            "outputs": outputs,
            "urls": {"get": f"{base_url}/api/v3/predictions/{self.id}/result"},
            "has_nsfw_contents": list(self.nsfw) if completed else [],
            "status": self.status,
            "created_at": rfc3339(self.created_at),
            "error": "",
            "timings": {"inference": self.inference_ms() if self.terminal else 0},
            "executionTime": self.execution_ms(),
        }
        if self.status in (FAILED, CANCELLED, TIMEOUT):
            data["error"] = self.outcome.error_text()
            data["code"] = self.outcome.task_code()
        if sync_timeout is not None:
            data["code"] = SYNC_TIMEOUT_CODE
            data["error"] = (
                f"Sync mode timed out after {sync_timeout:g} seconds. "
                "The prediction is still processing asynchronously."
            )
        return data


_FIELDS = frozenset(f.name for f in fields(Prediction))
_PLAIN_RECORD = {"status": COMPLETED}


def _poll_entry(wall_time: float, status: str) -> str:
    return f"{wall_time!r} {status}{_POLL_SEP}"


@functools.lru_cache(maxsize=4096)  # a prediction's created_at is formatted again on every poll of it
def rfc3339(epoch: float) -> str:
    """UTC with microseconds, rounded as ``datetime.fromtimestamp`` rounds them; the date and time of day are
    formatted once per second, since every submit formats a new instant."""
    fraction, whole = math.modf(epoch)
    micros = round(fraction * 1e6)
    if micros >= 1_000_000:
        whole, micros = whole + 1, micros - 1_000_000
    elif micros < 0:
        whole, micros = whole - 1, micros + 1_000_000
    return f"{_second(int(whole))}.{micros:06d}Z"


@functools.lru_cache(maxsize=64)
def _second(epoch: int) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


_TIME = re.compile(
    r"(\d{4}-\d{2}-\d{2})(?:[Tt ](\d{2}:\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?"
    r"([Zz]|[+-]\d{2}(?::?\d{2})?)?"
)


def parse_time(text: str) -> float:
    """Epoch seconds of an RFC 3339 time as clients send it (JS ``toISOString``, nanoseconds, a bare date, no
    offset meaning UTC). ValueError when it is not one."""
    match = _TIME.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    day, clock, seconds, fraction, offset = match.groups()
    stamp = dt.datetime.fromisoformat(f"{day}T{clock or '00:00'}:{seconds or '00'}")
    if offset and offset not in ("Z", "z"):
        sign = 1 if offset[0] == "+" else -1
        digits = offset[1:].replace(":", "")
        delta = dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:] or 0))
        zone = dt.timezone(sign * delta)
    else:
        zone = dt.timezone.utc
    return stamp.replace(tzinfo=zone).timestamp() + (float(f"0.{fraction}") if fraction else 0.0)


def stage_status(stage: int) -> str:
    return _STAGES[stage]
