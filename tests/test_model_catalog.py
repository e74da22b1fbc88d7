"""The model catalog in the real format: export from our schemas, import into tables, and GET /api/v3/models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator

from mock_server.contract import generator
from mock_server.contract.catalog import Catalog
from mock_server.contract.modelcatalog import (
    CatalogError,
    export_model,
    export_models,
    table_from_entry,
    tables_from_catalog,
)
from mock_server.contract.tables import Param
from mock_server.http.server import RunningServer
from mock_server.testing import fixtures_data
from tests.conftest import T2I

CATALOG_FILE = Path(__file__).parent / "data" / "catalogs" / "acme_catalog.json"
# What a client may read in a request_schema property; everything else of ours is an x- extension.
VALIDATION_KEYS = ("type", "minimum", "maximum", "enum", "pattern", "items", "maxItems", "default")


def _acme() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(CATALOG_FILE.read_text(encoding="utf-8"))
    return document


def _validating(schema: dict[str, Any]) -> dict[str, Any]:
    """The keywords of a request schema that decide validation, per property."""
    return {name: {k: prop[k] for k in VALIDATION_KEYS if k in prop} for name, prop in schema["properties"].items()}


# ---------------------------------------------------------------------------------------------------- export


def test_every_served_endpoint_is_exported_in_the_real_format(catalog: Catalog) -> None:
    models = export_models(catalog)
    assert [m["model_id"] for m in models] == list(catalog.endpoints)
    for position, entry in enumerate(models, start=1):
        endpoint = catalog.endpoints[entry["model_id"]]
        assert set(entry) == {
            "model_id",
            "name",
            "description",
            "type",
            "base_price",
            "sort_order",
            "formula",
            "api_schema",
        }
        assert entry["sort_order"] == position and entry["name"] and entry["description"]
        assert entry["type"] == ("text-to-image" if endpoint.kind == "text-to-image" else "image-to-image")
        assert entry["base_price"] == (endpoint.price_usd or 0.0)
        [run] = entry["api_schema"]["api_schemas"]
        assert (run["type"], run["method"], run["api_path"]) == ("model_run", "POST", f"/api/v3/{endpoint.model}")
        request = run["request_schema"]
        assert request["type"] == "object"
        assert request["required"] == endpoint.request_schema["required"]
        assert request["x-order-properties"] == list(endpoint.properties) == list(request["properties"])
        text = json.dumps(request["properties"])
        assert "x-provenance" not in text and "x-reconciled" not in text and "x-dimension-range" not in text


def test_the_formula_follows_how_the_fake_charges(catalog: Catalog) -> None:
    formulas = {m["model_id"]: m["formula"] for m in export_models(catalog)}
    assert formulas[T2I] == '{"total_price": base_price * num_images}'
    assert formulas["wavespeed-ai/flux-kontext-dev/multi"] == '{"total_price": base_price * 1}'  # priced per run


def test_a_size_keeps_its_pattern_and_states_its_side_bounds_as_the_tables_do(catalog: Catalog) -> None:
    entry = export_model(catalog.endpoints["wavespeed-ai/flux-kontext-dev"])
    size = entry["api_schema"]["api_schemas"][0]["request_schema"]["properties"]["size"]
    assert (size["type"], size["minimum"], size["maximum"]) == ("string", 256, 1536)
    validator = Draft202012Validator(entry["api_schema"]["api_schemas"][0]["request_schema"])
    assert validator.is_valid({"size": "1536*256"})
    assert not validator.is_valid({"size": "1537*256"})


def test_an_exported_schema_still_accepts_every_shipped_example(catalog: Catalog) -> None:
    """What the official CLI checks before a submit: no unknown keys, every required key present."""
    exported = {m["model_id"]: m["api_schema"]["api_schemas"][0]["request_schema"] for m in export_models(catalog)}
    for model, body in fixtures_data.examples().items():
        request = exported[model]
        assert set(body) <= set(request["properties"]), model
        assert set(request["required"]) <= set(body), model
        assert Draft202012Validator(request).is_valid(body), model


@pytest.mark.parametrize("model", sorted(fixtures_data.example_models()))
def test_export_then_import_regenerates_the_same_validation(catalog: Catalog, model: str) -> None:
    endpoint = catalog.endpoints[model]
    table = table_from_entry(export_model(endpoint), origin="served.json")
    regenerated = generator.request_schema(model, generator.Sources({model: [table]}, {}, {"request": {}}))
    assert regenerated["required"] == endpoint.request_schema["required"]
    # Reconciled defaults that are really samples live in `examples`, which is not validation.
    assert _validating(regenerated) == _validating(endpoint.request_schema)


# ---------------------------------------------------------------------------------------------------- import


def test_a_catalog_becomes_one_table_per_model_with_provenance() -> None:
    forge, motion = tables_from_catalog(_acme(), origin=str(CATALOG_FILE))
    assert forge.key == "acme/pixel-forge@catalog-acme_catalog"
    assert (forge.source.kind, forge.source.ref) == ("catalog", "acme_catalog.json: acme/pixel-forge")
    # Rows follow x-order-properties, not the properties' key order.
    assert [p.name for p in forge.request][:3] == ["prompt", "negative_prompt", "size"]
    assert [p.row for p in forge.request] == list(range(1, len(forge.request) + 1))
    assert forge.param("prompt") == Param("prompt", "string", required=True, row=1)
    assert forge.param("size") == Param(
        "size", "string", default="1024*1024", minimum=512, maximum=2048, per_dimension=True, row=3
    )
    assert forge.param("style") == Param(
        "style", "string", default="photo", enum=("photo", "illustration", "pixel-art"), row=4
    )
    assert forge.extra == {
        "catalog": {
            "name": "Acme Pixel Forge",
            "type": "text-to-image",
            "sort_order": 120,
            "formula": '{"total_price": base_price * num_images}',
            "base_price": 0.03,
        },
        "price_usd": 0.03,
        "price_unit": "image",
    }
    assert motion.param("fps") == Param("fps", "integer", default=24, enum=(16, 24), row=4)
    assert motion.param("camera_moves") == Param(
        "camera_moves", "array", default=[], item_type="string", max_items=3, row=5
    )
    assert motion.extra["price_unit"] == "run"  # priced by duration, not per image
    assert motion.response == () and motion.example is None  # a catalog documents requests only


def test_the_bare_list_reads_like_the_envelope() -> None:
    document = _acme()
    assert tables_from_catalog(document["data"], origin="x.json") == tables_from_catalog(document, origin="x.json")


def test_nested_item_objects_and_nullable_types_are_read() -> None:
    entry = {
        "model_id": "acme/lora",
        "api_schema": {
            "api_schemas": [
                {
                    "type": "model_run",
                    "request_schema": {
                        "type": "object",
                        "properties": {
                            "loras": {
                                "type": "array",
                                "maxItems": 2,
                                "items": {
                                    "type": "object",
                                    "required": ["path"],
                                    "properties": {
                                        "path": {"type": "string"},
                                        "scale": {"type": "number", "minimum": 0, "maximum": 4},
                                    },
                                },
                            },
                            "mask": {"type": ["string", "null"]},
                        },
                    },
                }
            ]
        },
    }
    loras, mask = table_from_entry(entry, origin="x.json").request
    assert loras == Param(
        "loras",
        "array",
        item_type="object",
        max_items=2,
        row=1,
        item_fields=(
            Param("path", "string", required=True, row=1),
            Param("scale", "number", minimum=0, maximum=4, row=2),
        ),
    )
    assert mask == Param("mask", "string", row=2)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"code": 401, "message": "Unauthorized", "data": None}, "x.json: the envelope says code 401: Unauthorized"),
        ({"models": []}, "x.json: expected the models envelope or a list of models, got dict"),
        ([{"name": "no id"}], "x.json: entry 0 has no model_id"),
        (
            [{"model_id": "acme/empty", "api_schema": {"api_schemas": []}}],
            "x.json: acme/empty has no api_schema.api_schemas[].request_schema.properties",
        ),
    ],
)
def test_a_malformed_catalog_is_refused_readably(document: Any, message: str) -> None:
    with pytest.raises(CatalogError) as caught:
        tables_from_catalog(document, origin="x.json")
    assert str(caught.value) == message


# ------------------------------------------------------------------------------------------ GET /api/v3/models


def test_the_fake_lists_every_served_endpoint_as_the_cli_and_mcp_server_read_it(
    shared_server: RunningServer, catalog: Catalog
) -> None:
    with httpx.Client(base_url=shared_server.base_url, timeout=30) as http:
        response = http.get("/api/v3/models", headers={"Authorization": "Bearer any-key"})
        assert http.get("/api/v3/models").status_code == 401
    assert response.status_code == 200
    body = response.json()
    assert (body["code"], body["message"]) == (200, "success")
    by_id = {m["model_id"]: m for m in body["data"]}
    served = json.loads((Path(__file__).parents[1] / "schemas" / "index.json").read_text(encoding="utf-8"))
    kontext = [e["model"] for e in served["endpoints"]]
    assert kontext and set(kontext) <= set(by_id)
    for model in kontext:
        request = by_id[model]["api_schema"]["api_schemas"][0]["request_schema"]
        assert set(request["properties"]) == set(catalog.endpoints[model].properties)
        assert request["required"] == catalog.endpoints[model].request_schema["required"]
    assert body["data"] == export_models(catalog)  # the same list every time: built once per app
