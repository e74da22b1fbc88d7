"""Price quotes: ``POST /api/v3/model/price`` (CLI, MCP server) and ``POST /api/v3/model/pricing`` (desktop app).

Both price one run of ``model_id`` with ``inputs`` from ``contract.pricing`` — the figures the balance meter charges
and ``GET /api/v3/models`` lists as ``base_price``. Neither generates anything nor charges.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mock_server.contract.pricing import CURRENCY, Quote, quote
from mock_server.http.bodies import validated_body
from mock_server.http.routes import authenticate, backend_of, envelope

SCHEMA = "model-price.request"


async def _quote(request: Request) -> Quote:
    authenticate(request)
    body = await validated_body(request, SCHEMA)
    backend = backend_of(request)
    model = str(body["model_id"]).strip("/")
    # Unknown ids are priced like a submit would run them: generically, or a 404 with a suggestion.
    endpoint = backend.catalog.get(model) or backend.generic.resolve(model)
    return quote(model, endpoint.price_usd, endpoint.price_unit, endpoint.properties, body["inputs"])


async def price(request: Request) -> Response:
    found = await _quote(request)
    return envelope(
        {
            "model_id": found.model_id,
            "price": found.total,
            "discounted_price": found.total,
            "currency": CURRENCY,
            "unit_price": found.total,
            "base_price": found.base_price,
            "unit": found.unit,
            "units": found.units,
        }
    )


async def pricing(request: Request) -> Response:
    found = await _quote(request)
    return envelope({"model_id": found.model_id, "unit_price": found.total, "currency": CURRENCY})


routes: list[BaseRoute] = [
    Route("/api/v3/model/price", price, methods=["POST"]),
    Route("/api/v3/model/pricing", pricing, methods=["POST"]),
]
