"""The whole conformance suite holds against the fake (``--target fake``, the suite's own loopback server)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

MAX_EXAMPLES = "8"  # per property; the shipped profiles (15 by default, 50 thorough) are for the command itself
RUN_TIMEOUT = 600


def test_every_property_holds_against_the_fake(tmp_path: Path) -> None:
    report_path = tmp_path / "drift.json"
    junit_path = tmp_path / "junit.xml"

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mock_server.cli",
            "conformance",
            "--max-examples",
            MAX_EXAMPLES,
            "--report",
            str(report_path),
            "--junitxml",
            str(junit_path),
            "--hypothesis-seed=0",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )

    output = done.stdout + done.stderr
    report = json.loads(report_path.read_text())
    violations = "\n".join(
        f"[{v['property']}] {v['endpoint']}: {v['where']} {v['path']}: expected {v['expected']}; "
        f"observed {v['observed']}\n    request: {v['request']}"
        for v in report["violations"]
    )
    assert report["violations"] == [], f"{violations}\n\nnotes: {report['notes']}"
    assert done.returncode == 0, output[-4000:]
    assert report["ok"] is True and report["target"] == "fake"
    assert report["counts"]["passed"] >= 60 and report["counts"]["failed"] == 0
    assert report["budget"]["limit"] is None and report["budget"]["spent"] > 0
    assert junit_path.read_text().count("<testcase") == sum(report["counts"][k] for k in ("passed", "skipped"))


@pytest.mark.parametrize(("option", "profile"), [((), "fake"), (("--profile", "thorough"), "thorough")])
def test_the_profile_is_the_fast_one_by_default_and_thorough_on_request(
    tmp_path: Path, option: tuple[str, ...], profile: str
) -> None:
    report_path = tmp_path / "drift.json"

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mock_server.cli",
            "conformance",
            *option,
            "-k",
            "unknown_key_is_refused",
            "--report",
            str(report_path),
            "--hypothesis-seed=0",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )

    report = json.loads(report_path.read_text())
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert report["profile"] == profile and report["counts"]["passed"] == 1
