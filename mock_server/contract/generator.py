"""Source tables → JSON Schema 2020-12 files (and the OpenAPI document built from them).

Reconciliation of several documented versions of one endpoint (see schemas/sources/README.md):
the union of their parameters; a parameter is required only when every version lists it as required;
ranges take the widest bounds, and a bound only one version states is dropped; enums take the union;
a default is kept only when every version states the same one. A documented "default" that is really a
sample input (on a required parameter, or a URL for an image input) becomes an ``examples`` entry.
The fake must not reject what some version of the docs allows; drift reports show the disagreement.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mock_server.contract.ranges import full_match, int_range_regex
from mock_server.contract.tables import EndpointTable, Param, Source, load_table

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
ID_BASE = "https://wavespeed-mock.invalid/schemas/"
MEDIA_PARAMS = ("image", "images")
REFERENCE = "reference-notes"

Json = dict[str, Any]


def slug(model: str) -> str:
    return model.replace("/", "__")


@dataclass
class Sources:
    tables: dict[str, list[EndpointTable]]  # model → versions, doc pages first
    overlays: Json
    descriptions: Json
    # The hand-written /_mock/ body schemas (schemas/control/, beside sources/), for the OpenAPI document.
    control: Json = field(default_factory=dict)
    # The hand-written schemas of the API's own resources (``schemas/api/`` beside the sources), for the OpenAPI
    # document; a user's schemas folder has none.
    api: dict[str, Json] = field(default_factory=dict)


def load_sources(directory: Path) -> Sources:
    tables: dict[str, list[EndpointTable]] = {}
    for path in sorted(directory.glob("*@*.json")):
        table = load_table(path)
        tables.setdefault(table.model, []).append(table)
    for versions in tables.values():
        versions.sort(key=lambda t: (t.source.kind != "doc-page", t.version))
    overlays = json.loads((directory / "overlays.json").read_text(encoding="utf-8"))
    descriptions = json.loads((directory / "descriptions.json").read_text(encoding="utf-8"))
    control = {
        p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted((directory.parent / "control").glob("*.json"))
    }
    api = {
        path.name: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted((directory.parent / "api").glob("*.json"))
    }
    return Sources(dict(sorted(tables.items())), overlays, descriptions, control, api)


# --- request schemas ---------------------------------------------------------------------------------


@dataclass
class _Merged:
    name: str
    rows: list[tuple[EndpointTable, Param]] = field(default_factory=list)
    overlay_refs: list[Json] = field(default_factory=list)


def _apply_overlays(table: EndpointTable, param: Param, overlays: Json) -> tuple[Param, list[Json]]:
    applied: list[Json] = []
    for overlay in overlays.get("request", []):
        if overlay["param"] != param.name or overlay.get("model", table.model) != table.model:
            continue
        filled = {k: v for k, v in overlay["facts"].items() if getattr(param, k) is None}
        if not filled:
            continue
        if "enum" in filled:
            filled["enum"] = tuple(filled["enum"])
        param = Param(**{**param.__dict__, **filled})
        applied.append({"source": REFERENCE, "ref": overlay["ref"], "facts": sorted(filled), "for": table.key})
    return param, applied


def _merge(tables: list[EndpointTable], overlays: Json) -> list[_Merged]:
    merged: dict[str, _Merged] = {}
    for table in tables:
        for param in table.request:
            param, applied = _apply_overlays(table, param, overlays)
            entry = merged.setdefault(param.name, _Merged(param.name))
            entry.rows.append((table, param))
            entry.overlay_refs.extend(applied)
    return list(merged.values())


def _is_sample(param: Param) -> bool:
    """A documented default that is a sample input rather than what the server substitutes."""
    if param.required:
        return True
    value = param.default
    if param.name in MEDIA_PARAMS:
        return bool(value)
    return False


def _widest(values: list[Any], pick: Any) -> Any:
    return None if any(v is None for v in values) else pick(values)


def _param_facts(entry: _Merged, version_count: int) -> tuple[Json, Json]:
    """The reconciled facts of one parameter, and the facts on which versions disagreed."""
    params = [p for _, p in entry.rows]
    keys = [t.key for t, _ in entry.rows]
    facts: Json = {
        "type": next((p.type for p in params if p.type), None) or "string",
        "required": len(params) == version_count and all(p.required for p in params),
        "minimum": _widest([p.minimum for p in params], min),
        "maximum": _widest([p.maximum for p in params], max),
        "per_dimension": any(p.per_dimension for p in params),
        "item_type": next((p.item_type for p in params if p.item_type), None),
        "max_items": _widest([p.max_items for p in params], max),
        "item_fields": next((p.item_fields for p in params if p.item_fields), ()),
    }
    enums = [p.enum for p in params]
    facts["enum"] = None if any(e is None for e in enums) else list(dict.fromkeys(v for e in enums for v in e or ()))
    defaults = [p.default for p in params if not _is_sample(p)]
    samples = [p.default for p in params if _is_sample(p) and p.default is not None]
    agreed = bool(defaults) and len(defaults) == len(params) and all(d == defaults[0] for d in defaults)
    if agreed and defaults[0] is not None:
        facts["default"] = defaults[0]
    else:
        samples = [d for d in defaults if d is not None] + samples
    facts["examples"] = [s for i, s in enumerate(samples) if s not in samples[:i]]

    disagreements: Json = {}
    for fact in ("type", "required", "default", "minimum", "maximum", "enum", "max_items"):
        values = {k: _jsonable(getattr(p, fact)) for k, p in zip(keys, params, strict=True)}
        if len({json.dumps(v, sort_keys=True) for v in values.values()}) > 1:
            disagreements[fact] = values
    if len(params) < version_count:
        disagreements["listed_in"] = keys
    return facts, disagreements


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _type_schema(facts: Json) -> Json:
    kind = facts["type"]
    if kind == "string" and facts["per_dimension"] and facts["minimum"] is not None and facts["maximum"] is not None:
        side = int_range_regex(int(facts["minimum"]), int(facts["maximum"]))
        return {
            "type": "string",
            "pattern": full_match(f"{side}\\*{side}"),
            "x-dimension-range": {"minimum": facts["minimum"], "maximum": facts["maximum"]},
        }
    schema: Json = {"type": kind}
    if kind == "array":
        if facts["item_fields"]:
            schema["items"] = _object_schema(facts["item_fields"])
        elif facts["item_type"]:
            schema["items"] = {"type": facts["item_type"]}
        if facts["max_items"] is not None:
            schema["maxItems"] = facts["max_items"]
        return schema
    if facts["minimum"] is not None:
        schema["minimum"] = facts["minimum"]
    if facts["maximum"] is not None:
        schema["maximum"] = facts["maximum"]
    if facts["enum"]:
        schema["enum"] = facts["enum"]
    return schema


def _object_schema(item_fields: tuple[Param, ...]) -> Json:
    properties: Json = {}
    for p in item_fields:
        facts, _ = _param_facts(_Merged(p.name, [(_NO_TABLE, p)]), 1)
        properties[p.name] = _type_schema(facts)
    return {
        "type": "object",
        "properties": properties,
        "required": [p.name for p in item_fields if p.required],
    }


_NO_TABLE = EndpointTable(model="", version="", source=Source(kind="none", ref=""))


def request_schema(model: str, sources: Sources) -> Json:
    tables = sources.tables[model]
    words = sources.descriptions["request"]
    properties: Json = {}
    required: list[str] = []
    for entry in _merge(tables, sources.overlays):
        facts, disagreements = _param_facts(entry, len(tables))
        prop = _type_schema(facts)
        if entry.name in words:
            prop["description"] = words[entry.name]
        if "default" in facts:
            prop["default"] = facts["default"]
        if facts["examples"]:
            prop["examples"] = facts["examples"]
        prop["x-provenance"] = [
            {"source": t.key, "table": "request", "row": p.row} for t, p in entry.rows
        ] + entry.overlay_refs
        if disagreements:
            prop["x-reconciled"] = disagreements
        properties[entry.name] = prop
        if facts["required"]:
            required.append(entry.name)
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": f"{ID_BASE}endpoints/{slug(model)}.request.json",
        "title": f"{model} request body",
        "type": "object",
        "properties": properties,
        "required": required,
        # The real API ignores unknown fields (reference §4, open question 14); the fake accepts and echoes
        # them unless started with --unknown-fields reject.
        "additionalProperties": True,
        "x-versions": [t.key for t in tables],
    }


# --- response schemas --------------------------------------------------------------------------------

_FIELD_TYPES = {
    "string": "string",
    "integer": "integer",
    "number": "number",
    "boolean": "boolean",
    "array": "array",
    "object": "object",
}


def _lifecycle_rules() -> list[Json]:
    # reference §2: outputs are empty until completed; a failed prediction carries an error message.
    return [
        {
            "if": {"properties": {"status": {"not": {"const": "completed"}}}},
            "then": {"properties": {"outputs": {"maxItems": 0}}},
        },
        {
            "if": {"properties": {"status": {"const": "failed"}}, "required": ["status"]},
            "then": {"properties": {"error": {"minLength": 1}}},
        },
    ]


def envelope_schema(model: str | None, kind: str, sources: Sources) -> Json:
    """The ``{code, message, data{...}}`` envelope from the response tables of one or all endpoints."""
    models = [model] if model else list(sources.tables)
    words = sources.descriptions["response"]
    rows: dict[str, list[Json]] = {}
    types: dict[str, str] = {}
    for m in models:
        for table in sources.tables[m]:
            table_rows = table.result_response if kind == "result" and table.result_response else table.response
            label = "result_response" if table_rows is table.result_response and kind == "result" else "response"
            for f in table_rows:
                rows.setdefault(f.name, []).append({"source": table.key, "table": label, "row": f.row})
                types.setdefault(f.name, f.type or "string")
    root: Json = {"type": "object", "properties": {}, "required": []}
    for name in sorted(types, key=lambda n: n.count(".")):
        _place(root, name, {"type": _FIELD_TYPES[types[name]]}, required=True)
    for overlay in sources.overlays.get("response", []):
        name = overlay["field"]
        if name not in types:
            _place(root, name, {"type": overlay["type"]}, required=overlay.get("required", False))
        node = _node(root, name)
        node.update(overlay.get("schema", {}))
        node.setdefault("x-provenance", []).append({"source": REFERENCE, "ref": overlay["ref"]})
    for name, prov in rows.items():
        _node(root, name).setdefault("x-provenance", []).extend(prov)
    for name in list(types) + [o["field"] for o in sources.overlays.get("response", [])]:
        if name in words:
            _node(root, name)["description"] = words[name]
    root["properties"]["code"]["const"] = 200
    data = root["properties"]["data"]
    data["allOf"] = _lifecycle_rules()
    what = "result" if kind == "result" else "submit"
    subject = model or "every endpoint"
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": f"{ID_BASE}{'endpoints/' + slug(model) + '.' if model else ''}{what}-response.json",
        "title": f"{what} response envelope ({subject})",
        **root,
    }


def _node(root: Json, dotted: str) -> Json:
    node = root
    for part in dotted.split("."):
        node = node["properties"][part]
    return node


def _place(root: Json, dotted: str, schema: Json, *, required: bool) -> None:
    *parents, leaf = dotted.split(".")
    node = root
    for part in parents:
        node = node["properties"].setdefault(part, {"type": "object", "properties": {}, "required": []})
        node.setdefault("properties", {})
        node.setdefault("required", [])
    existing = node["properties"].get(leaf, {})
    if existing.get("properties"):
        schema = {**schema, "properties": existing["properties"], "required": existing.get("required", [])}
    if schema.get("type") == "object":
        schema.setdefault("properties", {})
        schema.setdefault("required", [])
    node["properties"][leaf] = schema
    if required and leaf not in node["required"]:
        node["required"].append(leaf)


def error_schema() -> Json:
    # reference §3: non-2xx bodies are {code, message} (+ error_code); the webhook+base64 rejection also
    # carries the documented {"error": ...} key. "errors" lists every validation violation.
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": f"{ID_BASE}error.json",
        "title": "error envelope",
        "type": "object",
        "properties": {
            "code": {"type": "integer", "minimum": 400, "maximum": 599, "description": "HTTP status of the error."},
            "message": {"type": "string", "minLength": 1, "description": "What went wrong, for a person."},
            "error_code": {"type": "string", "description": "Optional machine-readable reason."},
            "error": {"type": "string", "description": "Same text under the key the docs show for some errors."},
            "suggestion": {
                "type": "string",
                "description": "The known model id nearest to an unknown one (--unknown-models reject).",
            },
            "errors": {
                "type": "array",
                "description": "Every validation violation: where and why.",
                "items": {
                    "type": "object",
                    "properties": {"path": {"type": "string"}, "message": {"type": "string"}},
                    "required": ["path", "message"],
                },
            },
        },
        "required": ["code", "message"],
        "x-provenance": [{"source": REFERENCE, "ref": "wavespeed_api.md §3: HTTP-level error bodies"}],
    }


# --- the whole tree ----------------------------------------------------------------------------------


def endpoint_kind(tables: list[EndpointTable]) -> str:
    names = {p.name for t in tables for p in t.request}
    if "images" in names:
        return "multi-edit"
    if "image" in names:
        return "edit"
    return "text-to-image"


def build(sources: Sources) -> dict[str, str]:
    """Every generated file, relative to the schemas directory, as text."""
    from mock_server.contract.openapi import openapi_document

    files: dict[str, Json] = {}
    index: list[Json] = []
    for model, tables in sources.tables.items():
        base = f"endpoints/{slug(model)}"
        files[f"{base}.request.json"] = request_schema(model, sources)
        files[f"{base}.submit-response.json"] = envelope_schema(model, "submit", sources)
        files[f"{base}.result-response.json"] = envelope_schema(model, "result", sources)
        extra: Json = {}
        for t in tables:
            extra.update({k: v for k, v in t.extra.items() if k not in extra})
        index.append(
            {
                "model": model,
                "kind": endpoint_kind(tables),
                "versions": [t.key for t in tables],
                "request": f"{base}.request.json",
                "submit_response": f"{base}.submit-response.json",
                "result_response": f"{base}.result-response.json",
                **extra,
            }
        )
    files["result-response.json"] = envelope_schema(None, "result", sources)
    files["error.json"] = error_schema()
    files["index.json"] = {"endpoints": index}
    files["openapi.json"] = openapi_document(files, index, sources.control, sources.api)
    return {name: json.dumps(doc, indent=2, ensure_ascii=False) + "\n" for name, doc in sorted(files.items())}


GENERATED_GLOBS = ("endpoints/*.json", "*.json")


def write(out_dir: Path, generated: dict[str, str]) -> list[str]:
    """Write the generated files, remove stale ones; return the names that changed."""
    changed = diff(out_dir, generated)
    for name in changed:
        path = out_dir / name
        if name in generated:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(generated[name], encoding="utf-8")
        else:
            path.unlink()
    return changed


def diff(out_dir: Path, generated: dict[str, str]) -> list[str]:
    """Names whose committed content differs from what the sources generate (missing, stale or extra)."""
    on_disk = {
        str(p.relative_to(out_dir)): p for pattern in GENERATED_GLOBS for p in out_dir.glob(pattern) if p.is_file()
    }
    names = sorted(set(on_disk) | set(generated))
    return [
        n
        for n in names
        if n not in generated or n not in on_disk or on_disk[n].read_text(encoding="utf-8") != generated[n]
    ]
