"""The typed state one app is built around, made by ``create_app`` and handed to routes through one accessor."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from starlette.requests import HTTPConnection
from starlette.types import Scope

if TYPE_CHECKING:
    from mock_server.contract.catalog import Catalog
    from mock_server.http.account import Accounts
    from mock_server.http.control import Controller
    from mock_server.http.faults import Faults
    from mock_server.http.journal import Journal
    from mock_server.http.uploads import Uploads
    from mock_server.http.webhooks import WebhookDispatcher
    from mock_server.model.backend import Backend
    from mock_server.model.clock import Clock
    from mock_server.model.store import Store
    from mock_server.settings import Settings


@dataclass
class Runtime:
    """What exists only while this process serves: the event loop work from other threads is handed to."""

    loop: asyncio.AbstractEventLoop | None = None


@dataclass(frozen=True)
class AppState:
    settings: Settings
    catalog: Catalog
    store: Store
    clock: Clock
    backend: Backend
    journal: Journal
    faults: Faults
    uploads: Uploads
    webhooks: WebhookDispatcher
    accounts: Accounts
    runtime: Runtime = field(default_factory=Runtime)

    @cached_property
    def controller(self) -> Controller:
        """The control operations over this state (built on first use: it needs the finished state)."""
        from mock_server.http.control import Controller

        return Controller(self)


def state_of(connection: HTTPConnection) -> AppState:
    return state_of_scope(connection.scope)


def state_of_scope(scope: Scope) -> AppState:
    """The same, for code that sees only the ASGI scope (a route's matcher, middleware)."""
    state: AppState | None = scope.get(STATE_KEY)
    if state is None:
        state = scope[STATE_KEY] = scope["app"].state.mock
    return state


# Where a request's scope keeps its app's state: a request reads it several times, and Starlette's ``app.state``
# is an attribute bag that costs a Python-level look-up each time.
STATE_KEY = "wavespeed_mock.state"
