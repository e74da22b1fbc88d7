"""The pytest plugin costs a client's session next to nothing until a test asks for the fake.

pytest imports the plugin in every session of a project that has the package installed, so what it imports at
start-up is checked here by inspecting ``sys.modules`` in fresh interpreters (timing would be flaky).
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

from mock_server.testing import pytest_plugin
from mock_server.testing.assertions import TenantHandle

HEAVY = (
    "starlette",
    "jsonschema",
    "PIL",
    "httpx",
    "uvicorn",
    "anyio",
    "mock_server.http",
    "mock_server.model",
    "mock_server.contract",
)

REPORT_LOADED = f"""
import json, sys

def pytest_sessionfinish(session):
    heavy = {HEAVY!r}
    plugin = session.config.pluginmanager.get_plugin("wavespeed_mock")
    report = {{
        "configured": plugin is not None and plugin.SETTINGS in session.config.stash,
        "loaded": sorted(m for m in sys.modules if any(m == h or m.startswith(h + ".") for h in heavy)),
    }}
    with open("report.json", "w") as out:
        json.dump(report, out)
"""


def _heavy(modules: list[str]) -> list[str]:
    return sorted({h for h in HEAVY for m in modules if m == h or m.startswith(h + ".")})


def test_importing_the_plugin_loads_no_heavy_dependency() -> None:
    code = "import json, sys; import mock_server.testing.pytest_plugin; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert _heavy(json.loads(result.stdout)) == []


def test_a_session_that_uses_no_fixture_loads_no_heavy_dependency(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(REPORT_LOADED, encoding="utf-8")
    (tmp_path / "test_plain.py").write_text("def test_plain():\n    assert 1 + 1 == 2\n", encoding="utf-8")
    # Only our plugin, loaded by its entry-point name: other installed plugins may import what they like.
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "wavespeed_mock",
            "-p",
            "no:cacheprovider",
            "-q",
            "--rootdir",
            str(tmp_path),
            "-c",
            os.devnull,
            str(tmp_path),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert report == {"configured": True, "loaded": []}


def test_the_spelled_out_options_match_the_handle() -> None:
    audit = [p for p in inspect.signature(TenantHandle.audit_polling).parameters if p != "self"]
    configure = [p for p in inspect.signature(TenantHandle.configure).parameters if p != "self"]
    assert list(pytest_plugin.AUDIT_OPTIONS) == audit
    assert list(pytest_plugin.MARKER_OPTIONS) == [*configure, "audit"]
