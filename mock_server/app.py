"""The app factory: one Starlette app per fake server, its state on ``app.state``, nothing at module level."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException

from mock_server import routes
from mock_server.backend import Backend
from mock_server.catalog import Catalog, default_catalog
from mock_server.clock import Clock
from mock_server.errors import ApiError, render_api_error, render_http_exception, render_unexpected
from mock_server.settings import Settings


def create_app(settings: Settings | None = None, *, catalog: Catalog | None = None,
               clock: Clock | None = None) -> Starlette:
    """Build a fake WaveSpeed server.

    Args:
        settings: behaviour of this server; by default read from ``WAVESPEED_MOCK_*`` variables.
        catalog: the endpoints to serve; by default the installed generated schemas.
        clock: the clock predictions age by; by default real time (or frozen, per settings).
    """
    settings = settings or Settings.from_env()
    backend = Backend(settings, catalog or default_catalog(), clock)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield

    app = Starlette(
        routes=routes.routes,
        exception_handlers={
            ApiError: render_api_error,
            HTTPException: render_http_exception,
            Exception: render_unexpected,
        },
        lifespan=lifespan,
    )
    app.state.backend = backend
    app.state.settings = settings
    return app
