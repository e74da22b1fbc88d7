"""Scenario control: one set of operations, reachable over HTTP under ``/_mock/`` and as a Python object.

``Controller`` holds the operations. ``OPERATIONS`` maps each to its HTTP route, so the routes and the remote
``FakeWaveSpeed`` client are built from the same table and cannot drift apart.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mock_server.errors import ApiError, BadRequest
from mock_server.jobs import Prediction
from mock_server.scenario import make_outcome
from mock_server.settings import PROGRESSIONS

PREFIX = "/_mock"


@dataclass(frozen=True)
class Operation:
    name: str
    method: str
    path: str  # may contain {prediction_id}


OPERATIONS = (
    Operation("health", "GET", "/health"),
    Operation("reset", "POST", "/reset"),
    Operation("seed", "POST", "/seed"),
    Operation("enqueue", "POST", "/outcomes"),
    Operation("outcomes", "GET", "/outcomes"),
    Operation("clear_outcomes", "DELETE", "/outcomes"),
    Operation("behave", "POST", "/behaviour"),
    Operation("advance", "POST", "/predictions/{prediction_id}/advance"),
    Operation("prediction", "GET", "/predictions/{prediction_id}"),
    Operation("predictions", "GET", "/predictions"),
    Operation("advance_clock", "POST", "/clock/advance"),
    Operation("add_fault", "POST", "/faults"),
    Operation("faults", "GET", "/faults"),
    Operation("clear_faults", "DELETE", "/faults"),
    Operation("journal", "GET", "/journal"),
    Operation("journal_count", "GET", "/journal/count"),
    Operation("unmatched", "GET", "/journal/unmatched"),
    Operation("configure_webhooks", "POST", "/webhooks"),
    Operation("deliveries", "GET", "/webhooks/deliveries"),
    Operation("apply_scenario", "POST", "/scenario"),
)


class Controller:
    """Every control operation, over the state of one app (``app.state``)."""

    def __init__(self, state: Any) -> None:
        self.state = state

    @property
    def backend(self) -> Any:
        return self.state.backend

    # --- state ----------------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return {"ok": True, "models": len(self.backend.catalog.endpoints), "now": self.backend.clock.now()}

    def reset(self, tenant: str | None = None) -> dict[str, Any]:
        """Forget predictions, queued outcomes, faults, journal entries and deliveries (of one tenant)."""
        removed = self.backend.reset(tenant)
        for forget in (self.state.journal.clear, self.state.faults.clear, self.state.webhooks.reset,
                       self.state.accounts.reset, self.state.uploads.reset):
            forget(tenant)
        return {"predictions_removed": removed, "tenant": "<all>" if tenant is None else "<one>"}

    def seed(self, seed: int | None) -> dict[str, Any]:
        """Make ids, drawn seeds and fault probabilities reproducible from here on."""
        if seed is not None and not isinstance(seed, int):
            raise BadRequest("seed must be an integer or null")
        self.backend.reseed(seed)
        self.state.faults.reseed(seed)
        return {"seed": seed}

    # --- outcomes and progression ----------------------------------------------------------------------

    def enqueue(self, outcome: dict[str, Any] | None = None, model: str | None = None,
                prompt_contains: str | None = None, tenant: str | None = None,
                times: int | None = 1) -> dict[str, Any]:
        """Queue how the next ``times`` matching predictions end (None: all of them until reset)."""
        if model is not None and self.backend.catalog.get(model) is None:
            raise BadRequest(f"unknown model {model!r}")
        try:
            rule = self.backend.scenario.enqueue(make_outcome(outcome or {}), model=model,
                                                 prompt_contains=prompt_contains, tenant=tenant, times=times)
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        result: dict[str, Any] = rule.to_json()
        return result

    def outcomes(self, tenant: str | None = None) -> list[dict[str, Any]]:
        return [r.to_json() for r in self.backend.scenario.rules if tenant is None or r.tenant == tenant]

    def clear_outcomes(self, tenant: str | None = None) -> dict[str, Any]:
        scenario = self.backend.scenario
        before = len(scenario.rules)
        scenario.rules[:] = [r for r in scenario.rules if tenant is not None and r.tenant != tenant]
        return {"removed": before - len(scenario.rules)}

    def behave(self, model: str = "*", progression: str | None = None, poll_every: int | None = None,
               latency: float | list[float] | None = None, tenant: str | None = None) -> dict[str, Any]:
        """Per-model (or "*") progression, polls per step, and latency (seconds, or [queue, generation]);
        for one tenant only when ``tenant`` is given."""
        if model != "*" and self.backend.catalog.get(model) is None:
            raise BadRequest(f"unknown model {model!r}")
        if progression is not None and progression not in PROGRESSIONS:
            raise BadRequest(f"progression must be one of {', '.join(PROGRESSIONS)}")
        if poll_every is not None and (not isinstance(poll_every, int) or poll_every < 1):
            raise BadRequest("poll_every must be a positive integer")
        changes: dict[str, Any] = {}
        if progression is not None:
            changes["progression"] = progression
        if poll_every is not None:
            changes["poll_every"] = poll_every
        if latency is not None:
            pair = [0.0, latency] if isinstance(latency, (int, float)) else latency
            if len(pair) != 2 or any(not isinstance(v, (int, float)) or v < 0 for v in pair):
                raise BadRequest("latency must be seconds or [queue seconds, generation seconds], not negative")
            changes["latency"] = (float(pair[0]), float(pair[1]))
        self.backend.scenario.set_behaviour(model, tenant, **changes)
        return {"model": model, **{k: list(v) if isinstance(v, tuple) else v for k, v in changes.items()}}

    def advance(self, prediction_id: str, steps: int = 1, tenant: str | None = None) -> dict[str, Any]:
        """Move one prediction ``steps`` lifecycle steps on (created → processing → its outcome)."""
        if not isinstance(steps, int) or steps < 1:
            raise BadRequest("steps must be a positive integer")
        return self._describe(self.backend.advance(tenant, prediction_id, steps))

    def advance_clock(self, seconds: float) -> dict[str, Any]:
        """Move the fake's clock forward; time-progressed predictions that are due finish now."""
        if not isinstance(seconds, (int, float)) or seconds < 0:
            raise BadRequest("seconds must be a non-negative number")
        now = self.backend.clock.advance(float(seconds))
        finished = self.backend.tick()
        return {"now": now, "finished": [p.id for p in finished]}

    def prediction(self, prediction_id: str, tenant: str | None = None) -> dict[str, Any]:
        """A prediction as the fake sees it: the API view plus polls, drawn seed, notes and outcome."""
        found = self.backend.get(tenant, prediction_id) if tenant else self.backend.find(None, prediction_id)
        return self._describe(found)

    def predictions(self, tenant: str | None = None) -> list[dict[str, Any]]:
        return [self._describe(p) for p in self.backend.store.list(tenant)]

    def _describe(self, prediction: Prediction) -> dict[str, Any]:
        with self.backend.store.locked():
            self.backend.refresh(prediction)
            view = prediction.view(prediction.base_url)
        return {**view, "input": prediction.input, "polls": prediction.polls, "seed": prediction.seed,
                "notes": list(prediction.notes), "webhook": prediction.webhook,
                "poll_log": [{"time": t, "status": s} for t, s in prediction.poll_log],
                "outcome": {k: v for k, v in vars(prediction.outcome).items() if v not in (None, False)}}

    # --- faults, journal, webhooks ---------------------------------------------------------------------

    def add_fault(self, **spec: Any) -> dict[str, Any]:
        """Inject an HTTP fault (status, latency, reset, empty, truncate) on matching routes."""
        try:
            fault = self.state.faults.add(spec)
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        return _plain(fault)

    def faults(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.state.faults.active()
        return result

    def clear_faults(self, tenant: str | None = None) -> dict[str, Any]:
        self.state.faults.clear(tenant)
        return {"cleared": True}

    def journal(self, tenant: str | None = None, method: str | None = None, path: str | None = None,
                status: int | str | None = None, kind: str | None = None,
                body_contains: str | None = None) -> list[dict[str, Any]]:
        """Recorded requests, oldest first, filtered by any of the given fields."""
        entries = self.state.journal.find(**_filters(tenant, method, path, status, kind, body_contains))
        return [e.to_json() for e in entries]

    def journal_count(self, tenant: str | None = None, method: str | None = None, path: str | None = None,
                      status: int | str | None = None, kind: str | None = None,
                      body_contains: str | None = None) -> int:
        count: int = self.state.journal.count(**_filters(tenant, method, path, status, kind, body_contains))
        return count

    def unmatched(self, tenant: str | None = None) -> list[dict[str, Any]]:
        """Requests that matched nothing (answered 404)."""
        return [e.to_json() for e in self.state.journal.unmatched(tenant)]

    def configure_webhooks(self, tenant: str | None = None, delay: float = 0, duplicate: bool = False,
                           out_of_order: bool = False, bad_signature: bool = False,
                           hold_seconds: float = 1.0) -> dict[str, Any]:
        """Adversarial webhook delivery: delay, duplicates, newest-first order (events held up to
        ``hold_seconds``), or a wrong signature."""
        try:
            self.state.webhooks.configure(tenant=tenant, delay=delay, duplicate=duplicate,
                                             out_of_order=out_of_order, bad_signature=bad_signature,
                                             hold_seconds=hold_seconds)
        except (TypeError, ValueError) as exc:
            raise BadRequest(str(exc)) from None
        return {"delay": delay, "duplicate": duplicate, "out_of_order": out_of_order, "bad_signature": bad_signature,
                "hold_seconds": hold_seconds}

    def deliveries(self, tenant: str | None = None) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.state.webhooks.deliveries(tenant)
        return result

    # --- declarative scenarios -------------------------------------------------------------------------

    def apply_scenario(self, **document: Any) -> dict[str, Any]:
        """Apply a whole scenario: ``{"seed", "behaviour": [...], "outcomes": [...], "faults": [...],
        "webhooks": {...}}`` — the same shape ``serve --scenario FILE`` reads."""
        allowed = {"seed", "behaviour", "outcomes", "faults", "webhooks"}
        unknown = sorted(set(document) - allowed)
        if unknown:
            raise BadRequest(f"unknown scenario key(s): {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
        if "seed" in document:
            self.seed(document["seed"])
        for item in _list(document, "behaviour"):
            self.behave(**item)
        for item in _list(document, "outcomes"):
            self.enqueue(**item)
        for item in _list(document, "faults"):
            self.add_fault(**item)
        if "webhooks" in document:
            self.configure_webhooks(**document["webhooks"])
        return {"applied": sorted(document)}


def _list(document: dict[str, Any], key: str) -> list[dict[str, Any]]:
    items = document.get(key, [])
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise BadRequest(f"scenario {key!r} must be a list of objects")
    return items


def _filters(tenant: str | None, method: str | None, path: str | None, status: int | str | None,
             kind: str | None, body_contains: str | None) -> dict[str, Any]:
    if isinstance(status, str):
        if not status.isdigit():
            raise BadRequest("status must be an HTTP status number")
        status = int(status)
    given = {"tenant": tenant, "method": method, "path": path, "status": status, "kind": kind,
             "body_contains": body_contains}
    return {k: v for k, v in given.items() if v is not None}


def _plain(value: Any) -> dict[str, Any]:
    if hasattr(value, "to_json"):
        result: dict[str, Any] = value.to_json()
        return result
    return {k: v for k, v in vars(value).items() if not k.startswith("_")}


# --- HTTP ------------------------------------------------------------------------------------------------


def _endpoint(operation: Operation) -> Callable[[Request], Any]:
    async def handle(request: Request) -> Response:
        kwargs: dict[str, Any] = dict(request.query_params)
        kwargs.update(request.path_params)
        if request.method in ("POST", "PUT"):
            raw = await request.body()
            if raw.strip():
                try:
                    body = json.loads(raw)
                except json.JSONDecodeError as exc:
                    raise BadRequest(f"control body is not valid JSON: {exc}") from None
                if not isinstance(body, dict):
                    raise BadRequest("control body must be a JSON object")
                kwargs.update(body)
        controller: Controller = request.app.state.controller
        method = getattr(controller, operation.name)
        try:
            inspect.signature(method).bind(**kwargs)
        except TypeError as exc:
            raise BadRequest(f"{operation.name}: {exc}") from None
        return JSONResponse({"code": 200, "message": "success", "data": method(**kwargs)})

    return handle


routes = [Route(PREFIX + op.path, _endpoint(op), methods=[op.method], name=f"mock_{op.name}") for op in OPERATIONS]


# --- the Python object -----------------------------------------------------------------------------------


class ControlError(RuntimeError):
    """A control operation the fake refused, with its message."""


class FakeWaveSpeed:
    """A handle on one fake server for one tenant (API key): the same operations as ``/_mock/``.

    In-process (``controller`` given) the calls go straight to the server's state; otherwise over HTTP.
    Operations that take a tenant default to this handle's key, so parallel tests never see each other.
    """

    def __init__(self, base_url: str, api_key: str, controller: Controller | None = None,
                 http: httpx.Client | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self._controller = controller
        self._http = http

    # --- plumbing -------------------------------------------------------------------------------------

    def call(self, name: str, **kwargs: Any) -> Any:
        if self._controller is not None:
            try:
                return getattr(self._controller, name)(**kwargs)
            except ApiError as exc:
                raise ControlError(exc.message) from None
        op = next(o for o in OPERATIONS if o.name == name)
        path = PREFIX + op.path.format(**{k: kwargs.pop(k) for k in list(kwargs) if "{" + k + "}" in op.path})
        client = self._http or httpx.Client(timeout=30)
        try:
            if op.method in ("GET", "DELETE"):
                query = {k: v for k, v in kwargs.items() if v is not None}
                response = client.request(op.method, self.base_url + path, params=query)
            else:
                response = client.request(op.method, self.base_url + path, json=kwargs)
        finally:
            if self._http is None:
                client.close()
        body = response.json()
        if response.status_code != 200:
            raise ControlError(body.get("message", response.text))
        return body["data"]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    @property
    def env(self) -> dict[str, str]:
        """Environment variables clients read: key and base URL (Java SDK, CLI, MCP server)."""
        return {"WAVESPEED_API_KEY": self.api_key, "WAVESPEED_BASE_URL": self.base_url}

    # --- operations -----------------------------------------------------------------------------------

    def reset(self, *, everything: bool = False) -> dict[str, Any]:
        result: dict[str, Any] = self.call("reset", tenant=None if everything else self.api_key)
        return result

    def seed(self, seed: int | None) -> None:
        self.call("seed", seed=seed)

    def enqueue(self, *, model: str | None = None, prompt_contains: str | None = None, times: int | None = 1,
                all_tenants: bool = False, **outcome: Any) -> dict[str, Any]:
        """Queue an outcome (``status``, ``code``, ``error``, ``nsfw``, ``outputs``, ``stuck``, ``sync_timeout``,
        ``latency``) for the next ``times`` matching predictions of this tenant."""
        result: dict[str, Any] = self.call("enqueue", outcome=outcome, model=model, prompt_contains=prompt_contains,
                                           tenant=None if all_tenants else self.api_key, times=times)
        return result

    def fail_next(self, code: int = 5000, error: str | None = None, **match: Any) -> dict[str, Any]:
        if error is not None:
            match["error"] = error
        return self.enqueue(status="failed", code=code, **match)

    def behave(self, model: str = "*", **behaviour: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.call("behave", model=model, **behaviour)
        return result

    def advance(self, prediction_id: str, steps: int = 1) -> dict[str, Any]:
        result: dict[str, Any] = self.call("advance", prediction_id=prediction_id, steps=steps, tenant=self.api_key)
        return result

    def advance_clock(self, seconds: float) -> dict[str, Any]:
        result: dict[str, Any] = self.call("advance_clock", seconds=seconds)
        return result

    def prediction(self, prediction_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.call("prediction", prediction_id=prediction_id, tenant=self.api_key)
        return result

    def predictions(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.call("predictions", tenant=self.api_key)
        return result

    def add_fault(self, *, all_tenants: bool = False, **spec: Any) -> dict[str, Any]:
        """Inject an HTTP fault; by default only this tenant's requests are hit."""
        if not all_tenants:
            spec.setdefault("tenant", self.api_key)
        result: dict[str, Any] = self.call("add_fault", **spec)
        return result

    def clear_faults(self) -> None:
        self.call("clear_faults", tenant=self.api_key)

    def faults(self) -> list[dict[str, Any]]:
        """The server's active faults (each says which tenant it targets)."""
        result: list[dict[str, Any]] = self.call("faults")
        return result

    def outcomes(self) -> list[dict[str, Any]]:
        """This tenant's queued outcome rules."""
        result: list[dict[str, Any]] = self.call("outcomes", tenant=self.api_key)
        return result

    def clear_outcomes(self) -> None:
        self.call("clear_outcomes", tenant=self.api_key)

    def health(self) -> dict[str, Any]:
        result: dict[str, Any] = self.call("health")
        return result

    def journal(self, **filters: Any) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.call("journal", tenant=self.api_key, **filters)
        return result

    def count(self, **filters: Any) -> int:
        result: int = self.call("journal_count", tenant=self.api_key, **filters)
        return result

    def unmatched(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.call("unmatched", tenant=self.api_key)
        return result

    def configure_webhooks(self, **options: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.call("configure_webhooks", tenant=self.api_key, **options)
        return result

    def deliveries(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.call("deliveries", tenant=self.api_key)
        return result

    def apply_scenario(self, document: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.call("apply_scenario", **document)
        return result
