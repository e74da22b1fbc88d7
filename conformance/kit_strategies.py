"""Hypothesis strategies for requests: every request an endpoint's schema accepts (narrowed to the cheapest
on a paid target), the same broken in exactly one documented way (:class:`Mutation`), and bodies that are
not a JSON object at all.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, cast

from hypothesis import assume
from hypothesis import strategies as st
from kit_target import Target
from kit_violations import short, validator_for

from mock_server.contract.catalog import Catalog, Endpoint
from mock_server.contract.jsonbody import json_type

MALFORMED_SIZES = (
    "100*100",
    "1024x1024",
    "abc",
    "1537*1024",
    "1024*255",
    "1024 * 1024",
    "-512*512",
    "1024*1024*2",
    "1024*",
    "*1024",
    "0*0",
    "1e3*1024",
    "1024,1024",
    "",
)
BAD_JSON_BODIES = (
    b"{not json",
    b'{"prompt": ',
    b"\xff\xfe\xfd",
    b"{'prompt': 'single quotes'}",
    b'{"prompt": "x",}',
    b"[1, 2",
    b"nul",
)
NON_OBJECT_BODIES = (b"[]", b'[{"prompt": "x"}]', b'"a prompt"', b"42", b"null", b"true", b"3.5")
# Request-level switches of the API itself (reference §4), not model parameters: never sent as "foreign".
TRANSPORT_KNOBS = ("enable_sync_mode", "enable_base64_output")
LORA_ITEM = {"path": "owner/lora", "scale": 1.0}


def cheapened(endpoint: Endpoint) -> dict[str, Any]:
    """The request schema narrowed to the cheapest requests: one image, the smallest size, no LoRAs."""
    schema: dict[str, Any] = copy.deepcopy(endpoint.request_schema)
    props = schema["properties"]
    if "num_images" in props:
        props["num_images"] = {"const": props["num_images"].get("minimum", 1)}
    if "size" in props:
        low = props["size"].get("x-dimension-range", {}).get("minimum", 256)
        props["size"] = {"const": f"{low}*{low}"}
    if "loras" in props:
        props["loras"] = {"const": []}
    if "images" in props:
        props["images"] = {**props["images"], "maxItems": 1}
    if "enable_sync_mode" in props:
        props["enable_sync_mode"] = {"const": False}
    return schema


@cache
def _schema_strategy(schema_json: str) -> st.SearchStrategy[dict[str, Any]]:
    # Imported here: hypothesis-jsonschema builds strategies at import, which hypothesis discourages while
    # pytest is still loading conftest files.
    from hypothesis_jsonschema import from_schema

    strategy: Any = from_schema(json.loads(schema_json))
    return cast("st.SearchStrategy[dict[str, Any]]", strategy)


def schema_strategy(schema: Mapping[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    return _schema_strategy(json.dumps(schema, sort_keys=True))


def foreign_parameters(endpoint: Endpoint, catalog: Catalog) -> list[str]:
    """Model parameters other endpoints document but this one does not (clients send them: reference §4)."""
    own = set(endpoint.properties) | set(TRANSPORT_KNOBS)
    names = {name for other in catalog.endpoints.values() for name in other.properties}
    return sorted(names - own)


@st.composite
def valid_requests(
    draw: st.DrawFn, target: Target, endpoint: Endpoint, *, foreign: bool = False, without: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Any request the endpoint's schema accepts, image inputs taken from ``target.input_images``.

    ``foreign`` adds, sometimes, parameters other endpoints document with arbitrary JSON values: an unknown
    field is accepted and must never break the prediction. ``without`` drops fields (e.g. the sync flag).
    """
    schema = cheapened(endpoint) if target.paid else endpoint.request_schema
    body = dict(draw(schema_strategy(schema), label="from the request schema"))
    images = st.sampled_from(target.input_images)
    if isinstance(body.get("image"), str) and target.input_images:
        body["image"] = draw(images, label="image")
    if isinstance(body.get("images"), list) and target.input_images:
        body["images"] = [draw(images, label="images item") for _ in body["images"]]
    for name in without:
        body.pop(name, None)
    if foreign:
        names = foreign_parameters(endpoint, target.catalog)
        if names:
            extra = draw(st.dictionaries(st.sampled_from(names), json_values(), max_size=2), label="foreign")
            body.update(extra)
    return body


def json_values() -> st.SearchStrategy[Any]:
    scalars = (
        st.none()
        | st.booleans()
        | st.integers(-(2**31), 2**31)
        | st.floats(allow_nan=False, allow_infinity=False, width=32)
        | st.text(max_size=12)
    )
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
        max_leaves=6,
    )


@dataclass(frozen=True)
class Mutation:
    """An invalid request made from a valid one: which field, and why it must be refused."""

    body: dict[str, Any]
    path: str
    reason: str


def _wrong_type_values(schema: Mapping[str, Any]) -> list[Any]:
    kind = schema.get("type")
    candidates: list[Any] = [None, {"nested": True}]
    if kind != "string":
        candidates += ["not-a-" + str(kind)]
    if kind not in ("integer", "number"):
        candidates += [7]
    if kind == "integer":
        candidates += [1.5, "3"]
    if kind == "number":
        candidates += ["2.5"]
    if kind != "boolean":
        candidates += [True]
    if kind == "boolean":
        candidates += ["true", 1]
    if kind != "array":
        candidates += [["a", "list"]]
    return candidates


def _mutations(endpoint: Endpoint, body: dict[str, Any]) -> list[tuple[str, Callable[[st.DrawFn], Mutation]]]:
    props = endpoint.properties
    options: list[tuple[str, Callable[[st.DrawFn], Mutation]]] = []
    required = endpoint.request_schema.get("required", [])

    for name in required:

        def drop(draw: st.DrawFn, name: str = name) -> Mutation:
            return Mutation({k: v for k, v in body.items() if k != name}, name, f"required {name!r} is missing")

        options.append((f"drop {name}", drop))

    for name, schema in props.items():

        def wrong_type(draw: st.DrawFn, name: str = name, schema: Mapping[str, Any] = schema) -> Mutation:
            value = draw(st.sampled_from(_wrong_type_values(schema)), label=f"wrong-type {name}")
            return Mutation(
                {**body, name: value},
                name,
                f"{name} must be of type {schema.get('type')}, sent {json_type(value)} {short(value, 40)}",
            )

        options.append((f"wrong type {name}", wrong_type))

        kind = schema.get("type")
        if kind in ("integer", "number") and ("minimum" in schema or "maximum" in schema):

            def out_of_range(draw: st.DrawFn, name: str = name, schema: Mapping[str, Any] = schema) -> Mutation:
                sides = [s for s in ("minimum", "maximum") if s in schema]
                side = draw(st.sampled_from(sides), label=f"{name} side")
                bound = schema[side]
                if schema.get("type") == "integer":
                    delta: float = draw(st.integers(1, 16), label="delta")
                else:
                    delta = draw(st.sampled_from([0.01, 0.5, 1.0, 7.25, 100.0]), label="delta")
                value = bound - delta if side == "minimum" else bound + delta
                if schema.get("type") == "integer":
                    value = int(value)
                return Mutation({**body, name: value}, name, f"{name} {side} is {bound}, sent {value}")

            options.append((f"out of range {name}", out_of_range))

        if "enum" in schema:

            def bad_enum(draw: st.DrawFn, name: str = name, schema: Mapping[str, Any] = schema) -> Mutation:
                pool = ["gif", "0", "6", "1:2", "16:10", "JPEG", "png ", "", "auto"]
                value = draw(st.sampled_from(pool) | st.text(min_size=1, max_size=8), label=f"bad {name}")
                assume(value not in schema["enum"])
                return Mutation({**body, name: value}, name, f"{name} must be one of {schema['enum']}, sent {value!r}")

            options.append((f"bad enum {name}", bad_enum))

        if name == "size":

            def bad_size(draw: st.DrawFn) -> Mutation:
                value = draw(st.sampled_from(MALFORMED_SIZES), label="malformed size")
                return Mutation(
                    {**body, "size": value}, "size", f"size must be 'W*H' within the documented range, sent {value!r}"
                )

            options.append(("malformed size", bad_size))

        if kind == "array" and "maxItems" in schema:

            def too_many(draw: st.DrawFn, name: str = name, schema: Mapping[str, Any] = schema) -> Mutation:
                items = schema.get("items", {})
                filler: Any = dict(LORA_ITEM) if items.get("type") == "object" else "https://example.com/input.png"
                value = [filler] * (schema["maxItems"] + draw(st.integers(1, 3), label="extra items"))
                return Mutation(
                    {**body, name: value}, name, f"{name} holds at most {schema['maxItems']} items, sent {len(value)}"
                )

            options.append((f"too many {name}", too_many))

        items = schema.get("items", {}) if kind == "array" else {}
        if items.get("type") == "object" and items.get("required"):

            def bad_item(draw: st.DrawFn, name: str = name, items: Mapping[str, Any] = items) -> Mutation:
                key = draw(st.sampled_from(items["required"]), label="item key")
                item = {k: v for k, v in LORA_ITEM.items() if k != key}
                return Mutation({**body, name: [item]}, f"{name}[0].{key}", f"{name} items require {key!r}")

            options.append((f"incomplete {name} item", bad_item))
    return options


@st.composite
def invalid_requests(draw: st.DrawFn, target: Target, endpoint: Endpoint) -> Mutation:
    """A valid request broken in exactly one documented way; the schema itself confirms it is invalid."""
    body = draw(valid_requests(target, endpoint), label="valid base")
    options = _mutations(endpoint, body)
    _, make = draw(st.sampled_from(options), label="mutation")
    mutation = make(draw)
    assume(any(True for _ in validator_for(endpoint.request_schema).iter_errors(mutation.body)))
    return mutation


def malformed_bodies() -> st.SearchStrategy[tuple[bytes, str]]:
    """Bodies that are not a JSON object: broken JSON, JSON of another type, random bytes."""

    def not_an_object(raw: bytes) -> bool:
        if not raw.strip():
            return False
        try:
            return not isinstance(json.loads(raw), dict)
        except (ValueError, UnicodeDecodeError):
            return True

    return st.one_of(
        st.sampled_from(BAD_JSON_BODIES).map(lambda raw: (raw, "body is not valid JSON")),
        st.sampled_from(NON_OBJECT_BODIES).map(lambda raw: (raw, "body is JSON but not an object")),
        st.binary(min_size=1, max_size=64).filter(not_an_object).map(lambda raw: (raw, "body is not a JSON object")),
    )
