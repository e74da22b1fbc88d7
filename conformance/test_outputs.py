"""Outputs: every output URL downloads and decodes as an image of the requested format and size; in base64
mode every output string decodes to one."""

from __future__ import annotations

from typing import Any

import pytest
from conformance_kit import Target, check_accepted, check_outputs, follow, valid_requests
from hypothesis import given
from hypothesis import strategies as st

from mock_server.catalog import Endpoint


@pytest.mark.paid
@given(data=st.data())
def test_outputs_are_images_of_the_requested_format_and_size(target: Target, endpoint: Endpoint, data: Any) -> None:
    body = data.draw(valid_requests(target, endpoint), label="request")

    journey = follow(target, endpoint, body, check_accepted(target.submit(endpoint, body), endpoint, body))

    check_outputs(target, journey)
