"""``wavespeed-mock drift report FILE...``: every drift finding in one place, classified, with one exit code.

Reads, whatever their order, the JSON of
- ``drift docs --format json`` (a document with ``changes`` and ``lint``),
- ``drift live --format json`` (the same ``Change`` records under ``changes``; no ``lint``),
- the proxy's ``--report`` file (``"report": "wavespeed-mock proxy report"``; JSON lines of findings work too),
- the conformance suite's ``--report`` file (``violations``, ``counts``),
- and this command's own ``--format json`` output (so reports can be combined again).

A document may say what it is with a top-level ``"source"`` (``docs``, ``live``, ``proxy``, ``conformance``).

Breaking, per source: docs/live/proxy findings carry their own ``breaking`` flag (the ``Change`` rules); docs
lint findings never break; every conformance violation breaks (the target does what the contract forbids).
Exit 1 on any breaking finding, 0 otherwise, 2 (one line on stderr) when an input cannot be read.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

PROXY_REPORT = "wavespeed-mock proxy report"
COMBINED_REPORT = "wavespeed-mock drift report"
SOURCES = ("docs", "live", "proxy", "conformance")


class UnreadableReport(ValueError):
    """An input that is not one of the known report shapes."""


@dataclass(frozen=True)
class Finding:
    source: str
    file: str
    kind: str
    location: str
    breaking: bool
    detail: str
    old: Any = None
    new: Any = None
    context: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "file": self.file,
            "kind": self.kind,
            "location": self.location,
            "breaking": self.breaking,
            "detail": self.detail,
            "old": self.old,
            "new": self.new,
            "context": self.context,
        }


@dataclass(frozen=True)
class Input:
    file: str
    source: str
    findings: list[Finding]


# ------------------------------------------------------------------------------------------------- reading


def read(path: str | Path) -> Input:
    """One report file as findings; :class:`UnreadableReport` (or ``OSError``) when it is none of ours."""
    name = str(path)
    text = Path(path).read_text(encoding="utf-8")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as first_error:
        return _json_lines(name, text, first_error)
    return interpret(name, document)


def interpret(name: str, document: Any) -> Input:
    if isinstance(document, list):
        return Input(name, "mixed", [_from_change(name, _source_of(item, "unknown"), item) for item in document])
    if not isinstance(document, dict):
        raise UnreadableReport(f"a JSON {type(document).__name__}, not a report object")
    declared = document.get("source") if document.get("source") in SOURCES else None
    if document.get("report") == COMBINED_REPORT and isinstance(document.get("findings"), list):
        return Input(name, "combined", [_from_combined(name, item) for item in document["findings"]])
    if document.get("report") == PROXY_REPORT or (declared == "proxy" and "findings" in document):
        findings = document.get("findings")
        if not isinstance(findings, list):
            raise UnreadableReport("a proxy report without a findings list")
        return Input(name, "proxy", [_from_change(name, "proxy", item) for item in findings])
    if isinstance(document.get("violations"), list) and (
        declared == "conformance" or "counts" in document or "target" in document
    ):
        return Input(name, "conformance", _from_conformance(name, document))
    if isinstance(document.get("changes"), list):
        # drift docs always writes "lint"; a changes document without it is the live catalog's.
        source = declared or ("docs" if "lint" in document else "live")
        return Input(name, source, _from_changes_document(name, source, document))
    raise UnreadableReport(
        "not a drift docs/live, proxy or conformance report (no changes, findings or violations list)"
    )


def _json_lines(name: str, text: str, first_error: json.JSONDecodeError) -> Input:
    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    if len(lines) < 2:
        raise UnreadableReport(f"not JSON ({first_error.msg} at line {first_error.lineno} column {first_error.colno})")
    findings: list[Finding] = []
    for number, line in lines:
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UnreadableReport(f"neither JSON nor JSON lines (line {number}: {exc.msg})") from None
        if not isinstance(item, dict):
            raise UnreadableReport(f"JSON lines, but line {number} is not an object")
        findings.append(_from_change(name, _source_of(item, "proxy"), item))
    return Input(name, "proxy", findings)


def _source_of(item: Any, default: str) -> str:
    source = item.get("source") if isinstance(item, dict) else None
    return source if isinstance(source, str) and source else default


def _require_change(item: Any) -> dict[str, Any]:
    if (
        not isinstance(item, dict)
        or not isinstance(item.get("kind"), str)
        or not isinstance(item.get("breaking"), bool)
    ):
        raise UnreadableReport(f"a finding without kind and breaking: {json.dumps(item)[:120]}")
    return item


def _from_change(
    name: str, source: str, raw: Any, *, breaking: bool | None = None, context: dict[str, Any] | None = None
) -> Finding:
    item = _require_change(raw)
    known = {"source", "kind", "location", "breaking", "detail", "old", "new"}
    extra = {k: v for k, v in item.items() if k not in known}
    return Finding(
        source,
        name,
        item["kind"],
        str(item.get("location", "")),
        item["breaking"] if breaking is None else breaking,
        str(item.get("detail", "")),
        item.get("old"),
        item.get("new"),
        {**extra, **(context or {})},
    )


def _from_changes_document(name: str, source: str, document: dict[str, Any]) -> list[Finding]:
    pair = {k: document[k] for k in ("old", "new") if isinstance(document.get(k), str)}
    findings = [
        _from_change(name, source, item, context={"compared": pair} if pair else None) for item in document["changes"]
    ]
    lint = document.get("lint")
    if isinstance(lint, dict):
        for side, items in lint.items():
            for item in items if isinstance(items, list) else []:
                # A page whose example disagrees with its own table is a docs defect, not an API change.
                findings.append(
                    _from_change(
                        name,
                        source,
                        item,
                        breaking=False,
                        context={"lint": side, **({"compared": pair} if pair else {})},
                    )
                )
    return findings


def _from_conformance(name: str, document: dict[str, Any]) -> list[Finding]:
    findings: list[Finding] = []
    for raw in document["violations"]:
        if not isinstance(raw, dict):
            raise UnreadableReport(f"a conformance violation that is not an object: {json.dumps(raw)[:120]}")
        where = " ".join(str(raw.get(k, "")) for k in ("where", "path") if raw.get(k))
        endpoint = str(raw.get("endpoint", "-"))
        findings.append(
            Finding(
                "conformance",
                name,
                "conformance-violation",
                f"{endpoint}: {where}".strip(),
                True,
                f"[{raw.get('property', '?')}] expected {raw.get('expected')}; observed {raw.get('observed')}",
                raw.get("expected"),
                raw.get("observed"),
                {k: raw[k] for k in ("property", "test", "endpoint", "where", "path", "request") if raw.get(k)},
            )
        )
    raw_counts = document.get("counts")
    counts: dict[str, Any] = raw_counts if isinstance(raw_counts, dict) else {}
    failed = counts.get("failed", 0) if isinstance(counts.get("failed"), int) else 0
    if document.get("ok") is False and not findings and failed:
        findings.append(
            Finding(
                "conformance",
                name,
                "conformance-failed",
                "(suite)",
                True,
                f"{failed} test(s) failed without a recorded violation",
            )
        )
    if counts.get("passed") == 0 and not findings:
        # A run that checked nothing (budget 0, everything skipped) must not read as a clean bill.
        findings.append(
            Finding(
                "conformance",
                name,
                "nothing-checked",
                "(suite)",
                False,
                f"no property passed or failed (exit status {document.get('exit_status')}); "
                f"{counts.get('skipped', 0)} skipped",
            )
        )
    return findings


def _from_combined(name: str, raw: Any) -> Finding:
    item = _require_change(raw)
    context = item.get("context")
    return Finding(
        _source_of(item, "unknown"),
        str(item.get("file", name)),
        item["kind"],
        str(item.get("location", "")),
        item["breaking"],
        str(item.get("detail", "")),
        item.get("old"),
        item.get("new"),
        dict(context) if isinstance(context, dict) else {},
    )


# ----------------------------------------------------------------------------------------------- rendering


def _order(source: str) -> int:
    return SOURCES.index(source) if source in SOURCES else len(SOURCES)


def _value(v: Any, limit: int = 50) -> str:
    text = json.dumps(v, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def render_text(inputs: Sequence[Input]) -> str:
    findings = [f for i in inputs for f in i.findings]
    breaking = sum(f.breaking for f in findings)
    lines = [f"drift report: {len(inputs)} input(s), {len(findings)} finding(s), {breaking} breaking"]
    for source in sorted({f.source for f in findings} | {i.source for i in inputs if not i.findings}, key=_order):
        mine = [f for f in findings if f.source == source]
        files = sorted({i.file for i in inputs if i.source == source} | {f.file for f in mine})
        lines.append(
            f"{source} ({len(files)} file(s)): {len(mine)} finding(s), {sum(f.breaking for f in mine)} breaking"
        )
        for f in sorted(mine, key=lambda f: not f.breaking):
            count = f.context.get("count")
            times = f" x{count}" if isinstance(count, int) and count > 1 else ""
            change = f": {_value(f.old)} -> {_value(f.new)}" if f.source != "conformance" else ""
            marker = "BREAKING" if f.breaking else "lint" if "lint" in f.context else "ok"
            lines.append(f"  {marker:<8}  {f.kind:<22}  {f.location}{change}{times}  ({f.detail})  [{f.file}]")
    by_source = ", ".join(f"{s} {n}" for s, n in _breaking_by_source(findings).items() if n)
    lines.append(
        f"summary: {breaking} breaking"
        + (f" ({by_source})" if by_source else "")
        + f", {len(findings) - breaking} non-breaking"
    )
    return "\n".join(lines) + "\n"


def _breaking_by_source(findings: Sequence[Finding]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for f in sorted(findings, key=lambda f: _order(f.source)):
        counts[f.source] = counts.get(f.source, 0) + int(f.breaking)
    return counts


def render_json(inputs: Sequence[Input]) -> str:
    findings = [f for i in inputs for f in i.findings]
    by_source: dict[str, dict[str, int]] = {}
    for f in findings:
        slot = by_source.setdefault(f.source, {"breaking": 0, "non_breaking": 0})
        slot["breaking" if f.breaking else "non_breaking"] += 1
    document = {
        "report": COMBINED_REPORT,
        "version": 1,
        "inputs": [
            {
                "file": i.file,
                "source": i.source,
                "findings": len(i.findings),
                "breaking": sum(f.breaking for f in i.findings),
            }
            for i in inputs
        ],
        "breaking": sum(f.breaking for f in findings),
        "non_breaking": sum(not f.breaking for f in findings),
        "by_source": dict(sorted(by_source.items(), key=lambda kv: _order(kv[0]))),
        "findings": [f.to_json() for f in sorted(findings, key=lambda f: (_order(f.source), not f.breaking))],
    }
    return json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n"


def run_drift_report(paths: Sequence[str], fmt: str = "text", stream: TextIO | None = None) -> int:
    """Print the combined report; 1 if anything breaks, 0 if not, 2 when an input cannot be read."""
    out = sys.stdout if stream is None else stream
    if fmt not in ("text", "json"):
        sys.stderr.write(f"drift report: unknown format {fmt!r} (use text or json)\n")
        return 2
    inputs: list[Input] = []
    for path in paths:
        try:
            inputs.append(read(path))
        except (OSError, UnicodeDecodeError, UnreadableReport) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            sys.stderr.write(f"drift report: cannot read {path}: {reason}\n")
            return 2
    out.write((render_json if fmt == "json" else render_text)(inputs))
    return 1 if any(f.breaking for i in inputs for f in i.findings) else 0
