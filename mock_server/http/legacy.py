"""``/api/v2/`` paths older official clients still call (the ComfyUI nodes, the first JS client): the same
handlers as their v3 twins, answering the same bodies (links in them point at v3, where every client polls)."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from mock_server.http import routes as v3
from mock_server.http import uploads

routes: list[BaseRoute] = [
    Route("/api/v2/predictions/{id}/result", v3.result, methods=["GET"]),
    Route("/api/v2/media/upload/binary", uploads.upload_binary, methods=["POST"]),
]
