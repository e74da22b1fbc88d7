"""The prediction history and deletion: ``POST /api/v3/predictions`` (CLI, desktop app), ``POST
/api/v3/predictions/delete`` (CLI) and ``DELETE /api/v3/predictions/{id}`` (docs how-to).

Only the caller's own predictions are listed or deleted. A deleted prediction is gone from the store: its polls
answer 404 in the envelope (what the SDKs' ``deleted`` status never gets to say), its output URLs answer 404, its
pending webhooks are dropped and any concurrency slot it held is free again. Charges already made stay in the
billing records.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mock_server.contract.errors import BadRequest, NotFound
from mock_server.http.bodies import validated_body
from mock_server.http.routes import authenticate, backend_of, base_url, envelope
from mock_server.model.backend import Backend
from mock_server.model.predictions import COMPLETED, Prediction, parse_time


def listed(backend: Backend, tenant: str) -> list[Prediction]:
    """The tenant's predictions newest first, each status brought up to date (a listing can see one end)."""
    found = backend.predictions(tenant)
    # The store lists oldest first; reversing before the (stable) sort keeps equal times newest first too.
    found.reverse()
    found.sort(key=lambda p: p.created_at, reverse=True)
    fresh: list[Prediction] = []
    for prediction in found:
        if not prediction.terminal:
            try:
                prediction = backend.get(None, prediction.id)
            except NotFound:  # deleted or expired in between
                continue
        fresh.append(prediction)
    return fresh


def item(prediction: Prediction, base: str, include_inputs: bool) -> dict[str, Any]:
    data = prediction.view(base)
    if prediction.status == COMPLETED:
        # Base64 predictions are listed with their URLs: a page of inlined files would be megabytes.
        data["outputs"] = [base + path for path in prediction.outputs]
    if include_inputs:
        data["inputs"] = prediction.input
    return data


async def history(request: Request) -> Response:
    tenant = authenticate(request)
    query = await validated_body(request, "predictions-list.request")
    backend = backend_of(request)
    after, before = _time(query, "created_after"), _time(query, "created_before")
    matching = [
        p
        for p in listed(backend, tenant)
        if (query.get("model") is None or p.model == query["model"].strip("/"))
        and (query.get("status") is None or p.status == query["status"])
        and (after is None or p.created_at >= after)
        and (before is None or p.created_at <= before)
    ]
    page, size = query["page"], query["page_size"]
    base = base_url(request)
    items = [item(p, base, query["include_inputs"]) for p in matching[(page - 1) * size : page * size]]
    return envelope({"page": page, "page_size": size, "total": len(matching), "items": items})


def _time(query: dict[str, Any], name: str) -> float | None:
    if name not in query:
        return None
    try:
        return parse_time(query[name])
    except ValueError:  # the schema's pattern passed it, but the calendar does not (e.g. month 13)
        raise BadRequest(
            f"{name}: {query[name]!r} is not a valid time",
            errors=[{"path": name, "message": "is not a valid RFC 3339 time"}],
        ) from None


async def delete_many(request: Request) -> Response:
    tenant = authenticate(request)
    body = await validated_body(request, "predictions-delete.request")
    backend = backend_of(request)
    # Each id once: deleting the same one twice in a request still deletes one prediction.
    deleted = sum(backend.delete(tenant, prediction_id) for prediction_id in dict.fromkeys(body["ids"]))
    return envelope({"deleted_count": deleted})


async def delete_one(request: Request) -> Response:
    tenant = authenticate(request)
    prediction_id = request.path_params["id"]
    if not backend_of(request).delete(tenant, prediction_id):
        raise NotFound(f"Prediction {prediction_id} not found")
    return envelope({"id": prediction_id, "status": "deleted"})


routes: list[BaseRoute] = [
    Route("/api/v3/predictions", history, methods=["POST"]),
    Route("/api/v3/predictions/delete", delete_many, methods=["POST"]),
    Route("/api/v3/predictions/{id}", delete_one, methods=["DELETE"]),
]
