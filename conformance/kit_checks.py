"""Checks of what the target answers: submit responses (accepted, rejected, unauthorized) and the lifecycle
of one prediction (:class:`Journey`, :func:`follow`): schema-valid views, statuses that only move forward,
terminal states that stay put. Each check raises a ConformanceError naming what drifted.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
from kit_target import Target, expected_count
from kit_violations import ConformanceError, Violation, fail, schema_violations, short, status_violation

from mock_server.contract.catalog import Catalog, Endpoint

STATUS_RANK: dict[str, int] = {
    "created": 0,
    "processing": 1,
    "completed": 2,
    "failed": 2,
    "cancelled": 2,
    "timeout": 2,
}
STABLE_FIELDS = ("status", "outputs", "has_nsfw_contents", "error", "model", "id")


def json_of(response: httpx.Response, *, endpoint: str, where: str) -> Any:
    try:
        return response.json()
    except (ValueError, UnicodeDecodeError):
        raise ConformanceError(
            [
                Violation(
                    endpoint,
                    where,
                    "(body)",
                    "a JSON body",
                    f"HTTP {response.status_code} {short(response.content, 120)}",
                )
            ]
        ) from None


def base64_mode(body: Any) -> bool:
    return isinstance(body, Mapping) and body.get("enable_base64_output") is True


# --------------------------------------------------------------------------------------------------------
# submit responses


def check_accepted(response: httpx.Response, endpoint: Endpoint, body: Any) -> dict[str, Any]:
    """A valid request: HTTP 200 and a submit body that validates. Returns ``data``."""
    model = endpoint.model
    if response.status_code != 200:
        fail([status_violation(response, model, "submit", "200: a schema-valid request is accepted", 300)], body)
    envelope = json_of(response, endpoint=model, where="submit response")
    violations = schema_violations(envelope, endpoint.submit_schema, endpoint=model, where="submit response")
    data = envelope.get("data") if isinstance(envelope, dict) else None
    if isinstance(data, dict):
        violations += _link_violations(data, model, "submit response", body)
    fail(violations, body)
    assert isinstance(data, dict)
    return data


def check_rejected(
    response: httpx.Response, catalog: Catalog, *, endpoint: str, path: str, reason: str, request: Any
) -> None:
    """An invalid request: a 4xx (never accepted, never a 5xx) whose body is the error envelope."""
    status = response.status_code
    expected = f"a 4xx rejection ({reason})"
    if status < 400:
        fail([Violation(endpoint, "submit", path, expected, f"HTTP {status} accepted")], request)
    if status >= 500:
        fail([Violation(endpoint, "submit", path, expected, f"HTTP {status} {short(response.text, 200)}")], request)
    _check_error_envelope(response, catalog, endpoint, request)


def check_unauthorized(
    response: httpx.Response, catalog: Catalog, *, endpoint: str, where: str, reason: str, request: Any
) -> None:
    if response.status_code != 401:
        fail([status_violation(response, endpoint, where, f"401 ({reason})")], request)
    _check_error_envelope(response, catalog, endpoint, request)


def _check_error_envelope(response: httpx.Response, catalog: Catalog, endpoint: str, request: Any) -> None:
    where = f"error response (HTTP {response.status_code})"
    body = json_of(response, endpoint=endpoint, where=where)
    fail(schema_violations(body, catalog.error_schema, endpoint=endpoint, where=where), request)


def _link_violations(data: Mapping[str, Any], model: str, where: str, body: Any) -> list[Violation]:
    violations = []
    urls = data.get("urls")
    link = urls.get("get") if isinstance(urls, dict) else None
    if isinstance(link, str) and not _absolute_http(link):
        violations.append(Violation(model, where, "data.urls.get", "an absolute http(s) URL", short(link)))
    if data.get("model") not in (None, model):
        violations.append(Violation(model, where, "data.model", short(model), short(data.get("model"))))
    outputs = data.get("outputs")
    if isinstance(outputs, list) and not base64_mode(body):
        for index, output in enumerate(outputs):
            if isinstance(output, str) and not _absolute_http(output):
                violations.append(
                    Violation(model, where, f"data.outputs[{index}]", "an absolute http(s) URL", short(output, 80))
                )
    return violations


def _absolute_http(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


# --------------------------------------------------------------------------------------------------------
# the lifecycle


@dataclass
class Journey:
    """What a client saw of one prediction: the submit view and every poll, in order."""

    endpoint: Endpoint
    body: dict[str, Any]
    submitted: dict[str, Any]
    polls: list[dict[str, Any]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return str(self.submitted.get("id"))

    @property
    def final(self) -> dict[str, Any]:
        return self.polls[-1] if self.polls else self.submitted


def check_view(journey: Journey, envelope: Any, where: str) -> dict[str, Any]:
    """A result body: the endpoint's result schema, the prediction's own id, links that lead somewhere."""
    model = journey.endpoint.model
    violations = schema_violations(envelope, journey.endpoint.result_schema, endpoint=model, where=where)
    data = envelope.get("data") if isinstance(envelope, dict) else None
    if isinstance(data, dict):
        if data.get("id") != journey.id:
            violations.append(Violation(model, where, "data.id", short(journey.id), short(data.get("id"))))
        violations += _link_violations(data, model, where, journey.body)
    fail(violations, journey.body)
    assert isinstance(data, dict)
    return data


def check_terminal(journey: Journey, data: Mapping[str, Any], where: str) -> None:
    """completed ⇒ one output and one NSFW flag per requested image; failed ⇒ a non-empty error."""
    model = journey.endpoint.model
    violations = []
    status = data.get("status")
    if status == "completed":
        count = expected_count(journey.endpoint, journey.body)
        for name in ("outputs", "has_nsfw_contents"):
            value = data.get(name)
            observed = len(value) if isinstance(value, list) else None
            if observed != count:
                violations.append(
                    Violation(
                        model,
                        where,
                        f"data.{name}",
                        f"{count} entr{'y' if count == 1 else 'ies'} (one per image; num_images="
                        f"{journey.body.get('num_images', 'default')})",
                        f"{observed} entries {short(value, 80)}" if observed is not None else short(value),
                    )
                )
    elif status == "failed":
        error = data.get("error")
        if not (isinstance(error, str) and error.strip()):
            violations.append(
                Violation(model, where, "data.error", "a non-empty error message for a failed prediction", short(error))
            )
    fail(violations, journey.body)


def follow(
    target: Target, endpoint: Endpoint, body: dict[str, Any], submitted: dict[str, Any], *, extra_polls: int = 0
) -> Journey:
    """Poll until terminal (bounded by polls and a deadline), checking every answer on the way.

    Statuses only move forward (created < processing < terminal); once terminal, ``extra_polls`` further
    polls must answer the same terminal state.
    """
    journey = Journey(endpoint, body, submitted)
    model = endpoint.model
    previous = submitted.get("status")
    deadline = time.monotonic() + target.poll_timeout
    attempt = 0
    while STATUS_RANK.get(str(journey.final.get("status")), -1) < 2:
        if attempt >= target.max_polls or time.monotonic() > deadline:
            fail(
                [
                    Violation(
                        model,
                        f"result response (poll {attempt})",
                        "data.status",
                        f"a terminal status within {target.max_polls} polls / {target.poll_timeout:g} s",
                        short(journey.final.get("status")),
                    )
                ],
                body,
            )
        if attempt:
            target.pause(attempt - 1)
        attempt += 1
        data = poll_once(target, journey, f"result response (poll {attempt})")
        check_forward(journey, previous, data, f"result response (poll {attempt})")
        previous = data.get("status")
        journey.polls.append(data)
    terminal = journey.final
    check_terminal(journey, terminal, f"result response (poll {attempt})")
    for extra in range(extra_polls):
        where = f"result response (poll {attempt + extra + 1}, after the terminal one)"
        data = poll_once(target, journey, where)
        check_stable(journey, terminal, data, where)
        journey.polls.append(data)
    return journey


def poll_once(target: Target, journey: Journey, where: str) -> dict[str, Any]:
    model = journey.endpoint.model
    response = target.get_result(journey.id, endpoint=model, where=where)
    if response.status_code != 200:
        fail([status_violation(response, model, where, "200 for a prediction this key created")], journey.body)
    return check_view(journey, json_of(response, endpoint=model, where=where), where)


def check_forward(journey: Journey, previous: Any, data: Mapping[str, Any], where: str) -> None:
    before, now = STATUS_RANK.get(str(previous), -1), STATUS_RANK.get(str(data.get("status")), -1)
    if before == 2 and data.get("status") != previous:
        fail(
            [
                Violation(
                    journey.endpoint.model,
                    where,
                    "data.status",
                    f"{short(previous)} again (terminal states never change)",
                    short(data.get("status")),
                )
            ],
            journey.body,
        )
    if now < before:
        fail(
            [
                Violation(
                    journey.endpoint.model,
                    where,
                    "data.status",
                    f"a status at or after {short(previous)} (created < processing < terminal)",
                    short(data.get("status")),
                )
            ],
            journey.body,
        )


def check_stable(journey: Journey, terminal: Mapping[str, Any], data: Mapping[str, Any], where: str) -> None:
    violations = [
        Violation(
            journey.endpoint.model,
            where,
            f"data.{name}",
            f"{short(terminal.get(name), 80)} as on the terminal poll (terminal states are stable)",
            short(data.get(name), 80),
        )
        for name in STABLE_FIELDS
        if data.get(name) != terminal.get(name)
    ]
    fail(violations, journey.body)
