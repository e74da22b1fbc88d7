"""Auth: a missing, malformed or unknown API key is refused with 401 and the error envelope (free probes)."""

from __future__ import annotations

import string
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kit_checks import check_unauthorized
from kit_strategies import valid_requests
from kit_target import Target

MALFORMED_HEADERS: tuple[dict[str, str], ...] = (
    {},
    {"Authorization": ""},
    {"Authorization": "Bearer"},
    {"Authorization": "Basic dXNlcjpwYXNzd29yZA=="},
    {"Authorization": "Token abc123"},
)
KEY_CHARACTERS = string.ascii_letters + string.digits + "-_"
UNKNOWN_ID = "0123456789abcdef0123456789abcdef"


@pytest.mark.free
@given(data=st.data())
def test_missing_or_malformed_key_is_refused(target: Target, data: Any) -> None:
    endpoint = data.draw(st.sampled_from(target.endpoints()), label="endpoint")
    headers = data.draw(st.sampled_from(MALFORMED_HEADERS), label="headers")
    on = data.draw(st.sampled_from(["submit", "result"]), label="request")

    if on == "submit":
        body = data.draw(valid_requests(target, endpoint), label="body")
        response = target.submit(endpoint, body, headers=headers, expect_rejection=True)
    else:
        body = None
        response = target.get_result(UNKNOWN_ID, endpoint=endpoint.model, headers=headers)

    check_unauthorized(
        response,
        target.catalog,
        endpoint=endpoint.model,
        where=on,
        reason=f"no usable Bearer key in {headers or 'no Authorization header'}",
        request=body,
    )


@pytest.mark.free
@given(data=st.data())
def test_unknown_key_is_refused(target: Target, data: Any) -> None:
    if not target.restricts_keys:
        pytest.skip("this target accepts any key; an unknown key cannot be told apart")
    endpoint = data.draw(st.sampled_from(target.endpoints()), label="endpoint")
    key = data.draw(
        st.text(KEY_CHARACTERS, min_size=8, max_size=48).filter(lambda k: k != target.api_key), label="unknown key"
    )
    body = data.draw(valid_requests(target, endpoint), label="body")

    response = target.submit(endpoint, body, key=key, expect_rejection=True)

    check_unauthorized(
        response,
        target.catalog,
        endpoint=endpoint.model,
        where="submit",
        reason="an API key the target does not know",
        request=body,
    )
