"""The official SDKs, unmodified, run models the fake has no schema for (served generically) through their
module-level ``run()``: polling, sync mode and base64 output."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import wavespeed
from PIL import Image

from tests.conftest import Live

JS_DIR = Path(__file__).parent / "js"
NODE = shutil.which("node")
MODELS = ("wavespeed-ai/flux-dev", "wavespeed-ai/z-image/turbo", "bytedance/seedream-v5.0-pro")


def picture(live: Live, output: str) -> Image.Image:
    data = live.http.get(output).content if output.startswith("http") else base64.b64decode(output)
    return Image.open(io.BytesIO(data))


@pytest.mark.parametrize("model", MODELS)
def test_python_sdk_module_level_run_with_the_key_from_the_environment(live: Live, model: str) -> None:
    # A fresh interpreter: the SDK reads WAVESPEED_API_KEY when it is imported; only the base URL is patched.
    script = (
        "import json, sys, wavespeed\n"
        "wavespeed.config.api.base_url = sys.argv[1]\n"
        "model = sys.argv[2]\n"
        "print(json.dumps({\n"
        "    'polling': wavespeed.run(model, {'prompt': 'py module', 'size': '640*480'}, poll_interval=0.01),\n"
        "    'sync': wavespeed.run(model, {'prompt': 'py sync'}, enable_sync_mode=True),\n"
        "    'base64': wavespeed.run(model, {'prompt': 'py b64', 'enable_base64_output': True}, poll_interval=0.01),\n"
        "}))\n"
    )
    env = {**os.environ, "WAVESPEED_API_KEY": live.key}
    completed = subprocess.run(
        [sys.executable, "-c", script, live.base_url, model],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout)
    assert picture(live, result["polling"]["outputs"][0]).size == (640, 480)
    assert picture(live, result["sync"]["outputs"][0]).size == (1024, 1024)
    assert picture(live, result["base64"]["outputs"][0]).format == "JPEG"
    submits = [e for e in live.http.get("/_mock/journal", params={"tenant": live.key, "method": "POST"}).json()["data"]]
    assert {e["path"] for e in submits} == {f"/api/v3/{model}"} and len(submits) == 3


def test_python_sdk_module_level_run_with_patched_config(live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAVESPEED_API_KEY", live.key)
    monkeypatch.setattr(wavespeed.api, "_default_client", None)  # run() keeps the first Client it built
    config = wavespeed.config.api
    saved = (config.api_key, config.base_url)  # by hand: monkeypatch would delete the config proxy's values
    config.api_key, config.base_url = live.key, live.base_url
    try:
        polled = wavespeed.run("wavespeed-ai/flux-dev", {"prompt": "x", "num_images": 2}, poll_interval=0.01)
        synced = wavespeed.run("wavespeed-ai/wan-2.1/t2v-480p", {"prompt": "x", "duration": 1}, enable_sync_mode=True)
    finally:
        config.api_key, config.base_url = saved

    assert len(polled["outputs"]) == 2
    assert synced["outputs"][0].endswith(".mp4")


def test_python_sdk_client_runs_a_generic_model(live: Live) -> None:
    client = wavespeed.Client(api_key=live.key, base_url=live.base_url, max_connection_retries=0)

    output = client.run("bytedance/seedream-v5.0-pro", {"prompt": "x", "aspect_ratio": "16:9"}, poll_interval=0.01)

    assert picture(live, output["outputs"][0]).size == (1360, 768)


@pytest.mark.skipif(
    NODE is None or not (JS_DIR / "node_modules" / "wavespeed").is_dir(),
    reason="needs node and the JS SDK: npm install --prefix tests/js (.ci/run does this)",
)
@pytest.mark.parametrize("model", MODELS)
def test_js_sdk_module_level_run(live: Live, model: str) -> None:
    completed = subprocess.run(
        [str(NODE), str(JS_DIR / "run_module.cjs"), live.base_url, model],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "WAVESPEED_API_KEY": live.key},
    )

    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout)
    assert all(result[name]["ok"] for name in ("polling", "sync", "base64")), result
    assert picture(live, result["polling"]["value"]["outputs"][0]).size == (640, 480)
    assert picture(live, result["sync"]["value"]["outputs"][0]).format == "JPEG"
    assert picture(live, result["base64"]["value"]["outputs"][0]).format == "JPEG"
