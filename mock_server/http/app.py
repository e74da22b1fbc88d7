"""The app factory: one Starlette app per fake server, its state on ``app.state``, nothing at module level."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import socket
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import BaseRoute
from starlette.types import Receive, Scope, Send

from mock_server.contract.catalog import Catalog, catalog_for
from mock_server.contract.controlschemas import check_control
from mock_server.contract.errors import ApiError, render_api_error, render_http_exception, render_unexpected
from mock_server.contract.jsonbody import parse_json
from mock_server.http import account, billing, control, history, legacy, models, pricing, routes, uploads, webhooks
from mock_server.http.faults import Faults
from mock_server.http.front import FrontDoor
from mock_server.http.inspector import routes as inspector_routes
from mock_server.http.journal import Journal
from mock_server.http.state import AppState, Runtime
from mock_server.model.backend import Backend
from mock_server.model.clock import Clock
from mock_server.model.store import SERVER_TTL, Store, store_from_url
from mock_server.settings import Settings

RAW_SEND = "wavespeed_mock.raw_send"


class MockApp(Starlette):
    """Starlette, plus the server's own ``send`` in the scope: fault injection needs the real connection to
    reset it or cut a body short, which the wrapped ``send`` inside the middleware stack cannot do."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        extensions = scope["extensions"] = {**(scope.get("extensions") or {}), RAW_SEND: {"send": send}}
        if scope["type"] == "http":
            transport = getattr(getattr(send, "__self__", None), "transport", None)
            if transport is not None and id(transport) not in self._tuned:
                self._no_delay(transport)
        try:
            await super().__call__(scope, receive, send)
        finally:
            # The server's send holds the scope, so keeping it there is a reference cycle: garbage the collector
            # would have to find, a full collection's pause per second under load.
            extensions.pop(RAW_SEND, None)

    def _no_delay(self, transport: Any) -> None:
        """Turn Nagle's algorithm off on this connection, once. uvicorn with ``--workers`` (and any server handed a
        ready-made socket) leaves it on, and a small response then waits for the client's delayed ACK: about 40 ms
        per request on loopback."""
        _no_delay(transport)
        # Known by id, which every request checks at C speed (a WeakSet's check is Python code and a new weak
        # reference); the id is forgotten when the transport is freed, before another object can take its address.
        try:
            weakref.finalize(transport, self._tuned.discard, id(transport))
        except TypeError:  # a transport that cannot be weakly referenced is tuned on every request
            return
        self._tuned.add(id(transport))

    @functools.cached_property
    def _tuned(self) -> set[int]:
        return set()


def _no_delay(transport: Any) -> None:
    get_extra_info = getattr(transport, "get_extra_info", None)
    sock = get_extra_info("socket") if callable(get_extra_info) else None
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def create_app(
    settings: Settings | None = None,
    *,
    catalog: Catalog | None = None,
    clock: Clock | None = None,
    store: Store | None = None,
) -> MockApp:
    """Build a fake WaveSpeed server.

    Args:
        settings: behaviour of this server; by default read from ``WAVESPEED_MOCK_*`` variables.
        catalog: the endpoints to serve; by default the installed generated schemas (plus ``settings.schemas``).
        clock: the clock predictions age by; by default real time (or frozen, per settings), kept in the store.
        store: where state lives; by default the one ``settings.store`` names (memory unless a Redis URL).
    """
    settings = settings or Settings.from_env()
    store = store or store_from_url(settings.store, settings.limits())
    clock = clock or Clock(frozen=settings.frozen_clock, store=store)
    catalog = catalog or catalog_for(settings.schemas)
    backend = Backend(settings, catalog, store, clock)
    journal = Journal(store)
    runtime = Runtime()
    dispatcher = webhooks.WebhookDispatcher(settings, backend, journal, loop=lambda: runtime.loop)
    state = AppState(
        settings=settings,
        catalog=catalog,
        store=store,
        clock=clock,
        backend=backend,
        journal=journal,
        faults=Faults(store, settings.seed),
        uploads=uploads.Uploads(backend),
        webhooks=dispatcher,
        accounts=account.Accounts(settings, backend),
        runtime=runtime,
    )
    # One front layer (http/front.py): control guard, journal, body limit, faults. Then the two requests a client
    # makes most, answered without the route table (http/routes.HotRoutes).
    middleware = [
        Middleware(FrontDoor, settings=settings, journal=journal, faults=state.faults),
        Middleware(routes.HotRoutes),
    ]
    # Apart from the catch-alls (last), no request fully matches two routes, so the order is only the order they
    # are tried in: the API's busiest routes first, the control plane after the API.
    route_table: list[BaseRoute] = [
        *routes.poll_routes,
        *uploads.routes,
        *webhooks.routes,
        *account.routes,
        *models.routes_for(catalog, server=settings.public_url),
        *pricing.routes,
        *history.routes,
        *billing.routes,
        *legacy.routes,
        *routes.routes,
        *control.routes,
        *inspector_routes,  # /_mock/ui: a page that reads the control API
        *routes.catch_alls,
    ]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Work started from other threads (a test advancing a prediction) is handed to this loop.
        runtime.loop = asyncio.get_running_loop()
        # A restarted server (or a new worker) picks up the predictions whose webhooks are still due.
        dispatcher.resume()
        yield
        dispatcher.close()
        runtime.loop = None

    app = MockApp(
        routes=route_table,
        middleware=middleware,
        exception_handlers={
            ApiError: render_api_error,
            HTTPException: render_http_exception,
            Exception: render_unexpected,
        },
        lifespan=lifespan,
    )
    app.state.mock = state
    if settings.scenario:
        _apply_scenario_file(state, settings.scenario)
    return app


class ScenarioFileError(ValueError):
    """``--scenario FILE`` could not be applied; the message is one line naming every problem."""


def _apply_scenario_file(state: AppState, path: str) -> None:
    try:
        raw = Path(path).read_bytes()
        # The same strict parser and schema (schemas/control/scenario.json) as POST /_mock/scenario; every
        # violation ends up in the one error line.
        document = check_control("apply_scenario", parse_json(raw, what="the file"), what="scenario")
        # Every worker (and a restart on Redis, whose store still holds the rules) reads the file; it is applied
        # once per content, or its outcomes and faults would be queued once per worker.
        if state.store.claim(f"scenario:{hashlib.sha256(raw).hexdigest()}", ttl=SERVER_TTL):
            state.controller.apply_scenario(f"file {path}", **document)
    except (OSError, ValueError) as exc:
        raise ScenarioFileError(f"scenario file {path}: {exc}") from None
    except ApiError as exc:
        raise ScenarioFileError(f"scenario file {path}: {exc.message}") from None
