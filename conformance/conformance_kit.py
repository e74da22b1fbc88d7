"""The machinery behind the conformance properties: targets, checks that name what drifted, and strategies.

Everything a property needs from the API under test goes through a :class:`Target` (the ``target`` fixture):
sending, the cost guard, dry runs, bounded polling. The checks raise :class:`ConformanceError`, whose
:class:`Violation` entries (endpoint, where, field path, expected, observed) become the drift report.

This file lives in the conformance folder (put on ``sys.path`` by its pytest.ini); it is not part of the
importable ``mock_server`` package.
"""

from __future__ import annotations

import base64
import binascii
import copy
import io
import json
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from functools import cache
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import httpx
import pytest
from hypothesis import assume
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError
from PIL import Image

from mock_server.catalog import Catalog, Endpoint, default_catalog
from mock_server.images import ASPECT_RESOLUTIONS
from mock_server.resources import data_dir

STATUS_RANK: dict[str, int] = {
    "created": 0, "processing": 1, "completed": 2, "failed": 2, "cancelled": 2, "timeout": 2,
}
TERMINAL = frozenset(s for s, rank in STATUS_RANK.items() if rank == 2)
PIL_FORMAT = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}
MIME = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
MALFORMED_SIZES = ("100*100", "1024x1024", "abc", "1537*1024", "1024*255", "1024 * 1024", "-512*512",
                   "1024*1024*2", "1024*", "*1024", "0*0", "1e3*1024", "1024,1024", "")
BAD_JSON_BODIES = (b"{not json", b"{\"prompt\": ", b"\xff\xfe\xfd", b"{'prompt': 'single quotes'}",
                   b"{\"prompt\": \"x\",}", b"[1, 2", b"nul")
NON_OBJECT_BODIES = (b"[]", b"[{\"prompt\": \"x\"}]", b"\"a prompt\"", b"42", b"null", b"true", b"3.5")
# Request-level switches of the API itself (reference §4), not model parameters: never sent as "foreign".
TRANSPORT_KNOBS = ("enable_sync_mode", "enable_base64_output")
INPUT_FIXTURES = ("badge-48x64.png", "shapes-64x48.png", "target-96x96.jpg")
SHORT = 160


# --------------------------------------------------------------------------------------------------------
# violations


@dataclass(frozen=True)
class Violation:
    """One observed difference between the contract (the schemas, the documented behaviour) and the target."""

    endpoint: str
    where: str  # which message: "submit response", "result response (poll 2)", "output 0", "request", ...
    path: str  # field path inside that message: "data.urls", "data.outputs[0]", "num_images", ...
    expected: str
    observed: str

    def line(self) -> str:
        return f"{self.endpoint}: {self.where} {self.path}: expected {self.expected}; observed {self.observed}"

    def to_json(self) -> dict[str, str]:
        return {"endpoint": self.endpoint, "where": self.where, "path": self.path,
                "expected": self.expected, "observed": self.observed}


class ConformanceError(AssertionError):
    """A property failed; ``violations`` says exactly where and how."""

    def __init__(self, violations: list[Violation], request: str | None = None) -> None:
        self.violations = violations
        self.request = request
        text = "\n".join(v.line() for v in violations)
        if request:
            text += f"\nrequest: {request}"
        super().__init__(text)


def fail(violations: list[Violation], request: Any = None) -> None:
    """Raise a ConformanceError when there is anything to report."""
    if violations:
        raise ConformanceError(violations, None if request is None else short(request, 600))


def short(value: Any, limit: int = SHORT) -> str:
    if isinstance(value, (bytes, bytearray)):
        text = repr(bytes(value))
    elif isinstance(value, str):
        text = repr(value)
    else:
        try:
            text = json.dumps(value, ensure_ascii=True, sort_keys=True)
        except (TypeError, ValueError):
            text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else type(value).__name__


def field_path(parts: Iterable[Any]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(body)"


@cache
def _validator(schema_json: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(schema_json), format_checker=FormatChecker())


def validator_for(schema: Mapping[str, Any]) -> Draft202012Validator:
    return _validator(json.dumps(schema, sort_keys=True))


def schema_violations(instance: Any, schema: Mapping[str, Any], *, endpoint: str, where: str) -> list[Violation]:
    """Every way ``instance`` breaks ``schema``, each as expected (the schema) vs observed (the value)."""
    errors = sorted(validator_for(schema).iter_errors(instance), key=lambda e: [str(p) for p in e.absolute_path])
    return [_from_error(e, endpoint=endpoint, where=where) for e in errors]


def _from_error(error: ValidationError, *, endpoint: str, where: str) -> Violation:
    parts = list(error.absolute_path)
    kind, value, instance = error.validator, error.validator_value, error.instance
    if kind == "required":
        missing = error.message.split("'")[1] if "'" in error.message else "?"
        return Violation(endpoint, where, field_path([*parts, missing]), "required property present", "missing")
    if kind == "type":
        expected = f"type {value}"
        observed = f"{json_type(instance)} {short(instance, 80)}"
    elif kind == "enum":
        expected = f"one of {short(value, 200)}"
        observed = short(instance)
    elif kind == "const":
        expected = short(value)
        observed = short(instance)
    elif kind in ("maxItems", "minItems"):
        expected = f"{kind} {value}"
        observed = f"{len(instance)} items {short(instance, 80)}" if isinstance(instance, list) else short(instance)
    elif kind in ("minLength", "maxLength"):
        expected = f"{kind} {value}"
        observed = short(instance)
    else:
        expected = f"{kind} {short(value, 120)}"
        observed = short(instance)
    return Violation(endpoint, where, field_path(parts), expected, observed)


def short_model(model: str) -> str:
    return model.removeprefix("wavespeed-ai/")


class ShownEndpoint(Endpoint):
    """An Endpoint that prints as its model path: falsifying examples stay readable (not 30 kB of schema)."""

    def __repr__(self) -> str:
        return f"Endpoint({self.model!r})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


def shown(endpoint: Endpoint) -> ShownEndpoint:
    if isinstance(endpoint, ShownEndpoint):
        return endpoint
    return ShownEndpoint(**{f.name: getattr(endpoint, f.name) for f in fields(endpoint)})


def endpoints_of(catalog: Catalog) -> list[ShownEndpoint]:
    """Every endpoint, cheapest first (a paid run spends its budget on the cheapest ones)."""
    return sorted((shown(e) for e in catalog.endpoints.values()), key=price_rank)


# --------------------------------------------------------------------------------------------------------
# cost guard and dry runs


@dataclass
class Budget:
    """Paid predictions: ``limit`` at most (None: unlimited, as on the fake); every accepted submit counts."""

    limit: int | None
    spent: int = 0
    cost_usd: float = 0.0
    unpriced: int = 0  # accepted submits on endpoints without a known price

    def left(self) -> float:
        return math.inf if self.limit is None else self.limit - self.spent

    def charge(self, endpoint: Endpoint, body: Mapping[str, Any]) -> None:
        self.spent += 1
        if endpoint.price_usd is None:
            self.unpriced += 1
        else:
            self.cost_usd += endpoint.cost(expected_count(endpoint, body))

    def to_json(self) -> dict[str, Any]:
        return {"limit": self.limit, "spent": self.spent, "estimated_cost_usd": round(self.cost_usd, 4),
                "predictions_without_known_price": self.unpriced}


@dataclass(frozen=True)
class PlannedRequest:
    method: str
    path: str
    body: str
    estimated_cost_usd: float | None  # None: unknown price; 0 for requests that should be rejected

    def line(self) -> str:
        cost = "unknown price" if self.estimated_cost_usd is None else f"${self.estimated_cost_usd:.3f}"
        return f"{self.method} {self.path} {self.body} (est. {cost})"

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method, "path": self.path, "body": self.body,
                "estimated_cost_usd": self.estimated_cost_usd}


# --------------------------------------------------------------------------------------------------------
# the target


@dataclass
class Target:
    """The API under test, and everything that differs between the fake and a real URL.

    Properties never ask which target they run against; they use these capabilities:
    ``paid`` (submits cost money: cheap parameters, budget), ``controls`` (the fake's ``/_mock/`` control
    API), ``poll_steps`` (each poll moves a prediction exactly this many lifecycle steps; None: unknown),
    ``restricts_keys`` (an unknown API key is refused) and ``input_images`` (image values the target can use).
    """

    name: str
    base_url: str
    api_key: str
    paid: bool
    budget: Budget
    dry_run: bool = False
    controls: bool = False
    poll_steps: int | None = None
    restricts_keys: bool = True
    poll_interval: float = 1.0
    poll_timeout: float = 300.0
    max_polls: int = 500
    catalog: Catalog = field(default_factory=default_catalog)
    input_images: tuple[str, ...] = ()
    planned: list[PlannedRequest] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unavailable: set[str] = field(default_factory=set)  # optional routes the target answered 404 for
    http: httpx.Client | None = None

    # --- endpoints ----------------------------------------------------------------------------------------

    def endpoints(self) -> list[ShownEndpoint]:
        """Every endpoint, cheapest first (a paid run spends its budget on the cheapest ones)."""
        return endpoints_of(self.catalog)

    def __repr__(self) -> str:
        return f"Target({self.name!r} at {self.base_url})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))

    @property
    def cheap(self) -> bool:
        return self.paid

    # --- sending ------------------------------------------------------------------------------------------

    def _client(self) -> httpx.Client:
        if self.http is None:
            self.http = httpx.Client(base_url=self.base_url, timeout=httpx.Timeout(max(60.0, self.poll_timeout)),
                                     follow_redirects=True)
        return self.http

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key if key is None else key}"}

    def send(self, method: str, path: str, *, endpoint: str = "-", where: str = "request",
             json_body: Any = None, content: bytes | None = None, headers: Mapping[str, str] | None = None,
             files: Any = None, estimated_cost: float | None = 0.0) -> httpx.Response:
        """One HTTP exchange. A dry run records it and skips the test; a transport failure is a violation."""
        if self.dry_run:
            shown = short(json_body, 400) if json_body is not None else (
                short(content, 200) if content is not None else ("<multipart file>" if files else ""))
            self.planned.append(PlannedRequest(method, urlsplit(path).path or path, shown, estimated_cost))
            pytest.skip(f"dry run: would send {method} {path}")
        kwargs: dict[str, Any] = {"headers": dict(headers or {})}
        if json_body is not None:
            kwargs["json"] = json_body
        if content is not None:
            kwargs["content"] = content
        if files is not None:
            kwargs["files"] = files
        try:
            return self._client().request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ConformanceError([Violation(endpoint, where, "(connection)", f"an HTTP answer to {method} {path}",
                                              f"{type(exc).__name__}: {exc}")]) from None

    def submit(self, endpoint: Endpoint, body: Any = None, *, raw: bytes | None = None, key: str | None = None,
               headers: Mapping[str, str] | None = None, expect_rejection: bool = False) -> httpx.Response:
        """POST a prediction. Paid targets: refuse (skip) once the budget is spent; count every accepted one."""
        if self.budget.left() <= 0:
            pytest.skip(f"cost guard: the budget of {self.budget.limit} paid prediction(s) is spent; "
                        f"not submitting to {endpoint.model}")
        if headers is None:
            headers = self.auth(key)
        if raw is not None:
            headers = {**headers, "Content-Type": "application/json"}
        cost: float | None = 0.0 if expect_rejection else (
            endpoint.cost(expected_count(endpoint, body or {})) if endpoint.price_usd is not None else None)
        response = self.send("POST", f"/api/v3/{endpoint.model}", endpoint=endpoint.model, where="submit",
                             json_body=body if raw is None else None, content=raw, headers=headers,
                             estimated_cost=cost)
        if 200 <= response.status_code < 300:
            self.budget.charge(endpoint, body if isinstance(body, dict) else {})
        return response

    def get_result(self, prediction_id: str, *, endpoint: str = "-", where: str = "result",
                   key: str | None = None, headers: Mapping[str, str] | None = None) -> httpx.Response:
        return self.send("GET", f"/api/v3/predictions/{prediction_id}/result", endpoint=endpoint, where=where,
                         headers=self.auth(key) if headers is None else headers)

    def download(self, url: str, *, endpoint: str, where: str) -> httpx.Response:
        """Output files are public links (a CDN on the real API): fetched without the API key."""
        return self.send("GET", url, endpoint=endpoint, where=where)

    def pause(self, attempt: int) -> None:
        """Back off between polls of a target whose predictions move with time (never on the fake)."""
        delay = min(self.poll_interval * (1.5 ** attempt), max(self.poll_interval, 8.0))
        if delay > 0:
            time.sleep(delay)

    def optional_route(self, name: str, response: httpx.Response) -> bool:
        """False (and a note) when an optional route is missing on this target: its checks are skipped."""
        if response.status_code in (404, 405):
            if name not in self.unavailable:
                self.unavailable.add(name)
                self.notes.append(f"{name}: the target answered {response.status_code}; checks that need it "
                                  f"were skipped")
            return False
        return True

    def close(self) -> None:
        if self.http is not None:
            self.http.close()
            self.http = None


def price_rank(endpoint: Endpoint) -> tuple[float, str]:
    """Sort key: known prices cheapest first, unknown prices last."""
    return (endpoint.cost(1) if endpoint.price_usd is not None else math.inf, endpoint.model)


def expected_count(endpoint: Endpoint, body: Mapping[str, Any]) -> int:
    """How many outputs a request asks for: num_images (or its schema default), else one."""
    if "num_images" not in endpoint.properties:
        return 1
    value = body.get("num_images", endpoint.default("num_images", 1)) if isinstance(body, Mapping) else 1
    return value if isinstance(value, int) and not isinstance(value, bool) else 1


def fixture_data_uris() -> tuple[str, ...]:
    images = data_dir("fixtures") / "images"
    uris = []
    for name in INPUT_FIXTURES:
        path: Path = images / name
        mime = "image/png" if name.endswith(".png") else "image/jpeg"
        uris.append(f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}")
    return tuple(uris)


def fixture_bytes(name: str) -> bytes:
    path: Path = data_dir("fixtures") / "images" / name
    return path.read_bytes()


# --------------------------------------------------------------------------------------------------------
# reading responses


def json_of(response: httpx.Response, *, endpoint: str, where: str) -> Any:
    try:
        return response.json()
    except (ValueError, UnicodeDecodeError):
        raise ConformanceError([Violation(endpoint, where, "(body)", "a JSON body",
                                          f"HTTP {response.status_code} {short(response.content, 120)}")]) from None


def check_accepted(response: httpx.Response, endpoint: Endpoint, body: Any) -> dict[str, Any]:
    """A valid request: HTTP 200 and a submit body that validates. Returns ``data``."""
    model = endpoint.model
    if response.status_code != 200:
        fail([Violation(model, "submit", "(HTTP status)", "200: a schema-valid request is accepted",
                        f"HTTP {response.status_code} {short(response.text, 300)}")], body)
    envelope = json_of(response, endpoint=model, where="submit response")
    violations = schema_violations(envelope, endpoint.submit_schema, endpoint=model, where="submit response")
    data = envelope.get("data") if isinstance(envelope, dict) else None
    if isinstance(data, dict):
        violations += _link_violations(data, model, "submit response", body)
    fail(violations, body)
    assert isinstance(data, dict)
    return data


def check_rejected(response: httpx.Response, catalog: Catalog, *, endpoint: str, path: str, reason: str,
                   request: Any) -> None:
    """An invalid request: a 4xx (never accepted, never a 5xx) whose body is the error envelope."""
    status = response.status_code
    expected = f"a 4xx rejection ({reason})"
    if status < 400:
        fail([Violation(endpoint, "submit", path, expected, f"HTTP {status} accepted")], request)
    if status >= 500:
        fail([Violation(endpoint, "submit", path, expected, f"HTTP {status} {short(response.text, 200)}")], request)
    body = json_of(response, endpoint=endpoint, where=f"error response (HTTP {status})")
    fail(schema_violations(body, catalog.error_schema, endpoint=endpoint, where=f"error response (HTTP {status})"),
         request)


def check_unauthorized(response: httpx.Response, catalog: Catalog, *, endpoint: str, where: str,
                       reason: str, request: Any) -> None:
    status = response.status_code
    if status != 401:
        fail([Violation(endpoint, where, "(HTTP status)", f"401 ({reason})",
                        f"HTTP {status} {short(response.text, 200)}")], request)
    body = json_of(response, endpoint=endpoint, where="error response (HTTP 401)")
    fail(schema_violations(body, catalog.error_schema, endpoint=endpoint, where="error response (HTTP 401)"), request)


def _link_violations(data: Mapping[str, Any], model: str, where: str, body: Any) -> list[Violation]:
    violations = []
    urls = data.get("urls")
    link = urls.get("get") if isinstance(urls, dict) else None
    if isinstance(link, str):
        parts = urlsplit(link)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            violations.append(Violation(model, where, "data.urls.get", "an absolute http(s) URL", short(link)))
    if data.get("model") not in (None, model):
        violations.append(Violation(model, where, "data.model", short(model), short(data.get("model"))))
    outputs = data.get("outputs")
    if isinstance(outputs, list) and not base64_mode(body):
        for index, output in enumerate(outputs):
            if isinstance(output, str):
                parts = urlsplit(output)
                if parts.scheme not in ("http", "https") or not parts.netloc:
                    violations.append(Violation(model, where, f"data.outputs[{index}]", "an absolute http(s) URL",
                                                short(output, 80)))
    return violations


def base64_mode(body: Any) -> bool:
    return isinstance(body, Mapping) and body.get("enable_base64_output") is True


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


def check_view(target: Target, journey: Journey, envelope: Any, where: str) -> dict[str, Any]:
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
                violations.append(Violation(
                    model, where, f"data.{name}",
                    f"{count} entr{'y' if count == 1 else 'ies'} (one per image; num_images="
                    f"{journey.body.get('num_images', 'default')})",
                    f"{observed} entries {short(value, 80)}" if observed is not None else short(value)))
    elif status == "failed":
        error = data.get("error")
        if not (isinstance(error, str) and error.strip()):
            violations.append(Violation(model, where, "data.error", "a non-empty error message for a failed "
                                        "prediction", short(error)))
    fail(violations, journey.body)


def follow(target: Target, endpoint: Endpoint, body: dict[str, Any], submitted: dict[str, Any], *,
           extra_polls: int = 0) -> Journey:
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
            fail([Violation(model, f"result response (poll {attempt})", "data.status",
                            f"a terminal status within {target.max_polls} polls / {target.poll_timeout:g} s",
                            short(journey.final.get("status")))], body)
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
        fail([Violation(model, where, "(HTTP status)", "200 for a prediction this key created",
                        f"HTTP {response.status_code} {short(response.text, 200)}")], journey.body)
    return check_view(target, journey, json_of(response, endpoint=model, where=where), where)


def check_forward(journey: Journey, previous: Any, data: Mapping[str, Any], where: str) -> None:
    before, now = STATUS_RANK.get(str(previous), -1), STATUS_RANK.get(str(data.get("status")), -1)
    if before == 2 and data.get("status") != previous:
        fail([Violation(journey.endpoint.model, where, "data.status",
                        f"{short(previous)} again (terminal states never change)", short(data.get("status")))],
             journey.body)
    if now < before:
        fail([Violation(journey.endpoint.model, where, "data.status",
                        f"a status at or after {short(previous)} (created < processing < terminal)",
                        short(data.get("status")))], journey.body)


STABLE_FIELDS = ("status", "outputs", "has_nsfw_contents", "error", "model", "id")


def check_stable(journey: Journey, terminal: Mapping[str, Any], data: Mapping[str, Any], where: str) -> None:
    violations = [Violation(journey.endpoint.model, where, f"data.{name}",
                            f"{short(terminal.get(name), 80)} as on the terminal poll (terminal states are stable)",
                            short(data.get(name), 80))
                  for name in STABLE_FIELDS if data.get(name) != terminal.get(name)]
    fail(violations, journey.body)


# --------------------------------------------------------------------------------------------------------
# outputs


def expected_size(endpoint: Endpoint, body: Mapping[str, Any]) -> tuple[tuple[int, int], str] | None:
    """The (width, height) a request determines, and why; None when the contract does not say."""
    props = endpoint.properties
    size = body.get("size") if "size" in props else None
    if isinstance(size, str) and "*" in size:
        width, _, height = size.partition("*")
        return (int(width), int(height)), f"size {size!r}"
    ratio = body.get("aspect_ratio", endpoint.default("aspect_ratio")) if "aspect_ratio" in props else None
    if isinstance(ratio, str) and ratio in ASPECT_RESOLUTIONS:
        given = "aspect_ratio" in body
        return ASPECT_RESOLUTIONS[ratio], f"aspect_ratio {ratio!r}{'' if given else ' (schema default)'}"
    if endpoint.kind == "text-to-image":
        return (1024, 1024), "text-to-image default"
    return None


def expected_format(endpoint: Endpoint, body: Mapping[str, Any]) -> str | None:
    if "output_format" not in endpoint.properties:
        return None
    value = body.get("output_format", endpoint.default("output_format"))
    return value if value in PIL_FORMAT else None


def check_outputs(target: Target, journey: Journey) -> list[tuple[int, int, str]]:
    """Every output downloads (or base64-decodes) to an image of the requested format and size."""
    data = journey.final
    if data.get("status") != "completed":
        return []
    endpoint, body = journey.endpoint, journey.body
    model = endpoint.model
    size = expected_size(endpoint, body)
    fmt = expected_format(endpoint, body)
    inline = base64_mode(body)
    seen = []
    for index, output in enumerate(data.get("outputs") or []):
        where = f"output {index}"
        path = f"data.outputs[{index}]"
        if inline:
            if not isinstance(output, str) or output.startswith("data:"):
                fail([Violation(model, where, path, "naked base64 (no data: prefix)", short(output, 80))], body)
            try:
                blob = base64.b64decode(output, validate=True)
            except (binascii.Error, ValueError):
                fail([Violation(model, where, path, "valid base64 of an image", short(output, 80))], body)
        else:
            response = target.download(str(output), endpoint=model, where=where)
            if response.status_code != 200:
                fail([Violation(model, where, path, "HTTP 200 when downloading the output URL",
                                f"HTTP {response.status_code} for {short(output, 120)}")], body)
            mime = response.headers.get("content-type", "").split(";")[0].strip()
            if fmt is not None and mime != MIME[fmt]:
                fail([Violation(model, where, f"{path} Content-Type", MIME[fmt], short(mime))], body)
            blob = response.content
        try:
            with Image.open(io.BytesIO(blob)) as image:
                image.load()
                width, height, pil = image.width, image.height, str(image.format)
        except Exception as exc:  # Pillow raises many types for undecodable data
            fail([Violation(model, where, path, "a decodable image", f"{type(exc).__name__}: {exc}")], body)
        wanted = f"{PIL_FORMAT[fmt]}" if fmt else "JPEG, PNG or WEBP"
        if (fmt and pil != PIL_FORMAT[fmt]) or (not fmt and pil not in PIL_FORMAT.values()):
            fail([Violation(model, where, f"{path} format", f"{wanted} (output_format "
                            f"{body.get('output_format', 'default')})", pil)], body)
        if size is not None and (width, height) != size[0]:
            fail([Violation(model, where, f"{path} size", f"{size[0][0]}x{size[0][1]} ({size[1]})",
                            f"{width}x{height}")], body)
        seen.append((width, height, pil))
    return seen


# --------------------------------------------------------------------------------------------------------
# strategies


def cheapened(endpoint: Endpoint) -> dict[str, Any]:
    """The request schema narrowed to the cheapest requests: one image, the smallest size, no LoRAs."""
    schema: dict[str, Any] = copy.deepcopy(endpoint.request_schema)
    props = schema["properties"]
    if "num_images" in props:
        props["num_images"] = {"const": props["num_images"].get("minimum", 1)}
    if "size" in props:
        low = props["size"].get("x-dimension-range", {}).get("minimum", 256)
        props["size"] = {"const": f"{low}*{low}"}
    if "loras" in props:
        props["loras"] = {"const": []}
    if "images" in props:
        props["images"] = {**props["images"], "maxItems": 1}
    if "enable_sync_mode" in props:
        props["enable_sync_mode"] = {"const": False}
    return schema


@cache
def _schema_strategy(schema_json: str) -> st.SearchStrategy[dict[str, Any]]:
    # Imported here: hypothesis-jsonschema builds strategies at import, which hypothesis discourages while
    # pytest is still loading conftest files.
    from hypothesis_jsonschema import from_schema

    strategy: Any = from_schema(json.loads(schema_json))
    return cast("st.SearchStrategy[dict[str, Any]]", strategy)


def schema_strategy(schema: Mapping[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    return _schema_strategy(json.dumps(schema, sort_keys=True))


def foreign_parameters(endpoint: Endpoint, catalog: Catalog) -> list[str]:
    """Model parameters other endpoints document but this one does not (clients send them: reference §4)."""
    own = set(endpoint.properties) | set(TRANSPORT_KNOBS)
    names = {name for other in catalog.endpoints.values() for name in other.properties}
    return sorted(names - own)


@st.composite
def valid_requests(draw: st.DrawFn, target: Target, endpoint: Endpoint, *, foreign: bool = False,
                   without: tuple[str, ...] = ()) -> dict[str, Any]:
    """Any request the endpoint's schema accepts, image inputs taken from ``target.input_images``.

    ``foreign`` adds, sometimes, parameters other endpoints document with arbitrary JSON values: an unknown
    field is accepted and must never break the prediction. ``without`` drops fields (e.g. the sync flag).
    """
    schema = cheapened(endpoint) if target.cheap else endpoint.request_schema
    body = dict(draw(schema_strategy(schema), label="from the request schema"))
    images = st.sampled_from(target.input_images)
    if isinstance(body.get("image"), str) and target.input_images:
        body["image"] = draw(images, label="image")
    if isinstance(body.get("images"), list) and target.input_images:
        body["images"] = [draw(images, label="images item") for _ in body["images"]]
    for name in without:
        body.pop(name, None)
    if foreign:
        names = foreign_parameters(endpoint, target.catalog)
        if names:
            extra = draw(st.dictionaries(st.sampled_from(names), json_values(), max_size=2), label="foreign")
            body.update(extra)
    return body


def json_values() -> st.SearchStrategy[Any]:
    scalars = st.none() | st.booleans() | st.integers(-(2**31), 2**31) | st.floats(
        allow_nan=False, allow_infinity=False, width=32) | st.text(max_size=12)
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.text(max_size=5), inner, max_size=3), max_leaves=6)


@dataclass(frozen=True)
class Mutation:
    """An invalid request made from a valid one: which field, and why it must be refused."""

    body: dict[str, Any]
    path: str
    reason: str


def _wrong_type_values(schema: Mapping[str, Any]) -> list[Any]:
    kind = schema.get("type")
    candidates: list[Any] = [None, {"nested": True}]
    if kind != "string":
        candidates += ["not-a-" + str(kind)]
    if kind not in ("integer", "number"):
        candidates += [7]
    if kind == "integer":
        candidates += [1.5, "3"]
    if kind == "number":
        candidates += ["2.5"]
    if kind != "boolean":
        candidates += [True]
    if kind == "boolean":
        candidates += ["true", 1]
    if kind != "array":
        candidates += [["a", "list"]]
    return candidates


def _mutations(endpoint: Endpoint, body: dict[str, Any]) -> list[tuple[str, Callable[[st.DrawFn], Mutation]]]:
    props = endpoint.properties
    options: list[tuple[str, Callable[[st.DrawFn], Mutation]]] = []
    required = endpoint.request_schema.get("required", [])

    for name in required:
        def drop(draw: st.DrawFn, name: str = name) -> Mutation:
            return Mutation({k: v for k, v in body.items() if k != name}, name, f"required {name!r} is missing")
        options.append((f"drop {name}", drop))

    for name, schema in props.items():
        def wrong_type(draw: st.DrawFn, name: str = name, schema: Mapping[str, Any] = schema) -> Mutation:
            value = draw(st.sampled_from(_wrong_type_values(schema)), label=f"wrong-type {name}")
            return Mutation({**body, name: value}, name, f"{name} must be of type {schema.get('type')}, "
                            f"sent {json_type(value)} {short(value, 40)}")
        options.append((f"wrong type {name}", wrong_type))

        kind = schema.get("type")
        if kind in ("integer", "number") and ("minimum" in schema or "maximum" in schema):
            def out_of_range(draw: st.DrawFn, name: str = name, schema: Mapping[str, Any] = schema) -> Mutation:
                sides = [s for s in ("minimum", "maximum") if s in schema]
                side = draw(st.sampled_from(sides), label=f"{name} side")
                bound = schema[side]
                if schema.get("type") == "integer":
                    delta: float = draw(st.integers(1, 16), label="delta")
                else:
                    delta = draw(st.sampled_from([0.01, 0.5, 1.0, 7.25, 100.0]), label="delta")
                value = bound - delta if side == "minimum" else bound + delta
                if schema.get("type") == "integer":
                    value = int(value)
                return Mutation({**body, name: value}, name, f"{name} {side} is {bound}, sent {value}")
            options.append((f"out of range {name}", out_of_range))

        if "enum" in schema:
            def bad_enum(draw: st.DrawFn, name: str = name, schema: Mapping[str, Any] = schema) -> Mutation:
                pool = ["gif", "0", "6", "1:2", "16:10", "JPEG", "png ", "", "auto"]
                value = draw(st.sampled_from(pool) | st.text(min_size=1, max_size=8), label=f"bad {name}")
                assume(value not in schema["enum"])
                return Mutation({**body, name: value}, name, f"{name} must be one of {schema['enum']}, "
                                f"sent {value!r}")
            options.append((f"bad enum {name}", bad_enum))

        if name == "size":
            def bad_size(draw: st.DrawFn) -> Mutation:
                value = draw(st.sampled_from(MALFORMED_SIZES), label="malformed size")
                return Mutation({**body, "size": value}, "size", f"size must be 'W*H' within the documented "
                                f"range, sent {value!r}")
            options.append(("malformed size", bad_size))

        if kind == "array" and "maxItems" in schema:
            def too_many(draw: st.DrawFn, name: str = name, schema: Mapping[str, Any] = schema) -> Mutation:
                items = schema.get("items", {})
                filler: Any = ({"path": "owner/lora", "scale": 1.0} if items.get("type") == "object"
                               else "https://example.com/input.png")
                value = [filler] * (schema["maxItems"] + draw(st.integers(1, 3), label="extra items"))
                return Mutation({**body, name: value}, name, f"{name} holds at most {schema['maxItems']} items, "
                                f"sent {len(value)}")
            options.append((f"too many {name}", too_many))

        items = schema.get("items", {}) if kind == "array" else {}
        if items.get("type") == "object" and items.get("required"):
            def bad_item(draw: st.DrawFn, name: str = name, items: Mapping[str, Any] = items) -> Mutation:
                key = draw(st.sampled_from(items["required"]), label="item key")
                complete = {"path": "owner/lora", "scale": 1.0}
                item = {k: v for k, v in complete.items() if k != key}
                return Mutation({**body, name: [item]}, f"{name}[0].{key}", f"{name} items require {key!r}")
            options.append((f"incomplete {name} item", bad_item))
    return options


@st.composite
def invalid_requests(draw: st.DrawFn, target: Target, endpoint: Endpoint) -> Mutation:
    """A valid request broken in exactly one documented way; the schema itself confirms it is invalid."""
    body = draw(valid_requests(target, endpoint), label="valid base")
    options = _mutations(endpoint, body)
    _, make = draw(st.sampled_from(options), label="mutation")
    mutation = make(draw)
    assume(any(True for _ in validator_for(endpoint.request_schema).iter_errors(mutation.body)))
    return mutation


def malformed_bodies() -> st.SearchStrategy[tuple[bytes, str]]:
    """Bodies that are not a JSON object: broken JSON, JSON of another type, random bytes."""
    def not_an_object(raw: bytes) -> bool:
        if not raw.strip():
            return False
        try:
            return not isinstance(json.loads(raw), dict)
        except (ValueError, UnicodeDecodeError):
            return True

    return st.one_of(
        st.sampled_from(BAD_JSON_BODIES).map(lambda raw: (raw, "body is not valid JSON")),
        st.sampled_from(NON_OBJECT_BODIES).map(lambda raw: (raw, "body is JSON but not an object")),
        st.binary(min_size=1, max_size=64).filter(not_an_object).map(lambda raw: (raw, "body is not a JSON object")),
    )


def split_exceptions(exc: BaseException) -> Iterator[BaseException]:
    """The leaf exceptions of an exception (groups, hypothesis' Flaky wrappers) in order."""
    inner = getattr(exc, "exceptions", None)  # BaseExceptionGroup (3.11+, or the backport on 3.10)
    if isinstance(inner, (list, tuple)) and all(isinstance(e, BaseException) for e in inner):
        for each in inner:
            yield from split_exceptions(each)
    else:
        yield exc


# --------------------------------------------------------------------------------------------------------
# uploads (optional routes: a target without them answers 404 and the checks are skipped)

UPLOAD_BINARY = "POST /api/v3/media/upload/binary"
UPLOAD_DIRECT = "POST /api/v3/media/uploads"


def _upload_data(response: httpx.Response, where: str) -> dict[str, Any]:
    if response.status_code != 200:
        fail([Violation("media", where, "(HTTP status)", "200 for a valid upload",
                        f"HTTP {response.status_code} {short(response.text, 200)}")])
    envelope = json_of(response, endpoint="media", where=where)
    data = envelope.get("data") if isinstance(envelope, dict) else None
    violations = []
    if not isinstance(envelope, dict) or envelope.get("code") != 200:
        violations.append(Violation("media", where, "code", "200", short(
            envelope.get("code") if isinstance(envelope, dict) else envelope)))
    if not isinstance(data, dict) or not isinstance(data.get("download_url"), str):
        violations.append(Violation("media", where, "data.download_url", "a URL string",
                                    short(data.get("download_url") if isinstance(data, dict) else data)))
    fail(violations)
    assert isinstance(data, dict)
    return data


def check_download_matches(target: Target, url: str, content: bytes, where: str) -> None:
    response = target.download(url, endpoint="media", where=where)
    if response.status_code != 200 or response.content != content:
        fail([Violation("media", where, "data.download_url", f"HTTP 200 with the {len(content)} uploaded bytes",
                        f"HTTP {response.status_code} with {len(response.content)} bytes"
                        f"{'' if response.content != content else ' (identical)'}")])


def upload_binary(target: Target, name: str) -> str | None:
    """Multipart upload; the download URL, or None when the target has no such route."""
    if UPLOAD_BINARY in target.unavailable:
        return None
    content = fixture_bytes(name)
    mime = "image/png" if name.endswith(".png") else "image/jpeg"
    response = target.send("POST", "/api/v3/media/upload/binary", endpoint="media", where="upload/binary",
                           files={"file": (name, content, mime)}, headers=target.auth())
    if not target.optional_route(UPLOAD_BINARY, response):
        return None
    url = str(_upload_data(response, "upload/binary response")["download_url"])
    check_download_matches(target, url, content, "upload/binary download")
    return url


def upload_direct(target: Target, name: str) -> str | None:
    """Ticket (POST /media/uploads) then PUT of the bytes; the download URL, or None without the route."""
    if UPLOAD_DIRECT in target.unavailable:
        return None
    content = fixture_bytes(name)
    mime = "image/png" if name.endswith(".png") else "image/jpeg"
    ticket = target.send("POST", "/api/v3/media/uploads", endpoint="media", where="uploads ticket",
                         json_body={"filename": name, "size": len(content), "content_type": mime},
                         headers=target.auth())
    if not target.optional_route(UPLOAD_DIRECT, ticket):
        return None
    data = _upload_data(ticket, "uploads ticket response")
    upload = data.get("upload")
    if not (isinstance(upload, dict) and isinstance(upload.get("url"), str)):
        fail([Violation("media", "uploads ticket response", "data.upload.url", "the URL to PUT the bytes to",
                        short(upload))])
    assert isinstance(upload, dict)
    method = str(upload.get("method") or "PUT").upper()
    given = upload.get("headers")
    headers: dict[Any, Any] = given if isinstance(given, dict) else {}
    put = target.send(method, str(upload["url"]), endpoint="media", where="upload PUT", content=content,
                      headers={str(k): str(v) for k, v in headers.items()})
    if not 200 <= put.status_code < 300:
        fail([Violation("media", "upload PUT", "(HTTP status)", "2xx for the ticket's PUT",
                        f"HTTP {put.status_code} {short(put.text, 200)}")])
    url = str(data["download_url"])
    check_download_matches(target, url, content, "uploads download")
    return url
