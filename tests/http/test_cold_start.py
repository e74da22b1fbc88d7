"""Starting a fake imports what serving needs and no more: Pillow waits for the first image it draws or decodes,
httpx for the first webhook or download.

A test session pays these imports the first time a fixture builds an app, so they are checked here by inspecting
``sys.modules`` in a fresh interpreter (timing would be flaky).
"""

from __future__ import annotations

import json
import subprocess
import sys

# httpx also stands for rich, click and pygments: its command line imports them when they are installed.
LAZY = ("PIL", "httpx")

# What the fixtures do before a test's first request: build the app, import the uvicorn runner, and hand out a
# tenant handle that reaches the server's controller in-process.
START = """
import json, sys
from mock_server.http.app import create_app
from mock_server.http.server import run_in_thread
from mock_server.settings import Settings
from mock_server.testing.assertions import TenantHandle

app = create_app(Settings(progression="polls"))
handle = TenantHandle("http://wavespeed.test", "ws-test-cold-start", controller=app.state.mock.controller)
handle.reset()
print(json.dumps(sorted(sys.modules)))
"""


def test_starting_a_fake_loads_neither_pillow_nor_httpx() -> None:
    result = subprocess.run([sys.executable, "-c", START], capture_output=True, text=True, timeout=60, check=True)
    loaded = {name.partition(".")[0] for name in json.loads(result.stdout)}
    assert sorted(loaded & set(LAZY)) == []
