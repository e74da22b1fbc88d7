"""The endpoints the fake serves, loaded from the generated schemas once, validators compiled once."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mock_server.contract.pricing import catalog_price
from mock_server.contract.validators import CompiledSchema
from mock_server.resources import data_dir

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError

# Nominal (queue wait, generation) seconds per family, in the range the docs and model pages describe.
_LATENCY = (
    ("ultra-fast", (0.2, 1.5)),
    ("flux-kontext-max", (0.5, 8.0)),
    ("flux-kontext-pro", (0.5, 6.0)),
    ("flux-kontext-dev", (0.3, 4.0)),
)
# Models added with `schemas add` belong to no known family: a middling image-model latency.
_OTHER_LATENCY = (0.5, 5.0)


@dataclass(frozen=True)
class Violation:
    path: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}


@dataclass(frozen=True)
class Endpoint:
    model: str
    kind: str  # "edit" | "multi-edit" | "text-to-image"
    request_schema: dict[str, Any]
    submit_schema: dict[str, Any]
    result_schema: dict[str, Any]
    price_usd: float | None
    price_unit: str | None
    latency: tuple[float, float]
    # The endpoint's whole index.json entry: facts the fake does not act on (a catalog's name, type, sort order)
    # ride along for the GET /api/v3/models export.
    info: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @cached_property  # read several times by every submit
    def properties(self) -> dict[str, Any]:
        props: dict[str, Any] = self.request_schema["properties"]
        return props

    def known(self, body: dict[str, Any]) -> dict[str, Any]:
        """The parameters of ``body`` this endpoint documents: schema-checked, so safe to act on. Unknown fields
        are kept in the prediction's input as sent, but (as the real API appears to) nothing acts on them."""
        documented = self.properties
        return {k: v for k, v in body.items() if k in documented}

    def default(self, name: str, fallback: Any = None) -> Any:
        return self.properties.get(name, {}).get("default", fallback)

    def cost(self, num_images: int) -> float:
        if self.price_usd is None:
            return 0.0
        return self.price_usd * (num_images if self.price_unit == "image" else 1)


class Catalog:
    """Every endpoint by model path, plus the shared result and error schemas."""

    def __init__(self, schemas_dir: Path | None = None) -> None:
        root = schemas_dir or data_dir("schemas")
        self.endpoints: dict[str, Endpoint] = {}
        self._validators: dict[str, tuple[CompiledSchema, CompiledSchema]] = {}
        self._load_endpoints(root)
        self.result_schema = _read(root / "result-response.json")
        self.error_schema = _read(root / "error.json")
        self.openapi = _read(root / "openapi.json")
        self.openapi_bytes = json.dumps(self.openapi).encode()

    def _load_endpoints(self, root: Path) -> list[str]:
        index = _read(root / "index.json")
        for entry in index["endpoints"]:
            request = _read(root / entry["request"])
            price_usd, price_unit = catalog_price(entry["model"], entry)
            endpoint = Endpoint(
                model=entry["model"],
                kind=entry["kind"],
                request_schema=request,
                submit_schema=_read(root / entry["submit_response"]),
                result_schema=_read(root / entry["result_response"]),
                price_usd=price_usd,
                price_unit=price_unit,
                latency=next((v for k, v in _LATENCY if k in entry["model"]), _OTHER_LATENCY),
                info=entry,
            )
            self.endpoints[endpoint.model] = endpoint
            strict = {**request, "additionalProperties": False}
            self._validators[endpoint.model] = (CompiledSchema(request), CompiledSchema(strict))
        return [entry["model"] for entry in index["endpoints"]]

    def extended(self, extra_dirs: Sequence[Path]) -> Catalog:
        """This catalog plus the endpoints generated into each of ``extra_dirs`` (``schemas add ... --into DIR``).

        A model an extra directory also defines is served from that directory (later directories win): a user can
        patch one endpoint. ``self`` is left untouched, so the cached shipped catalog and its compiled validators
        are shared rather than rebuilt for every app.
        """
        clone = copy.copy(self)
        clone.endpoints = dict(self.endpoints)
        clone._validators = dict(self._validators)
        clone.openapi = copy.deepcopy(self.openapi)
        for directory in extra_dirs:
            if not (directory / "index.json").is_file():
                raise ValueError(
                    f"{directory} holds no generated schemas (no index.json); "
                    f"create it with `wavespeed-mock schemas add SOURCE --into {directory}`"
                )
            models = clone._load_endpoints(directory)
            _merge_openapi(clone.openapi, _read(directory / "openapi.json"), models)
        clone.openapi_bytes = json.dumps(clone.openapi).encode()
        return clone

    def get(self, model: str) -> Endpoint | None:
        return self.endpoints.get(model)

    def validate(self, model: str, body: Any, *, strict: bool = False) -> list[Violation]:
        """Every violation of the request schema, in document order, each with a readable reason."""
        validator = self._validators[model][1 if strict else 0]
        if validator.is_valid(body):  # the usual answer, from the compiled validator alone
            return []
        errors = sorted(validator.iter_errors(body), key=lambda e: (list(map(str, e.absolute_path)), e.validator))
        return [Violation(_path(e), _reason(e)) for e in errors]


def _read(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _path(error: ValidationError) -> str:
    parts = list(error.absolute_path)
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else ""
        parts.append(missing)
    elif error.validator == "additionalProperties":
        parts.append(error.message.split("'")[1] if "'" in error.message else "")
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(body)"


def _reason(error: ValidationError) -> str:
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "pattern" and "x-dimension-range" in schema:
        bounds = schema["x-dimension-range"]
        return (
            f"{error.instance!r} must be 'WIDTH*HEIGHT' with each side between "
            f"{bounds['minimum']} and {bounds['maximum']} pixels"
        )
    if error.validator == "required":
        return "is required"
    if error.validator == "additionalProperties":
        return "is not a parameter of this model"
    if error.validator == "enum":
        allowed: list[Any] = list(error.validator_value) if isinstance(error.validator_value, list) else []
        return f"{error.instance!r} is not one of {', '.join(map(str, allowed))}"
    return str(error.message)


def _merge_openapi(target: dict[str, Any], extra: dict[str, Any], models: list[str]) -> None:
    """Copy the submit operations of ``models`` and the components they reference from ``extra`` into ``target``."""
    schemas = target.setdefault("components", {}).setdefault("schemas", {})
    for model in models:
        path = f"/api/v3/{model}"
        if path not in extra.get("paths", {}):
            continue
        target.setdefault("paths", {})[path] = extra["paths"][path]
        for name in _component_refs(extra["paths"][path]):
            if name in ("Error", "ResultResponse"):  # shared, already in the shipped document
                continue
            schemas[name] = extra["components"]["schemas"][name]


def _component_refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        found = [ref.rsplit("/", 1)[1]] if isinstance(ref, str) and ref.startswith("#/components/schemas/") else []
        return found + [name for value in node.values() for name in _component_refs(value)]
    if isinstance(node, list):
        return [name for value in node for name in _component_refs(value)]
    return []


@cache
def default_catalog() -> Catalog:
    """The catalog of the installed schemas, built once per process."""
    return Catalog()


def catalog_for(schemas: str | None) -> Catalog:
    """The shipped catalog, plus the user's schema directory (``--schemas DIR``) when one is given."""
    return default_catalog().extended([Path(schemas)]) if schemas else default_catalog()
