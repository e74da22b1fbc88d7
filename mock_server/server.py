"""Running the fake under uvicorn: in the foreground for the CLI, or in a thread for test fixtures."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.applications import Starlette

from mock_server.app import create_app
from mock_server.settings import Settings


def serve(settings: Settings) -> None:
    """Serve until interrupted. One worker: predictions live in this process's memory."""
    app = create_app(settings)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level, workers=1)


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


def run_in_thread(app: Starlette | None = None, *, host: str = "127.0.0.1", port: int = 0,
                  settings: Settings | None = None, startup_timeout: float = 15.0) -> RunningServer:
    """Start uvicorn in a daemon thread on a free loopback port and wait (bounded) until it accepts."""
    app = app or create_app(settings)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False)
    server = uvicorn.Server(config)
    kwargs: dict[str, Any] = {"sockets": [sock]}
    thread = threading.Thread(target=server.run, kwargs=kwargs, name=f"wavespeed-mock:{bound_port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"wavespeed-mock did not start on {host}:{bound_port}")
        time.sleep(0.01)  # readiness poll with a deadline, not a wait for state
    return RunningServer(app, server, thread, host, bound_port)
