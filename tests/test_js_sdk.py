"""The official JavaScript SDK (npm `wavespeed`, pinned in tests/js/package.json), unmodified, against the fake.

.ci/run installs it with npm; where Node or the package is missing the test is skipped, saying so.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from mock_server.testing.client import FakeWaveSpeed
from mock_server.testing.fixtures_data import image_path
from tests.conftest import Live

JS_DIR = Path(__file__).parent / "js"
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(
    NODE is None or not (JS_DIR / "node_modules" / "wavespeed").is_dir(),
    reason="needs node and the JS SDK: npm install --prefix tests/js (.ci/run does this)",
)


def test_js_sdk_runs_polls_syncs_uploads_and_sees_failures(live: Live) -> None:
    fake = FakeWaveSpeed(live.base_url, live.key, controller=live.running.app.state.mock.controller)
    fake.fail_next(code=1402, prompt_contains="must fail")
    fake.enqueue(sync_timeout=True, prompt_contains="sync timeout")
    picture = image_path("target-96x96.jpg")

    completed = subprocess.run(
        [str(NODE), str(JS_DIR / "run_sdk.cjs"), live.base_url, live.key, str(picture)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout)
    polled = result["polling"]["value"]["outputs"][0]
    assert Image.open(io.BytesIO(live.http.get(polled).content)).size == (1248, 832)
    assert result["sync"]["ok"] and len(result["sync"]["value"]["outputs"]) == 1
    assert result["upload"]["value"].startswith(live.base_url + "/media/uploads/")
    edited = fake.predictions()
    edit_notes = [note for p in edited if p["input"].get("prompt") == "js edit" for note in p["notes"]]
    assert any("served by this mock" in note for note in edit_notes)
    assert result["edit"]["ok"]
    # SDK 0.3.2 raises a plain Error for a failed prediction, carrying the task id and the task's message.
    assert result["failure"]["ok"] is False
    assert result["failure"]["message"].startswith("Prediction failed (task_id: ")
    assert "Failed to download image" in result["failure"]["message"]
    assert (result["syncTimeout"]["ok"], result["syncTimeout"]["error"]) == (False, "WavespeedSyncTimeoutException")
