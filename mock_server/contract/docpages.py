"""Read a saved WaveSpeedAI documentation page into an ``EndpointTable``.

Pages were saved in three layouts (see ``detect_layout``):

* ``markdown-cells``: every table cell on its own line, cells separated by blank lines, markdown escapes;
* ``pipe-table``: ``a | b | c |`` rows under a ``---|---|`` separator;
* ``flattened``: one row per line with the cells run together (``num_inference_stepsintegerNo281 ~ 50The...``).

In every layout a cell can be missing (an empty cell in the page's source simply disappears, or in pipe tables
the following cells shift left), so a row is never read by position: ``mock_server.contract._cells`` tries every way of
splitting it into the table's columns and keeps the one whose cells fit best. A row that splits equally well
into different numbers (``112 ~ 50``: default 1 or 11?) is ambiguous, and ``PageParseError`` says so rather
than guess.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mock_server.contract._cells import NAME_RE, Facts, RowSplitError, segment
from mock_server.contract.tables import TYPES, EndpointTable, Field, Param, Source

COLUMNS = ("Parameter", "Type", "Required", "Default", "Range", "Description")

# Section headings, normalised (lower case, no '#', no '[](#anchor)'), to the EndpointTable attribute.
_SECTIONS = {
    "request parameters": "request",
    "response parameters": "response",
    "result request parameters": "result_request",
    "result response parameters": "result_response",
}

_MD_ESCAPE_RE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|~<>])")
_HEADING_ANCHOR_RE = re.compile(r"\[\]\(#[^)]*\)")
_FLAT_HEADER_RE = re.compile(r"Parameter(?:Type|Required|Default|Range|Description)+")
_FLAT_COLUMN_RE = re.compile("|".join(COLUMNS))
_PIPE_HEADER_RE = re.compile(r"\|?\s*Parameter\s*\|\s*Type\s*\|.*")
_PIPE_SEPARATOR_RE = re.compile(r"\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)*\|?")
_LINK_LINE_RE = re.compile(r"\[[^\]]*\]\([^)]*\)")
_CURL_POST_RE = re.compile(r"curl\b[^\n]*--request\s+POST\s+[\"']?https?://[^/\s\"']+/api/v3/([^\s\"'\\]+)")
_SOURCE_URL_RE = re.compile(r"^来源:\s*(\S+)", re.MULTILINE)
_DOCS_MODEL_RE = re.compile(r"/docs-api/(\S+?)/?$")
_DATA_RAW_RE = re.compile(r"--data-raw\s+'")


class PageParseError(ValueError):
    """The page has no request table, or a table row cannot be split into cells."""


@dataclass(frozen=True)
class _Header:
    layout: str
    columns: tuple[str, ...]
    start: int  # index of the header's first line
    end: int  # index of the first line after the header (and pipe separator)


@dataclass(frozen=True)
class _Row:
    line: int  # 0-based index of the row's first line
    cells: tuple[str, ...] | str  # explicit cells (markdown-cells, pipe-table) or run-together text (flattened)


# ----------------------------------------------------------------------------------------------- public API


def parse_page_file(path: str | Path) -> EndpointTable:
    p = Path(path)
    return parse_page(p.read_text(encoding="utf-8"), p.name)


def detect_layout(text: str) -> str:
    """The layout of the page's first parameter table."""
    headers = _find_headers(text.splitlines())
    if not headers:
        raise PageParseError("no parameter table found (no 'Parameter / Type / ...' header in any layout)")
    return headers[0].layout


def parse_page(text: str, name: str) -> EndpointTable:
    lines = text.splitlines()
    headers = _find_headers(lines)
    tables: dict[str, list[tuple[_Header, list[_Row]]]] = {}
    for i, header in enumerate(headers):
        stop = headers[i + 1].start if i + 1 < len(headers) else len(lines)
        kind = _table_kind(lines, header, headers[i - 1].end if i else 0, tables)
        tables.setdefault(kind, []).append((header, _table_rows(lines, header, stop)))
    if "request" not in tables:
        raise PageParseError(f"{name}: no request parameter table found")
    source_url = _source_url(text)
    return EndpointTable(
        model=_model(text, source_url, name),
        version="docs-" + Path(name).stem,
        source=Source(kind="doc-page", ref=name, layout=tables["request"][0][0].layout, url=source_url),
        request=_params(tables.get("request", []), lines, name),
        response=_fields(tables.get("response", []), lines, name),
        result_request=_params(tables.get("result_request", []), lines, name),
        result_response=_fields(tables.get("result_response", []), lines, name),
        example=_example(text),
        extra={},
    )


# --------------------------------------------------------------------------------------- page-level facts


def _source_url(text: str) -> str | None:
    m = _SOURCE_URL_RE.search(text)
    return m.group(1) if m else None


def _model(text: str, source_url: str | None, name: str) -> str:
    m = _CURL_POST_RE.search(text)
    if m:
        return m.group(1).rstrip("/")
    if source_url:
        d = _DOCS_MODEL_RE.search(source_url)
        if d:
            return d.group(1)
    raise PageParseError(f"{name}: no model found (no POST curl to /api/v3/<model>, no 来源 docs-api URL)")


def _example(text: str) -> dict[str, Any] | None:
    m = _DATA_RAW_RE.search(text)
    if not m:
        return None
    try:
        value, _ = json.JSONDecoder().raw_decode(text, m.end())
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


# ------------------------------------------------------------------------------------- headers and tables


def _find_headers(lines: list[str]) -> list[_Header]:
    headers: list[_Header] = []
    i = 0
    while i < len(lines):
        header = _header_at(lines, i)
        if header is None:
            i += 1
            continue
        headers.append(header)
        i = header.end
    return headers


def _header_at(lines: list[str], i: int) -> _Header | None:
    line = lines[i].strip()
    if _FLAT_HEADER_RE.fullmatch(line):
        return _Header("flattened", tuple(_FLAT_COLUMN_RE.findall(line)), i, i + 1)
    if _PIPE_HEADER_RE.fullmatch(line):
        pipe_columns = tuple(_pipe_cells(line))
        if not set(pipe_columns) <= set(COLUMNS):
            return None
        end = i + 1
        if end < len(lines) and _PIPE_SEPARATOR_RE.fullmatch(lines[end].strip()):
            end += 1
        return _Header("pipe-table", pipe_columns, i, end)
    if line == "Parameter":
        cell_columns = ["Parameter"]
        j = _next_nonblank(lines, i + 1)
        while j < len(lines) and lines[j].strip() in COLUMNS and lines[j].strip() not in cell_columns:
            cell_columns.append(lines[j].strip())
            j = _next_nonblank(lines, j + 1)
        if len(cell_columns) >= 2 and cell_columns[1] == "Type":
            return _Header("markdown-cells", tuple(cell_columns), i, j)
    return None


def _next_nonblank(lines: list[str], j: int) -> int:
    while j < len(lines) and not lines[j].strip():
        j += 1
    return j


def _heading(line: str) -> str:
    return _HEADING_ANCHOR_RE.sub("", line.strip().lstrip("#")).strip().lower()


def _table_kind(
    lines: list[str], header: _Header, floor: int, seen: dict[str, list[tuple[_Header, list[_Row]]]]
) -> str:
    """Which table a header starts: the nearest section heading above it, else guessed from its columns."""
    for j in range(header.start - 1, floor - 1, -1):
        kind = _SECTIONS.get(_heading(lines[j]))
        if kind:
            return kind
    if "Range" in header.columns:
        return "request"
    if "Required" in header.columns:
        return "result_request"
    return "result_response" if "response" in seen else "response"


def _table_rows(lines: list[str], header: _Header, stop: int) -> list[_Row]:
    if header.layout == "pipe-table":
        return _pipe_rows(lines, header.end, stop)
    if header.layout == "flattened":
        return _flat_rows(lines, header.end, stop)
    return _cell_rows(lines, header, stop)


def _pipe_cells(line: str) -> list[str]:
    body = line.strip()
    if body.startswith("|"):
        body = body[1:]
    if body.endswith("|") and not body.endswith("\\|"):
        body = body[:-1]
    return [_unescape(c.strip()) for c in re.split(r"(?<!\\)\|", body)]


def _pipe_rows(lines: list[str], start: int, stop: int) -> list[_Row]:
    rows = []
    for j in range(start, stop):
        if "|" not in lines[j]:
            break
        rows.append(_Row(j, tuple(c for c in _pipe_cells(lines[j]) if c)))
    return rows


def _flat_rows(lines: list[str], start: int, stop: int) -> list[_Row]:
    rows = []
    for j in range(start, stop):
        line = lines[j].strip()
        # Rows start with a lower-case parameter name; anything else (blank line, heading, footer) ends the table.
        if not line or not re.match(r"[a-z_]", line):
            break
        rows.append(_Row(j, line))
    return rows


def _is_table_end(line: str) -> bool:
    s = line.strip()
    return (
        s.startswith(("#", "```", "©", "来源:"))
        or _heading(s) in _SECTIONS
        or _LINK_LINE_RE.match(s) is not None
        or _FLAT_HEADER_RE.fullmatch(s) is not None
    )


def _cell_rows(lines: list[str], header: _Header, stop: int) -> list[_Row]:
    """Group one-cell-per-line cells into rows: a row starts at a name cell followed by what follows names."""
    cells: list[tuple[int, str]] = []
    for j in range(header.end, stop):
        if not lines[j].strip():
            continue
        if _is_table_end(lines[j]):
            break
        cells.append((j, _unescape(lines[j].strip())))
    has_required = "Required" in header.columns
    rows: list[list[tuple[int, str]]] = []
    for k, (j, cell) in enumerate(cells):
        nxt = [c for _, c in cells[k + 1 : k + 3]]
        # Type words are name-shaped too, but never parameter names.
        is_name = NAME_RE.fullmatch(cell) is not None and cell not in TYPES
        if is_name and _starts_row(nxt, has_required, rows[-1] if rows else None):
            rows.append([(j, cell)])
        elif rows:
            rows[-1].append((j, cell))
        else:
            raise PageParseError(f"line {j + 1}: table cell {cell!r} does not start a row (expected a parameter name)")
    return [_Row(r[0][0], tuple(c for _, c in r)) for r in rows]


def _starts_row(nxt: list[str], has_required: bool, current: list[tuple[int, str]] | None) -> bool:
    first = nxt[0] if nxt else None
    second = nxt[1] if len(nxt) > 1 else None
    if has_required:
        return first in ("Yes", "No") or (first in TYPES and second in ("Yes", "No"))
    if first in TYPES:
        return True
    # A response row without its Type cell: a name after a complete row (one that has its description).
    return current is not None and len(current) >= 2 and current[-1][1] not in TYPES


def _unescape(cell: str) -> str:
    return _MD_ESCAPE_RE.sub(r"\1", cell)


# --------------------------------------------------------------------------------------------- rows -> model


def _facts(row: _Row, columns: tuple[str, ...], lines: list[str], page: str) -> Facts:
    try:
        return segment(row.cells, columns)
    except RowSplitError as exc:
        raise PageParseError(f"{page} line {row.line + 1}: {lines[row.line].strip()!r}: {exc}") from exc


def _params(tables: list[tuple[_Header, list[_Row]]], lines: list[str], page: str) -> tuple[Param, ...]:
    params: list[Param] = []
    for header, rows in tables:
        for row in rows:
            f = _facts(row, header.columns, lines, page)
            default = f.default
            urls = isinstance(default, list) and bool(default) and all(v.startswith("http") for v in default)
            params.append(
                Param(
                    name=f.name,
                    type=f.type,
                    required=f.required,
                    default=default,
                    minimum=f.minimum,
                    maximum=f.maximum,
                    per_dimension=f.per_dimension,
                    enum=f.enum,
                    item_type="string" if f.type == "array" and urls else None,
                    row=len(params) + 1,
                )
            )
    return tuple(params)


def _fields(tables: list[tuple[_Header, list[_Row]]], lines: list[str], page: str) -> tuple[Field, ...]:
    out: list[Field] = []
    for header, rows in tables:
        for row in rows:
            f = _facts(row, header.columns, lines, page)
            out.append(Field(name=f.name, type=f.type, row=len(out) + 1))
    return tuple(out)
