"""``wavespeed-mock schemas add``: a saved doc page or a model catalog → source tables and schemas in a user folder.

The folder has the shipped layout (``sources/`` in, ``index.json``, ``endpoints/``, ``openapi.json`` out), so
``wavespeed-mock serve --schemas DIR`` loads it exactly like the shipped schemas and ``schemas build --out DIR``
regenerates it. A fresh folder gets our ``descriptions.json`` and an ``overlays.json`` holding the response
envelope: a catalog documents only requests, while every model answers in the same ``{code, message, data}``
envelope (reference §2), so those facts come from the reference notes and say so in ``x-provenance``.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mock_server.contract import generator
from mock_server.contract.docpages import parse_page_file
from mock_server.contract.modelcatalog import CatalogError, catalog_entries, read_catalog, tables_from_catalog
from mock_server.contract.tables import EndpointTable
from mock_server.resources import data_dir

Json = dict[str, Any]

ENVELOPE_REF = "wavespeed_api.md §2: every model answers in the same {code, message, data} envelope"
# The rows every documented response table has (the shipped reference-notes tables), parents first.
ENVELOPE = (
    ("code", "integer"),
    ("message", "string"),
    ("data", "object"),
    ("data.id", "string"),
    ("data.model", "string"),
    ("data.outputs", "array"),
    ("data.urls", "object"),
    ("data.urls.get", "string"),
    ("data.has_nsfw_contents", "array"),
    ("data.status", "string"),
    ("data.created_at", "string"),
    ("data.error", "string"),
    ("data.timings", "object"),
    ("data.timings.inference", "integer"),
)


@dataclass(frozen=True)
class Added:
    tables: list[EndpointTable]
    written: list[Path]  # source tables
    changed: list[str]  # generated files that changed, relative to the folder


def read_source(path: str | Path, models: Sequence[str] = ()) -> list[EndpointTable]:
    """The tables in ``path``: a catalog JSON (every model, or those matching the ``models`` globs), one of our
    source tables, or a saved doc page."""
    p = Path(path)
    if p.suffix.lower() != ".json":
        if models:
            raise CatalogError(f"{p}: --models selects models of a catalog; a doc page holds one model")
        return [parse_page_file(p)]
    document = read_catalog(p)
    if isinstance(document, dict) and {"model", "version", "request"} <= set(document):
        return [EndpointTable.from_json(document)]
    entries = catalog_entries(document, p.name)
    chosen = [e["model_id"] for e in entries if not models or matches(e["model_id"], models)]
    if not chosen:
        raise CatalogError(f"{p}: no model matches {', '.join(models)}")
    return tables_from_catalog(document, origin=str(p), models=chosen)


def matches(model: str, globs: Sequence[str]) -> bool:
    """Whether ``model`` matches one of the shell-style ``globs`` (``*`` also matches ``/``)."""
    return any(fnmatch.fnmatchcase(model, glob) for glob in globs)


def add(source: str | Path, into: str | Path, models: Sequence[str] = ()) -> Added:
    """Write the tables of ``source`` into ``into/sources`` and regenerate the schemas of the whole folder."""
    root = Path(into)
    tables = read_source(source, models)
    sources = root / "sources"
    sources.mkdir(parents=True, exist_ok=True)
    # A table without response rows (a catalog's) needs the whole envelope from the overlays; a doc page brings
    # its own rows, so for it the overlays only get types for the fields they name (see _with_envelope).
    _ensure_support_files(sources, whole_envelope=any(not t.response for t in tables))
    written = []
    for table in tables:
        target = sources / f"{generator.slug(table.model)}@{table.version}.json"
        target.write_text(table.dumps(), encoding="utf-8")
        written.append(target)
    return Added(tables, written, build(root))


def build(root: Path) -> list[str]:
    """Regenerate ``root`` from ``root/sources``; return the changed file names.

    Unlike ``generator.write`` this never deletes a top-level file it did not generate: a user folder may hold
    the catalog file it was made from. Stale endpoint schemas (of a removed source table) are removed.
    """
    generated = generator.build(generator.load_sources(root / "sources"))
    changed = generator.diff(root, generated)
    for name in changed:
        path = root / name
        if name in generated:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(generated[name], encoding="utf-8")
        elif name.startswith("endpoints/"):
            path.unlink()
    return [name for name in changed if name in generated or name.startswith("endpoints/")]


def _ensure_support_files(sources: Path, *, whole_envelope: bool) -> None:
    shipped = data_dir("schemas") / "sources"
    descriptions = sources / "descriptions.json"
    if not descriptions.exists():
        descriptions.write_text((shipped / "descriptions.json").read_text(encoding="utf-8"), encoding="utf-8")
    path = sources / "overlays.json"
    if path.exists():
        overlays: Json = json.loads(path.read_text(encoding="utf-8"))
    else:
        # The shipped response facts (id pattern, status values, ...) but none of the request ones: those fill
        # cells of the Kontext tables (aspect_ratio values, output_format jpeg/png/webp) and could be wrong for
        # another model.
        shipped_overlays = json.loads((shipped / "overlays.json").read_text(encoding="utf-8"))
        overlays = {
            "about": "Facts that fill what the source tables leave out; each use is listed in x-provenance. "
            "Written by `wavespeed-mock schemas add`; edit freely.",
            "request": [],
            "response": shipped_overlays.get("response", []),
        }
    if _with_envelope(overlays, add_missing=whole_envelope) or not path.exists():
        path.write_text(json.dumps(overlays, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _with_envelope(overlays: Json, *, add_missing: bool) -> bool:
    """Type every envelope field an overlay names, and with ``add_missing`` add the fields none names.

    The generator creates a response field from an overlay when a model's table lacks it, which needs the
    overlay's ``type``: the shipped overlays give only a pattern or an enum (every shipped table has the rows),
    while a catalog model has no rows and a doc page may document only some. Typing an overlay changes nothing
    for a model whose table has the row.
    """
    response: list[Json] = overlays.setdefault("response", [])
    by_field = {o.get("field"): o for o in response}
    changed = False
    for name, kind in ENVELOPE:
        overlay = by_field.get(name)
        if overlay is None and add_missing:
            response.append({"field": name, "type": kind, "required": True, "ref": ENVELOPE_REF})
            changed = True
        elif overlay is not None and "type" not in overlay:
            overlay.update(type=kind, required=True)
            changed = True
    return changed
