"""Benchmark the fake against a baseline measured in the same run, on loopback only.

The baseline is a bare Starlette app answering a constant JSON body under the same uvicorn setup, so the
ratios say what the fake's own work costs (validation, state, envelopes, images), independent of the machine.

    python scripts/bench.py [--requests 400] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable

import httpx
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from mock_server.http.app import create_app
from mock_server.http.server import run_in_thread
from mock_server.settings import Settings

MODEL = "wavespeed-ai/flux-kontext-dev"


def _baseline_app() -> Starlette:
    body = {"code": 200, "message": "success", "data": {"id": "0" * 32, "status": "completed", "outputs": []}}

    async def constant(request: object) -> JSONResponse:
        return JSONResponse(body)

    return Starlette(routes=[Route("/ping", constant, methods=["GET", "POST"])])


def _per_request(count: int, call: Callable[[int], object]) -> float:
    """Median seconds per call over ``count`` calls (after a short warm-up)."""
    for i in range(min(20, count)):
        call(i)
    samples = []
    for i in range(count):
        start = time.perf_counter()
        call(i)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="requests per measurement (bounded)")
    parser.add_argument("--json", action="store_true", help="print machine-readable results")
    args = parser.parse_args(argv)
    count = max(10, min(args.requests, 5000))

    baseline = run_in_thread(_baseline_app())
    fake = run_in_thread(create_app(Settings(progression="polls", log_level="warning")))
    headers = {"Authorization": "Bearer bench"}
    try:
        with httpx.Client(base_url=baseline.base_url) as base_client, \
                httpx.Client(base_url=fake.base_url, headers=headers) as client:
            t_base = _per_request(count, lambda i: base_client.get("/ping"))
            t_base_post = _per_request(count, lambda i: base_client.post("/ping", json={"prompt": "x"}))

            ids: list[str] = []

            def submit(i: int) -> None:
                response = client.post(f"/api/v3/{MODEL}", json={"prompt": f"p{i}", "size": "256*256", "seed": i})
                ids.append(response.json()["data"]["id"])

            t_submit = _per_request(count, submit)
            t_poll = _per_request(count, lambda i: client.get(f"/api/v3/predictions/{ids[i % len(ids)]}/result"))
            finished = [client.get(f"/api/v3/predictions/{pid}/result").json()["data"] for pid in ids[:60]]
            urls = [d["outputs"][0] for d in finished if d["status"] == "completed"]
            renders = min(40, len(urls))
            t_first = _per_request(renders, lambda i: client.get(urls[(i + 20) % len(urls)]))
            t_cached = _per_request(count, lambda i: client.get(urls[0]))
    finally:
        fake.stop()
        baseline.stop()

    results = {
        "requests": count,
        "baseline_get_ms": t_base * 1000,
        "baseline_post_ms": t_base_post * 1000,
        "submit_ms": t_submit * 1000,
        "poll_ms": t_poll * 1000,
        "image_first_download_ms": t_first * 1000,
        "image_cached_download_ms": t_cached * 1000,
        "submit_vs_baseline_post": t_submit / t_base_post,
        "poll_vs_baseline_get": t_poll / t_base,
        "cached_image_vs_baseline_get": t_cached / t_base,
    }
    if args.json:
        sys.stdout.write(json.dumps(results, indent=2) + "\n")
    else:
        for key, value in results.items():
            sys.stdout.write(f"{key:32} {value:10.3f}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
