"""Ship schemas/, fixtures/ and conformance/ inside the wheel as mock_server/<name>, but not in editable
installs, where mock_server.resources finds them beside the package (copies would go stale)."""

from __future__ import annotations

from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

DATA = ("schemas", "fixtures", "conformance")


class DataFilesHook(BuildHookInterface):  # type: ignore[type-arg]
    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if version == "standard":
            build_data["force_include"].update({name: f"mock_server/{name}" for name in DATA})
