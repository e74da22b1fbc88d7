"""Generated schemas: fresh, valid, reconciled as documented, and every documented example validates."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema
from jsonschema import Draft202012Validator

from mock_server.cli import main
from mock_server.contract import generator
from mock_server.contract.catalog import Catalog
from mock_server.contract.ranges import int_range_regex
from mock_server.contract.tables import EndpointTable, Param, Source, load_table
from mock_server.resources import data_dir

SCHEMAS = data_dir("schemas")
SOURCES = SCHEMAS / "sources"
DEV = "wavespeed-ai/flux-kontext-dev"


def test_committed_schemas_are_what_the_sources_generate() -> None:
    assert generator.diff(SCHEMAS, generator.build(generator.load_sources(SOURCES))) == []


def test_schemas_check_exits_1_on_a_stale_tree_and_build_repairs_it(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    tree = tmp_path / "schemas"
    shutil.copytree(SCHEMAS, tree)
    stale = tree / "endpoints" / "wavespeed-ai__flux-kontext-max.request.json"
    stale.write_text(stale.read_text().replace('"maximum": 20.0', '"maximum": 21.0'))
    (tree / "endpoints" / "left-over.request.json").write_text("{}")

    assert main(["schemas", "check", "--out", str(tree)]) == 1
    assert "flux-kontext-max.request.json" in capsys.readouterr().out
    assert main(["schemas", "build", "--out", str(tree)]) == 0
    assert main(["schemas", "check", "--out", str(tree)]) == 0
    assert not (tree / "endpoints" / "left-over.request.json").exists()


def test_every_source_table_file_is_in_its_canonical_form() -> None:
    for path in SOURCES.glob("*@*.json"):
        assert load_table(path).dumps() == path.read_text(encoding="utf-8"), path.name


@pytest.mark.parametrize(
    "path",
    sorted(
        p.name
        for p in SCHEMAS.rglob("*.json")
        if "sources" not in p.parts and p.name not in ("openapi.json", "index.json", "control-operations.json")
    ),
)
def test_every_generated_schema_is_valid_json_schema_2020_12(path: str) -> None:
    schema = json.loads(next(SCHEMAS.rglob(path)).read_text())
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_every_request_property_carries_its_provenance(catalog: Catalog) -> None:
    for endpoint in catalog.endpoints.values():
        for name, prop in endpoint.properties.items():
            rows = [p for p in prop["x-provenance"] if "row" in p]
            assert rows, (endpoint.model, name)
            assert all(p["source"].startswith(endpoint.model + "@") for p in rows)


def test_the_family_from_the_seeds_and_the_reference_notes_is_served(catalog: Catalog) -> None:
    expected = {
        "wavespeed-ai/flux-kontext-dev",
        "wavespeed-ai/flux-kontext-dev/multi-ultra-fast",
        "wavespeed-ai/flux-kontext-max",
        "wavespeed-ai/flux-kontext-pro/text-to-image",
        "wavespeed-ai/flux-kontext-dev-ultra-fast",
        "wavespeed-ai/flux-kontext-dev/multi",
        "wavespeed-ai/flux-kontext-dev-lora",
        "wavespeed-ai/flux-kontext-pro",
        "wavespeed-ai/flux-kontext-pro/multi",
        "wavespeed-ai/flux-kontext-max/multi",
        "wavespeed-ai/flux-kontext-max/text-to-image",
    }
    assert expected <= set(catalog.endpoints)
    index = json.loads((SCHEMAS / "index.json").read_text())["endpoints"]
    reference_only = {e["model"] for e in index if all("@reference-notes" in v for v in e["versions"])}
    assert "wavespeed-ai/flux-kontext-pro/multi" in reference_only


def test_flux_kontext_dev_is_the_documented_loosest_reading_of_both_pages(catalog: Catalog) -> None:
    schema = catalog.endpoints[DEV].request_schema
    props = schema["properties"]

    assert "prompt" not in schema["required"]
    assert {"output_format", "enable_sync_mode", "enable_safety_checker"} <= set(props)
    assert props["size"]["x-dimension-range"] == {"minimum": 256, "maximum": 1536}
    assert "default" not in props["size"] and props["size"]["examples"] == ["1024*1024"]
    assert props["seed"]["maximum"] == 9999999999
    assert set(props["size"]["x-reconciled"]["minimum"].values()) == {256, 512}
    assert {p["source"].split("@")[1][:8] for p in props["prompt"]["x-provenance"]} == {"docs-000", "docs-001"}


@pytest.mark.parametrize(
    ("size", "valid"),
    [
        ("256*256", True),
        ("1536*1024", True),
        ("1024*1024", True),
        ("255*256", False),
        ("1537*512", False),
        ("1024x1024", False),
        ("1024*", False),
        ("01024*1024", False),
        ("abc", False),
    ],
)
def test_size_is_w_times_h_with_each_side_in_range(catalog: Catalog, size: str, valid: bool) -> None:
    assert (catalog.validate(DEV, {"size": size}) == []) is valid


def test_safety_tolerance_is_a_string_enum(catalog: Catalog) -> None:
    model = "wavespeed-ai/flux-kontext-pro/text-to-image"
    assert catalog.validate(model, {"prompt": "x", "safety_tolerance": "5"}) == []
    assert {v.path for v in catalog.validate(model, {"prompt": "x", "safety_tolerance": 5})} == {"safety_tolerance"}
    assert [v.path for v in catalog.validate(model, {"prompt": "x", "safety_tolerance": "6"})] == ["safety_tolerance"]


def test_loras_items_are_checked(catalog: Catalog) -> None:
    model = "wavespeed-ai/flux-kontext-dev-lora"
    assert catalog.validate(model, {"loras": [{"path": "a/b", "scale": 1.0}]}) == []
    violations = catalog.validate(model, {"loras": [{"path": "a/b", "scale": 5}, {"scale": 1}] + [{}] * 2})
    assert {v.path for v in violations} >= {"loras", "loras[0].scale", "loras[1].path"}


def _doc_examples() -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((data_dir("fixtures") / "doc-examples").glob("*.json"))]


@pytest.mark.parametrize("example", _doc_examples(), ids=lambda e: e["page"][:3])
def test_every_example_body_shown_in_the_doc_pages_validates(catalog: Catalog, example: dict[str, Any]) -> None:
    violations = catalog.validate(example["model"], example["body"])

    # Page 003's curl example leaves out its own two required fields; drift's lint reports it. Everything the
    # example does send is valid, and so is the example completed with those fields.
    omitted = example.get("page_omits_required", [])
    assert sorted((v.path, v.message) for v in violations) == [(name, "is required") for name in omitted]
    completed = {
        **{name: "https://example.com/in.png" if name == "image" else "x" for name in omitted},
        **example["body"],
    }
    assert catalog.validate(example["model"], completed) == []


def test_doc_examples_cover_every_seed_page() -> None:
    pages = {e["page"] for e in _doc_examples()}
    tables = {load_table(p).source.ref for p in SOURCES.glob("*@docs-*.json")}
    assert pages == tables


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_data_drawn_from_each_request_schema_validates_against_it(catalog: Catalog, data: st.DataObject) -> None:
    model = data.draw(st.sampled_from(sorted(catalog.endpoints)))
    body = data.draw(from_schema(catalog.endpoints[model].request_schema))

    assert catalog.validate(model, body) == []


@settings(max_examples=200, deadline=None)
@given(lo=st.integers(0, 5000), span=st.integers(0, 5000), probe=st.integers(0, 20000))
def test_int_range_regex_matches_exactly_the_range(lo: int, span: int, probe: int) -> None:
    pattern = re.compile(f"^{int_range_regex(lo, lo + span)}$")

    assert bool(pattern.match(str(probe))) == (lo <= probe <= lo + span)


def _table(version: str, *params: Param) -> EndpointTable:
    return EndpointTable(
        model="acme/model", version=version, source=Source(kind="doc-page", ref=version), request=params
    )


def test_reconciliation_rules_on_small_tables(tmp_path: Path) -> None:
    older = _table(
        "docs-a",
        Param("prompt", "string", required=True, row=1),
        Param("steps", "integer", default=28, minimum=1, maximum=50, row=2),
        Param("fmt", "string", default="jpeg", enum=("jpeg", "png"), row=3),
    )
    newer = _table(
        "docs-b",
        Param("prompt", "string", required=True, row=1),
        Param("steps", "integer", default=30, minimum=4, maximum=60, row=2),
        Param("mode", "string", required=True, row=3),
    )
    for t in (older, newer):
        (tmp_path / f"acme__model@{t.version}.json").write_text(t.dumps())
    for name in ("overlays.json", "descriptions.json"):
        shutil.copy(SOURCES / name, tmp_path / name)

    schema = generator.request_schema("acme/model", generator.load_sources(tmp_path))

    assert schema["required"] == ["prompt"]  # "mode" is required by one version only
    steps = schema["properties"]["steps"]
    assert (steps["minimum"], steps["maximum"], "default" in steps, steps["examples"]) == (1, 60, False, [28, 30])
    assert schema["properties"]["fmt"]["enum"] == ["jpeg", "png"]
    assert schema["properties"]["mode"]["x-reconciled"]["listed_in"] == ["acme/model@docs-b"]


def test_openapi_document_references_every_endpoint_schema(catalog: Catalog) -> None:
    document = catalog.openapi
    for model in catalog.endpoints:
        operation = document["paths"][f"/api/v3/{model}"]["post"]
        ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert ref.split("/")[-1] in document["components"]["schemas"]
    assert document["paths"]["/api/v3/predictions/{id}/result"]["get"]["responses"]["200"]
