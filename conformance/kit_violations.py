"""The drift report's vocabulary: a :class:`Violation` (endpoint, where, field path, expected, observed), the
:class:`ConformanceError` that carries them out of a property, and the helpers that render observed values.

The conformance folder is put on ``sys.path`` by its pytest.ini; its ``kit_*`` modules import each other by
bare name and are not part of the importable ``mock_server`` package.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import httpx
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError

from mock_server.contract.jsonbody import json_type

SHORT = 160


@dataclass(frozen=True)
class Violation:
    """One observed difference between the contract (the schemas, the documented behaviour) and the target."""

    endpoint: str
    where: str  # which message: "submit response", "result response (poll 2)", "output 0", "request", ...
    path: str  # field path inside that message: "data.urls", "data.outputs[0]", "num_images", ...
    expected: str
    observed: str

    def line(self) -> str:
        return f"{self.endpoint}: {self.where} {self.path}: expected {self.expected}; observed {self.observed}"

    def to_json(self) -> dict[str, str]:
        return {
            "endpoint": self.endpoint,
            "where": self.where,
            "path": self.path,
            "expected": self.expected,
            "observed": self.observed,
        }


class ConformanceError(AssertionError):
    """A property failed; ``violations`` says exactly where and how."""

    def __init__(self, violations: list[Violation], request: str | None = None) -> None:
        self.violations = violations
        self.request = request
        text = "\n".join(v.line() for v in violations)
        if request:
            text += f"\nrequest: {request}"
        super().__init__(text)


def fail(violations: list[Violation], request: Any = None) -> None:
    """Raise a ConformanceError when there is anything to report."""
    if violations:
        raise ConformanceError(violations, None if request is None else short(request, 600))


def status_violation(response: httpx.Response, endpoint: str, where: str, expected: str, limit: int = 200) -> Violation:
    """The HTTP status was not the one the contract names: the status and the start of the body."""
    return Violation(
        endpoint, where, "(HTTP status)", expected, f"HTTP {response.status_code} {short(response.text, limit)}"
    )


def short(value: Any, limit: int = SHORT) -> str:
    if isinstance(value, (bytes, bytearray)):
        text = repr(bytes(value))
    elif isinstance(value, str):
        text = repr(value)
    else:
        try:
            text = json.dumps(value, ensure_ascii=True, sort_keys=True)
        except (TypeError, ValueError):
            text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def field_path(parts: Iterable[Any]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(body)"


def split_exceptions(exc: BaseException) -> Iterator[BaseException]:
    """The leaf exceptions of an exception (groups, hypothesis' Flaky wrappers) in order."""
    inner = getattr(exc, "exceptions", None)  # BaseExceptionGroup (3.11+, or the backport on 3.10)
    if isinstance(inner, (list, tuple)) and all(isinstance(e, BaseException) for e in inner):
        for each in inner:
            yield from split_exceptions(each)
    else:
        yield exc


# --------------------------------------------------------------------------------------------------------
# schema validation, reported as violations


@cache
def _validator(schema_json: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(schema_json), format_checker=FormatChecker())


def validator_for(schema: Mapping[str, Any]) -> Draft202012Validator:
    return _validator(json.dumps(schema, sort_keys=True))


def schema_violations(instance: Any, schema: Mapping[str, Any], *, endpoint: str, where: str) -> list[Violation]:
    """Every way ``instance`` breaks ``schema``, each as expected (the schema) vs observed (the value)."""
    errors = sorted(validator_for(schema).iter_errors(instance), key=lambda e: [str(p) for p in e.absolute_path])
    return [_from_error(e, endpoint=endpoint, where=where) for e in errors]


def _from_error(error: ValidationError, *, endpoint: str, where: str) -> Violation:
    parts = list(error.absolute_path)
    kind, value, instance = error.validator, error.validator_value, error.instance
    if kind == "required":
        missing = error.message.split("'")[1] if "'" in error.message else "?"
        return Violation(endpoint, where, field_path([*parts, missing]), "required property present", "missing")
    if kind == "type":
        expected = f"type {value}"
        observed = f"{json_type(instance)} {short(instance, 80)}"
    elif kind == "enum":
        expected = f"one of {short(value, 200)}"
        observed = short(instance)
    elif kind == "const":
        expected = short(value)
        observed = short(instance)
    elif kind in ("maxItems", "minItems"):
        expected = f"{kind} {value}"
        observed = f"{len(instance)} items {short(instance, 80)}" if isinstance(instance, list) else short(instance)
    elif kind in ("minLength", "maxLength"):
        expected = f"{kind} {value}"
        observed = short(instance)
    else:
        expected = f"{kind} {short(value, 120)}"
        observed = short(instance)
    return Violation(endpoint, where, field_path(parts), expected, observed)
