"""Running the fake under uvicorn: in the foreground for the CLI, or in a thread for test fixtures."""

from __future__ import annotations

import gc
import logging.config
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.types import ASGIApp

from mock_server.http.app import create_app
from mock_server.logs import logging_config
from mock_server.settings import Settings

# How every server of ours runs under uvicorn (bench/bare_app.py serves its ceiling the same way). httptools parses
# HTTP several times faster than h11. The event loop is asyncio's own: uvloop answered as many requests per second
# here but let a few connections wait: p99 at 64 connections 155-235 ms against asyncio's 25 ms (wrk, same run).
UVICORN_OPTIONS: dict[str, Any] = {"loop": "asyncio", "http": "httptools"}


def serve(settings: Settings) -> None:
    """Serve until interrupted: one process, or ``settings.workers`` uvicorn workers sharing a Redis store."""
    log_config = logging_config(settings.log_format, settings.log_level)
    # Configured now, not only by uvicorn: building the app loads the scenario file, which is logged.
    logging.config.dictConfig(log_config)
    options = {**UVICORN_OPTIONS, "access_log": False, "log_config": log_config, "log_level": settings.log_level}
    if settings.workers == 1:
        uvicorn.run(serving_app(settings), host=settings.host, port=settings.port, **options)
        return
    # Worker processes build their own app from the environment: the same settings, the same shared store.
    os.environ.update(settings.to_env())
    uvicorn.run(
        "mock_server.http.server:serving_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        **options,
    )


def serving_app(settings: Settings | None = None) -> Starlette:
    """The app a server process serves: ``create_app``, then everything built so far (modules, schemas, the
    catalog's validators) is moved out of the garbage collector's sight. Full collections then walk only what
    requests create, instead of ~50,000 objects that live as long as the process."""
    app = create_app(settings)
    gc.collect()
    gc.freeze()
    return app


@dataclass
class RunningServer:
    app: Starlette
    server: uvicorn.Server
    thread: threading.Thread
    host: str
    port: int

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)


def run_in_thread(
    app: Starlette | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    settings: Settings | None = None,
    startup_timeout: float = 15.0,
) -> RunningServer:
    """Start uvicorn in a daemon thread on a free loopback port and wait (bounded) until it accepts."""
    app = app or create_app(settings)
    server, thread, bound_port = start_in_thread(app, host, port, "wavespeed-mock", startup_timeout)
    return RunningServer(app, server, thread, host, bound_port)


def start_in_thread(
    app: ASGIApp, host: str, port: int, name: str, startup_timeout: float, **options: Any
) -> tuple[uvicorn.Server, threading.Thread, int]:
    """uvicorn serving ``app`` in a daemon thread, once it accepts (bounded wait); returns the bound port too."""
    # uvicorn binds the socket itself: a socket handed over ready-made measured ~44 ms per request on
    # loopback here (Nagle/delayed-ACK), against ~4 ms when uvicorn creates it.
    # log_config=None: uvicorn's own configuration would replace the host process's logging (a test session's) and
    # bind its handlers to the stderr of whichever test started the server.
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        log_config=None,
        lifespan="on",
        access_log=False,
        **{**UVICORN_OPTIONS, **options},
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"{name} did not start on {host}:{port}")
        time.sleep(0.01)  # readiness poll with a deadline, not a wait for state
    return server, thread, int(server.servers[0].sockets[0].getsockname()[1])
