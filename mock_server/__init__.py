"""wavespeed-mock: a faithful, offline, schema-driven fake of the WaveSpeedAI image API."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["FakeWaveSpeed", "Settings", "__version__", "create_app"]

if TYPE_CHECKING:
    from mock_server.http.app import create_app
    from mock_server.settings import Settings
    from mock_server.testing.client import FakeWaveSpeed

_EXPORTS = {
    "create_app": "mock_server.http.app",
    "FakeWaveSpeed": "mock_server.testing.client",
    "Settings": "mock_server.settings",
}


def __getattr__(name: str) -> Any:
    # Lazy: the pytest plugin imports this package in every test session of a client project, and the app
    # (starlette, jsonschema, Pillow) should load only when a test actually asks for the fake.
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'mock_server' has no attribute {name!r}")
