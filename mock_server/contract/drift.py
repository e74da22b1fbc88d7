"""Documentation drift: what changed between two versions of an endpoint's tables, and does it break clients.

``diff_tables`` compares two ``EndpointTable``s row by row; ``lint_table`` checks a page against its own curl
example; ``run_drift_docs`` is the ``wavespeed-mock drift docs OLD NEW`` report.

"Breaking" is judged from a client that was written against the old docs: anything that can make its
requests rejected (a removed parameter, a new required one, a tighter range, a removed enum value, a type
change) or its response parsing fail (a removed or retyped field) is breaking; loosening is not. A table that
one page does not document at all (some saved pages end before the result tables) says nothing about the
API, so rows appearing or disappearing with a whole table are reported but never breaking.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from mock_server.contract.docpages import parse_page_file
from mock_server.contract.tables import EndpointTable, EnumValue, Field, Param, load_table

PARAM_TABLES = ("request", "result_request")
TABLE_ORDER = ("request", "response", "result_request", "result_response")

LINT_KIND = "example-inconsistent"


@dataclass(frozen=True)
class Change:
    kind: str
    location: str  # "request.size", "response.data.urls.get", "request.loras[].scale"
    old: Any
    new: Any
    breaking: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "location": self.location,
            "old": _jsonable(self.old),
            "new": _jsonable(self.new),
            "breaking": self.breaking,
            "detail": self.detail,
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


# --------------------------------------------------------------------------------------------------- diffing


def diff_tables(old: EndpointTable, new: EndpointTable) -> list[Change]:
    changes: list[Change] = []
    for table in TABLE_ORDER:
        old_rows, new_rows = getattr(old, table), getattr(new, table)
        if table in PARAM_TABLES:
            changes += _diff_params(table, old_rows, new_rows, _undocumented_note(table, old_rows, new_rows))
        else:
            changes += _diff_fields(table, old_rows, new_rows, _undocumented_note(table, old_rows, new_rows))
    return changes


def _undocumented_note(table: str, old_rows: Sequence[object], new_rows: Sequence[object]) -> str | None:
    if not old_rows and new_rows:
        return f"the old page documents no {table} table"
    if old_rows and not new_rows:
        return f"the new page documents no {table} table"
    return None


def _ordered_names(old_rows: Sequence[Param | Field], new_rows: Sequence[Param | Field]) -> list[str]:
    """Names in the new table's row order; removed names slotted in at their old row."""
    new_names = {r.name for r in new_rows}
    keyed = [((r.row, 0), r.name) for r in new_rows]
    keyed += [((r.row, 1), r.name) for r in old_rows if r.name not in new_names]
    return [name for _, name in sorted(keyed, key=lambda k: k[0])]


def _diff_params(
    prefix: str, old_rows: Sequence[Param], new_rows: Sequence[Param], undocumented: str | None
) -> list[Change]:
    olds = {p.name: p for p in old_rows}
    news = {p.name: p for p in new_rows}
    changes: list[Change] = []
    for name in _ordered_names(old_rows, new_rows):
        loc = f"{prefix}.{name}"
        o, n = olds.get(name), news.get(name)
        if o is None and n is not None:
            breaking = n.required and undocumented is None
            what = "required" if n.required else "optional"
            changes.append(
                Change(
                    "parameter-added", loc, None, _summary(n), breaking, _note(f"new {what} parameter", undocumented)
                )
            )
        elif n is None and o is not None:
            changes.append(
                Change(
                    "parameter-removed",
                    loc,
                    _summary(o),
                    None,
                    undocumented is None,
                    _note("parameter no longer documented", undocumented),
                )
            )
        elif o is not None and n is not None:
            changes += _diff_param(loc, o, n)
    return changes


def _note(detail: str, undocumented: str | None) -> str:
    return f"{detail} ({undocumented})" if undocumented else detail


def _summary(p: Param) -> dict[str, Any]:
    return {k: v for k, v in p.to_json().items() if k not in ("name", "row")}


def _diff_param(loc: str, o: Param, n: Param) -> list[Change]:
    changes: list[Change] = []
    if o.required != n.required:
        detail = "now required" if n.required else "no longer required"
        changes.append(Change("required-changed", loc, o.required, n.required, n.required, detail))
    if o.type != n.type:
        changes.append(_type_change("type-changed", loc, o.type, n.type))
    if o.default != n.default or type(o.default) is not type(n.default):
        changes.append(Change("default-changed", loc, o.default, n.default, False, "documented default changed"))
    changes += _diff_bound(loc, "minimum", o.minimum, n.minimum, tighter=lambda a, b: b > a)
    changes += _diff_bound(loc, "maximum", o.maximum, n.maximum, tighter=lambda a, b: b < a)
    if o.per_dimension != n.per_dimension:
        # The same numbers now bound something else: treat as a tighter range, a client cannot rely on it.
        detail = "range now applies to each dimension" if n.per_dimension else "range no longer per dimension"
        changes.append(Change("range-narrowed", loc, o.per_dimension, n.per_dimension, True, detail))
    changes += _diff_enum(loc, o.enum, n.enum)
    if o.item_type != n.item_type:
        changes.append(_type_change("item-type-changed", loc, o.item_type, n.item_type))
    if o.max_items != n.max_items:
        lowered = n.max_items is not None and (o.max_items is None or n.max_items < o.max_items)
        detail = "fewer items allowed" if lowered else "more items allowed"
        changes.append(Change("max-items-changed", loc, o.max_items, n.max_items, lowered, detail))
    if o.item_fields or n.item_fields:
        changes += _diff_params(f"{loc}[]", o.item_fields, n.item_fields, None)
    return changes


def _type_change(kind: str, loc: str, old: str | None, new: str | None) -> Change:
    # A missing Type cell is not a type: documenting one where there was none is not a change of contract.
    if old is None:
        return Change(kind, loc, old, new, False, f"type now documented as {new}")
    if new is None:
        return Change(kind, loc, old, new, False, "type no longer documented")
    return Change(kind, loc, old, new, True, f"type {old} -> {new}")


def _diff_bound(
    loc: str,
    bound: str,
    old: int | float | None,
    new: int | float | None,
    tighter: Callable[[int | float, int | float], bool],
) -> list[Change]:
    if old == new:
        return []
    if new is None:
        return [Change("range-widened", loc, old, new, False, f"{bound} {old} dropped")]
    if old is None:
        return [Change("range-narrowed", loc, old, new, True, f"{bound} {new} introduced")]
    if tighter(old, new):
        return [Change("range-narrowed", loc, old, new, True, f"{bound} {old} -> {new}")]
    return [Change("range-widened", loc, old, new, False, f"{bound} {old} -> {new}")]


def _diff_enum(loc: str, old: tuple[EnumValue, ...] | None, new: tuple[EnumValue, ...] | None) -> list[Change]:
    if old == new:
        return []
    if old is None:
        return [Change("range-narrowed", loc, None, list(new or ()), True, "values now limited to a list")]
    if new is None:
        return [Change("range-widened", loc, list(old), None, False, "value list dropped")]
    removed = [
        Change("enum-value-removed", loc, v, None, True, f"value {v!r} no longer allowed") for v in old if v not in new
    ]
    added = [Change("enum-value-added", loc, None, v, False, f"value {v!r} now allowed") for v in new if v not in old]
    return removed + added


def _diff_fields(
    prefix: str, old_rows: Sequence[Field], new_rows: Sequence[Field], undocumented: str | None
) -> list[Change]:
    olds = {f.name: f for f in old_rows}
    news = {f.name: f for f in new_rows}
    changes: list[Change] = []
    for name in _ordered_names(old_rows, new_rows):
        loc = f"{prefix}.{name}"
        o, n = olds.get(name), news.get(name)
        if o is None and n is not None:
            changes.append(Change("field-added", loc, None, n.type, False, _note("new field", undocumented)))
        elif n is None and o is not None:
            changes.append(
                Change(
                    "field-removed",
                    loc,
                    o.type,
                    None,
                    undocumented is None,
                    _note("field no longer documented", undocumented),
                )
            )
        elif o is not None and n is not None and o.type != n.type:
            changes.append(_type_change("field-type-changed", loc, o.type, n.type))
    return changes


# ------------------------------------------------------------------------------------------------------ lint


def lint_table(table: EndpointTable) -> list[Change]:
    """Where the page's own example request disagrees with its table (never breaking: a page defect)."""
    example = table.example
    if example is None:
        return []
    findings: list[Change] = []
    for p in table.request:
        loc = f"request.{p.name}"
        if p.name not in example:
            if p.required:
                findings.append(
                    Change(LINT_KIND, loc, "required", None, False, f"the example omits required parameter {p.name}")
                )
            continue
        problem = _value_problem(p, example[p.name])
        if problem:
            findings.append(Change(LINT_KIND, loc, _constraint(p), example[p.name], False, problem))
    documented = {p.name for p in table.request}
    for key, value in example.items():
        if key not in documented:
            findings.append(
                Change(
                    LINT_KIND,
                    f"request.{key}",
                    None,
                    value,
                    False,
                    f"the example sends {key}, which the table does not list",
                )
            )
    return findings


def _constraint(p: Param) -> Any:
    if p.enum is not None:
        return list(p.enum)
    out: dict[str, Any] = {"type": p.type}
    if p.minimum is not None:
        out["minimum"] = p.minimum
    if p.maximum is not None:
        out["maximum"] = p.maximum
    if p.per_dimension:
        out["per_dimension"] = True
    return out


_PY_TYPES: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}


def _value_problem(p: Param, value: Any) -> str | None:
    if p.type is not None and not _PY_TYPES[p.type](value):
        return f"the example's {p.name} is {json.dumps(value)}, not of type {p.type}"
    if p.enum is not None:
        text = str(value).lower() if isinstance(value, bool) else str(value)
        if value not in p.enum and text not in p.enum:
            return f"the example's {p.name} {json.dumps(value)} is not one of {', '.join(map(str, p.enum))}"
    values: list[int | float] = []
    if p.per_dimension and isinstance(value, str):
        sides = value.split("*")
        if len(sides) != 2 or not all(s.isdigit() for s in sides):
            return f"the example's {p.name} {json.dumps(value)} is not WIDTH*HEIGHT"
        values = [int(s) for s in sides]
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        values = [value]
    for v in values:
        if (p.minimum is not None and v < p.minimum) or (p.maximum is not None and v > p.maximum):
            return f"the example's {p.name} {json.dumps(value)} is outside {p.minimum} ~ {p.maximum}"
    return None


# ---------------------------------------------------------------------------------------------- loading, I/O


def load_any(path: str | Path) -> EndpointTable:
    """A ``.json`` path is a committed source table; anything else is a saved documentation page."""
    p = Path(path)
    if p.suffix == ".json":
        return load_table(p)
    return parse_page_file(p)


def _value(v: Any, limit: int = 60) -> str:
    text = json.dumps(_jsonable(v), ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def change_line(c: Change, marker: str) -> str:
    """One change as a report line (also used by ``drift live``)."""
    return f"  {marker:<8}  {c.kind:<20}  {c.location}: {_value(c.old)} -> {_value(c.new)}  ({c.detail})"


def render_text(
    changes: Sequence[Change],
    old: EndpointTable,
    new: EndpointTable,
    *,
    lint: dict[str, Sequence[Change]] | None = None,
) -> str:
    lines = [f"docs drift: {old.key} -> {new.key}"]
    if old.model != new.model:
        lines.append(f"  note: the two tables describe different models ({old.model}, {new.model})")
    lines += [change_line(c, "BREAKING" if c.breaking else "ok") for c in changes]
    breaking = sum(c.breaking for c in changes)
    lines.append(f"summary: {len(changes)} changes, {breaking} breaking, {len(changes) - breaking} non-breaking")
    for side, table in (("old", old), ("new", new)):
        if lint is None or side not in lint:
            continue
        findings = lint[side]
        lines.append(f"lint {side} ({table.key}): {len(findings)} findings")
        lines += [change_line(f, "lint") for f in findings]
    return "\n".join(lines) + "\n"


def render_json(
    changes: Sequence[Change],
    old: EndpointTable,
    new: EndpointTable,
    *,
    lint: dict[str, Sequence[Change]] | None = None,
) -> str:
    data: dict[str, Any] = {
        "old": old.key,
        "new": new.key,
        "breaking": sum(c.breaking for c in changes),
        "changes": [c.to_json() for c in changes],
    }
    if lint is not None:
        data["lint"] = {side: [f.to_json() for f in findings] for side, findings in lint.items()}
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def run_drift_docs(old_path: str, new_path: str, fmt: str = "text", stream: TextIO | None = None) -> int:
    """Print the drift report; 1 if anything breaks a client, 0 if not, 2 if an input cannot be read."""
    out = sys.stdout if stream is None else stream
    if fmt not in ("text", "json"):
        sys.stderr.write(f"drift docs: unknown format {fmt!r} (use text or json)\n")
        return 2
    tables: list[EndpointTable] = []
    for path in (old_path, new_path):
        try:
            tables.append(load_any(path))
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
            sys.stderr.write(f"drift docs: cannot read {path}: {exc}\n")
            return 2
    old, new = tables
    changes = diff_tables(old, new)
    lint: dict[str, Sequence[Change]] = {"old": lint_table(old), "new": lint_table(new)}
    render = render_json if fmt == "json" else render_text
    out.write(render(changes, old, new, lint=lint))
    return 1 if any(c.breaking for c in changes) else 0
