"""The ``/_mock/`` control bodies as JSON Schemas (``schemas/control/``), loaded and compiled once.

One schema per body the control plane accepts; ``scenario.json`` composes the others and is also the format of
``serve --scenario FILE``. Each body schema names its operation in ``x-operation`` (name, method, path), so the
control routes, the Python handle and the OpenAPI document find it without a second table.

Every door calls :func:`check_control` before the Controller sees anything: the HTTP handler, the in-process
Python handle (after a JSON round trip, so both doors judge the same document) and the scenario-file loader.
It lists every violation in one 400 and normalises the flat outcome form to the nested one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mock_server.contract.catalog import Violation
from mock_server.contract.errors import BadRequest
from mock_server.contract.validators import CompiledSchema
from mock_server.resources import data_dir

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError

Json = dict[str, Any]
ID_BASE = "https://wavespeed-mock.invalid/schemas/control/"
ENQUEUE = "enqueue"
SCENARIO = "apply_scenario"


@dataclass(frozen=True)
class ControlSchemas:
    """Every control schema by file stem, a compiled validator per stem, and the stem of each operation."""

    schemas: dict[str, Json]
    validators: dict[str, CompiledSchema]
    operations: dict[str, str]  # operation name (control.OPERATIONS) → schema stem

    @property
    def outcome_fields(self) -> tuple[str, ...]:
        return tuple(self.schemas["outcome"]["properties"])


def load(directory: Path | None = None) -> ControlSchemas:
    """Read ``schemas/control/*.json`` and compile one validator per schema, ``$ref``s resolved among them."""
    root = directory or data_dir("schemas") / "control"
    schemas = {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(root.glob("*.json"))}
    by_id = {schema["$id"]: schema for schema in schemas.values()}
    validators = {stem: CompiledSchema(schema, by_id) for stem, schema in schemas.items()}
    operations = {s["x-operation"]["name"]: stem for stem, s in schemas.items() if "x-operation" in s}
    return ControlSchemas(schemas, validators, operations)


@cache
def default() -> ControlSchemas:
    """The installed control schemas, compiled once per process (immutable, like the catalog)."""
    return load()


def validate_control(name: str, body: Any, schemas: ControlSchemas | None = None) -> list[Violation]:
    """Every violation of ``body`` against the schema of operation (or schema stem) ``name``, ordered by path.
    An operation without a body schema (the GETs and DELETEs) has none."""
    schemas = schemas or default()
    stem = schemas.operations.get(name, name)
    validator = schemas.validators.get(stem)
    if validator is None:
        return []
    found: list[Violation] = []
    for error in validator.iter_errors(body):
        for violation in _explain(error):
            if violation not in found:  # if/then and anyOf can report one problem twice
                found.append(violation)
    return sorted(found, key=lambda v: v.path)


def check_control(name: str, body: Any, *, what: str | None = None, schemas: ControlSchemas | None = None) -> Any:
    """``body`` validated against operation ``name``'s schema and normalised; :class:`BadRequest` listing every
    violation otherwise. Operations without a body schema get ``body`` back unchanged."""
    schemas = schemas or default()
    violations = validate_control(name, body, schemas)
    if violations:
        listed = "; ".join(f"{v.path}: {v.message}" for v in violations)
        raise BadRequest(
            f"Invalid {what or 'control body for ' + name}: {listed}", errors=[v.to_json() for v in violations]
        )
    return normalize(name, body, schemas)


def normalize(name: str, body: Any, schemas: ControlSchemas | None = None) -> Any:
    """The flat outcome form (outcome fields beside ``model``/``prompt_contains``/``tenant``/``times``, as the
    pytest marker writes it) turned into the nested one, ``{"outcome": {...}, ...}``, which the Controller takes.
    For a scenario, each of its ``outcomes``. ``body`` must already be valid."""
    schemas = schemas or default()
    if name == SCENARIO and isinstance(body, dict) and "outcomes" in body:
        return {**body, "outcomes": [normalize(ENQUEUE, item, schemas) for item in body["outcomes"]]}
    if name != ENQUEUE or not isinstance(body, dict) or "outcome" in body:
        return body
    fields = schemas.outcome_fields
    return {
        "outcome": {k: v for k, v in body.items() if k in fields},
        **{k: v for k, v in body.items() if k not in fields},
    }


# --- bundling: one self-contained schema (hypothesis-jsonschema, OpenAPI components) -----------------------


def bundle(stem: str, schemas: ControlSchemas | None = None) -> Json:
    """Schema ``stem`` with every schema it references inlined under ``$defs`` and its ``$ref``s made local, so
    tools without a registry (hypothesis-jsonschema) can use it."""
    schemas = schemas or default()
    needed = _referenced(stem, schemas.schemas)
    root = rewrite_refs(schemas.schemas[stem], stem, lambda s: "#" if s == stem else f"#/$defs/{s}")
    defs = {
        s: _embedded(rewrite_refs(schemas.schemas[s], s, lambda t: "#" if t == stem else f"#/$defs/{t}"))
        for s in sorted(needed - {stem})
    }
    if defs:
        root["$defs"] = {**root.get("$defs", {}), **defs}
    return root


def rewrite_refs(schema: Json, stem: str, pointer: Callable[[str], str]) -> Json:
    """A copy of ``schema`` (the file ``stem``) whose ``$ref``s point where ``pointer(stem)`` says each file now
    lives: ``other.json#/x`` → ``pointer(other) + /x``, and a local ``#/x`` → ``pointer(stem) + /x``."""

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(item) for item in node]
        if not isinstance(node, dict):
            return node
        result = {k: walk(v) for k, v in node.items()}
        ref = node.get("$ref")
        if isinstance(ref, str):
            target, _, fragment = ref.partition("#")
            base = pointer(target.removesuffix(".json") if target else stem)
            result["$ref"] = base + fragment if base != "#" else "#" + fragment
        return result

    rewritten: Json = walk(schema)
    return rewritten


def _embedded(schema: Json) -> Json:
    # An embedded $id would re-base the refs inside it; $schema is only meaningful at a document root.
    return {k: v for k, v in schema.items() if k not in ("$id", "$schema")}


def _referenced(stem: str, schemas: dict[str, Json]) -> set[str]:
    seen = {stem}
    todo = [stem]
    while todo:
        for ref in _refs(schemas[todo.pop()]):
            target = ref.partition("#")[0].removesuffix(".json")
            if target and target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def _refs(node: Any) -> Iterable[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


# --- readable violations -----------------------------------------------------------------------------------


def _explain(error: ValidationError, described: str | None = None) -> list[Violation]:
    """The violations behind one error. An ``anyOf`` whose other branches are only ``null`` (an optional value)
    or out of the running is explained by the one branch that could have matched, so the message says
    ``4000 is greater than the maximum of 3600``, not "does not fit any form"."""
    schema = error.schema if isinstance(error.schema, dict) else {}
    described = schema["description"] if isinstance(schema.get("description"), str) else described
    if error.validator in ("anyOf", "oneOf") and error.context:
        branches: dict[Any, list[ValidationError]] = {}
        for sub in error.context:
            if not (sub.validator == "type" and sub.validator_value == "null"):
                branches.setdefault(sub.relative_schema_path[0], []).append(sub)
        if len(branches) == 1:
            [subs] = branches.values()
            return [v for sub in subs for v in _explain(sub, described)]
        if all(sub.validator == "required" for subs in branches.values() for sub in subs):
            names = [_quoted(str(sub.message)) for subs in branches.values() for sub in subs]
            return [Violation(_where(error), f"needs one of {', '.join(names)}")]
    return [Violation(_where(error), _reason(error, described))]


def _where(error: ValidationError) -> str:
    parts = list(error.absolute_path)
    if error.validator == "required":
        parts.append(_quoted(str(error.message)))
    elif error.validator == "additionalProperties":
        parts.extend(_unexpected(error))
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(body)"


def _reason(error: ValidationError, described: str | None) -> str:
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "required":
        missing = schema.get("properties", {}).get(_quoted(str(error.message)), {})
        described = schema.get("description") if "if" in schema or "then" in schema else None
        described = described or (missing.get("description") if isinstance(missing, dict) else None)
    note = f" ({described})" if described else ""
    if error.validator == "required":
        return "is required" + note
    if error.validator == "additionalProperties":
        return f"unknown field; allowed: {', '.join(sorted(schema.get('properties', {})))}"
    if error.validator == "enum":
        allowed = error.validator_value if isinstance(error.validator_value, list) else []
        return f"{_shown(error.instance)} is not one of {', '.join(map(_shown, allowed))}{note}"
    if error.validator in ("anyOf", "oneOf"):
        return f"{_shown(error.instance)} does not fit{note or ' any allowed form'}"
    if error.validator == "not" or (error.validator == "type" and error.validator_value == "null"):
        return f"{_shown(error.instance)} is not allowed here{note}"
    if error.validator == "type":
        return f"{_shown(error.instance)} is not of type {error.validator_value}{note}"
    if error.validator == "pattern":
        return f"{_shown(error.instance)} does not match{note or ' ' + str(error.validator_value)}"
    return str(error.message) + note


def _shown(value: Any) -> str:
    # ASCII JSON: never echoes a lone surrogate or a control character into the message, and is short.
    text = json.dumps(value, ensure_ascii=True, default=repr)
    return text if len(text) <= 80 else text[:77] + "..."


def _quoted(message: str) -> str:
    return message.split("'")[1] if "'" in message else ""


def _unexpected(error: ValidationError) -> list[str]:
    schema = error.schema if isinstance(error.schema, dict) else {}
    known = set(schema.get("properties", {}))
    instance = error.instance if isinstance(error.instance, dict) else {}
    extra = sorted(k for k in instance if k not in known)
    return [extra[0]] if len(extra) == 1 else [",".join(extra)] if extra else []
