"""The doc-page parser, on our own small pages (never the saved seed pages: users' clones lack them)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mock_server.contract.docpages import PageParseError, detect_layout, parse_page, parse_page_file
from mock_server.contract.tables import TYPES, EndpointTable, Field, Param, Source

PAGES = Path(__file__).parent / "data" / "doc_pages"
LAYOUT_FILES = {
    "markdown-cells": "acme_v1_cells.txt",
    "pipe-table": "acme_v1_pipe.txt",
    "flattened": "acme_v1_flat.txt",
}

EXPECTED_REQUEST = (
    Param("prompt", "string", required=True, row=1),
    Param(
        "reference_images",
        "array",
        default=["https://example.com/a.png", "https://example.com/b.jpg"],
        item_type="string",
        row=2,
    ),
    Param("size", "string", default="1024*1024", minimum=512, maximum=1536, per_dimension=True, row=3),
    Param("num_inference_steps", "integer", default=28, minimum=1, maximum=50, row=4),
    Param("guidance_scale", "number", default=2.5, minimum=1.0, maximum=20.0, row=5),
    Param("num_images", "integer", default=1, minimum=1, maximum=4, row=6),
    Param("seed", "integer", default=-1, minimum=-1, maximum=99, row=7),
    Param("style_note", "string", default="Keep it calm.", row=8),
    Param("output_format", "string", default="png", enum=("jpeg", "png", "webp"), row=9),
    Param("aspect_ratio", None, enum=("21:9", "16:9", "1:1"), row=10),
    Param("enable_sync_mode", "boolean", default=False, row=11),
)
EXPECTED_RESPONSE = tuple(
    Field(name, type_, row=i)
    for i, (name, type_) in enumerate(
        [
            ("code", "integer"),
            ("message", "string"),
            ("data.id", "string"),
            ("data.outputs", "array"),
            ("data.urls.get", "string"),
            ("data.status", "string"),
        ],
        start=1,
    )
)
EXPECTED_RESULT_RESPONSE = (
    Field("code", "integer", 1),
    Field("data", "object", 2),
    Field("data.status", "string", 3),
    Field("data.outputs", "array", 4),
)
EXPECTED_EXAMPLE = {"prompt": "A lighthouse at dusk", "size": "1024*1024", "seed": -1, "output_format": "png"}


def _facts(table: EndpointTable) -> EndpointTable:
    """The table without what legitimately differs between layouts of one page."""
    return replace(table, source=Source(kind="doc-page", ref=""), version="")


# --------------------------------------------------------------------------------------------- fixture pages


def test_markdown_cells_page_parses_exactly() -> None:
    table = parse_page_file(PAGES / "acme_v1_cells.txt")
    assert table == EndpointTable(
        model="acme/example-model",
        version="docs-acme_v1_cells",
        source=Source(
            kind="doc-page",
            ref="acme_v1_cells.txt",
            layout="markdown-cells",
            url="https://wavespeed.ai/docs/docs-api/acme/example-model",
        ),
        request=EXPECTED_REQUEST,
        response=EXPECTED_RESPONSE,
        result_request=(Param("id", "string", required=True, row=1),),
        result_response=EXPECTED_RESULT_RESPONSE,
        example=EXPECTED_EXAMPLE,
        extra={},
    )


@pytest.mark.parametrize("layout", sorted(LAYOUT_FILES))
def test_every_layout_gives_the_same_facts(layout: str) -> None:
    reference = parse_page_file(PAGES / LAYOUT_FILES["markdown-cells"])
    table = parse_page_file(PAGES / LAYOUT_FILES[layout])
    assert _facts(table) == _facts(reference)
    assert table.source.layout == layout
    assert table.source.ref == LAYOUT_FILES[layout]
    assert table.version == "docs-" + LAYOUT_FILES[layout].removesuffix(".txt")


@pytest.mark.parametrize("layout", sorted(LAYOUT_FILES))
def test_detect_layout(layout: str) -> None:
    assert detect_layout((PAGES / LAYOUT_FILES[layout]).read_text(encoding="utf-8")) == layout


def test_source_url_only_when_the_page_names_it() -> None:
    assert parse_page_file(PAGES / "acme_v1_pipe.txt").source.url is None


def test_empty_result_section_gives_empty_result_tables() -> None:
    table = parse_page_file(PAGES / "acme_v2_cells.txt")
    assert table.result_request == () and table.result_response == ()
    assert [f.name for f in table.response][-1] == "data.error"


def test_committed_form_is_stable() -> None:
    table = parse_page_file(PAGES / "acme_v1_flat.txt")
    assert EndpointTable.from_json(table.to_json()) == table
    assert '"enum": ["jpeg", "png", "webp"]' in table.dumps()


# ------------------------------------------------------------------------------------- single rows, inline


def _flat_page(*rows: str, header: str = "ParameterTypeRequiredDefaultRangeDescription") -> str:
    curl = 'curl --location --request POST "https://api.wavespeed.ai/api/v3/acme/example-model" \\\n'
    return f"{curl}\nRequest Parameters\n\n{header}\n" + "\n".join(rows) + "\n"


def _one(row: str) -> Param:
    (param,) = parse_page(_flat_page(row), "p.txt").request
    return param


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (
            "num_imagesintegerNo11 ~ 4The number of images.",
            Param("num_images", "integer", default=1, minimum=1, maximum=4, row=1),
        ),
        (
            "guidance_scalenumberNo2.51.0 ~ 20.0How closely.",
            Param("guidance_scale", "number", default=2.5, minimum=1.0, maximum=20.0, row=1),
        ),
        ("stepsintegerNo281 ~ 50The steps.", Param("steps", "integer", default=28, minimum=1, maximum=50, row=1)),
        ("seedintegerNo-1-1 ~ 99 The seed.", Param("seed", "integer", default=-1, minimum=-1, maximum=99, row=1)),
        (
            "sizestringNo1024*1024512 ~ 1536 per dimensionThe size.",
            Param("size", "string", default="1024*1024", minimum=512, maximum=1536, per_dimension=True, row=1),
        ),
        (
            "promptstringYesChange the car to red.-The prompt.",
            Param("prompt", "string", required=True, default="Change the car to red.", row=1),
        ),
        (
            "imagestringNohttps://example.com/a-b.jpg-The image.",
            Param("image", "string", default="https://example.com/a-b.jpg", row=1),
        ),
        (
            "imagesarrayNohttps://e.com/1.pnghttps://e.com/2.png-Images.",
            Param("images", "array", default=["https://e.com/1.png", "https://e.com/2.png"], item_type="string", row=1),
        ),
        (
            "output_formatstringNopngjpeg, png, webpThe format.",
            Param("output_format", "string", default="png", enum=("jpeg", "png", "webp"), row=1),
        ),
        ("aspect_ratioNo-21:9, 1:1The ratio.", Param("aspect_ratio", None, enum=("21:9", "1:1"), row=1)),
        ("safety_tolerancestringNo2-The tolerance.", Param("safety_tolerance", "string", default="2", row=1)),
        ("enable_xbooleanNotrue-Whether to.", Param("enable_x", "boolean", default=True, row=1)),
        ("promptstringYes-The prompt.", Param("prompt", "string", required=True, row=1)),
    ],
)
def test_flattened_run_togethers(row: str, expected: Param) -> None:
    assert _one(row) == expected


def test_flattened_result_and_response_rows() -> None:
    text = _flat_page("promptstringYes-The prompt.") + (
        "\nResponse Parameters\n\nParameterTypeDescription\n"
        "data.urls.getstringURL to poll.\ndata.outputsarrayArray of URLs.\ndataobjectThe data.\n"
        "\nResult Request Parameters\n\nParameterTypeRequiredDefaultDescription\nidstringYes-Task ID\n"
    )
    table = parse_page(text, "p.txt")
    assert table.response == (
        Field("data.urls.get", "string", 1),
        Field("data.outputs", "array", 2),
        Field("data", "object", 3),
    )
    assert table.result_request == (Param("id", "string", required=True, row=1),)


def test_markdown_escapes_and_missing_type_cell() -> None:
    text = (
        "来源: https://wavespeed.ai/docs/docs-api/acme/fallback-model\n\n"
        "#### Request Parameters[](#request-parameters)\n\nParameter\n\nType\n\nRequired\n\nDefault\n\nRange\n\n"
        "Description\n\nnum\\_images\n\ninteger\n\nNo\n\n\\-1\n\n\\-1 ~ 4\n\nThe count (width\\*height).\n\n"
        "aspect\\_ratio\n\nNo\n\n\\-\n\n21:9, 1:1\n\nThe ratio.\n"
    )
    table = parse_page(text, "cells.md")
    assert table.request == (
        Param("num_images", "integer", default=-1, minimum=-1, maximum=4, row=1),
        Param("aspect_ratio", None, enum=("21:9", "1:1"), row=2),
    )
    # No curl on this page: the model comes from the 来源 docs URL.
    assert table.model == "acme/fallback-model"
    assert table.example is None
    assert table.version == "docs-cells"


def test_pipe_row_with_description_in_the_range_column() -> None:
    text = (
        'curl --location --request POST "https://api.wavespeed.ai/api/v3/acme/example-model" \\\n'
        "Request Parameters\n"
        "Parameter | Type | Required | Default | Range | Description |\n---|---|---|---|---|---|\n"
        "prompt | string | Yes | - | The prompt. | |\n"
        "steps | integer | No | 28 | 1 ~ 50 | Steps. |\n"
    )
    table = parse_page(text, "pipe.txt")
    assert table.source.layout == "pipe-table"
    assert table.request == (
        Param("prompt", "string", required=True, row=1),
        Param("steps", "integer", default=28, minimum=1, maximum=50, row=2),
    )


# ------------------------------------------------------------------------------------------------ failures


def test_no_request_table_is_an_error() -> None:
    with pytest.raises(PageParseError, match="no request parameter table"):
        parse_page(
            "Response Parameters\nParameter | Type | Description |\n---|---|---|\ncode | integer | C. |\n", "r.txt"
        )
    with pytest.raises(PageParseError, match="no parameter table"):
        detect_layout("just prose\n")


def test_unsplittable_row_names_its_line() -> None:
    with pytest.raises(PageParseError, match=r"p\.txt line 7: 'stepsintegerMaybe28The steps\.'"):
        parse_page(_flat_page("promptstringYes-The prompt.", "stepsintegerMaybe28The steps."), "p.txt")


def test_ambiguous_numbers_are_an_error_not_a_guess() -> None:
    # 1011*1011 with 1 ~ 2048, or 1011*101 with 11 ~ 2048: both consistent, so refuse.
    with pytest.raises(PageParseError, match="ambiguous"):
        _one("sizestringNo1011*10111 ~ 2048 per dimensionThe size.")
    # 121 with 0 ~ 121, or 12 with 10 ~ 121.
    with pytest.raises(PageParseError, match="ambiguous"):
        _one("stepsintegerNo1210 ~ 121The steps.")
    with pytest.raises(PageParseError, match="ambiguous"):
        _one("scalenumberNo11.611.0 ~ 11.7The scale.")


def test_no_model_is_an_error() -> None:
    with pytest.raises(PageParseError, match="no model"):
        parse_page("Request Parameters\n\nParameterTypeRequiredDefaultRangeDescription\nxstringNo--The x.\n", "m.txt")


# ----------------------------------------------------------------------------- round trip through layouts


def _escape(cell: str) -> str:
    out = cell.replace("\\", "\\\\").replace("_", "\\_").replace("*", "\\*")
    return "\\" + out if out.startswith("-") else out


def _cells(p: Param, omit_empty_range: bool) -> list[str]:
    if p.default is None:
        default = "-"
    elif isinstance(p.default, bool):
        default = str(p.default).lower()
    elif isinstance(p.default, list):
        default = "".join(p.default)
    else:
        default = str(p.default)
    if p.enum is not None:
        range_cell: str | None = ", ".join(p.enum)
    elif p.minimum is not None and p.maximum is not None:
        range_cell = f"{p.minimum} ~ {p.maximum}" + (" per dimension" if p.per_dimension else "")
    else:
        range_cell = None if omit_empty_range else "-"
    cells = [p.name] + ([p.type] if p.type else []) + ["Yes" if p.required else "No", default]
    return cells + ([range_cell] if range_cell else []) + [f"The {p.name} value."]


def render_request_page(params: list[Param], layout: str, omit: list[bool]) -> str:
    head = 'curl --location --request POST "https://api.wavespeed.ai/api/v3/acme/example-model" \\\n\n'
    columns = ["Parameter", "Type", "Required", "Default", "Range", "Description"]
    rows = [_cells(p, o) for p, o in zip(params, omit, strict=True)]
    if layout == "flattened":
        return head + "Request Parameters\n\n" + "".join(columns) + "\n" + "\n".join("".join(r) for r in rows) + "\n"
    if layout == "pipe-table":
        lines = [" | ".join(columns) + " |", "---|" * len(columns)]
        lines += [" | ".join(r + [""] * (len(columns) - len(r))) + " |" for r in rows]
        return head + "Request Parameters\n" + "\n".join(lines) + "\n"
    cells = columns + [_escape(c) for r in rows for c in r]
    return head + "#### Request Parameters[](#request-parameters)\n\n" + "\n\n".join(cells) + "\n"


_NAMES = st.from_regex(r"[a-z][a-z_]{0,10}[a-z]", fullmatch=True).filter(
    lambda n: not any(n.endswith(t) for t in TYPES)
)
_ENUM_WORDS = ["jpeg", "png", "webp", "avif", "21:9", "16:9", "4:3", "1:1", "9:16"]
_STRING_DEFAULTS = ["jpeg", "Keep it calm.", "1:1", "2", "https://example.com/x.png", "auto-mode"]


@st.composite
def _param(draw: st.DrawFn, name: str) -> Param:
    kind = draw(st.sampled_from(["integer", "number", "string", "size", "enum", "boolean", "array", "untyped"]))
    required = draw(st.booleans())
    if kind == "integer":
        lo = draw(st.sampled_from([-1, 0, 1]))
        hi = draw(st.integers(max(lo, 9), 10**10))
        ranged = draw(st.booleans())
        # Run together, "121" + "0 ~ 121" also reads as "12" + "10 ~ 121": the parser refuses such rows (see
        # test_ambiguous_numbers_are_an_error_not_a_guess), so only generate defaults that cannot be re-split.
        default = draw(st.none() | st.integers(lo, hi if lo < 0 or not ranged else 9))
        return Param(name, "integer", required, default, lo if ranged else None, hi if ranged else None)
    if kind == "number":
        lo = draw(st.sampled_from([-1.0, 0.0, 1.0]))
        hi = lo + draw(st.integers(0, 2000)) / 10
        # "11.61" + "1.0 ~ 11.7" reads as "11.6" + "11.0 ~ 11.7" too: two decimals only before a "-" bound.
        scale = 100 if lo < 0 else 10
        default = draw(st.none() | st.integers(int(lo * scale), int(hi * scale)).map(lambda k: k / scale))
        return Param(name, "number", required, default, lo, hi)
    if kind == "size":
        lo, hi = draw(st.sampled_from([256, 512])), draw(st.sampled_from([1536, 2048]))
        side = st.integers(lo, hi)
        default = draw(st.none() | st.tuples(side, side).map(lambda wh: f"{wh[0]}*{wh[1]}"))
        return Param(name, "string", required, default, lo, hi, per_dimension=True)
    if kind in ("enum", "untyped"):
        values = tuple(draw(st.lists(st.sampled_from(_ENUM_WORDS), min_size=2, max_size=5, unique=True)))
        default = draw(st.none() | st.sampled_from(values))
        return Param(name, "string" if kind == "enum" else None, required, default, enum=values)
    if kind == "boolean":
        return Param(name, "boolean", required, draw(st.none() | st.booleans()))
    if kind == "array":
        urls = draw(st.lists(st.sampled_from(["https://e.com/a.png", "http://e.com/b-c.jpg"]), min_size=1))
        default = draw(st.none() | st.just(urls))
        return Param(name, "array", required, default, item_type="string" if default else None)
    return Param(name, "string", required, draw(st.none() | st.sampled_from(_STRING_DEFAULTS)))


@st.composite
def _tables(draw: st.DrawFn) -> tuple[list[Param], list[bool]]:
    names = draw(st.lists(_NAMES, min_size=1, max_size=6, unique=True))
    params = [replace(draw(_param(n)), row=i) for i, n in enumerate(names, start=1)]
    return params, draw(st.lists(st.booleans(), min_size=len(params), max_size=len(params)))


@settings(max_examples=150, deadline=None)
@given(_tables(), st.sampled_from(sorted(LAYOUT_FILES)))
def test_rendered_tables_parse_back(table: tuple[list[Param], list[bool]], layout: str) -> None:
    params, omit = table
    text = render_request_page(params, layout, omit)
    assert detect_layout(text) == layout
    assert list(parse_page(text, "gen.txt").request) == params
