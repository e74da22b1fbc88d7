"""``serve --replay DIR``: submits that match a recorded cassette replay it; the rest are refused or generated.

At start-up every ``DIR/*.json`` is read and checked against ``schemas/formats/cassette.json`` (a bad one is a
one-line error naming the file) and indexed by model + the digest of its normalized input. A submit is keyed the
way the recorder keyed it (``contract.cassette.match_key``: scrubbed, documented defaults filled in, transport
flags dropped, this fake's uploads named by file name and size), so a request recorded through
``wavespeed-mock proxy --record`` finds its cassette here.

A match becomes an ordinary prediction carrying a ``Script`` (``model/script``): the recorded statuses at their
recorded times divided by the speed (or, at speed 0, one status per poll), then the recorded final status with
its task code and error, its nsfw flags, and as many outputs as were recorded, drawn as placeholders of the
recorded size and format. Everything else (sync mode, base64, webhooks, downloads) is the fake's own behaviour.

Several cassettes with one key (the same request made twice) replay in recorded order, per API key, then again
from the first. No match: strict mode answers 404 naming the nearest cassette and how it differs; lenient mode
lets the generated fake answer.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from mock_server.contract.cassette import match_key, problems
from mock_server.contract.catalog import Catalog
from mock_server.contract.errors import ApiError, NotFound
from mock_server.model import images
from mock_server.model._image_meta import MAX_SIDE
from mock_server.model.predictions import COMPLETED, CREATED, TERMINAL, Outcome, Prediction
from mock_server.model.script import OutputShape, Script, Step
from mock_server.model.store import Store

NO_MATCH = "replay_no_match"
_LOOPBACK = ("127.0.0.1", "localhost", "::1")
_VALUE_CHARS = 60  # of a differing value quoted in the no-match message

logger = logging.getLogger("wavespeed_mock.replay")


@dataclass(frozen=True)
class Recording:
    """One loaded cassette: how to recognise its request and what to play back."""

    name: str  # the file name
    model: str
    input: dict[str, Any]  # the cassette's match.input
    key: str  # digest of (model, input), recomputed here so a hand-edited match.input takes effect
    recorded_at: str
    refused: tuple[int, str] | None  # (HTTP status, message) when the upstream refused the submit
    script: Script | None
    outcome: Outcome

    def replayed(self, prediction: Prediction) -> Prediction:
        """``prediction`` (as the fake just built it) made to play this recording back."""
        script = self.script
        assert script is not None  # refused recordings never become predictions
        if script.by_reads and prediction.webhook is not None:
            # A webhook client may never poll: at speed 0 its replay ends at once, on the clock, so the webhook fires.
            script = script.instant()
        outputs = len(script.outputs) if self.outcome.status == COMPLETED else 0
        undrawable = [
            f"output {i}: recorded as {o.content_type or o.format or 'unknown'}, which is not a picture "
            "this fake draws; it gets the model's usual output"
            for i, o in enumerate(script.outputs[:outputs])
            if not _drawable(o)
        ]
        return dataclasses.replace(
            prediction,
            script=script,
            outcome=self.outcome,
            status=script.status_at(0),
            # The recorded end time doubles as the run time: due_at, tick, sync mode and webhook timers then work
            # on a replay exactly as on a generated prediction.
            progression="polls" if script.by_reads else "time",
            poll_every=1,
            queue_seconds=0.0,
            run_seconds=script.final.at if script.final is not None else 0.0,
            num_outputs=outputs,
            notes=[*prediction.notes, f"replaying cassette {self.name}", *undrawable],
        )


class Replayer:
    """The cassettes of one ``--replay`` directory, indexed for matching."""

    def __init__(self, directory: Path, recordings: list[Recording], *, mode: str = "strict") -> None:
        self.directory = directory
        self.mode = mode
        self.recordings = recordings
        self._by_key: dict[str, list[Recording]] = {}
        for recording in sorted(recordings, key=lambda r: (r.recorded_at, r.name)):
            self._by_key.setdefault(recording.key, []).append(recording)

    @classmethod
    def load(cls, directory: str | Path, catalog: Catalog, *, speed: float = 1.0, mode: str = "strict") -> Replayer:
        """Every cassette in ``directory``. Raises ValueError, one line naming the file, for a bad one."""
        root = Path(directory)
        if not root.is_dir():
            raise ValueError(f"--replay {root}: not a directory")
        recordings = []
        for path in sorted(root.glob("*.json")):
            if path.name.startswith("."):
                continue  # the recorder's half-written temporary files
            recordings.append(_load_one(path, catalog, speed))
        unknown = sorted({r.model for r in recordings if catalog.get(r.model) is None})
        if unknown:
            # Not fatal: a directory recorded against the real API may hold models this fake does not serve.
            logger.warning(
                "--replay %s: cassettes of models this fake does not serve never match (add them with --schemas): %s",
                root,
                ", ".join(unknown),
            )
        return cls(root, recordings, mode=mode)

    def find(
        self, tenant: str, model: str, body: Mapping[str, Any], catalog: Catalog, store: Store, hosts: tuple[str, ...]
    ) -> Recording | None:
        """The recording a submit replays; None when lenient and nothing matches (the fake then generates one).

        Raises NotFound (strict, no match) naming the nearest cassette, or the recorded refusal of a submit the
        upstream refused. ``hosts`` are the names this fake is reached by (its uploads' URLs are recognised)."""
        secrets = (tenant, f"Bearer {tenant}")  # the recorder redacted the recording client's key the same way
        normalized, key = match_key(model, body, catalog, secrets=secrets, uploads=_own_uploads(body, store, hosts))
        group = self._by_key.get(key)
        if not group:
            if self.mode == "lenient":
                return None
            raise self._no_match(model, normalized)
        # Per API key, so two tests replaying one recorded sequence each see it from the start.
        turn = int(store.incr(f"replay.{key}", tenant=tenant)) - 1
        recording = group[turn % len(group)]
        if recording.refused is not None:
            status, message = recording.refused
            raise ApiError(message, status_code=status)
        return recording

    def _no_match(self, model: str, sent: dict[str, Any]) -> NotFound:
        where = (
            f"No cassette in {self.directory} matches this {model} request (strict replay; "
            "--replay-mode lenient lets the generated fake answer)."
        )
        nearest = self.nearest(model, sent)
        if nearest is None:
            return NotFound(f"{where} The directory holds no cassettes.", extra={"error_code": NO_MATCH})
        recording, differences = nearest
        if recording.model != model:
            detail = f"Nearest: {recording.name}, recorded for {recording.model} (no cassette is of {model})."
        else:
            listed = "; ".join(
                f"{d['key']}: recorded {_show(d, 'recorded')}, sent {_show(d, 'sent')}" for d in differences
            )
            detail = f"Nearest: {recording.name}, which differs in {listed or 'nothing but its digest'}."
        return NotFound(
            f"{where} {detail}",
            extra={
                "error_code": NO_MATCH,
                "nearest": {"cassette": recording.name, "model": recording.model, "differences": differences},
            },
        )

    def nearest(self, model: str, sent: Mapping[str, Any]) -> tuple[Recording, list[dict[str, Any]]] | None:
        """The recording closest to a request: of the same model if there is one (else of any), with the most
        input keys of equal value, then the fewest differing keys, then by file name; and how it differs."""
        pool = (
            [r for r in self.recordings if r.model == model and r.refused is None]
            or [r for r in self.recordings if r.model == model]
            or self.recordings
        )
        if not pool:
            return None

        def rank(recording: Recording) -> tuple[int, int, str]:
            equal, differing = _compare(recording.input, sent)
            return -len(equal), len(differing), recording.name

        best = min(pool, key=rank)
        _, differing = _compare(best.input, sent)
        return best, [
            {
                "key": k,
                **({"recorded": best.input[k]} if k in best.input else {}),
                **({"sent": sent[k]} if k in sent else {}),
            }
            for k in differing
        ]


def _compare(recorded: Mapping[str, Any], sent: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    keys = sorted(set(recorded) | set(sent))
    equal = [k for k in keys if k in recorded and k in sent and _same(recorded[k], sent[k])]
    return equal, [k for k in keys if k not in equal]


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)  # 1 == 1.0 but True != 1, as JSON


def _show(difference: Mapping[str, Any], side: str) -> str:
    if side not in difference:
        return "nothing"
    text = json.dumps(difference[side], ensure_ascii=False)
    return text if len(text) <= _VALUE_CHARS else text[: _VALUE_CHARS - 3] + "..."


def _own_uploads(body: Mapping[str, Any], store: Store, hosts: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """This fake's upload URLs in ``body`` with their file name and size: the recorder names an upload by those
    (``[upload NAME bytes:N]``), since its URL differs from one run (and one server) to the next."""
    found: dict[str, dict[str, Any]] = {}

    def visit(value: Any) -> None:
        if isinstance(value, dict):
            for item in value.values():
                visit(item)
        elif isinstance(value, list):
            for item in value:
                visit(item)
        elif isinstance(value, str) and value.startswith(("http://", "https://")):
            parts = urlsplit(value)
            segments = parts.path.strip("/").split("/")
            ours = parts.netloc in hosts or parts.hostname in _LOOPBACK
            if not ours or len(segments) != 4 or segments[:2] != ["media", "uploads"]:
                return
            record = store.get("upload", f"{segments[2]}/{unquote(segments[3])}")
            if record is not None:
                found[value] = {"filename": record.get("filename"), "size": record.get("size")}

    visit(dict(body))
    return found


def shaped(spec: images.ImageSpec, script: Script, index: int) -> images.ImageSpec:
    """An output's picture spec at its recorded size and format, when the recording says and we can draw it."""
    if index >= len(script.outputs) or not _drawable(script.outputs[index]):
        return spec
    shape = script.outputs[index]
    assert shape.width is not None and shape.height is not None and shape.format is not None
    return dataclasses.replace(spec, width=shape.width, height=shape.height, fmt=shape.format)


def _drawable(shape: OutputShape) -> bool:
    return (
        shape.format in images.FORMATS
        and shape.width is not None
        and shape.height is not None
        and 1 <= shape.width <= MAX_SIDE
        and 1 <= shape.height <= MAX_SIDE
    )


# ------------------------------------------------------------------------------------------------- loading


def _load_one(path: Path, catalog: Catalog, speed: float) -> Recording:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"--replay cassette {path}: not readable JSON: {exc}") from None
    found = problems(document)
    if found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise ValueError(f"--replay cassette {path}: breaks schemas/formats/cassette.json: {found[0]}{more}")
    match = document["match"]
    model, normalized = match["model"], match["input"]
    # Keyed by what match.input says now (recomputed, not the stored digest), normalized by the current catalog's
    # defaults too, so a cassette keeps matching if a default is documented later.
    _, key = match_key(model, normalized, catalog)
    refused = None
    if document["prediction_id"] is None:
        refusal = next((e for e in document["errors"] if e["where"] == "submit"), None)
        status = document["submit"]["http_status"]
        message = (refusal or {}).get("message") or f"Submit refused with HTTP {status} (recorded)"
        refused = (status if 400 <= status <= 599 else 500, message)
    script, outcome = (None, Outcome()) if refused else _script(path.name, document, speed)
    return Recording(path.name, model, dict(normalized), key, document["recorded_at"], refused, script, outcome)


def _script(name: str, document: dict[str, Any], speed: float) -> tuple[Script, Outcome]:
    final = document["final"]
    ending = final if final is not None and final["status"] in TERMINAL else None
    # Statuses after the submit's: the terminal one becomes ``final``; a "deleted" or unknown ending is not one the
    # fake can end in, so such a recording (like one that never ended) stays in its last recorded status.
    steps = [
        Step(s["status"], _scaled(s["at"], speed))
        for s in document["statuses"]
        if s["status"] not in TERMINAL and s["status"] != "deleted"
    ]
    if not steps:  # a sync-mode recording shows only its end; an async submit still answers "created" first
        steps = [Step(CREATED, 0.0)]
    outputs = tuple(
        OutputShape(o["width"], o["height"], o["format"], o["content_type"], o["size"]) for o in document["outputs"]
    )
    script = Script(
        cassette=name,
        steps=tuple(steps),
        final=Step(ending["status"], _scaled(ending["at"], speed)) if ending else None,
        by_reads=speed == 0,
        outputs=outputs,
    )
    if ending is None:
        return script, Outcome(stuck=True)
    nsfw = ending["has_nsfw_contents"]
    flags = tuple(nsfw) if isinstance(nsfw, list) and all(isinstance(f, bool) for f in nsfw) else None
    if ending["status"] == COMPLETED:
        return script, Outcome(status=COMPLETED, nsfw=flags, outputs=len(outputs))
    code = ending["code"] if ending["code"] not in (0, 200) else None  # "no error" codes some answers carry
    return script, Outcome(status=ending["status"], code=code, error=ending["error"] or None)


def _scaled(at: float, speed: float) -> float:
    return at / speed if speed > 0 else at


__all__ = ["NO_MATCH", "Recording", "Replayer", "shaped"]
