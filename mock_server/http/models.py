"""``GET /api/v3/models``: the catalog the official CLI, MCP server and desktop app list models and schemas from."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mock_server.contract.catalog import Catalog
from mock_server.contract.modelcatalog import export_models
from mock_server.http.routes import authenticate, envelope


def routes_for(catalog: Catalog, *, server: str | None = None) -> list[BaseRoute]:
    """The catalog route of one app. The list is built here, once: the catalog never changes while serving."""
    data: list[dict[str, Any]] = export_models(catalog, server=server)

    async def models(request: Request) -> Response:
        authenticate(request)
        return envelope(data)

    return [Route("/api/v3/models", models, methods=["GET"])]
