"""The shipped test data under ``fixtures/``: one example request per endpoint, and small input images.

Found through :func:`mock_server.resources.data_dir`, so it works from a checkout and from an installed wheel.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mock_server.resources import data_dir


def _fixtures() -> Path:
    return data_dir("fixtures")


def example_path(model: str) -> Path:
    """The file holding the example request of ``model`` (``/`` in the model path becomes ``__``).

    Raises:
        KeyError: no example is shipped for ``model``; the message lists the models that have one.
    """
    path = _fixtures() / "examples" / (model.replace("/", "__") + ".json")
    if not path.is_file():
        raise KeyError(f"no example request for model {model!r}; examples exist for: {', '.join(example_models())}")
    return path


def example(model: str) -> dict[str, Any]:
    """A fresh copy of a valid example request body for ``model`` (safe to modify).

    Raises:
        KeyError: no example is shipped for ``model``.
    """
    body: dict[str, Any] = json.loads(example_path(model).read_text(encoding="utf-8"))
    return body


def example_models() -> list[str]:
    """Every model with a shipped example request, sorted."""
    return sorted(p.stem.replace("__", "/") for p in (_fixtures() / "examples").glob("*.json"))


def examples() -> dict[str, dict[str, Any]]:
    """Every example request, by model; fresh copies."""
    return {model: example(model) for model in example_models()}


def images() -> list[Path]:
    """The shipped input pictures (``fixtures/images/``), sorted by name."""
    return sorted(p for p in (_fixtures() / "images").iterdir() if p.is_file() and not p.name.startswith("."))


def image_path(name: str) -> Path:
    """One shipped input picture by file name, e.g. ``"shapes-64x48.png"``.

    Raises:
        KeyError: no such picture; the message lists those that exist.
    """
    path = _fixtures() / "images" / name
    if "/" in name or "\\" in name or not path.is_file():
        raise KeyError(f"no fixture image {name!r}; available: {', '.join(p.name for p in images())}")
    return path
