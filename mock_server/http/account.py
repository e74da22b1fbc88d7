"""Account balance: a per-tenant price meter charged for every completed prediction at the catalog's price."""

from __future__ import annotations

import hashlib
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mock_server.contract.pricing import CURRENCY
from mock_server.http.routes import authenticate, backend_of, envelope
from mock_server.http.state import state_of
from mock_server.model.backend import Backend
from mock_server.model.predictions import COMPLETED, Prediction
from mock_server.settings import Settings

BILLING_LOG = "billing"  # one entry per charged prediction: what billings/search and usage_stats are built from


class Accounts:
    """Balances by API key: ``--starting-balance`` minus the cost of each completed prediction.

    Failed, cancelled and timed-out predictions are free. A balance may go negative: the real API's answer to
    an exhausted balance is not documented, so submits are never refused for it. The meter is made of store
    counters (``spent``, ``charged``) and an optional ``account`` record, so workers sharing a store share it.
    """

    def __init__(self, settings: Settings, backend: Backend) -> None:
        self.backend = backend
        self.store = backend.store
        self.starting_balance = settings.starting_balance
        backend.on_terminal.append(self._charge)

    def balance(self, tenant: str) -> float:
        account = self.store.get("account", tenant)
        start = float(account["starting"]) if account else self.starting_balance
        return round(start - self.store.counter("spent", tenant=tenant), 6)  # no float dust like 9.920000000000002

    def spent(self, tenant: str) -> float:
        return round(self.store.counter("spent", tenant=tenant), 6)

    def charged(self, tenant: str) -> int:
        """How many predictions were charged to the tenant."""
        return int(self.store.counter("charged", tenant=tenant))

    def set_balance(self, tenant: str, amount: float) -> None:
        """Start the tenant's meter over at ``amount``."""
        self.store.put("account", tenant, {"starting": float(amount)}, tenant=tenant)
        self.store.incr("spent", -self.store.counter("spent", tenant=tenant), tenant=tenant)
        self.store.incr("charged", -self.store.counter("charged", tenant=tenant), tenant=tenant)

    def _charge(self, prediction: Prediction) -> None:
        if prediction.status != COMPLETED:
            return
        # The price table of contract.pricing, as the quotes and the catalog show it (generic models included).
        endpoint = self.backend.endpoint(prediction.model)
        cost = round(endpoint.cost(len(prediction.outputs)), 6)
        self.store.incr("spent", cost, tenant=prediction.tenant)
        self.store.incr("charged", 1, tenant=prediction.tenant)
        when = prediction.finished_at if prediction.finished_at is not None else self.backend.clock.now()
        self.store.append(
            BILLING_LOG,
            {
                "uuid": hashlib.sha256(f"billing:{prediction.id}".encode()).hexdigest()[:32],
                "billing_type": "deduct",
                "price": cost,
                "prediction_id": prediction.id,
                "model": prediction.model,
                "outputs": len(prediction.outputs),
                "unit_price": endpoint.price_usd or 0.0,
                "unit": endpoint.price_unit or "run",
                "time": when,
            },
            tenant=prediction.tenant,
        )

    def billing(self, tenant: str) -> list[dict[str, Any]]:
        """The tenant's charges, oldest first (capped like every log: the oldest go first)."""
        return self.store.entries(BILLING_LOG, tenant)


def accounts_of(request: Request) -> Accounts:
    return state_of(request).accounts


def _current_balance(request: Request) -> float:
    tenant = authenticate(request)
    # Charges land when a prediction ends; settle the ones whose time has come even if nobody polled them.
    backend_of(request).tick()
    return accounts_of(request).balance(tenant)


async def balance(request: Request) -> Response:
    return envelope({"balance": _current_balance(request)})


async def account_balance(request: Request) -> Response:
    """The docs' how-to variant of the same figure, with its currency."""
    return envelope({"balance": _current_balance(request), "currency": CURRENCY})


routes: list[BaseRoute] = [
    Route("/api/v3/balance", balance, methods=["GET"]),
    Route("/api/v3/account/balance", account_balance, methods=["GET"]),
]
