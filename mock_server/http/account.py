"""Account balance: a per-tenant price meter charged for every completed prediction at the catalog's price."""

from __future__ import annotations

import threading

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mock_server.http.routes import authenticate, backend_of, envelope
from mock_server.model.backend import Backend
from mock_server.model.predictions import COMPLETED, Prediction
from mock_server.settings import Settings

CURRENCY = "USD"


class Accounts:
    """Balances by API key: ``--starting-balance`` minus the cost of each completed prediction.

    Failed, cancelled and timed-out predictions are free. A balance may go negative: the real API's answer to
    an exhausted balance is not documented, so submits are never refused for it.
    """

    def __init__(self, settings: Settings, backend: Backend) -> None:
        self.backend = backend
        self.starting_balance = settings.starting_balance
        self._lock = threading.Lock()
        self._spent: dict[str, float] = {}
        self._charged: dict[str, int] = {}
        self._starting: dict[str, float] = {}  # tenants whose balance was set explicitly
        backend.on_terminal.append(self._charge)

    def balance(self, tenant: str) -> float:
        with self._lock:
            start = self._starting.get(tenant, self.starting_balance)
            return round(start - self._spent.get(tenant, 0.0), 6)  # no float dust like 9.920000000000002

    def spent(self, tenant: str) -> float:
        with self._lock:
            return round(self._spent.get(tenant, 0.0), 6)

    def charged(self, tenant: str) -> int:
        """How many predictions were charged to the tenant."""
        with self._lock:
            return self._charged.get(tenant, 0)

    def set_balance(self, tenant: str, amount: float) -> None:
        """Start the tenant's meter over at ``amount``."""
        with self._lock:
            self._starting[tenant] = float(amount)
            self._spent.pop(tenant, None)
            self._charged.pop(tenant, None)

    def reset(self, tenant: str | None = None) -> None:
        with self._lock:
            for table in (self._spent, self._charged, self._starting):
                if tenant is None:
                    table.clear()
                else:
                    table.pop(tenant, None)

    def _charge(self, prediction: Prediction) -> None:
        if prediction.status != COMPLETED:
            return
        endpoint = self.backend.catalog.endpoints.get(prediction.model)
        cost = endpoint.cost(len(prediction.outputs)) if endpoint is not None else 0.0
        with self._lock:
            self._spent[prediction.tenant] = self._spent.get(prediction.tenant, 0.0) + cost
            self._charged[prediction.tenant] = self._charged.get(prediction.tenant, 0) + 1


def accounts_of(request: Request) -> Accounts:
    accounts: Accounts = request.app.state.accounts
    return accounts


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
