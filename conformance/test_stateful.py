"""A state machine interleaving submits, polls, downloads, uploads and (on the fake) control actions, against
a model of every prediction: statuses only move forward, terminal states never change, and where the target
declares its progression (the fake: one step per poll) the exact status each poll and advance must show."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, multiple, precondition, rule, run_state_machine_as_test
from kit_checks import (
    STATUS_RANK,
    Journey,
    check_accepted,
    check_forward,
    check_rejected,
    check_stable,
    check_terminal,
    check_view,
    json_of,
)
from kit_media import INPUT_FIXTURES, UPLOAD_BINARY, UPLOAD_DIRECT, check_outputs, upload_binary, upload_direct
from kit_strategies import valid_requests
from kit_target import Target
from kit_violations import Violation, fail, status_violation

from mock_server.contract.catalog import Endpoint

ADVANCE = "POST /_mock/predictions/{id}/advance"
MAX_UPLOADS = 3
MAX_PREDICTIONS = 6  # per run: later steps interleave polls, advances and downloads of these
STAGES = ("created", "processing")


@dataclass
class Expected:
    """The model of one prediction: what the client has seen, and what the target's progression implies."""

    journey: Journey
    status: str
    polls: int = 0
    forced: int = 0
    terminal: dict[str, Any] | None = None

    @property
    def stage(self) -> int:
        return STATUS_RANK.get(self.status, 0)


class ApiMachine(RuleBasedStateMachine):
    predictions = Bundle("predictions")
    uploads = Bundle("uploads")

    def __init__(self, target: Target) -> None:
        super().__init__()
        self.target = target
        self.expected: dict[str, Expected] = {}
        self.uploaded = 0  # uploads and the 404 probe are capped per run, leaving steps for the lifecycle
        self.probed = False

    # --- helpers ---------------------------------------------------------------------------------------

    def _endpoints(self) -> list[Endpoint]:
        endpoints: list[Endpoint] = list(self.target.endpoints())
        return endpoints[:1] if self.target.paid else endpoints

    def _start(self, endpoint: Endpoint, body: dict[str, Any]) -> Any:
        submitted = check_accepted(self.target.submit(endpoint, body), endpoint, body)
        journey = Journey(endpoint, body, submitted)
        status = str(submitted.get("status"))
        self.expected[journey.id] = Expected(journey, status, terminal=submitted if status not in STAGES else None)
        return journey.id

    def _predicted_stage(self, model: Expected) -> int | None:
        """The stage the target's declared progression implies (None: not declared, e.g. a real API)."""
        steps = self.target.poll_steps
        if steps is None:
            return None
        return min(2, max(model.polls // steps, model.forced, model.stage))

    def _observe(self, model: Expected, data: dict[str, Any], where: str) -> None:
        journey = model.journey
        if model.terminal is not None:
            check_stable(journey, model.terminal, data, where)
        check_forward(journey, model.status, data, where)
        predicted = self._predicted_stage(model)
        status = str(data.get("status"))
        if predicted is not None and min(STATUS_RANK.get(status, -1), 2) != predicted:
            wanted = STAGES[predicted] if predicted < 2 else "a terminal status"
            fail(
                [
                    Violation(
                        journey.endpoint.model,
                        where,
                        "data.status",
                        f"{wanted} (one lifecycle step per {self.target.poll_steps} poll(s) and per advance; "
                        f"{model.polls} poll(s), {model.forced} forced)",
                        repr(status),
                    )
                ],
                journey.body,
            )
        model.status = status
        if status not in STAGES and model.terminal is None:
            check_terminal(journey, data, where)
            model.terminal = data

    # --- rules -----------------------------------------------------------------------------------------

    @precondition(lambda self: self.target.budget.left() > 0 and len(self.expected) < MAX_PREDICTIONS)
    @rule(target=predictions, data=st.data())
    def submit(self, data: Any) -> Any:
        endpoint = data.draw(st.sampled_from(self._endpoints()), label="endpoint")
        body = data.draw(valid_requests(self.target, endpoint, without=("enable_sync_mode",)), label="request")
        return self._start(endpoint, body)

    @precondition(lambda self: self.target.budget.left() > 0 and len(self.expected) < MAX_PREDICTIONS)
    @rule(target=predictions, url=uploads, data=st.data())
    def submit_edit_of_upload(self, url: str, data: Any) -> Any:
        edits = [e for e in self._endpoints() if "image" in e.properties or "images" in e.properties]
        if not edits:
            return multiple()
        endpoint = data.draw(st.sampled_from(edits), label="edit endpoint")
        body = data.draw(valid_requests(self.target, endpoint, without=("enable_sync_mode",)), label="request")
        if "image" in endpoint.properties:
            body["image"] = url
        else:
            body["images"] = [url]
        return self._start(endpoint, body)

    @rule(prediction_id=predictions)
    def poll(self, prediction_id: str) -> None:
        model = self.expected[prediction_id]
        where = f"result response (poll {model.polls + 1})"
        response = self.target.get_result(prediction_id, endpoint=model.journey.endpoint.model, where=where)
        if response.status_code != 200:
            fail(
                [status_violation(response, model.journey.endpoint.model, where, "200 for our own prediction")],
                model.journey.body,
            )
        data = check_view(model.journey, json_of(response, endpoint="-", where=where), where)
        model.polls += 1
        self._observe(model, data, where)
        model.journey.polls.append(data)

    @precondition(lambda self: self.target.controls and ADVANCE not in self.target.unavailable)
    @rule(prediction_id=predictions)
    def advance(self, prediction_id: str) -> None:
        """Fake only: the control API moves a prediction one lifecycle step."""
        model = self.expected[prediction_id]
        response = self.target.send(
            "POST",
            f"/_mock/predictions/{prediction_id}/advance",
            json_body={"steps": 1},
            endpoint=model.journey.endpoint.model,
            where="control advance",
        )
        if not self.target.optional_route(ADVANCE, response):
            return
        where = "control advance response"
        if response.status_code != 200:
            fail([status_violation(response, model.journey.endpoint.model, where, "200")])
        envelope = json_of(response, endpoint=model.journey.endpoint.model, where=where)
        data = envelope.get("data") if isinstance(envelope, dict) else None
        if not isinstance(data, dict) or "status" not in data:
            return  # an answer without the prediction: the next poll checks the effect
        if model.stage < 2:
            model.forced = min(2, max(model.polls // (self.target.poll_steps or 1), model.forced, model.stage) + 1)
        visible = {
            k: v for k, v in data.items() if k in ("id", "status", "outputs", "has_nsfw_contents", "error", "model")
        }
        self._observe(model, visible if model.terminal is None else {**model.terminal, **visible}, where)

    @rule(prediction_id=predictions)
    def download_outputs(self, prediction_id: str) -> None:
        model = self.expected[prediction_id]
        if model.terminal is not None and model.terminal.get("status") == "completed":
            journey = Journey(model.journey.endpoint, model.journey.body, model.journey.submitted, [model.terminal])
            check_outputs(self.target, journey)

    @precondition(lambda self: self.uploaded < MAX_UPLOADS and UPLOAD_BINARY not in self.target.unavailable)
    @rule(target=uploads, name=st.sampled_from(INPUT_FIXTURES))
    def upload_multipart(self, name: str) -> Any:
        self.uploaded += 1
        url = upload_binary(self.target, name)
        return multiple() if url is None else url

    @precondition(lambda self: self.uploaded < MAX_UPLOADS and UPLOAD_DIRECT not in self.target.unavailable)
    @rule(target=uploads, name=st.sampled_from(INPUT_FIXTURES))
    def upload_with_ticket(self, name: str) -> Any:
        self.uploaded += 1
        url = upload_direct(self.target, name)
        return multiple() if url is None else url

    @precondition(lambda self: not self.probed or not self.expected)  # once; or while nothing else can run
    @rule()
    def unknown_prediction_is_not_found(self) -> None:
        self.probed = True
        unknown = secrets.token_hex(16)
        response = self.target.get_result(unknown, where="result of an unknown id")
        if response.status_code != 404:
            fail([status_violation(response, "-", "result of an unknown id", "404 for a prediction id nobody created")])
        check_rejected(
            response,
            self.target.catalog,
            endpoint="-",
            path="(id)",
            reason="unknown prediction",
            request={"id": unknown},
        )


@pytest.mark.paid
def test_api_state_machine(target: Target) -> None:
    if target.budget.left() <= 0:
        pytest.skip(
            f"cost guard: the budget of {target.budget.limit} paid prediction(s) is spent; "
            "not starting the state machine"
        )
    base = settings()  # the loaded profile ("fake", "paid", or --max-examples' variant)
    run_state_machine_as_test(  # type: ignore[no-untyped-call]
        lambda: ApiMachine(target),
        settings=settings(
            base, max_examples=max(1, base.max_examples // 4), stateful_step_count=6 if target.paid else 25
        ),
    )
