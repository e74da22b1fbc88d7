"""``wavespeed-mock drift live``: the fake's served schemas against the live model catalog (or a saved one).

Both sides go through the same door: our served request schemas are exported to the catalog format and read
back into tables (``modelcatalog``), the live catalog's entries are read the same way, and each pair is diffed by
``drift.diff_tables``, so the kinds and the breaking rule are exactly those of ``drift docs``. "Old" is the fake
(what a client was tested against), "new" is the live API: breaking means a request the fake accepts may be
refused for real. Only request tables are compared: a catalog documents no responses.

A model the fake serves that the live catalog lacks is breaking (its submits would 404); a live model the fake
does not serve is reported, never breaking. By default only the models the fake serves are considered;
``--models GLOB`` widens or narrows that to the matching ids of either side.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TextIO

import httpx

from mock_server.contract.catalog import Catalog, catalog_for
from mock_server.contract.drift import Change, change_line, diff_tables
from mock_server.contract.modelcatalog import (
    CatalogError,
    catalog_entries,
    export_model,
    read_catalog,
    table_from_entry,
)
from mock_server.contract.tables import EndpointTable
from mock_server.contract.userschemas import matches

DEFAULT_TARGET = "https://api.wavespeed.ai"
API_KEY_ENV = "WAVESPEED_API_KEY"
MODELS_PATH = "/api/v3/models"
OURS = "wavespeed-mock"

COMPARED = "compared"
MISSING_LIVE = "missing-live"  # served by the fake, not in the live catalog
ONLY_LIVE = "only-live"  # in the live catalog, not served by the fake
NO_SCHEMA = "no-schema"  # in both, but the live entry carries no request schema to compare


class LiveDriftError(Exception):
    """A usage or fetch problem: reported as one line, exit 2."""


@dataclass(frozen=True)
class ModelDrift:
    model: str
    status: str
    changes: list[Change] = field(default_factory=list)
    note: str = ""

    @property
    def breaking(self) -> int:
        return sum(c.breaking for c in self.changes) + (self.status == MISSING_LIVE)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"model": self.model, "status": self.status, "breaking": self.breaking}
        if self.note:
            out["note"] = self.note
        out["changes"] = [c.to_json() for c in self.changes]
        return out


@dataclass(frozen=True)
class Report:
    ours: str
    theirs: str
    models: list[ModelDrift]

    @property
    def breaking(self) -> int:
        return sum(m.breaking for m in self.models)


# ------------------------------------------------------------------------------------------------- fetching


def fetch_catalog(target: str, api_key: str, *, timeout: float = 60.0) -> tuple[Any, str]:
    """The parsed ``GET /api/v3/models`` answer of ``target`` and the URL it came from."""
    url = target.rstrip("/") + MODELS_PATH
    try:
        response = httpx.get(url, headers={"Authorization": f"Bearer {api_key}"}, timeout=timeout)
    except httpx.HTTPError as exc:
        raise LiveDriftError(f"GET {url} failed: {exc or type(exc).__name__}") from None
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code != 200:
        message = body.get("message") if isinstance(body, dict) else None
        raise LiveDriftError(f"GET {url} answered HTTP {response.status_code}" + (f": {message}" if message else ""))
    if body is None:
        raise LiveDriftError(f"GET {url} did not answer JSON")
    return body, url


# ------------------------------------------------------------------------------------------------ comparing


def _request_only(table: EndpointTable) -> EndpointTable:
    return replace(table, response=(), result_request=(), result_response=())


def compare(
    ours: Catalog, document: Any, *, origin: str, url: str | None = None, models: Sequence[str] = ()
) -> list[ModelDrift]:
    """Each considered model's drift from the fake (``ours``) to the catalog ``document``."""
    theirs = {entry["model_id"]: entry for entry in catalog_entries(document, origin)}
    if models:
        names = [m for m in ours.endpoints if matches(m, models)]
        names += [m for m in theirs if m not in ours.endpoints and matches(m, models)]
    else:
        names = list(ours.endpoints)
    found: list[ModelDrift] = []
    for name in names:
        if name not in theirs:
            found.append(ModelDrift(name, MISSING_LIVE, note="served by the fake, absent from the live catalog"))
            continue
        if name not in ours.endpoints:
            found.append(ModelDrift(name, ONLY_LIVE, note="in the live catalog, not served by the fake"))
            continue
        served = table_from_entry(export_model(ours.endpoints[name]), origin=OURS, version="served")
        try:
            live = table_from_entry(theirs[name], origin=origin, url=url)
        except CatalogError as exc:
            found.append(ModelDrift(name, NO_SCHEMA, note=str(exc)))
            continue
        found.append(ModelDrift(name, COMPARED, diff_tables(_request_only(served), _request_only(live))))
    return found


# ------------------------------------------------------------------------------------------------ reporting


def render_text(report: Report) -> str:
    lines = [f"live drift: {report.ours} -> {report.theirs}"]
    for m in report.models:
        if m.status != COMPARED:
            marker = "BREAKING" if m.breaking else "note"
            lines.append(f"{m.model}: {marker}  {m.status}  ({m.note})")
            continue
        breaking = sum(c.breaking for c in m.changes)
        lines.append(f"{m.model}: " + (f"{len(m.changes)} changes, {breaking} breaking" if m.changes else "no drift"))
        lines += [change_line(c, "BREAKING" if c.breaking else "ok") for c in m.changes]
    changes = sum(len(m.changes) for m in report.models)
    counts = {
        status: sum(m.status == status for m in report.models)
        for status in (COMPARED, MISSING_LIVE, ONLY_LIVE, NO_SCHEMA)
    }
    lines.append(
        f"summary: {len(report.models)} models ({counts[COMPARED]} compared, {counts[MISSING_LIVE]} only "
        f"in the fake, {counts[ONLY_LIVE]} only live, {counts[NO_SCHEMA]} without a live schema), "
        f"{changes} changes, {report.breaking} breaking"
    )
    return "\n".join(lines) + "\n"


def render_json(report: Report) -> str:
    data = {
        "ours": report.ours,
        "theirs": report.theirs,
        "breaking": report.breaking,
        "models": [m.to_json() for m in report.models],
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def run_drift_live(
    *,
    target: str | None = None,
    catalog_file: str | None = None,
    models: Sequence[str] = (),
    fmt: str = "text",
    schemas: str | None = None,
    stream: TextIO | None = None,
    environ: dict[str, str] | None = None,
) -> int:
    """Print the report; 1 if anything breaks a client of the fake, 0 if not, 2 on a usage or fetch error."""
    out = sys.stdout if stream is None else stream
    env = os.environ if environ is None else environ
    try:
        report = _report(target, catalog_file, models, fmt, schemas, env)
    except (LiveDriftError, CatalogError) as exc:
        sys.stderr.write(f"drift live: {exc}\n")
        return 2
    out.write(render_json(report) if fmt == "json" else render_text(report))
    return 1 if report.breaking else 0


def _report(
    target: str | None, catalog_file: str | None, models: Sequence[str], fmt: str, schemas: str | None, env: Any
) -> Report:
    if fmt not in ("text", "json"):
        raise LiveDriftError(f"unknown format {fmt!r} (use text or json)")
    if target and catalog_file:
        raise LiveDriftError("give --target URL or --catalog FILE, not both")
    try:
        ours = catalog_for(schemas)
    except (OSError, ValueError, KeyError) as exc:
        raise LiveDriftError(f"--schemas {schemas}: {exc}") from None
    label = OURS + (f" (+ {schemas})" if schemas else "")
    if catalog_file:
        try:
            document = read_catalog(catalog_file)
        except OSError as exc:
            raise LiveDriftError(f"cannot read {catalog_file}: {exc.strerror or exc}") from None
        return Report(label, catalog_file, compare(ours, document, origin=catalog_file, models=models))
    base = target or DEFAULT_TARGET
    key = env.get(API_KEY_ENV, "")
    if not key:
        raise LiveDriftError(
            f"set {API_KEY_ENV} to read the catalog of {base}, or compare a saved one with --catalog FILE"
        )
    document, url = fetch_catalog(base, key)
    return Report(label, url, compare(ours, document, origin=url, url=url, models=models))
