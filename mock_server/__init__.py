"""wavespeed-mock: a faithful, offline, schema-driven fake of the WaveSpeedAI image API."""

from __future__ import annotations

from mock_server.app import create_app
from mock_server.settings import Settings

__version__ = "0.1.0"
__all__ = ["Settings", "__version__", "create_app"]
