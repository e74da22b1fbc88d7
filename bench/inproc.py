"""In-process measurements for bench/run.py, each in a fresh interpreter so imports and caches start cold.

    python bench/inproc.py render [--quick]      placeholder render time per size and format, first vs cached
    python bench/inproc.py fixture KIND          start and stop of a test fixture (KIND: inprocess | live)
    python bench/inproc.py app                   the app's own cost per submit and per poll: ASGI calls, no server
    python bench/inproc.py requests KIND N       N submits or polls (KIND: submit | poll), for bench/instructions.py

Each prints one JSON object on stdout.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

SIZES = (512, 1024, 1536)
FORMATS = ("jpeg", "png", "webp")
WARM_STARTS = 5


def render_times(quick: bool) -> dict[str, Any]:
    from mock_server.model.images import ImageCache, ImageSpec, render

    firsts, cached_calls = (1, 50) if quick else (3, 500)
    # Fonts and codecs load on the very first render: not what "first render of a spec" should measure.
    render(ImageSpec(model="warm-up", prompt="", seed=0, index=0, width=64, height=64, fmt="png", params_digest=""))
    rows = []
    for side in SIZES:
        for fmt in FORMATS:
            specs = [
                ImageSpec(
                    model="wavespeed-ai/flux-kontext-pro/text-to-image",
                    prompt="a lighthouse at dusk",
                    seed=seed,
                    index=0,
                    width=side,
                    height=side,
                    fmt=fmt,
                    params_digest="bench",
                )
                for seed in range(firsts)
            ]
            first = []
            size = 0
            for spec in specs:  # distinct seeds: every one is a first render
                start = time.perf_counter()
                size = len(render(spec))
                first.append(time.perf_counter() - start)
            cache = ImageCache(max_bytes=256 * 1024 * 1024)
            cache.get_or_render(specs[0])
            cached = []
            for _ in range(cached_calls):
                start = time.perf_counter()
                cache.get_or_render(specs[0])
                cached.append(time.perf_counter() - start)
            rows.append(
                {
                    "size": f"{side}x{side}",
                    "format": fmt,
                    "bytes": size,
                    "renders": len(first),
                    "first_ms": round(statistics.median(first) * 1000, 2),
                    "cached_us": round(statistics.median(cached) * 1e6, 2),
                }
            )
    return {"renders": rows}


def fixture_times(kind: str) -> dict[str, Any]:
    started = time.perf_counter()
    from mock_server.http.app import create_app
    from mock_server.settings import Settings

    settings = Settings(port=0, log_level="warning", progression="polls")

    def start_stop() -> tuple[float, float, float]:
        """(began, ready, stopped) as perf_counter readings."""
        began = time.perf_counter()
        if kind == "inprocess":
            from mock_server.testing.inprocess import InProcessServer

            server = InProcessServer(create_app(settings))
            ready = time.perf_counter()
            server.close()
        else:
            from mock_server.http.server import run_in_thread

            running = run_in_thread(create_app(settings))
            ready = time.perf_counter()
            running.stop()
        return began, ready, time.perf_counter()

    # Cold: a test session's first use, imports included (this interpreter imported nothing of ours before).
    _, cold_ready, _ = start_stop()
    warm = [start_stop() for _ in range(WARM_STARTS)]
    return {
        "fixture": kind,
        "cold_start_ms": round((cold_ready - started) * 1000, 1),
        "warm_start_ms": round(statistics.median(r - b for b, r, _ in warm) * 1000, 1),
        "warm_stop_ms": round(statistics.median(s - r for _, r, s in warm) * 1000, 1),
    }


SUBMIT = "/api/v3/wavespeed-ai/flux-kontext-pro/text-to-image"
BODY = json.dumps({"prompt": "a lighthouse at dusk", "aspect_ratio": "16:9"}).encode()


def asgi_caller() -> Callable[[str, str, bytes], Awaitable[bytes]]:
    """A call of a fresh serving app as ASGI with the body in hand, as the benchmark's server runs it (poll
    progression, no latency): what a request costs the app, without server, event loop or socket."""
    from mock_server.http.server import serving_app
    from mock_server.settings import Settings

    app = serving_app(Settings(progression="polls", latency_scale=0, max_predictions=1_000_000))
    headers = [(b"host", b"127.0.0.1:8000"), (b"authorization", b"Bearer bench-key")]

    async def call(method: str, path: str, payload: bytes) -> bytes:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [*headers, (b"content-type", b"application/json"), (b"content-length", b"%d" % len(payload))],
            "server": ("127.0.0.1", 8000),
            "client": ("127.0.0.1", 50000),
        }
        messages = [{"type": "http.request", "body": payload, "more_body": False}]
        sent: list[MutableMapping[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return messages.pop() if messages else {"type": "http.disconnect"}

        async def send(message: MutableMapping[str, Any]) -> None:
            sent.append(message)

        await app(scope, receive, send)
        assert sent[0]["status"] == 200, sent
        return bytes(sent[1]["body"])

    return call


def app_costs() -> dict[str, Any]:
    """Microseconds per request spent in the app alone (middleware, routing, route, model, store), called as ASGI
    with the body already in hand: what a server's share adds to the bare endpoint's."""
    import asyncio

    call = asgi_caller()

    async def measure(n: int = 2000, rounds: int = 5) -> dict[str, Any]:
        ids = [json.loads(await call("POST", SUBMIT, BODY))["data"]["id"] for _ in range(1000)]
        per: dict[str, list[float]] = {"submit": [], "poll": []}
        for _ in range(rounds):
            started = time.perf_counter()
            for _ in range(n):
                await call("POST", SUBMIT, BODY)
            per["submit"].append((time.perf_counter() - started) / n)
            started = time.perf_counter()
            for i in range(n):
                await call("GET", f"/api/v3/predictions/{ids[i % len(ids)]}/result", b"")
            per["poll"].append((time.perf_counter() - started) / n)
        # The best round, as timeit reports: a shared machine only ever adds time to a CPU-bound loop.
        return {f"{name}_us": round(min(values) * 1e6, 1) for name, values in per.items()}

    return asyncio.run(measure())


AGED_IDS = 50
AGE_POLLS = 100  # per id: a prediction a client has polled for a while, as the benchmark's poll rounds leave them


def requests(kind: str, n: int) -> dict[str, Any]:
    """Set up (50 predictions, each polled 100 times), then ``n`` submits or polls of them. bench/instructions.py
    runs this under callgrind at two values of ``n``: the difference is the cost of the requests alone."""
    import asyncio

    call = asgi_caller()

    async def run() -> None:
        ids = [json.loads(await call("POST", SUBMIT, BODY))["data"]["id"] for _ in range(AGED_IDS)]
        for i in range(AGED_IDS * AGE_POLLS):
            await call("GET", f"/api/v3/predictions/{ids[i % AGED_IDS]}/result", b"")
        for i in range(n):
            if kind == "submit":
                await call("POST", SUBMIT, BODY)
            else:
                await call("GET", f"/api/v3/predictions/{ids[i % AGED_IDS]}/result", b"")

    asyncio.run(run())
    return {"kind": kind, "requests": n}


def main(argv: list[str]) -> int:
    if argv[:1] == ["render"]:
        result = render_times("--quick" in argv)
    elif argv[:1] == ["fixture"] and argv[1:2] in (["inprocess"], ["live"]):
        result = fixture_times(argv[1])
    elif argv[:1] == ["app"]:
        result = app_costs()
    elif argv[:1] == ["requests"] and argv[1:2] in (["submit"], ["poll"]) and argv[2:3] and argv[2].isdigit():
        result = requests(argv[1], int(argv[2]))
    else:
        sys.stderr.write(__doc__ or "")
        return 2
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
