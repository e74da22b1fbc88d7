"""Docs drift: change kinds, breaking flags, lint findings, the report and its exit codes."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from mock_server.contract.docpages import parse_page_file
from mock_server.contract.drift import (
    Change,
    diff_tables,
    lint_table,
    load_any,
    render_json,
    render_text,
    run_drift_docs,
)
from mock_server.contract.tables import EndpointTable, Field, Param, Source

PAGES = Path(__file__).parent / "data" / "doc_pages"
V1 = PAGES / "acme_v1_pipe.txt"
V2 = PAGES / "acme_v2_cells.txt"


def _table(
    *request: Param, response: tuple[Field, ...] = (), example: dict[str, object] | None = None, version: str = "v"
) -> EndpointTable:
    return EndpointTable(
        model="acme/example-model",
        version=version,
        source=Source(kind="reference-notes", ref="test"),
        request=tuple(replace(p, row=i) for i, p in enumerate(request, start=1)),
        response=response,
        example=example,
    )


def _kinds(changes: list[Change]) -> list[tuple[str, str, bool]]:
    return [(c.kind, c.location, c.breaking) for c in changes]


# ------------------------------------------------------------------------------------------ fixture pages


def test_drift_between_page_versions() -> None:
    changes = diff_tables(parse_page_file(V1), parse_page_file(V2))
    gone = "result_response"
    assert _kinds(changes) == [
        ("parameter-added", "request.mask_image", True),
        ("parameter-removed", "request.reference_images", True),
        ("range-widened", "request.size", False),
        ("range-widened", "request.size", False),
        ("default-changed", "request.guidance_scale", False),
        ("range-narrowed", "request.num_images", True),
        ("required-changed", "request.style_note", True),
        ("enum-value-removed", "request.output_format", True),
        ("enum-value-added", "request.output_format", False),
        ("type-changed", "request.aspect_ratio", False),
        ("parameter-added", "request.enable_safety_checker", False),
        ("field-type-changed", "response.data.outputs", True),
        ("field-added", "response.data.error", False),
        ("field-removed", "response.data.status", True),
        # The new saved page ends before its result tables: reported, but says nothing about the API.
        ("parameter-removed", "result_request.id", False),
        ("field-removed", f"{gone}.code", False),
        ("field-removed", f"{gone}.data", False),
        ("field-removed", f"{gone}.data.status", False),
        ("field-removed", f"{gone}.data.outputs", False),
    ]
    size = [c for c in changes if c.location == "request.size"]
    assert [(c.old, c.new) for c in size] == [(512, 256), (1536, 2048)]
    assert "the new page documents no result_response table" in changes[-1].detail


def test_the_same_page_in_other_layouts_has_no_drift() -> None:
    cells = parse_page_file(PAGES / "acme_v1_cells.txt")
    for other in ("acme_v1_pipe.txt", "acme_v1_flat.txt"):
        assert diff_tables(cells, parse_page_file(PAGES / other)) == []


# ------------------------------------------------------------------------------------------ single rules


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (Param("p", "string"), Param("p", "string", required=True), [("required-changed", True)]),
        (Param("p", "string", required=True), Param("p", "string"), [("required-changed", False)]),
        (Param("p", "string"), Param("p", "integer"), [("type-changed", True)]),
        (Param("p", None), Param("p", "string"), [("type-changed", False)]),
        (Param("p", "string"), Param("p", None), [("type-changed", False)]),
        (Param("p", "integer", default=1), Param("p", "integer", default=2), [("default-changed", False)]),
        (Param("p", "boolean", default=True), Param("p", "boolean", default=1), [("default-changed", False)]),
        (Param("p", "integer"), Param("p", "integer", minimum=1), [("range-narrowed", True)]),
        (Param("p", "integer", maximum=9), Param("p", "integer"), [("range-widened", False)]),
        (
            Param("p", "integer", minimum=1, maximum=9),
            Param("p", "integer", minimum=0, maximum=8),
            [("range-widened", False), ("range-narrowed", True)],
        ),
        (
            Param("p", "string", minimum=1, maximum=9),
            Param("p", "string", minimum=1, maximum=9, per_dimension=True),
            [("range-narrowed", True)],
        ),
        (Param("p", "string"), Param("p", "string", enum=("a", "b")), [("range-narrowed", True)]),
        (Param("p", "string", enum=("a", "b")), Param("p", "string"), [("range-widened", False)]),
        (
            Param("p", "string", enum=("a", "b")),
            Param("p", "string", enum=("b", "c")),
            [("enum-value-removed", True), ("enum-value-added", False)],
        ),
        (
            Param("p", "array", item_type="string"),
            Param("p", "array", item_type="object"),
            [("item-type-changed", True)],
        ),
        (Param("p", "array"), Param("p", "array", item_type="string"), [("item-type-changed", False)]),
        (Param("p", "array", max_items=4), Param("p", "array", max_items=2), [("max-items-changed", True)]),
        (Param("p", "array", max_items=2), Param("p", "array", max_items=4), [("max-items-changed", False)]),
        (Param("p", "array"), Param("p", "array", max_items=4), [("max-items-changed", True)]),
        (Param("p", "array", max_items=4), Param("p", "array"), [("max-items-changed", False)]),
        (Param("p", "string"), Param("p", "string"), []),
    ],
)
def test_param_rules(old: Param, new: Param, expected: list[tuple[str, bool]]) -> None:
    changes = diff_tables(_table(old), _table(new))
    assert [(c.kind, c.breaking) for c in changes] == expected
    assert all(c.location == "request.p" for c in changes)


def test_added_and_removed_parameters() -> None:
    base = _table(Param("a", "string"))
    assert _kinds(diff_tables(base, _table(Param("a", "string"), Param("b", "string")))) == [
        ("parameter-added", "request.b", False)
    ]
    assert _kinds(diff_tables(base, _table(Param("a", "string"), Param("b", "string", required=True)))) == [
        ("parameter-added", "request.b", True)
    ]
    assert _kinds(diff_tables(_table(Param("a", "string"), Param("b", "string")), base)) == [
        ("parameter-removed", "request.b", True)
    ]


def test_item_fields_are_compared_with_bracket_locations() -> None:
    scale = Param("scale", "number", minimum=0.0, maximum=2.0, row=2)
    old = Param("loras", "array", item_type="object", item_fields=(Param("path", "string", True, row=1), scale))
    new = replace(old, item_fields=(Param("path", "string", True, row=1), replace(scale, maximum=1.0)))
    changes = diff_tables(_table(old), _table(new))
    assert _kinds(changes) == [("range-narrowed", "request.loras[].scale", True)]
    assert (changes[0].old, changes[0].new) == (2.0, 1.0)


def test_response_field_rules() -> None:
    old = _table(
        Param("a", "string"),
        response=(Field("code", "integer", 1), Field("data.id", "string", 2), Field("data.x", None, 3)),
    )
    new = _table(
        Param("a", "string"),
        response=(Field("code", "string", 1), Field("data.x", "object", 2), Field("data.new", "string", 3)),
    )
    assert _kinds(diff_tables(old, new)) == [
        ("field-type-changed", "response.code", True),
        # In the new table's row order; a removed row follows the new row that took its number.
        ("field-type-changed", "response.data.x", False),
        ("field-removed", "response.data.id", True),
        ("field-added", "response.data.new", False),
    ]


def test_order_is_deterministic() -> None:
    old, new = parse_page_file(V1), parse_page_file(V2)
    assert diff_tables(old, new) == diff_tables(old, new)


@settings(max_examples=200, deadline=None)
@given(
    st.none() | st.integers(-5, 5),
    st.none() | st.integers(-5, 5),
    st.none() | st.integers(-5, 5),
    st.none() | st.integers(-5, 5),
)
def test_range_change_breaks_exactly_when_a_value_is_no_longer_allowed(
    old_min: int | None, old_max: int | None, new_min: int | None, new_max: int | None
) -> None:
    assume(old_min is None or old_max is None or old_min <= old_max)
    assume(new_min is None or new_max is None or new_min <= new_max)
    old = Param("n", "integer", minimum=old_min, maximum=old_max)
    new = Param("n", "integer", minimum=new_min, maximum=new_max)
    changes = diff_tables(_table(old), _table(new))

    def allowed(p: Param, v: int) -> bool:
        return (p.minimum is None or v >= p.minimum) and (p.maximum is None or v <= p.maximum)

    lost = any(allowed(old, v) and not allowed(new, v) for v in range(-20, 21))
    assert any(c.breaking for c in changes) == lost
    assert (changes == []) == (old == new)


# ------------------------------------------------------------------------------------------------------ lint


def test_lint_of_the_v2_page() -> None:
    findings = lint_table(parse_page_file(V2))
    assert [(f.kind, f.location, f.breaking) for f in findings] == [
        ("example-inconsistent", "request.prompt", False),
        ("example-inconsistent", "request.num_images", False),
        ("example-inconsistent", "request.strength", False),
    ]
    assert "omits required parameter prompt" in findings[0].detail
    assert findings[1].new == 3
    assert lint_table(parse_page_file(V1)) == []


def test_lint_value_checks() -> None:
    table = _table(
        Param("size", "string", minimum=256, maximum=1536, per_dimension=True),
        Param("fmt", "string", enum=("jpeg", "png")),
        Param("flag", None, enum=("true", "false")),
        Param("steps", "integer", minimum=1, maximum=50),
        example={"size": "2048*1024", "fmt": "gif", "flag": True, "steps": "28"},
    )
    assert [f.location for f in lint_table(table)] == ["request.size", "request.fmt", "request.steps"]
    assert lint_table(replace(table, example=None)) == []
    ok = replace(table, example={"size": "1024*768", "fmt": "png", "flag": False, "steps": 28})
    assert lint_table(ok) == []


# ----------------------------------------------------------------------------------------- loading, report


def test_load_any_reads_json_tables_and_pages(tmp_path: Path) -> None:
    page = load_any(V1)
    saved = tmp_path / "acme__example-model@docs-acme_v1_pipe.json"
    saved.write_text(page.dumps(), encoding="utf-8")
    assert load_any(saved) == page
    assert load_any(str(saved)) == page


def test_run_text_report(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_drift_docs(str(V1), str(V2)) == 1
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "docs drift: acme/example-model@docs-acme_v1_pipe -> acme/example-model@docs-acme_v2_cells"
    assert any(
        line.lstrip().startswith("BREAKING  required-changed") and "request.style_note" in line for line in lines
    )
    assert any(line.lstrip().startswith("ok        enum-value-added") for line in lines)
    assert "summary: 19 changes, 7 breaking, 12 non-breaking" in lines
    assert "lint new (acme/example-model@docs-acme_v2_cells): 3 findings" in lines
    assert "lint old (acme/example-model@docs-acme_v1_pipe): 0 findings" in lines


def test_run_json_report() -> None:
    stream = io.StringIO()
    assert run_drift_docs(str(V1), str(V2), fmt="json", stream=stream) == 1
    data = json.loads(stream.getvalue())
    assert set(data) == {"old", "new", "breaking", "changes", "lint"}
    assert (data["old"], data["new"], data["breaking"]) == (
        "acme/example-model@docs-acme_v1_pipe",
        "acme/example-model@docs-acme_v2_cells",
        7,
    )
    assert len(data["changes"]) == 19
    assert data["changes"][1] == {
        "kind": "parameter-removed",
        "location": "request.reference_images",
        "old": {
            "type": "array",
            "required": False,
            "default": ["https://example.com/a.png", "https://example.com/b.jpg"],
            "item_type": "string",
        },
        "new": None,
        "breaking": True,
        "detail": "parameter no longer documented",
    }
    assert data["lint"]["old"] == []
    assert [f["location"] for f in data["lint"]["new"]] == ["request.prompt", "request.num_images", "request.strength"]


def test_run_without_breaking_changes_exits_0(tmp_path: Path) -> None:
    stream = io.StringIO()
    saved = tmp_path / "v1.json"
    saved.write_text(parse_page_file(PAGES / "acme_v1_flat.txt").dumps(), encoding="utf-8")
    assert run_drift_docs(str(saved), str(PAGES / "acme_v1_cells.txt"), stream=stream) == 0
    assert "summary: 0 changes, 0 breaking, 0 non-breaking" in stream.getvalue()
    assert run_drift_docs(str(V2), str(V2), fmt="json", stream=io.StringIO()) == 0


@pytest.mark.parametrize("bad", ["missing.txt", "broken.json", "prose.txt"])
def test_unreadable_input_exits_2(tmp_path: Path, bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "broken.json").write_text("{not json", encoding="utf-8")
    (tmp_path / "prose.txt").write_text("no tables here\n", encoding="utf-8")
    stream = io.StringIO()
    assert run_drift_docs(str(V1), str(tmp_path / bad), stream=stream) == 2
    assert stream.getvalue() == ""
    assert f"cannot read {tmp_path / bad}" in capsys.readouterr().err


def test_unknown_format_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_drift_docs(str(V1), str(V2), fmt="yaml", stream=io.StringIO()) == 2
    assert "unknown format" in capsys.readouterr().err


def test_renderers_without_lint() -> None:
    old, new = parse_page_file(V1), parse_page_file(V2)
    changes = diff_tables(old, new)
    assert "lint" not in json.loads(render_json(changes, old, new))
    text = render_text(changes, old, new)
    assert "lint" not in text and text.endswith("summary: 19 changes, 7 breaking, 12 non-breaking\n")
    other = replace(new, model="acme/other-model")
    assert "different models" in render_text(diff_tables(old, other), old, other)
