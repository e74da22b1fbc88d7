"""The scheduled drift workflow cannot run here; what it runs must at least exist in our CLI, flags included."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from mock_server.cli import build_parser, main

WORKFLOW = Path(__file__).resolve().parent.parent / ".github" / "workflows" / "drift.yml"


def invocations() -> list[list[str]]:
    """Every ``wavespeed-mock ...`` command line in the workflow, as words (shell continuations joined)."""
    text = WORKFLOW.read_text(encoding="utf-8").replace("\\\n", " ")
    found = []
    for line in text.splitlines():
        start = line.find("wavespeed-mock ")
        if start < 0 or line.lstrip().startswith("#"):
            continue
        words = shlex.split(line[start:].split("||")[0].split(">")[0], comments=False)
        found.append(words[1:])
    return found


def command_of(words: list[str]) -> tuple[str, ...]:
    """The subcommand path: ("conformance",), ("drift", "docs"), ..."""
    if words[0] in ("drift", "schemas"):
        return tuple(words[:2])
    return (words[0],)


def drift_actions() -> set[str]:
    parser = build_parser()
    sub: Any = next(a for a in parser._actions if a.dest == "command")
    drift: Any = sub.choices["drift"]
    actions: Any = next(a for a in drift._actions if a.dest == "action")
    return set(actions.choices)


def test_the_workflow_runs_every_drift_source_and_the_report() -> None:
    commands = {command_of(words) for words in invocations()}
    assert commands == {("drift", "docs"), ("drift", "live"), ("conformance",), ("drift", "report")}
    text = WORKFLOW.read_text(encoding="utf-8")
    assert re.search(r"^\s+- cron: \"[0-9*/ ,-]+\"", text, re.MULTILINE)
    assert "workflow_dispatch:" in text and "secrets.WAVESPEED_API_KEY" in text
    assert "--target https://api.wavespeed.ai --budget" in text
    assert "actions/upload-artifact@" in text


@pytest.mark.parametrize("words", invocations(), ids=lambda w: " ".join(w[:2]))
def test_each_command_and_its_flags_exist(words: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    command = command_of(words)
    if command == ("drift", "live") and "live" not in drift_actions():
        pytest.skip("`drift live` is another branch's work; this checks it once both are merged")
    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])
    assert exited.value.code == 0
    usage = capsys.readouterr().out
    for flag in (w.split("=")[0] for w in words if w.startswith("--")):
        assert re.search(rf"{re.escape(flag)}\b", usage), f"{' '.join(command)} has no {flag}"


def test_the_workflow_is_valid_yaml_with_a_schedule_and_a_manual_trigger() -> None:
    yaml = pytest.importorskip("yaml")
    document = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    triggers = document.get("on", document.get(True))  # YAML 1.1 reads the bare key `on` as true
    assert triggers["schedule"][0]["cron"] and "workflow_dispatch" in triggers
    steps = document["jobs"]["drift"]["steps"]
    upload = next(s for s in steps if str(s.get("uses", "")).startswith("actions/upload-artifact"))
    assert upload["if"] == "always()" and upload["with"]["path"] == "reports/drift/"
    report = next(s for s in steps if "drift report" in s.get("run", ""))
    assert report["if"] == "always()"
