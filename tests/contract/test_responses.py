"""JsonResponse writes its own headers on its short path: they must be exactly what Starlette would write."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from starlette.responses import JSONResponse

from mock_server.contract.errors import JsonResponse

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
STATUSES = st.sampled_from([100, 200, 201, 204, 304, 400, 404, 429, 500])
EXTRA = st.none() | st.dictionaries(st.sampled_from(["Retry-After", "X-Test", "Allow"]), st.just("1"), max_size=2)


@given(content=JSON, status=STATUSES, headers=EXTRA)
def test_headers_are_what_starlette_writes(content: object, status: int, headers: dict[str, str] | None) -> None:
    ours = JsonResponse(content, status_code=status, headers=headers)
    theirs = JSONResponse(content, status_code=status, headers=headers)
    theirs.body = ours.body  # the body's bytes may differ (orjson vs json); the headers must follow the same rules
    theirs.init_headers(headers)
    assert ours.raw_headers == theirs.raw_headers
