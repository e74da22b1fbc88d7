"""A recorded lifecycle, as data on a prediction (``serve --replay``): which status to answer when.

Kept with the prediction in the store, like its outcome, so every worker sharing the store derives the same status
from it; ``model/replay`` builds one from a cassette, ``Prediction.stage`` and ``Prediction.live_status`` read it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any


@dataclass(frozen=True)
class Step:
    status: str
    at: float  # seconds after the submit, already divided by the replay speed


@dataclass(frozen=True)
class OutputShape:
    """What one recorded output was: the placeholder is drawn at this size and in this format."""

    width: int | None
    height: int | None
    format: str | None  # Pillow's name, lower case: jpeg, png, webp...
    content_type: str | None
    size: int | None  # bytes of the recorded original (a placeholder has its own size)


@dataclass(frozen=True)
class Script:
    """The recorded statuses of one prediction. ``steps`` are the non-terminal ones in the order seen (never empty:
    the first is what the submit answers); ``final`` is the terminal one, None when the recording never ended."""

    cassette: str  # the file replayed, named in the prediction's notes
    steps: tuple[Step, ...]
    final: Step | None
    by_reads: bool = False  # replay speed 0: each step answers one poll instead of lasting its recorded time
    outputs: tuple[OutputShape, ...] = ()

    @property
    def end(self) -> int:
        """The position of ``final`` (positions 0..end-1 are ``steps``)."""
        return len(self.steps)

    def position(self, elapsed: float, polls: int) -> int:
        """Where the recording is after ``elapsed`` seconds (of the fake's clock) and ``polls`` polls."""
        last = self.end if self.final is not None else self.end - 1
        if self.by_reads:
            return min(polls, last)
        if self.final is not None and elapsed >= self.final.at:
            return self.end
        # The submit's own answer (step 0) stands until the next recorded status is due.
        return max([i for i, step in enumerate(self.steps) if step.at <= elapsed], default=0)

    def status_at(self, position: int) -> str:
        return self.steps[max(0, min(position, self.end - 1))].status

    def instant(self) -> Script:
        """This script with every status due at once, on the clock rather than on polls."""
        return replace(
            self,
            by_reads=False,
            steps=tuple(replace(s, at=0.0) for s in self.steps),
            final=replace(self.final, at=0.0) if self.final is not None else None,
        )

    def to_record(self) -> dict[str, Any]:
        record = asdict(self)
        record["steps"] = list(record["steps"])  # JSON's types: a record may be handed back without a round trip
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Script:
        final = record.get("final")
        return cls(
            cassette=record["cassette"],
            steps=tuple(Step(**s) for s in record["steps"]),
            final=Step(**final) if final else None,
            by_reads=bool(record.get("by_reads", False)),
            outputs=tuple(OutputShape(**o) for o in record.get("outputs", ())),
        )
