"""Sync mode is submit-then-poll in one request: the same shape and the same terminal status."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kit_checks import check_accepted, follow
from kit_strategies import valid_requests
from kit_target import Target
from kit_violations import Violation, fail

from mock_server.contract.catalog import Endpoint
from mock_server.contract.jsonbody import json_type

SYNC_TIMEOUT_CODE = 5004
OPTIONAL_FIELDS = {"code", "input"}  # task code only on failures and sync timeouts; the input echo is optional


@pytest.mark.paid
@pytest.mark.endpoint_has("enable_sync_mode")
@given(data=st.data())
def test_sync_mode_matches_submit_then_poll(target: Target, endpoint: Endpoint, data: Any) -> None:
    body = data.draw(valid_requests(target, endpoint, without=("enable_sync_mode",)), label="request")
    sync_body = {**body, "enable_sync_mode": True}

    sync_answer = check_accepted(target.submit(endpoint, sync_body), endpoint, sync_body)
    timed_out = sync_answer.get("code") == SYNC_TIMEOUT_CODE and sync_answer.get("status") == "processing"
    sync_final = follow(target, endpoint, sync_body, sync_answer).final if timed_out else sync_answer
    async_final = follow(target, endpoint, body, check_accepted(target.submit(endpoint, body), endpoint, body)).final

    model, where = endpoint.model, "sync submit response" + (" (after the 5004 sync timeout)" if timed_out else "")
    violations = []
    if not timed_out and sync_answer.get("status") not in ("completed", "failed", "cancelled", "timeout"):
        violations.append(
            Violation(
                model,
                where,
                "data.status",
                "a terminal status (sync mode waits for the end) or the 5004 sync-timeout answer",
                repr(sync_answer.get("status")),
            )
        )
    sync_keys, async_keys = set(sync_final) - OPTIONAL_FIELDS, set(async_final) - OPTIONAL_FIELDS
    if sync_keys != async_keys:
        violations.append(
            Violation(
                model, where, "data", f"the fields of submit-then-poll {sorted(async_keys)}", f"{sorted(sync_keys)}"
            )
        )
    for name in sorted(sync_keys & async_keys):
        if json_type(sync_final[name]) != json_type(async_final[name]):
            violations.append(
                Violation(
                    model,
                    where,
                    f"data.{name}",
                    f"{json_type(async_final[name])} as in submit-then-poll",
                    json_type(sync_final[name]),
                )
            )
    if sync_final.get("status") != async_final.get("status"):
        violations.append(
            Violation(
                model,
                where,
                "data.status",
                f"{async_final.get('status')!r} as in submit-then-poll",
                repr(sync_final.get("status")),
            )
        )
    for name in ("outputs", "has_nsfw_contents"):
        mine, theirs = sync_final.get(name), async_final.get(name)
        if isinstance(mine, list) and isinstance(theirs, list) and len(mine) != len(theirs):
            violations.append(
                Violation(
                    model,
                    where,
                    f"data.{name}",
                    f"{len(theirs)} entries as in submit-then-poll",
                    f"{len(mine)} entries",
                )
            )
    fail(violations, sync_body)
