"""Lifecycle: created < processing < terminal, never backwards; terminal states stay put; completed
predictions carry one output and one NSFW flag per image; failed ones say why."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kit_checks import check_accepted, follow
from kit_strategies import valid_requests
from kit_target import Target

from mock_server.contract.catalog import Endpoint

POLLS_AFTER_TERMINAL = 3


@pytest.mark.paid
@given(data=st.data())
def test_lifecycle_moves_forward_and_terminal_state_is_stable(target: Target, endpoint: Endpoint, data: Any) -> None:
    body = data.draw(valid_requests(target, endpoint), label="request")

    submitted = check_accepted(target.submit(endpoint, body), endpoint, body)

    follow(target, endpoint, body, submitted, extra_polls=POLLS_AFTER_TERMINAL)
