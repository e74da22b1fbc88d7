"""Observed responses against the contract: how a real answer differs from our schemas, as classified ``Change``s.

The proxy (``wavespeed-mock proxy``) runs every upstream answer through :func:`check_success` or
:func:`check_error`. Plain JSON Schema validation is not enough for drift: our schemas leave objects open (the
real API adds fields, reference §2), so a renamed field shows up only as "required property missing", and an
added one not at all. This module walks the body beside the schema to name those, and leaves value constraints
to the validator.

Classification, judged from a client written against our schemas (the same rule as ``drift docs``):

| kind | breaking | why |
|---|---|---|
| ``extra-field`` | no | clients ignore what they do not read |
| ``missing-field`` | yes | a documented field a client may read is gone |
| ``renamed-field`` | yes | a missing field and a new one of a similar name and the same type at the same place |
| ``type-changed`` | yes | a client's typed decode fails (Go, Java casts, reference §2) |
| ``new-status-value`` | yes | clients poll until a status they know; an unknown one may never end (or end wrongly) |
| ``new-enum-value`` / ``value-changed`` | yes | an enum or constant (the envelope's ``code`` 200) no longer holds |
| ``error-shape-changed`` | yes | a non-2xx body that is not the ``{code, message}`` envelope clients parse (§3) |
| ``not-json`` | yes | a JSON endpoint answered something else |
| ``status-changed`` | yes | a 2xx other than 200: the Python, Go and Java SDKs require exactly 200 (§3) |
| ``format-changed`` | no | a pattern/format/length we inferred (id shape, timestamp precision) no longer holds |
| ``constraint-violated`` | no | any other schema constraint (e.g. outputs before completion) |
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator, Mapping, Sequence
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError

from mock_server.contract.drift import Change
from mock_server.contract.jsonbody import json_type

BREAKING_KINDS = frozenset(
    {
        "missing-field",
        "renamed-field",
        "type-changed",
        "new-status-value",
        "new-enum-value",
        "value-changed",
        "error-shape-changed",
        "not-json",
        "status-changed",
    }
)

# Any success answer of an endpoint we hold no schema for (an unknown model, balance, uploads): the envelope.
ENVELOPE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"code": {"type": "integer"}, "message": {"type": "string"}, "data": {}},
    "required": ["code", "message", "data"],
}

# Two names are taken for one renamed field when they are at least this similar (difflib ratio).
RENAME_SIMILARITY = 0.6
_FORMAT_VALIDATORS = ("pattern", "format", "minLength", "maxLength")


def check_success(body: bytes, schema: Mapping[str, Any], *, http_status: int = 200) -> list[Change]:
    """How a 2xx JSON answer differs from ``schema`` (a submit, result or envelope schema)."""
    changes: list[Change] = []
    if http_status != 200:
        changes.append(
            Change(
                "status-changed",
                "(HTTP status)",
                200,
                http_status,
                True,
                f"HTTP {http_status} instead of 200; the official SDKs accept only 200",
            )
        )
    parsed = _parse(body)
    if parsed is _NOT_JSON:
        return [
            *changes,
            Change("not-json", "(body)", "a JSON object", _describe_bytes(body), True, "the body is not JSON"),
        ]
    return changes + compare(parsed, schema)


def check_error(body: bytes, schema: Mapping[str, Any], *, http_status: int) -> list[Change]:
    """How a non-2xx answer differs from the error envelope ``{code, message[, error_code, errors]}``."""
    parsed = _parse(body)
    if parsed is _NOT_JSON:
        return [
            Change(
                "error-shape-changed",
                "(error body)",
                "{code, message}",
                _describe_bytes(body),
                True,
                f"HTTP {http_status} error body is not JSON, so not the {{code, message}} envelope",
            )
        ]
    if not isinstance(parsed, dict) or any(k not in parsed for k in ("code", "message")):
        observed = sorted(parsed) if isinstance(parsed, dict) else json_type(parsed)
        missing = [k for k in ("code", "message") if not isinstance(parsed, dict) or k not in parsed]
        has = f"; it carries {', '.join(observed)}" if isinstance(observed, list) and observed else ""
        return [
            Change(
                "error-shape-changed",
                "(error body)",
                "{code, message}",
                observed,
                True,
                f"HTTP {http_status} error body is not the {{code, message}} envelope: missing "
                f"{', '.join(missing)}{has}",
            )
        ]
    return compare(parsed, schema)


def compare(instance: Any, schema: Mapping[str, Any]) -> list[Change]:
    """Structural differences (extra, missing, renamed fields) and every other schema violation, deduplicated
    by (kind, location) so an array of 4 drifting items reports once."""
    found = list(_structure(instance, schema, ()))
    found += [_from_error(e) for e in _validator(schema).iter_errors(instance) if e.validator != "required"]
    seen: set[tuple[str, str]] = set()
    unique: list[Change] = []
    for change in found:
        if (change.kind, change.location) not in seen:
            seen.add((change.kind, change.location))
            unique.append(change)
    return unique


def summary(changes: Sequence[Change], limit: int = 900) -> str:
    """One header-safe line: ``2 findings (1 breaking): renamed-field data.outputs -> data.output; ...``."""
    breaking = sum(c.breaking for c in changes)
    head = f"{len(changes)} finding{'s' if len(changes) != 1 else ''} ({breaking} breaking): "
    parts = [f"{c.kind} {c.location}" + (f" -> {c.new}" if c.kind == "renamed-field" else "") for c in changes]
    # Header values must be latin-1; field names from the wire may be anything.
    text = (head + "; ".join(parts)).encode("ascii", "backslashreplace").decode("ascii")
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ----------------------------------------------------------------------------------------------- internals


class _NotJson:
    pass


_NOT_JSON = _NotJson()


def _parse(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return _NOT_JSON


def _describe_bytes(body: bytes) -> str:
    text = body[:60].decode("utf-8", "replace")
    return f"{len(body)} bytes: {text!r}" + ("..." if len(body) > 60 else "")


def _validator(schema: Mapping[str, Any]) -> Draft202012Validator:
    return _compiled(json.dumps(schema, sort_keys=True))


@cache
def _compiled(schema_json: str) -> Draft202012Validator:
    # Keyed by the schema's text: a handful of schemas, each compiled once per process.
    return Draft202012Validator(json.loads(schema_json), format_checker=FormatChecker())


def _location(parts: Sequence[Any]) -> str:
    # Array positions collapse to [] so each drift is named once per field, not once per item.
    text = ""
    for part in parts:
        text += "[]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(body)"


def _fits_type(value: Any, schema: Mapping[str, Any]) -> bool:
    expected = schema.get("type")
    if expected is None:
        return True
    allowed = expected if isinstance(expected, list) else [expected]
    actual = json_type(value)
    return actual in allowed or (actual == "integer" and "number" in allowed)


def _structure(instance: Any, schema: Mapping[str, Any], parts: tuple[Any, ...]) -> Iterator[Change]:
    if isinstance(instance, dict):
        props = schema.get("properties")
        # An object schema without listed properties (e.g. data.input, the inputs echoed back) is free-form.
        if not isinstance(props, dict) or not props:
            return
        missing = [name for name in schema.get("required", []) if name not in instance]
        extra = [name for name in instance if name not in props]
        for old, new in _renames(missing, extra, instance, props):
            missing.remove(old)
            extra.remove(new)
            was, now = _location((*parts, old)), _location((*parts, new))
            yield Change(
                "renamed-field",
                was,
                was,
                now,
                True,
                f"{was} is missing and {now} appeared with the same type: renamed {old!r} -> {new!r}?",
            )
        for name in missing:
            loc = _location((*parts, name))
            yield Change(
                "missing-field", loc, props.get(name, {}).get("type"), None, True, f"required field {loc} is missing"
            )
        for name in extra:
            loc = _location((*parts, name))
            yield Change(
                "extra-field", loc, None, json_type(instance[name]), False, f"field {loc} is not in our schema"
            )
        for name, sub in props.items():
            if name in instance and isinstance(sub, dict):
                yield from _structure(instance[name], sub, (*parts, name))
    elif isinstance(instance, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(instance):
            yield from _structure(item, schema["items"], (*parts, index))


def _renames(
    missing: list[str], extra: list[str], instance: Mapping[str, Any], props: Mapping[str, Any]
) -> list[tuple[str, str]]:
    """Pairs (documented name, new name): most similar names first, each used once, types must agree."""
    candidates: list[tuple[float, str, str]] = []
    for old in missing:
        sub = props.get(old, {})
        for new in extra:
            ratio = difflib.SequenceMatcher(None, old.lower(), new.lower()).ratio()
            if ratio >= RENAME_SIMILARITY and isinstance(sub, dict) and _fits_type(instance[new], sub):
                candidates.append((ratio, old, new))
    pairs: list[tuple[str, str]] = []
    used: set[str] = set()
    for _, old, new in sorted(candidates, key=lambda c: -c[0]):
        if old not in used and new not in used:
            used.update((old, new))
            pairs.append((old, new))
    return pairs


def _short(value: Any, limit: int = 80) -> Any:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return value if len(text) <= limit else text[: limit - 3] + "..."


def _from_error(error: ValidationError) -> Change:
    loc = _location(list(error.absolute_path))
    kind, expected, observed = str(error.validator), error.validator_value, error.instance
    if kind == "type":
        return Change(
            "type-changed",
            loc,
            expected,
            json_type(observed),
            True,
            f"{loc} is {json_type(observed)}, the schema says {expected}",
        )
    if kind == "enum":
        allowed: list[Any] = list(expected) if isinstance(expected, list) else [expected]
        if loc.split(".")[-1] == "status":
            return Change(
                "new-status-value",
                loc,
                allowed,
                observed,
                True,
                f"status {observed!r} is not one of {', '.join(map(str, allowed))}",
            )
        return Change("new-enum-value", loc, allowed, _short(observed), True, f"{loc} {observed!r} is not allowed")
    if kind == "const":
        return Change(
            "value-changed",
            loc,
            expected,
            _short(observed),
            True,
            f"{loc} is {_short(observed)!r}, the schema fixes it at {expected!r}",
        )
    if kind in _FORMAT_VALIDATORS:
        return Change(
            "format-changed",
            loc,
            {kind: expected},
            _short(observed),
            False,
            f"{loc} {_short(observed)!r} breaks {kind} {expected!r}",
        )
    return Change(
        "constraint-violated", loc, {kind: _short(expected)}, _short(observed), False, f"{loc}: {error.message[:200]}"
    )
