"""Outputs: every output URL downloads and decodes as an image of the requested format and size; in base64
mode every output string decodes to one."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kit_checks import check_accepted, follow
from kit_media import check_outputs
from kit_strategies import valid_requests
from kit_target import Target

from mock_server.contract.catalog import Endpoint


@pytest.mark.paid
@given(data=st.data())
def test_outputs_are_images_of_the_requested_format_and_size(target: Target, endpoint: Endpoint, data: Any) -> None:
    body = data.draw(valid_requests(target, endpoint), label="request")

    journey = follow(target, endpoint, body, check_accepted(target.submit(endpoint, body), endpoint, body))

    check_outputs(target, journey)
