"""Split one row of a documentation parameter table into its cells and read them as typed facts.

A cell can be missing (an empty cell in the page's source simply disappears, or in pipe tables the following
cells shift left), so a row is never read by position: :func:`segment` enumerates every way of assigning the
row's text to the table's columns, keeps the assignments whose cells fit the column's vocabulary (types,
``Yes``/``No``, ``-``, ``a ~ b`` ranges, comma enum lists, defaults of the row's type) and picks the best by:
description present, most cells present, default consistent with the range/enum, then earlier columns present.
Flattened rows additionally need their description to start with a capital letter. When two best assignments
disagree on numbers (``112 ~ 50``: default 1 or 11?), the row is ambiguous and :class:`RowSplitError` says so
rather than guess.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from mock_server.contract.tables import TYPES

_MANDATORY = frozenset({"Parameter", "Required"})

NAME_RE = re.compile(r"[a-z_][a-z0-9_]*(?:(?:\.|\[\]\.?)[a-z0-9_]+)*(?:\[\])?")
_NAME_CHARS_RE = re.compile(r"[a-z0-9_.\[\]]*")
_NUM = r"-?(?:0|[1-9]\d*)(?:\.\d+)?"
_INT_RE = re.compile(r"-?(?:0|[1-9]\d*)")
_FLOAT_RE = re.compile(_NUM)
_RANGE_RE = re.compile(rf"({_NUM})\s*~\s*({_NUM})(\s+per dimension)?")
_ENUM_RE = re.compile(r"[^,\s]+(?:\s*,\s*[^,\s]+)+")
_SIZE_RE = re.compile(r"(\d+)\*(\d+)")


class RowSplitError(ValueError):
    """A row none of whose splits fits the columns, or whose best splits disagree on a number."""


@dataclass(frozen=True)
class Facts:
    name: str
    type: str | None
    required: bool
    default: Any
    minimum: int | float | None
    maximum: int | float | None
    per_dimension: bool
    enum: tuple[str, ...] | None
    numeric: bool  # the default or the range is a number: a different split would change a number


@dataclass(frozen=True)
class _Candidate:
    cells: dict[str, str]
    facts: Facts
    consistent: bool

    def score(self, columns: tuple[str, ...]) -> tuple[int, ...]:
        present = tuple(int(c in self.cells) for c in columns)
        return (int("Description" in self.cells), sum(present), int(self.consistent), *present)

    def tiebreak(self) -> tuple[int, int]:
        return (len(self.cells.get("Default", "")), len(self.cells.get("Range", "")))


def segment(row: tuple[str, ...] | str, columns: tuple[str, ...]) -> Facts:
    """The facts of one row: its explicit cells (markdown-cells, pipe-table) or its run-together text (flattened)."""
    if isinstance(row, str):
        assignments = _assign_text(row, _sentence_starts(row), columns, 0, 0, {})
    else:
        assignments = _assign_cells(row, columns, 0, 0, {})
    candidates = [_candidate(a) for a in assignments]
    if not candidates:
        raise RowSplitError(f"cannot split the row into {', '.join(columns)} cells")
    best = max(c.score(columns) for c in candidates)
    top = sorted((c for c in candidates if c.score(columns) == best), key=_Candidate.tiebreak)
    distinct = {repr(c.facts) for c in top}
    if len(distinct) > 1 and any(c.facts.numeric for c in top):
        readings = "; ".join(sorted({" | ".join(c.cells.values()) for c in top}))
        raise RowSplitError(f"ambiguous row, it splits equally well as: {readings}")
    return top[0].facts


def _cell_fits(column: str, cell: str, partial: dict[str, str], flattened: bool) -> bool:
    """The cell's own vocabulary; cross-cell consistency is judged later."""
    if not cell or cell != cell.strip():
        return False
    if column == "Parameter":
        return NAME_RE.fullmatch(cell) is not None
    if column == "Type":
        return cell in TYPES
    if column == "Required":
        return cell in ("Yes", "No")
    if column == "Default":
        return _default_fits(cell, partial.get("Type"))
    if column == "Range":
        return _range_fits(cell, partial.get("Type"))
    # Description: prose, not a stray range or dash; in flattened rows it must start a sentence.
    if cell == "-" or _RANGE_RE.fullmatch(cell) or cell in ("Yes", "No"):
        return False
    return not flattened or cell[0].isupper()


def _default_fits(cell: str, type_: str | None) -> bool:
    if cell == "-":
        return True
    if type_ == "integer":
        return _INT_RE.fullmatch(cell) is not None
    if type_ == "number":
        return _FLOAT_RE.fullmatch(cell) is not None
    if type_ == "boolean":
        return cell.lower() in ("true", "false")
    # A range-looking text is a Range cell, never a free-text default.
    return not (_RANGE_RE.fullmatch(cell) or _ENUM_RE.fullmatch(cell))


def _range_fits(cell: str, type_: str | None) -> bool:
    if cell == "-":
        return True
    m = _RANGE_RE.fullmatch(cell)
    if m:
        if type_ == "integer" and not (_INT_RE.fullmatch(m.group(1)) and _INT_RE.fullmatch(m.group(2))):
            return False
        return float(m.group(1)) <= float(m.group(2))
    return type_ not in ("integer", "number", "boolean") and _ENUM_RE.fullmatch(cell) is not None


def _assign_cells(
    cells: tuple[str, ...], columns: tuple[str, ...], ci: int, ki: int, partial: dict[str, str]
) -> Iterator[dict[str, str]]:
    """Every in-order assignment of explicit cells to columns (cells may be missing, never reordered)."""
    if ci == len(columns):
        if ki == len(cells):
            yield dict(partial)
        return
    column = columns[ci]
    if ki < len(cells) and _cell_fits(column, cells[ki], partial, flattened=False):
        partial[column] = cells[ki]
        yield from _assign_cells(cells, columns, ci + 1, ki + 1, partial)
        del partial[column]
    if column not in _MANDATORY:
        yield from _assign_cells(cells, columns, ci + 1, ki, partial)


def _sentence_starts(text: str) -> frozenset[int]:
    """Positions where the rest of the text, spaces skipped, starts with a capital letter (or is empty)."""
    starts = {len(text)}
    nxt = len(text)
    for i in range(len(text) - 1, -1, -1):
        if text[i] != " ":
            nxt = i
        if nxt < len(text) and text[nxt].isupper():
            starts.add(i)
    return frozenset(starts)


def _assign_text(
    text: str, sentences: frozenset[int], columns: tuple[str, ...], ci: int, pos: int, partial: dict[str, str]
) -> Iterator[dict[str, str]]:
    """Every way of cutting run-together text into column cells (cells may be missing)."""
    if ci == len(columns):
        if pos == len(text):
            yield dict(partial)
        return
    column = columns[ci]
    if column not in _MANDATORY:
        yield from _assign_text(text, sentences, columns, ci + 1, pos, partial)
    # Cells may be separated by spaces: "9999999999 The same seed".
    start = pos
    while start < len(text) and text[start] == " ":
        start += 1
    ends = _cell_ends(column, text, start)
    # Only a Description can follow: the cell must end where the text ends or a sentence starts.
    before_description = set(columns[ci + 1 :]) <= {"Description"}
    for end in ends:
        if (before_description and end not in sentences) or text[end - 1] == " ":
            continue
        cell = text[start:end]
        if _cell_fits(column, cell, partial, flattened=True):
            partial[column] = cell
            yield from _assign_text(text, sentences, columns, ci + 1, end, partial)
            del partial[column]


def _cell_ends(column: str, text: str, start: int) -> Iterable[int]:
    """Where a cell of this column starting at ``start`` can end (a superset; ``_cell_fits`` decides)."""
    if column == "Description":
        return [len(text)]
    if column in ("Type", "Required"):
        words = TYPES if column == "Type" else ("Yes", "No")
        return [start + len(w) for w in words if text.startswith(w, start)]
    if column == "Parameter":
        m = _NAME_CHARS_RE.match(text, start)
        return range(start + 1, (m.end() if m else start) + 1)
    return range(start + 1, len(text) + 1)


def _candidate(cells: dict[str, str]) -> _Candidate:
    type_ = cells.get("Type")
    default = _typed_default(cells.get("Default", "-"), type_)
    minimum: int | float | None = None
    maximum: int | float | None = None
    per_dimension = False
    enum: tuple[str, ...] | None = None
    range_cell = cells.get("Range", "-")
    m = _RANGE_RE.fullmatch(range_cell)
    if m:
        per_dimension = m.group(3) is not None
        minimum, maximum = _bound(m.group(1), type_, per_dimension), _bound(m.group(2), type_, per_dimension)
    elif range_cell != "-":
        enum = tuple(v.strip() for v in range_cell.split(","))
    facts = Facts(
        name=cells["Parameter"],
        type=type_,
        required=cells.get("Required") == "Yes",
        default=default,
        minimum=minimum,
        maximum=maximum,
        per_dimension=per_dimension,
        enum=enum,
        numeric=(isinstance(default, (int, float)) and not isinstance(default, bool)) or m is not None,
    )
    return _Candidate(cells, facts, _consistent(default, minimum, maximum, per_dimension, enum))


def _bound(text: str, type_: str | None, per_dimension: bool) -> int | float:
    if type_ == "number":
        return float(text)
    if type_ == "integer" or per_dimension or _INT_RE.fullmatch(text):
        return int(float(text))
    return float(text)


def _typed_default(cell: str, type_: str | None) -> Any:
    if cell == "-":
        return None
    if type_ == "integer":
        return int(cell)
    if type_ == "number":
        return float(cell)
    if type_ == "boolean":
        return cell.lower() == "true"
    if type_ == "array":
        if cell.startswith("http"):
            return ["http" + part for part in cell.split("http")[1:]]
        return [v.strip() for v in cell.split(",")]
    if type_ == "object":
        try:
            return json.loads(cell)
        except json.JSONDecodeError:
            return cell
    return cell


def _consistent(
    default: Any,
    minimum: int | float | None,
    maximum: int | float | None,
    per_dimension: bool,
    enum: tuple[str, ...] | None,
) -> bool:
    if default is None:
        return True
    if enum is not None:
        text = str(default).lower() if isinstance(default, bool) else str(default)
        return text in enum
    if minimum is None or maximum is None:
        return True
    if per_dimension:
        m = _SIZE_RE.fullmatch(default) if isinstance(default, str) else None
        return m is not None and all(minimum <= int(side) <= maximum for side in m.groups())
    if isinstance(default, (int, float)) and not isinstance(default, bool):
        return minimum <= default <= maximum
    return True
