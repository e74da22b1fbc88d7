"""The front door: the one ASGI layer every request passes before the routes.

In order: the control guard (a refused ``/_mock/`` call reaches nothing else), the journal (outside the rest, so
it records 413s, injected statuses and cut connections too), the body limit, then the faults. The body limit comes
before the faults: it is the server's front door (like a proxy's body cap), so an oversized body is refused the
same way whatever faults are armed, and does not use up a fault's ``times``.

One layer rather than four middlewares because every request pays for each layer it crosses, and the four read
the same headers: here they are read once. Each check's logic stays in its own module (guard, journal, limits,
faults).
"""

from __future__ import annotations

from collections.abc import Awaitable

from starlette.types import ASGIApp, Receive, Scope, Send

from mock_server.contract.tenants import bearer_key, fingerprint
from mock_server.http.faults import CONTROL_PREFIX, Faults
from mock_server.http.guard import ControlGuard, is_control
from mock_server.http.journal import JOURNAL_FLUSH, UNRECORDED_PREFIXES, Journal, Recording
from mock_server.http.limits import CountingReceive, too_large, upload_path
from mock_server.model.store.base import pin_version
from mock_server.settings import Settings


class FrontDoor:
    def __init__(self, app: ASGIApp, *, settings: Settings, journal: Journal, faults: Faults) -> None:
        self.app = app
        self.guard = ControlGuard(settings)
        self.journal = journal
        self.faults = faults
        self.max_bytes = settings.max_body_bytes
        # On a store other processes write, each API request reads its version once (store.base.pin_version). The
        # journal is kept in the app's one store.
        self.pins = journal.store.shared

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if is_control(path):
            refusal = self.guard.refusal(scope, path)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        content_type, declared, tenant = read_head(scope["headers"])
        if path.startswith(UNRECORDED_PREFIXES):
            await self._inside(scope, receive, send, declared, tenant)
            return
        # A body the limit refuses is not read, not even for the journal.
        unread = declared if declared is None or declared <= self.max_bytes or upload_path(path) else None
        recording = Recording(self.journal, scope, receive, send, content_type, unread, tenant)
        end_pin = pin_version() if self.pins else None
        extensions = scope.get("extensions")
        if extensions is None:
            extensions = scope["extensions"] = {}
        extensions[JOURNAL_FLUSH] = recording.flush
        try:
            await self._inside(scope, recording.receive, recording.send, declared, tenant)
        except Exception as exc:
            recording.record(exc)
            raise
        finally:
            recording.record()  # once: an answer already recorded returns at once
            # flush → recording → scope → flush is a reference cycle; without it the request is freed at once.
            extensions.pop(JOURNAL_FLUSH, None)
            if end_pin is not None:
                end_pin()

    def _inside(
        self, scope: Scope, receive: Receive, send: Send, declared: int | None, tenant: str | None
    ) -> Awaitable[None]:
        """The body limit, then the faults, then the app: what to await (a plain function, not a coroutine, so that
        a request crosses one frame fewer)."""
        path: str = scope["path"]
        if not upload_path(path):
            if declared is None:
                receive = CountingReceive(receive, self.max_bytes)
            elif declared > self.max_bytes:
                return too_large(declared, self.max_bytes)(scope, receive, send)
        fault = None if path.startswith(CONTROL_PREFIX) else self.faults.match(scope["method"], path, tenant)
        if fault is None:
            return self.app(scope, receive, send)
        return self.faults.fire(fault, self.app, scope, receive, send, tenant)


def read_head(headers: list[tuple[bytes, bytes]]) -> tuple[str, int | None, str | None]:
    """What the front door needs of a request's headers, in one pass: the content type (lower-cased, "" when
    absent), the declared ``Content-Length`` (None: not declared, or malformed, which the server refuses anyway) and
    the tenant (the Bearer key's fingerprint, as routes.authenticate reads it; None when absent or not Bearer). The
    first of a repeated header counts. Names are lower-case, as ASGI requires (and Starlette's ``Headers`` assume)."""
    by_name = dict(reversed(headers))  # in C: the first of a repeated header is the one kept
    content_type = by_name.get(b"content-type")
    length = by_name.get(b"content-length")
    authorization = by_name.get(b"authorization")
    declared = None
    if length is not None:
        text = length.decode("latin-1").strip()
        declared = int(text) if text.isdigit() else None
    key = None if authorization is None else bearer_key(authorization.decode("latin-1"))
    tenant = None if key is None else fingerprint(key)
    return "" if content_type is None else content_type.decode("latin-1").lower(), declared, tenant
