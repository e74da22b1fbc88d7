"""Billing records and usage statistics, built from the fake's own records: ``POST /api/v3/billings/search`` and
``POST /api/v3/user/usage_stats`` (the CLI's ``billings`` and ``usage`` commands).

Every charged (completed) prediction left an entry in the store's ``billing`` log (``Accounts``), so the records
outlive the prediction (a deleted one keeps its charge) and agree with the balance. Request counts come from the
predictions still kept: deleted and expired ones drop out of ``total_requests`` but not out of the costs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mock_server.contract.errors import BadRequest
from mock_server.contract.generic import GenericEndpoint
from mock_server.contract.modelcatalog import export_model
from mock_server.http.account import accounts_of
from mock_server.http.bodies import validated_body
from mock_server.http.routes import authenticate, backend_of, envelope
from mock_server.model.backend import Backend
from mock_server.model.predictions import COMPLETED, parse_time, rfc3339

USAGE_WINDOW = 7 * 24 * 3600.0  # what the CLI's usage command asks for by default, and the real retention
ACCESS_KEY_NAME = "API key"


def access_key_uuid(tenant: str) -> str:
    """A stable id for an API key that does not reveal it."""
    return hashlib.sha256(f"access-key:{tenant}".encode()).hexdigest()[:32]


def _time(query: dict[str, Any], name: str, default: float | None) -> float | None:
    if name not in query:
        return default
    try:
        return parse_time(query[name])
    except ValueError:  # the schema's pattern passed it, the calendar does not (e.g. month 13)
        raise BadRequest(
            f"{name}: {query[name]!r} is not a valid time",
            errors=[{"path": name, "message": "is not a valid RFC 3339 time"}],
        ) from None


def _within(start: float | None, end: float | None) -> Callable[[float], bool]:
    return lambda t: (start is None or t >= start) and (end is None or t <= end)


def model_type(backend: Backend, model: str) -> str:
    endpoint = backend.endpoint(model)
    return endpoint.media if isinstance(endpoint, GenericEndpoint) else str(export_model(endpoint)["type"])


async def billings(request: Request) -> Response:
    tenant = authenticate(request)
    query = await validated_body(request, "billings-search.request")
    backend = backend_of(request)
    backend.tick()  # charges land when predictions end: settle those whose time has come, as the balance does
    within = _within(_time(query, "start_time", None), _time(query, "end_time", None))
    key = access_key_uuid(tenant)
    charges = [
        entry
        for entry in reversed(accounts_of(request).billing(tenant))
        if query.get("billing_type", "deduct") == entry["billing_type"]
        and within(entry["time"])
        and query.get("model_uuid", entry["model"]) == entry["model"]
        and query.get("access_key_uuid", key) == key
    ]
    page, size = query["page"], query["page_size"]
    items = [
        {
            "uuid": entry["uuid"],
            "billing_type": entry["billing_type"],
            "price": entry["price"],
            "created_at": rfc3339(entry["time"]),
            "access_key_name": ACCESS_KEY_NAME,
            "access_key_uuid": key,
            "prediction": {"uuid": entry["prediction_id"], "model_uuid": entry["model"], "status": COMPLETED},
            "consumption": {"outputs": entry["outputs"], "unit_price": entry["unit_price"], "unit": entry["unit"]},
        }
        for entry in charges[(page - 1) * size : page * size]
    ]
    return envelope(
        {"page": page, "page_size": size, "total": len(charges), "has_more": page * size < len(charges), "items": items}
    )


async def usage_stats(request: Request) -> Response:
    tenant = authenticate(request)
    query = await validated_body(request, "usage-stats.request")
    backend = backend_of(request)
    backend.tick()
    now = backend.clock.now()
    within = _within(_time(query, "start_time", now - USAGE_WINDOW), _time(query, "end_time", now))
    model = query.get("model_uuid")
    charges = [
        entry
        for entry in accounts_of(request).billing(tenant)
        if within(entry["time"]) and model in (None, entry["model"])
    ]
    per_model: dict[str, dict[str, Any]] = {}
    daily: dict[str, dict[str, Any]] = {}
    for entry in charges:  # oldest first: the last entry seen of a model is its latest use
        used = per_model.setdefault(
            entry["model"],
            {
                "model_uuid": entry["model"],
                "model_type": model_type(backend, entry["model"]),
                "total_cost": 0.0,
                "total_count": 0,
            },
        )
        used.update(
            unit_price=entry["unit_price"],
            last_used_date=rfc3339(entry["time"]),
            total_cost=used["total_cost"] + entry["price"],
            total_count=used["total_count"] + 1,
        )
        date = dt.datetime.fromtimestamp(entry["time"], dt.timezone.utc).date().isoformat()
        day = daily.setdefault(date, {"date": date, "amount": 0.0, "count": 0})
        day.update(amount=day["amount"] + entry["price"], count=day["count"] + 1)
    requests = [p for p in backend.predictions(tenant) if within(p.created_at) and model in (None, p.model)]
    summary = {
        "total_cost": round(sum(entry["price"] for entry in charges), 6),
        "total_requests": len(requests),
        "success_requests": sum(p.status == COMPLETED for p in requests),
    }
    for row in [*per_model.values(), *daily.values()]:  # no float dust like 0.30000000000000004
        key = "total_cost" if "total_cost" in row else "amount"
        row[key] = round(row[key], 6)
    return envelope(
        {
            "per_model_usage": sorted(per_model.values(), key=lambda r: (-r["total_cost"], r["model_uuid"])),
            "daily_usage": sorted(daily.values(), key=lambda r: r["date"]),
            "summary": summary,
        }
    )


routes: list[BaseRoute] = [
    Route("/api/v3/billings/search", billings, methods=["POST"]),
    Route("/api/v3/user/usage_stats", usage_stats, methods=["POST"]),
]
