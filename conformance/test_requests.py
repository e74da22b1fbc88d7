"""Requests: every schema-valid request is accepted and answered by schema-valid bodies; every invalid one
is refused with a 4xx error envelope (never accepted, never a 5xx)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kit_checks import check_accepted, check_rejected, follow
from kit_strategies import invalid_requests, malformed_bodies, valid_requests
from kit_target import Target

from mock_server.contract.catalog import Endpoint


@pytest.mark.free
@given(data=st.data())
def test_invalid_request_is_rejected(target: Target, endpoint: Endpoint, data: Any) -> None:
    """Drop a required key, send a wrong type, pass a bound, leave an enum, malform size, overfill a list."""
    mutation = data.draw(invalid_requests(target, endpoint), label="invalid request")

    response = target.submit(endpoint, mutation.body, expect_rejection=True)

    check_rejected(
        response,
        target.catalog,
        endpoint=endpoint.model,
        path=mutation.path,
        reason=mutation.reason,
        request=mutation.body,
    )


@pytest.mark.free
@given(data=st.data())
def test_malformed_body_is_rejected(target: Target, endpoint: Endpoint, data: Any) -> None:
    """Broken JSON, JSON that is not an object, random bytes."""
    raw, reason = data.draw(malformed_bodies(), label="body")

    response = target.submit(endpoint, raw=raw, expect_rejection=True)

    check_rejected(response, target.catalog, endpoint=endpoint.model, path="(body)", reason=reason, request=raw)


@pytest.mark.paid
@given(data=st.data())
def test_valid_request_is_accepted(target: Target, endpoint: Endpoint, data: Any) -> None:
    """Accepted (200); the submit body and every result body validate against the endpoint's schemas.

    Unknown fields, including parameters other endpoints document, are accepted as the real API does.
    """
    body = data.draw(valid_requests(target, endpoint, foreign=True), label="request")

    submitted = check_accepted(target.submit(endpoint, body), endpoint, body)

    follow(target, endpoint, body, submitted)
