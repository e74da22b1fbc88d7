"""``wavespeed-mock drift report``: docs, live-catalog, proxy and conformance findings combined, one exit code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mock_server.cli import main
from mock_server.contract.drift import Change
from mock_server.contract.report import COMBINED_REPORT, PROXY_REPORT

PAGES = Path(__file__).parent / "data" / "doc_pages"


def write(path: Path, document: Any) -> str:
    path.write_text(json.dumps(document), encoding="utf-8")
    return str(path)


def docs_report(tmp_path: Path, old: str, new: str, capsys: pytest.CaptureFixture[str]) -> str:
    """The real ``drift docs --format json`` output for two fixture pages."""
    main(["drift", "docs", str(PAGES / old), str(PAGES / new), "--format", "json"])
    return write(tmp_path / f"docs-{new}.json", json.loads(capsys.readouterr().out))


def live_report(tmp_path: Path, *changes: Change) -> str:
    # `drift live --format json` emits the same Change records as `drift docs` (no lint).
    return write(
        tmp_path / "live.json",
        {"breaking": sum(c.breaking for c in changes), "changes": [c.to_json() for c in changes]},
    )


def proxy_report(tmp_path: Path, *findings: dict[str, Any]) -> str:
    return write(
        tmp_path / "proxy.json",
        {
            "report": PROXY_REPORT,
            "version": 1,
            "upstream": "https://api.invalid",
            "responses_checked": 9,
            "breaking": 0,
            "findings": list(findings),
        },
    )


def conformance_report(tmp_path: Path, violations: list[dict[str, Any]], passed: int = 4) -> str:
    # The shape conformance/conftest.py writes with --report.
    return write(
        tmp_path / "conformance.json",
        {
            "target": "https://api.invalid",
            "profile": "paid",
            "dry_run": False,
            "exit_status": 1 if violations else 0,
            "ok": not violations,
            "counts": {"passed": passed, "failed": len(violations), "skipped": 0, "violations": len(violations)},
            "violations": violations,
            "budget": {},
            "notes": [],
            "planned_requests": [],
            "skipped": [],
        },
    )


EXTRA = {
    "source": "proxy",
    "endpoint": "result",
    "model": "m",
    "kind": "extra-field",
    "location": "data.seed",
    "old": None,
    "new": "integer",
    "breaking": False,
    "detail": "field data.seed is not in our schema",
    "count": 3,
    "first_seen": "t",
    "last_seen": "t",
    "example": {"method": "GET", "path": "/p"},
}
VIOLATION = {
    "property": "valid_request_is_accepted",
    "test": "t::x",
    "endpoint": "wavespeed-ai/flux-kontext-pro",
    "where": "submit response",
    "path": "data.status",
    "expected": "one of [created]",
    "observed": "'queued'",
    "request": None,
    "example": "",
}


def test_every_source_is_combined_and_classified(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = [
        docs_report(tmp_path, "acme_v1_cells.txt", "acme_v2_cells.txt", capsys),
        live_report(tmp_path, Change("enum-value-added", "request.aspect_ratio", None, "5:4", False, "new value")),
        proxy_report(tmp_path, EXTRA),
        conformance_report(tmp_path, [VIOLATION]),
    ]

    assert main(["drift", "report", *files, "--format", "json"]) == 1
    combined = json.loads(capsys.readouterr().out)

    assert combined["report"] == COMBINED_REPORT
    assert [(i["source"], i["findings"], i["breaking"]) for i in combined["inputs"]] == [
        ("docs", 22, 7),
        ("live", 1, 0),
        ("proxy", 1, 0),
        ("conformance", 1, 1),
    ]
    assert combined["by_source"] == {
        "docs": {"breaking": 7, "non_breaking": 15},
        "live": {"breaking": 0, "non_breaking": 1},
        "proxy": {"breaking": 0, "non_breaking": 1},
        "conformance": {"breaking": 1, "non_breaking": 0},
    }
    assert (combined["breaking"], combined["non_breaking"]) == (8, 17)
    lint = [f for f in combined["findings"] if f["kind"] == "example-inconsistent"]
    assert len(lint) == 3 and not any(f["breaking"] for f in lint) and lint[0]["context"]["lint"] == "new"
    (proxy,) = [f for f in combined["findings"] if f["source"] == "proxy"]
    assert proxy["context"]["count"] == 3 and proxy["location"] == "data.seed"
    (violation,) = [f for f in combined["findings"] if f["source"] == "conformance"]
    assert (
        violation["breaking"] and violation["location"] == "wavespeed-ai/flux-kontext-pro: submit response data.status"
    )
    assert violation["context"]["property"] == "valid_request_is_accepted"

    # Text: grouped by source, breaking first, one summary line; the JSON output is itself a valid input.
    assert main(["drift", "report", *files]) == 1
    text = capsys.readouterr().out
    assert text.splitlines()[0] == "drift report: 4 input(s), 25 finding(s), 8 breaking"
    assert "docs (1 file(s)): 22 finding(s), 7 breaking" in text and "conformance (1 file(s)): 1 finding(s)" in text
    assert "extra-field" in text and "x3" in text
    assert text.splitlines()[-1] == "summary: 8 breaking (docs 7, conformance 1), 17 non-breaking"
    again = write(tmp_path / "combined.json", combined)
    assert main(["drift", "report", again, "--format", "json"]) == 1
    assert json.loads(capsys.readouterr().out)["by_source"] == combined["by_source"]


def test_nothing_breaking_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = [
        docs_report(tmp_path, "acme_v1_cells.txt", "acme_v1_pipe.txt", capsys),
        proxy_report(tmp_path, EXTRA),
        conformance_report(tmp_path, []),
    ]

    assert main(["drift", "report", *files]) == 0
    text = capsys.readouterr().out
    assert "summary: 0 breaking, 1 non-breaking" in text and "docs (1 file(s)): 0 finding(s)" in text


def test_a_conformance_run_that_checked_nothing_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["drift", "report", conformance_report(tmp_path, [], passed=0)]) == 0
    assert "nothing-checked" in capsys.readouterr().out


def test_proxy_findings_as_json_lines_are_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = tmp_path / "proxy.jsonl"
    lines.write_text("\n".join(json.dumps({**EXTRA, "breaking": b}) for b in (False, True)) + "\n", encoding="utf-8")
    assert main(["drift", "report", str(lines)]) == 1
    assert "proxy (1 file(s)): 2 finding(s), 1 breaking" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (None, "No such file or directory"),
        ("{not json", "not JSON"),
        ('{"hello": "world"}', "not a drift docs/live, proxy or conformance report"),
        ('{"changes": [{"location": "x"}]}', "a finding without kind and breaking"),
        ("[1, 2]", "a finding without kind and breaking"),
    ],
)
def test_an_unreadable_input_is_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, reason: str
) -> None:
    path = tmp_path / "input.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    good = proxy_report(tmp_path, EXTRA)

    assert main(["drift", "report", good, str(path)]) == 2

    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    assert line.startswith(f"drift report: cannot read {path}: ") and reason in line
