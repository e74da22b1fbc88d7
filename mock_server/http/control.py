"""Scenario control: one set of operations, reachable over HTTP under ``/_mock/`` and as a Python object.

``Controller`` holds the operations. ``OPERATIONS`` maps each to its HTTP route, so the routes and the remote
``FakeWaveSpeed`` client are built from the same table and cannot drift apart.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mock_server.contract.controlschemas import check_control
from mock_server.contract.errors import BadRequest, Forbidden, JsonResponse
from mock_server.contract.jsonbody import parse_json
from mock_server.contract.tenants import bearer_key, fingerprint, tenant_id
from mock_server.http.state import AppState, state_of
from mock_server.logs import event, get_logger
from mock_server.model.generic import MODEL_ID
from mock_server.model.predictions import Prediction
from mock_server.model.rules import make_outcome
from mock_server.settings import PROGRESSIONS

PREFIX = "/_mock"
_log = get_logger("scenario")


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
    Operation("generic", "GET", "/generic"),
)


def _integer(value: Any) -> Any:
    """4.0 as 4: JSON Schema (and so the control schemas) counts an integral number as an integer, whatever its
    spelling; any other value is left for the caller to judge."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class Controller:
    """Every control operation, over the typed state of one app."""

    def __init__(self, state: AppState) -> None:
        self.state = state
        self.backend = state.backend

    # --- state ----------------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return {
            "ok": True,
            "models": len(self.backend.catalog.endpoints),
            "now": self.backend.clock.now(),
            "pid": os.getpid(),
            "store": self.state.store.scheme,
        }

    def reset(self, tenant: str | None = None) -> dict[str, Any]:
        """Forget predictions, queued outcomes, faults, journal entries and deliveries (of one tenant)."""
        tenant = _tenant(tenant)
        # Everything a tenant owns is in the store, so one call forgets it on every worker.
        predictions = len(self.state.store.records("prediction", tenant))
        self.state.store.reset(tenant)
        if tenant is None:
            self.backend.reset_images()
        return {"predictions_removed": predictions, "tenant": "<all>" if tenant is None else "<one>"}

    def seed(self, seed: int | None) -> dict[str, Any]:
        """Make ids, drawn seeds and fault probabilities reproducible from here on."""
        seed = _integer(seed)
        if seed is not None and not isinstance(seed, int):
            raise BadRequest("seed must be an integer or null")
        self.backend.reseed(seed)
        self.state.faults.reseed(seed)
        return {"seed": seed}

    # --- outcomes and progression ----------------------------------------------------------------------

    def enqueue(
        self,
        outcome: dict[str, Any] | None = None,
        model: str | None = None,
        prompt_contains: str | None = None,
        tenant: str | None = None,
        times: int | None = 1,
    ) -> dict[str, Any]:
        """Queue how the next ``times`` matching predictions end (None: all of them until reset)."""
        tenant = _tenant(tenant)
        if model is not None:
            self._check_model(model)
        try:
            rule = self.backend.rules.enqueue(
                make_outcome(outcome or {}),
                model=model,
                prompt_contains=prompt_contains,
                tenant=tenant,
                times=_integer(times),
            )
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        result: dict[str, Any] = rule.to_json()
        return result

    def _check_model(self, model: str) -> None:
        # Any model id is a model when unknown ones are served generically; in reject mode only catalog ids are.
        if self.backend.catalog.get(model) is not None:
            return
        if self.backend.settings.unknown_models == "reject" or not MODEL_ID.fullmatch(model):
            raise BadRequest(f"unknown model {model!r}")

    def outcomes(self, tenant: str | None = None) -> list[dict[str, Any]]:
        tenant = _tenant(tenant)
        return [r.to_json() for r in self.backend.rules.rules(tenant)]

    def clear_outcomes(self, tenant: str | None = None) -> dict[str, Any]:
        tenant = _tenant(tenant)
        return {"removed": self.backend.rules.clear(tenant)}

    def behave(
        self,
        model: str = "*",
        progression: str | None = None,
        poll_every: int | None = None,
        latency: float | list[float] | None = None,
        tenant: str | None = None,
    ) -> dict[str, Any]:
        """Per-model (or "*") progression, polls per step, and latency (seconds, or [queue, generation]);
        for one tenant only when ``tenant`` is given."""
        tenant = _tenant(tenant)
        if model != "*":
            self._check_model(model)
        if progression is not None and progression not in PROGRESSIONS:
            raise BadRequest(f"progression must be one of {', '.join(PROGRESSIONS)}")
        poll_every = _integer(poll_every)
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
        self.backend.rules.set_behaviour(model, tenant, **changes)
        return {"model": model, **{k: list(v) if isinstance(v, tuple) else v for k, v in changes.items()}}

    def advance(self, prediction_id: str, steps: int = 1, tenant: str | None = None) -> dict[str, Any]:
        """Move one prediction ``steps`` lifecycle steps on (created → processing → its outcome)."""
        tenant = _tenant(tenant)
        steps = _integer(steps)
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
        tenant = _tenant(tenant)
        return self._describe(self.backend.get(tenant, prediction_id))

    def predictions(self, tenant: str | None = None) -> list[dict[str, Any]]:
        tenant = _tenant(tenant)
        return [self._describe(self.backend.get(None, p.id)) for p in self.backend.predictions(tenant)]

    def _describe(self, prediction: Prediction) -> dict[str, Any]:
        view = self.backend.view_now(prediction, prediction.base_url)
        return {
            **view,
            "tenant": prediction.tenant,
            "input": prediction.input,
            "polls": prediction.polls,
            "seed": prediction.seed,
            "notes": list(prediction.notes),
            "webhook": prediction.webhook,
            "poll_log": [{"time": t, "status": s} for t, s in prediction.poll_log],
            "outcome": {k: v for k, v in vars(prediction.outcome).items() if v not in (None, False)},
        }

    # --- faults, journal, webhooks ---------------------------------------------------------------------

    def add_fault(self, **spec: Any) -> dict[str, Any]:
        """Inject an HTTP fault (status, latency, reset, empty, truncate) on matching routes."""
        if isinstance(spec.get("tenant"), str):
            spec["tenant"] = _tenant(spec["tenant"])
        try:
            fault = self.state.faults.add(spec)
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        return _plain(fault)

    def faults(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.state.faults.active()
        return result

    def clear_faults(self, tenant: str | None = None) -> dict[str, Any]:
        tenant = _tenant(tenant)
        self.state.faults.clear(tenant)
        return {"cleared": True}

    def journal(
        self,
        tenant: str | None = None,
        method: str | None = None,
        path: str | None = None,
        status: int | str | None = None,
        kind: str | None = None,
        body_contains: str | None = None,
    ) -> list[dict[str, Any]]:
        """Recorded requests, oldest first, filtered by any of the given fields."""
        tenant = _tenant(tenant)
        entries = self.state.journal.find(**_filters(tenant, method, path, status, kind, body_contains))
        return [e.to_json() for e in entries]

    def journal_count(
        self,
        tenant: str | None = None,
        method: str | None = None,
        path: str | None = None,
        status: int | str | None = None,
        kind: str | None = None,
        body_contains: str | None = None,
    ) -> int:
        tenant = _tenant(tenant)
        count: int = self.state.journal.count(**_filters(tenant, method, path, status, kind, body_contains))
        return count

    def unmatched(self, tenant: str | None = None) -> list[dict[str, Any]]:
        """Requests that matched nothing (answered 404)."""
        tenant = _tenant(tenant)
        return [e.to_json() for e in self.state.journal.unmatched(tenant)]

    def configure_webhooks(
        self,
        tenant: str | None = None,
        delay: float = 0,
        duplicate: bool = False,
        out_of_order: bool = False,
        bad_signature: bool = False,
        hold_seconds: float = 1.0,
    ) -> dict[str, Any]:
        """Adversarial webhook delivery: delay, duplicates, newest-first order (events held up to
        ``hold_seconds``), or a wrong signature."""
        tenant = _tenant(tenant)
        try:
            self.state.webhooks.configure(
                tenant=tenant,
                delay=delay,
                duplicate=duplicate,
                out_of_order=out_of_order,
                bad_signature=bad_signature,
                hold_seconds=hold_seconds,
            )
        except (TypeError, ValueError) as exc:
            raise BadRequest(str(exc)) from None
        return {
            "delay": delay,
            "duplicate": duplicate,
            "out_of_order": out_of_order,
            "bad_signature": bad_signature,
            "hold_seconds": hold_seconds,
        }

    def deliveries(self, tenant: str | None = None) -> list[dict[str, Any]]:
        tenant = _tenant(tenant)
        result: list[dict[str, Any]] = self.state.webhooks.deliveries(tenant)
        return result

    def generic(self, tenant: str | None = None) -> list[dict[str, Any]]:
        """Model paths served by the generic model (no schema): count, media kind, the known id a near miss
        resembles, first and last use; of one tenant, or of all added up."""
        tenant = _tenant(tenant)
        return self.backend.generic.served(tenant)

    # --- declarative scenarios -------------------------------------------------------------------------

    def apply_scenario(self, source: str = "control", /, **document: Any) -> dict[str, Any]:
        """Apply a whole scenario: ``{"seed", "behaviour": [...], "outcomes": [...], "faults": [...],
        "webhooks": {...}}`` — the same shape ``serve --scenario FILE`` reads. ``source`` names where it came
        from in the log (positional only, so that no scenario key can be mistaken for it)."""
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
        event(
            _log,
            "scenario.loaded",
            source=source,
            seed=document.get("seed"),
            behaviour=len(_list(document, "behaviour")),
            outcomes=len(_list(document, "outcomes")),
            faults=len(_list(document, "faults")),
            webhooks="webhooks" in document,
        )
        return {"applied": sorted(document)}


def _tenant(tenant: str | None) -> str | None:
    """Control calls name a tenant by API key or by fingerprint; the store knows only fingerprints."""
    return None if tenant is None else tenant_id(str(tenant))


def _list(document: dict[str, Any], key: str) -> list[dict[str, Any]]:
    items = document.get(key, [])
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise BadRequest(f"scenario {key!r} must be a list of objects")
    return items


def _filters(
    tenant: str | None,
    method: str | None,
    path: str | None,
    status: int | str | None,
    kind: str | None,
    body_contains: str | None,
) -> dict[str, Any]:
    if isinstance(status, str):
        if not status.isdigit():
            raise BadRequest("status must be an HTTP status number")
        status = int(status)
    given = {
        "tenant": tenant,
        "method": method,
        "path": path,
        "status": status,
        "kind": kind,
        "body_contains": body_contains,
    }
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
        page = _page(kwargs)
        if request.method in ("POST", "PUT"):
            raw = await request.body()
            if raw.strip():
                body = parse_json(raw, what="control body")
                if not isinstance(body, dict):
                    raise BadRequest("control body must be a JSON object")
                kwargs.update(body)
        # The operation's JSON Schema (schemas/control/) judges the body before any state is touched; path
        # parameters come after it, so a body cannot smuggle its own prediction_id.
        kwargs = check_control(operation.name, kwargs)
        kwargs.update(request.path_params)
        controller = state_of(request).controller
        method = getattr(controller, operation.name)
        _scope_to_caller(request, operation, method, kwargs)
        try:
            inspect.signature(method).bind(**kwargs)
        except TypeError as exc:
            raise BadRequest(f"{operation.name}: {exc}") from None
        data = method(**kwargs)
        headers: dict[str, str] = {}
        if isinstance(data, list):
            # Large listings come a page at a time (?offset=&limit=); the header says how many there are.
            headers["X-Total-Count"] = str(len(data))
            data = data[page[0] : page[0] + page[1]]
        return JsonResponse({"code": 200, "message": "success", "data": data}, headers=headers)

    return handle


DEFAULT_PAGE = 1000
# Operations that change every tenant's world: a request scoped to one tenant may not call them.
_GLOBAL = ("seed", "advance_clock", "apply_scenario")


def _page(query: dict[str, Any]) -> tuple[int, int]:
    """``offset`` and ``limit`` of a listing, taken out of the query (they are not the operation's arguments)."""
    values = []
    for name, default, top in (("offset", 0, 10**9), ("limit", DEFAULT_PAGE, 10_000)):
        raw = query.pop(name, None)
        if raw is None:
            values.append(default)
            continue
        if not str(raw).isdigit() or not (name == "offset" or 1 <= int(raw)) or int(raw) > top:
            raise BadRequest(f"{name} must be a whole number from {0 if name == 'offset' else 1} to {top}")
        values.append(int(raw))
    return values[0], values[1]


def _scope_to_caller(
    request: Request, operation: Operation, method: Callable[..., Any], kwargs: dict[str, Any]
) -> None:
    """A control request carrying ``Authorization: Bearer KEY`` acts for that tenant only: it reads and changes
    that tenant's state, never another's, and cannot call the operations that change every tenant's."""
    key = bearer_key(request.headers.get("authorization", ""))
    if key is None:
        return
    mine = fingerprint(key)
    if operation.name in _GLOBAL:
        raise Forbidden(f"{operation.name} changes every tenant's state: call it without a tenant's Authorization")
    named = kwargs.get("tenant")
    if named is not None and tenant_id(str(named)) != mine:
        raise Forbidden("A control request scoped to one tenant cannot read or change another tenant")
    if "tenant" in inspect.signature(method).parameters or operation.name == "add_fault":
        kwargs["tenant"] = mine


routes = [Route(PREFIX + op.path, _endpoint(op), methods=[op.method], name=f"mock_{op.name}") for op in OPERATIONS]
