"""The model catalog in the real API's format (``GET /api/v3/models``): export our endpoints, import a catalog.

The official CLI, the MCP server and the desktop app read the catalog as
``data[*] = {model_id, name, description, type, base_price, sort_order, formula,
api_schema: {api_schemas: [{type: "model_run", method, server, api_path, request_schema}]}}`` and validate
inputs against ``request_schema`` (``properties``, ``required``, ``x-order-properties``) — reference §1, §8.

* Export (``export_models``): each served endpoint with its generated request schema, minus our own ``x-``
  extensions (provenance and reconciliation notes are for us, not for a client validating inputs). A ``W*H``
  size keeps its ``pattern`` and states its per-side bounds as ``minimum``/``maximum`` on the string, the way
  WaveSpeed's tables print "256 ~ 1536 per dimension".
* Import (``tables_from_catalog``): each catalog entry becomes one ``EndpointTable`` (request rows only: a
  catalog has no response schema), with provenance naming the catalog and the model. Facts the table model
  cannot hold (``minItems``, ``pattern``, UI hints, prose) are dropped; the catalog's name, type, sort order,
  price and pricing formula ride along in ``extra`` so a re-export keeps them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mock_server.contract.catalog import Catalog, Endpoint
from mock_server.contract.tables import TYPES, EndpointTable, Param, Source

Json = dict[str, Any]

SOURCE_KIND = "catalog"  # Source.kind of a table read from a model catalog
VERSION_PREFIX = "catalog-"
RUN_TYPE = "model_run"
# Our endpoint kinds → the catalog's task types (the CLI filters on these: "text-to-image, image-to-video, ...").
TYPE_OF_KIND = {"text-to-image": "text-to-image", "edit": "image-to-image", "multi-edit": "image-to-image"}
# Pricing formulas are JSONata expressions over base_price and the inputs (wavespeed-cli pricing-vars.ts).
PER_IMAGE_FORMULA = '{"total_price": base_price * num_images}'
FLAT_FORMULA = '{"total_price": base_price * 1}'
_DESCRIPTIONS = {
    "text-to-image": "Generates pictures from a text prompt.",
    "image-to-image": "Edits input pictures following a text instruction.",
    "text-to-video": "Generates a short video clip from a text prompt.",
    "image-to-video": "Animates an input picture into a short video clip.",
}
_PRICE_DRIVER = re.compile(r"\bnum_images\b")


class CatalogError(ValueError):
    """A catalog document (or one of its models) is not in the format ``GET /api/v3/models`` answers with."""


# ------------------------------------------------------------------------------------------------------ export


def export_models(catalog: Catalog, *, server: str | None = None) -> list[Json]:
    """The ``data`` list of ``GET /api/v3/models`` for every endpoint ``catalog`` serves, in catalog order."""
    return [
        export_model(endpoint, position, server=server)
        for position, endpoint in enumerate(catalog.endpoints.values(), start=1)
    ]


def export_model(endpoint: Endpoint, position: int = 0, *, server: str | None = None) -> Json:
    """One catalog entry. ``position`` is the sort order used when the endpoint's source gave none."""
    known: Json = dict(endpoint.info.get("catalog") or {})
    kind = str(known.get("type") or TYPE_OF_KIND.get(endpoint.kind, endpoint.kind))
    run: Json = {"type": RUN_TYPE, "method": "POST"}
    if server:
        run["server"] = server
    run["api_path"] = f"/api/v3/{endpoint.model}"
    run["request_schema"] = export_request_schema(endpoint.request_schema)
    entry: Json = {
        "model_id": endpoint.model,
        "name": known.get("name") or display_name(endpoint.model),
        # Our own words: the docs' and catalogs' prose is never copied (schemas/sources/README.md).
        "description": _DESCRIPTIONS.get(kind, f"A {kind} model."),
        "type": kind,
        # What the fake charges (GET /api/v3/balance meters it); 0 where no price was documented.
        "base_price": endpoint.price_usd if endpoint.price_usd is not None else 0.0,
        "sort_order": known.get("sort_order", position),
        "formula": known.get("formula") or _formula(endpoint),
        "api_schema": {"api_schemas": [run]},
    }
    return entry


def _formula(endpoint: Endpoint) -> str:
    if endpoint.price_unit == "image" and "num_images" in endpoint.properties:
        return PER_IMAGE_FORMULA
    return FLAT_FORMULA


def display_name(model: str) -> str:
    """``wavespeed-ai/flux-kontext-pro/text-to-image`` → ``Flux Kontext Pro Text To Image``."""
    path = model.split("/", 1)[1] if "/" in model else model
    return " ".join(word[:1].upper() + word[1:] for word in re.split(r"[-/_]", path) if word)


def export_request_schema(schema: Json) -> Json:
    """A generated request schema as the catalog's ``request_schema``: properties, required, their order."""
    properties = {name: _public(prop) for name, prop in schema.get("properties", {}).items()}
    return {
        "type": "object",
        "properties": properties,
        "required": list(schema.get("required", [])),
        "x-order-properties": list(properties),
    }


def _public(prop: Json) -> Json:
    out: Json = {}
    for key, value in prop.items():
        if key.startswith("x-"):
            continue
        if key == "items" and isinstance(value, dict):
            value = _public(value)
        elif key == "properties" and isinstance(value, dict):
            value = {name: _public(p) for name, p in value.items()}
        out[key] = value
    bounds = prop.get("x-dimension-range")
    if isinstance(bounds, dict):
        out["minimum"], out["maximum"] = bounds["minimum"], bounds["maximum"]
    return out


# ------------------------------------------------------------------------------------------------------ import


def read_catalog(path: str | Path) -> Any:
    """The parsed JSON of a saved catalog file."""
    p = Path(path)
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CatalogError(f"{p}: not a JSON catalog ({exc})") from None


def catalog_entries(document: Any, origin: str) -> list[Json]:
    """The model entries of the whole ``{code, message, data: [...]}`` envelope or of the bare ``data`` list."""
    if isinstance(document, dict) and "data" in document:
        code = document.get("code", 200)
        if code != 200:
            raise CatalogError(f"{origin}: the envelope says code {code}: {document.get('message', '')}".rstrip(": "))
        document = document["data"]
    if not isinstance(document, list):
        raise CatalogError(f"{origin}: expected the models envelope or a list of models, got {type(document).__name__}")
    for i, entry in enumerate(document):
        if not isinstance(entry, dict) or not isinstance(entry.get("model_id"), str) or not entry["model_id"]:
            raise CatalogError(f"{origin}: entry {i} has no model_id")
    return document


def is_catalog(document: Any) -> bool:
    """Whether parsed JSON looks like a models catalog (rather than one of our source tables)."""
    try:
        catalog_entries(document, "")
    except CatalogError:
        return False
    return True


def request_schema_of(entry: Json) -> Json | None:
    """The ``model_run`` request schema of one catalog entry (the first API schema when none says model_run)."""
    schemas = (entry.get("api_schema") or {}).get("api_schemas") or []
    runs = [s for s in schemas if isinstance(s, dict) and s.get("type") == RUN_TYPE] or [
        s for s in schemas if isinstance(s, dict)
    ]
    schema = runs[0].get("request_schema") if runs else None
    return schema if isinstance(schema, dict) and isinstance(schema.get("properties"), dict) else None


def version_for(origin: str) -> str:
    """The table version of everything read from one catalog: ``catalog-<file stem or host>``."""
    stem = Path(origin).stem if not origin.startswith(("http://", "https://")) else origin.split("//", 1)[1]
    return VERSION_PREFIX + (re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("_") or "catalog")


def table_from_entry(entry: Json, *, origin: str, version: str | None = None, url: str | None = None) -> EndpointTable:
    """One catalog entry as a source table. ``origin`` (the file name, or the URL fetched) goes in provenance."""
    model = entry["model_id"]
    schema = request_schema_of(entry)
    if schema is None:
        raise CatalogError(f"{origin}: {model} has no api_schema.api_schemas[].request_schema.properties")
    return EndpointTable(
        model=model,
        version=version or version_for(origin),
        source=Source(kind=SOURCE_KIND, ref=f"{Path(origin).name if url is None else origin}: {model}", url=url),
        request=_params(schema),
        extra=_extra(entry),
    )


def tables_from_catalog(
    document: Any, *, origin: str, url: str | None = None, models: Iterable[str] | None = None
) -> list[EndpointTable]:
    """Every model of a catalog document as a table (only ``models`` when given); raise on the first bad one."""
    wanted = None if models is None else set(models)
    return [
        table_from_entry(entry, origin=origin, url=url)
        for entry in catalog_entries(document, origin)
        if wanted is None or entry["model_id"] in wanted
    ]


def _params(schema: Json) -> tuple[Param, ...]:
    properties: Json = schema["properties"]
    order = [name for name in schema.get("x-order-properties") or [] if name in properties]
    order += [name for name in properties if name not in order]
    required = set(schema.get("required") or [])
    return tuple(
        _param(name, properties[name], name in required, row)
        for row, name in enumerate(order, start=1)
        if isinstance(properties[name], dict)
    )


def _param(name: str, prop: Json, required: bool, row: int) -> Param:
    kind = _type_of(prop)
    minimum, maximum = _number(prop.get("minimum")), _number(prop.get("maximum"))
    bounds = prop.get("x-dimension-range")
    if isinstance(bounds, dict):
        minimum, maximum = _number(bounds.get("minimum")), _number(bounds.get("maximum"))
    # A numeric bound on a string means nothing to JSON Schema; WaveSpeed's tables only ever put one on a "W*H"
    # size, where it bounds each side ("256 ~ 1536 per dimension").
    per_dimension = kind == "string" and (minimum is not None or maximum is not None)
    enum = prop.get("enum")
    raw_items = prop.get("items")
    items: Json = raw_items if isinstance(raw_items, dict) else {}
    item_fields: tuple[Param, ...] = ()
    if isinstance(items.get("properties"), dict):
        item_fields = _params({"properties": items["properties"], "required": items.get("required") or []})
    max_items = prop.get("maxItems")
    return Param(
        name=name,
        type=kind,
        required=required,
        default=prop.get("default"),
        minimum=minimum,
        maximum=maximum,
        per_dimension=per_dimension,
        enum=tuple(enum) if isinstance(enum, list) else None,
        item_type=_type_of(items) if items else None,
        max_items=max_items if isinstance(max_items, int) and not isinstance(max_items, bool) else None,
        item_fields=item_fields,
        row=row,
    )


def _type_of(prop: Json) -> str | None:
    kind = prop.get("type")
    if isinstance(kind, list):  # ["string", "null"]: the table model has no nullability; keep the real type
        kind = next((k for k in kind if k != "null"), None)
    return kind if kind in TYPES else None


def _number(value: Any) -> int | float | None:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _extra(entry: Json) -> Json:
    known = {k: entry[k] for k in ("name", "type", "sort_order", "formula", "base_price") if entry.get(k) is not None}
    extra: Json = {"catalog": known} if known else {}
    price = _number(entry.get("base_price"))
    if price is not None:
        # What the fake charges per completed prediction: per image when the formula multiplies by num_images.
        extra["price_usd"] = price
        extra["price_unit"] = "image" if _PRICE_DRIVER.search(str(entry.get("formula") or "")) else "run"
    return extra
