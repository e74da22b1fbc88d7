"""Where the shipped data lives: inside the wheel (mock_server/<name>) or beside the package in a checkout."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """The directory ``schemas``, ``fixtures`` or ``conformance``, wherever this install keeps it."""
    for candidate in (_PACKAGE / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"wavespeed-mock data directory {name!r} is missing from this install")
