"""The ceiling: a bare Starlette endpoint answering a small constant JSON body, served exactly as
``wavespeed-mock serve`` serves the fake (``uvicorn.run``, one worker, the same loop and HTTP parser, log level
warning: no access log lines).

    python bench/bare_app.py PORT
"""

from __future__ import annotations

import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from mock_server.http.server import UVICORN_OPTIONS

BODY = {"code": 200, "message": "success", "data": {"id": "0" * 32, "status": "completed", "outputs": []}}


async def constant(request: Request) -> JSONResponse:
    # Read the body like the fake does, so POST measures the same socket work.
    await request.body()
    return JSONResponse(BODY)


app = Starlette(routes=[Route("/ping", constant, methods=["GET", "POST"])])

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", workers=1, **UVICORN_OPTIONS)
