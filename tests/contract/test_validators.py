"""Compiled schemas: jsonschema-rs decides, jsonschema explains, so a server that only ever sees valid requests
never loads jsonschema."""

from __future__ import annotations

import json
import subprocess
import sys

SERVE_VALID_REQUESTS = """
import json, sys
import httpx
from mock_server.http.app import create_app
from mock_server.settings import Settings
from mock_server.testing.inprocess import InProcessServer

T2I = "/api/v3/wavespeed-ai/flux-kontext-pro/text-to-image"
VALID = [
    (T2I, {"prompt": "a lighthouse at dusk", "aspect_ratio": "16:9"}),
    ("/api/v3/some-lab/unknown-model", {"prompt": "x"}),
    ("/api/v3/predictions", {"page": 1}),
    ("/api/v3/model/price", {"model_id": "wavespeed-ai/flux-kontext-max", "inputs": {"num_images": 2}}),
    ("/_mock/outcomes", {"status": "failed", "prompt_contains": "broken"}),
]

def loaded():
    return sorted(m for m in sys.modules if m.split(".")[0] in ("jsonschema", "referencing"))

server = InProcessServer(create_app(Settings()))
report = {}
key = {"Authorization": "Bearer k"}
with httpx.Client(transport=server.sync_transport, base_url=server.base_url, headers=key) as c:
    for path, body in VALID:
        assert c.post(path, json=body).status_code == 200, path
    report["valid"] = loaded()
    invalid = c.post(T2I, json={"prompt": 1})
    report["invalid"] = [invalid.status_code, invalid.json()["errors"], loaded() != []]
server.close()
print(json.dumps(report))
"""


def test_a_server_serving_only_valid_requests_never_imports_jsonschema() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SERVE_VALID_REQUESTS], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])

    assert report["valid"] == []
    assert report["invalid"] == [400, [{"path": "prompt", "message": "1 is not of type 'string'"}], True]
