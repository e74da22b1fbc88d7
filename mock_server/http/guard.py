"""The control plane's front door: ``--no-control``, ``--control-token``, the Host check and cross-site refusal.

A shared staging mock must not let one caller reset everyone's run, and a browser page on another site must not
be able to drive ``/_mock/`` (a DNS-rebinding page or a cross-site form post).
"""

from __future__ import annotations

import hmac
import ipaddress
from urllib.parse import urlsplit

from starlette.types import Scope

from mock_server.contract.errors import JsonResponse
from mock_server.settings import Settings

PREFIX = "/_mock"
TOKEN_HEADER = "x-mock-control-token"
UI = "/_mock/ui"  # static files: the page asks for the token itself and sends it with every call
_WRITES = ("POST", "PUT", "PATCH", "DELETE")


def is_control(path: str) -> bool:
    return path.startswith(PREFIX) and (len(path) == len(PREFIX) or path[len(PREFIX)] == "/")


class ControlGuard:
    """The front door's first check (http/front.py): a refused control request reaches nothing else."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        public = urlsplit(settings.public_url or "").hostname
        bound = settings.host if settings.host not in ("0.0.0.0", "::", "") else None
        self.hosts = {h.lower().rstrip(".") for h in (*settings.control_hosts, public, bound) if h}

    def refusal(self, scope: Scope, path: str) -> JsonResponse | None:
        """The answer to a control request this server refuses; None to let it through."""
        refused = self._refusal(scope, path)
        if refused is None:
            return None
        status, message = refused
        return JsonResponse({"code": status, "message": message}, status_code=status)

    def _refusal(self, scope: Scope, path: str) -> tuple[int, str] | None:
        if not self.settings.control:
            return 404, f"No route for {path}: this fake runs without its control API (--no-control)"
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = headers.get("host", "")
        if not self.host_allowed(urlsplit("//" + host).hostname or ""):
            return 403, (
                f"Host {host!r} is not this server's name; the control API answers only to its own names "
                "(DNS rebinding guard): allow it with --control-host"
            )
        if scope["method"] in _WRITES:
            content_type = headers.get("content-type", "").split(";")[0].strip().lower()
            if content_type and content_type != "application/json":
                return 415, "Control requests carry JSON (application/json); other content types are refused"
            origin = headers.get("origin")
            if origin is not None and urlsplit(origin).netloc.lower() != host.lower():
                return 403, "Cross-site control requests are refused"
        token = self.settings.control_token
        if token and not (path == UI or path.startswith(UI + "/")):
            given = headers.get(TOKEN_HEADER, "")
            if not hmac.compare_digest(given.encode(), token.encode()):
                return 401, f"Control token required: send it in the {TOKEN_HEADER} header (--control-token)"
        return None

    def host_allowed(self, hostname: str) -> bool:
        name = hostname.lower().rstrip(".")
        if name in self.hosts or name in ("localhost", "testserver") or name.endswith((".localhost", ".test")):
            return True
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return False
        return True  # an address literal cannot be rebound to another host
