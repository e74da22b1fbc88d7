"""The inspector: a page at ``/_mock/ui`` that shows what the fake holds, read from the ``/_mock/`` JSON API.

Static files only (HTML, CSS, vanilla JS shipped in ``mock_server/http/inspector/``): no build step and nothing
fetched from elsewhere, so it works offline and in a wheel. The page itself holds no state and no secrets; every
piece of data comes from the control API, which decides what it may see (control token, tenant fingerprints).
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from mock_server.contract.errors import NotFound
from mock_server.http.control import PREFIX

UI_PATH = PREFIX + "/ui"
ASSET_DIR = Path(__file__).resolve().parent / "inspector"
# The only files served: a fixed table, so no request path ever reaches the file system.
ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}
# The page must not run or load anything but its own files: images come from the fake's own media routes or
# data: URIs in inputs and outputs (so an input URL on another host is shown as text, never fetched), and the
# control token the page may carry in its address never travels in a Referer.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    # A fresh copy after every upgrade of the package; the files are small.
    "Cache-Control": "no-cache",
}


def _asset(name: str) -> Response:
    media_type = ASSETS.get(name)
    if media_type is None:
        raise NotFound(f"no inspector file {name!r}")
    return Response((ASSET_DIR / name).read_bytes(), media_type=media_type, headers=SECURITY_HEADERS)


async def page(request: Request) -> Response:
    return _asset("index.html")


async def page_with_slash(request: Request) -> Response:
    # The page loads its files relative to /_mock/ui (so a path prefix in front of the fake keeps working);
    # from /_mock/ui/ they would resolve one level too deep.
    query = request.url.query
    return RedirectResponse("../ui" + (f"?{query}" if query else ""), status_code=308)


async def asset(request: Request) -> Response:
    return _asset(request.path_params["name"])


routes: list[BaseRoute] = [
    Route(UI_PATH, page, methods=["GET"], name="inspector"),
    Route(UI_PATH + "/", page_with_slash, methods=["GET"]),
    Route(UI_PATH + "/{name}", asset, methods=["GET"], name="inspector_asset"),
]
