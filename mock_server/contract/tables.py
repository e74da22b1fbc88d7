"""The table model: the facts of one documented endpoint version.

A doc page's parameter tables and a hand-written source table (from the reference notes) both become an
``EndpointTable``. The generator turns tables into JSON Schemas; drift detection compares two tables.
Descriptions are not part of the facts: ours live in ``schemas/sources/descriptions.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

TYPES = ("string", "integer", "number", "boolean", "array", "object")
# Doc pages give enums as text; a model catalog's JSON Schema may list numbers (a video ``duration`` of 5 or 10).
EnumValue = str | int | float | bool


@dataclass(frozen=True)
class Param:
    """One row of a request-parameter table.

    ``type`` is None when the page leaves the Type cell empty; ``default`` is None for "no default";
    ``minimum``/``maximum`` come from a range cell such as ``1 ~ 50``; ``per_dimension`` marks ranges that
    apply to each side of a ``W*H`` size; ``enum`` comes from a range cell such as ``jpeg, png, webp`` (or from
    a model catalog's ``enum`` list).
    """

    name: str
    type: str | None
    required: bool = False
    default: Any = None
    minimum: int | float | None = None
    maximum: int | float | None = None
    per_dimension: bool = False
    enum: tuple[EnumValue, ...] | None = None
    item_type: str | None = None
    max_items: int | None = None
    item_fields: tuple[Param, ...] = ()
    row: int = 0

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type, "required": self.required}
        for f in fields(self):
            if f.name in out or f.name == "row":
                continue
            value = getattr(self, f.name)
            # Identity checks: 0, 0.0 and False are facts (a minimum, a default) and must survive.
            if value is None or value == () or (f.name == "per_dimension" and value is False):
                continue
            if f.name == "item_fields":
                value = [p.to_json() for p in value]
            elif f.name == "enum":
                value = list(value)
            out[f.name] = value
        out["row"] = self.row
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Param:
        kwargs = dict(data)
        if "enum" in kwargs:
            kwargs["enum"] = tuple(kwargs["enum"])
        if "item_fields" in kwargs:
            kwargs["item_fields"] = tuple(Param.from_json(p) for p in kwargs["item_fields"])
        return cls(**kwargs)


@dataclass(frozen=True)
class Field:
    """One row of a response-field table (``data.urls.get`` style dotted names)."""

    name: str
    type: str | None
    row: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "row": self.row}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Field:
        return cls(**data)


@dataclass(frozen=True)
class Source:
    """Where a table's facts come from: a saved doc page, or the reference notes."""

    kind: str  # "doc-page" | "reference-notes"
    ref: str  # page file name, or the section of the reference notes
    layout: str | None = None  # doc pages: "markdown-cells" | "pipe-table" | "flattened"
    url: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in ((f.name, getattr(self, f.name)) for f in fields(self)) if v is not None}


@dataclass(frozen=True)
class EndpointTable:
    """Every table of one documented endpoint version."""

    model: str  # the model path under /api/v3/, e.g. "wavespeed-ai/flux-kontext-dev"
    version: str  # e.g. "page-000" or "reference-notes"
    source: Source
    request: tuple[Param, ...] = ()
    response: tuple[Field, ...] = ()
    result_request: tuple[Param, ...] = ()
    result_response: tuple[Field, ...] = ()
    example: dict[str, Any] | None = None  # the request body the page's own example sends
    extra: dict[str, Any] = field(default_factory=dict)  # reference-note facts (price, ...)

    @property
    def key(self) -> str:
        return f"{self.model}@{self.version}"

    def param(self, name: str) -> Param | None:
        return next((p for p in self.request if p.name == name), None)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "model": self.model,
            "version": self.version,
            "source": self.source.to_json(),
            "request": [p.to_json() for p in self.request],
            "response": [f.to_json() for f in self.response],
            "result_request": [p.to_json() for p in self.result_request],
            "result_response": [f.to_json() for f in self.result_response],
        }
        if self.example is not None:
            out["example"] = self.example
        if self.extra:
            out["extra"] = self.extra
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EndpointTable:
        return cls(
            model=data["model"],
            version=data["version"],
            source=Source(**data["source"]),
            request=tuple(Param.from_json(p) for p in data.get("request", ())),
            response=tuple(Field.from_json(f) for f in data.get("response", ())),
            result_request=tuple(Param.from_json(p) for p in data.get("result_request", ())),
            result_response=tuple(Field.from_json(f) for f in data.get("result_response", ())),
            example=data.get("example"),
            extra=data.get("extra", {}),
        )

    def dumps(self) -> str:
        """Serialise in the committed form: one row per line, so diffs read row by row."""
        data = self.to_json()
        lines = ["{"]
        items = list(data.items())
        for i, (k, v) in enumerate(items):
            comma = "," if i < len(items) - 1 else ""
            if isinstance(v, list) and v and k != "example":
                rows = ",\n".join("    " + json.dumps(r, ensure_ascii=False) for r in v)
                lines.append(f'  "{k}": [\n{rows}\n  ]{comma}')
            else:
                lines.append(f'  "{k}": {json.dumps(v, ensure_ascii=False)}{comma}')
        lines.append("}")
        return "\n".join(lines) + "\n"


def load_table(path: Path) -> EndpointTable:
    return EndpointTable.from_json(json.loads(path.read_text(encoding="utf-8")))


def renumber(params: tuple[Param, ...]) -> tuple[Param, ...]:
    return tuple(replace(p, row=i) for i, p in enumerate(params, start=1))
