"""Uploads (free): both upload flows return a download URL that serves back exactly the uploaded bytes."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from kit_media import INPUT_FIXTURES, UPLOAD_BINARY, UPLOAD_DIRECT, upload_binary, upload_direct
from kit_target import Target


@pytest.mark.free
@pytest.mark.parametrize("name", INPUT_FIXTURES)
@pytest.mark.parametrize(
    ("flow", "route"), [(upload_binary, UPLOAD_BINARY), (upload_direct, UPLOAD_DIRECT)], ids=["binary", "direct"]
)
def test_upload_round_trips(target: Target, flow: Callable[[Target, str], str | None], route: str, name: str) -> None:
    if flow(target, name) is None:
        pytest.skip(f"{route} is not served by this target (404): upload checks skipped")
