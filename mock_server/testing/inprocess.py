"""The fake without a socket: an app whose lifespan runs on a private event-loop thread, reachable through
``httpx.ASGITransport`` (async clients) or ``SyncASGITransport`` (sync clients, same private loop).

Connection-level faults (reset, empty, truncate) need a real socket and are refused here; use the uvicorn server.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
from anyio.from_thread import BlockingPortal, start_blocking_portal
from starlette.types import ASGIApp, Message

from mock_server.testing.assertions import TenantHandle

BASE_URL = "http://wavespeed.test"


@contextlib.asynccontextmanager
async def lifespan(app: ASGIApp) -> AsyncIterator[None]:
    """Run ``app``'s ASGI lifespan: startup on enter, shutdown on exit (what uvicorn does around serving)."""
    to_app, app_inbox = anyio.create_memory_object_stream[Message](1)
    app_outbox, from_app = anyio.create_memory_object_stream[Message](1)
    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}

    async def run() -> None:
        await app(scope, app_inbox.receive, app_outbox.send)

    async with to_app, app_inbox, app_outbox, from_app, anyio.create_task_group() as tasks:
        tasks.start_soon(run)
        await to_app.send({"type": "lifespan.startup"})
        answer = await from_app.receive()
        if answer["type"] != "lifespan.startup.complete":
            raise RuntimeError(f"the fake failed to start: {answer.get('message') or answer['type']}")
        try:
            yield
        finally:
            await to_app.send({"type": "lifespan.shutdown"})
            await from_app.receive()


class SyncASGITransport(httpx.BaseTransport):
    """A sync httpx transport that hands each request to an async transport on a portal's event loop."""

    def __init__(self, transport: httpx.AsyncBaseTransport, portal: BlockingPortal) -> None:
        self._transport = transport
        self._portal = portal

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()  # the body becomes a ByteStream, which is async-iterable too

        async def exchange() -> tuple[int, list[tuple[bytes, bytes]], bytes, dict[str, Any]]:
            response = await self._transport.handle_async_request(request)
            try:
                raw = b"".join([chunk async for chunk in response.stream])  # type: ignore[union-attr]
            finally:
                await response.aclose()
            return response.status_code, response.headers.raw, raw, dict(response.extensions)

        status, headers, raw, extensions = self._portal.call(exchange)
        return httpx.Response(status, headers=headers, stream=httpx.ByteStream(raw), extensions=extensions)


class InProcessServer:
    """A fake app served in this process without a socket; ``close()`` shuts its lifespan and loop down."""

    def __init__(self, app: ASGIApp, base_url: str = BASE_URL) -> None:
        self.app = app
        self.base_url = base_url
        self._stack = contextlib.ExitStack()
        portal = self._stack.enter_context(start_blocking_portal())
        self._stack.enter_context(portal.wrap_async_context_manager(lifespan(app)))
        # The app's own 500 envelope is what a client sees; re-raising would hide it.
        self.transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        self.sync_transport = SyncASGITransport(self.transport, portal)

    def close(self) -> None:
        self._stack.close()


@dataclass
class ASGIFake:
    """What the ``wavespeed_asgi`` fixture yields: an in-process fake, its transports and a tenant handle."""

    server: InProcessServer
    handle: TenantHandle

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def transport(self) -> httpx.ASGITransport:
        """For ``httpx.AsyncClient(transport=..., base_url=...)``."""
        return self.server.transport

    @property
    def sync_transport(self) -> SyncASGITransport:
        """For ``httpx.Client(transport=..., base_url=...)``."""
        return self.server.sync_transport

    def client(self, **kwargs: Any) -> httpx.Client:
        """A sync client with the tenant's key and the fake's base URL (close it, or use ``with``)."""
        kwargs.setdefault("headers", self.handle.headers)
        return httpx.Client(transport=self.sync_transport, base_url=self.base_url, **kwargs)

    def async_client(self, **kwargs: Any) -> httpx.AsyncClient:
        """An async client with the tenant's key and the fake's base URL (use ``async with``)."""
        kwargs.setdefault("headers", self.handle.headers)
        return httpx.AsyncClient(transport=self.transport, base_url=self.base_url, **kwargs)
