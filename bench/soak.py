"""Bounded soak: memory stays flat while predictions keep coming (the store's caps and TTLs at work).

    python bench/soak.py [--predictions 50000] [--every 5000] [--json bench/results/soak.json]

Runs `wavespeed-mock serve` twice on loopback, each fed the same load by a separate client process-side loop:
the memory store with one worker, then a Redis store (a redis-server this script starts on a free port) with two
workers. After every ``--every`` predictions (each submitted and polled to completion) it samples the servers'
RSS (/proc) and Redis ``used_memory``; at the end it measures submit and poll throughput with wrk when installed.
Everything listens on 127.0.0.1 and is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

T2I = "wavespeed-ai/flux-kontext-pro/text-to-image"
HEADERS = {"Authorization": "Bearer soak", "Content-Type": "application/json"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes], deadline: float = 60) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer in {deadline} s")


def rss_kib(pid: int) -> int:
    """Resident memory of a process and its children (uvicorn workers)."""
    total = 0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for one in pids:
        status = Path(f"/proc/{one}/status")
        if status.exists():
            match = re.search(r"VmRSS:\s+(\d+)", status.read_text())
            total += int(match.group(1)) if match else 0
    return total


def redis_used_memory(port: int) -> int:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"INFO memory\r\n")
        data = b""
        while b"used_memory:" not in data or not data.endswith(b"\r\n"):
            data += sock.recv(65536)
    match = re.search(rb"used_memory:(\d+)", data)
    return int(match.group(1)) if match else 0


async def feed(base_url: str, count: int, concurrency: int = 32) -> float:
    """Submit ``count`` predictions and poll each to completion; returns seconds taken."""
    started = time.perf_counter()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, headers=HEADERS, limits=limits, timeout=60) as client:

        async def worker() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                body = {"prompt": f"soak {i} " + "x" * 200, "aspect_ratio": "1:1"}
                prediction = (await client.post(f"/api/v3/{T2I}", json=body)).json()["data"]["id"]
                for _ in range(3):
                    status = (await client.get(f"/api/v3/predictions/{prediction}/result")).json()["data"]["status"]
                    if status == "completed":
                        break

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started


def wrk(url: str, script: str, seconds: int = 5) -> dict[str, float]:
    if shutil.which("wrk") is None:
        return {}
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    out = subprocess.run(
        ["wrk", "-t2", "-c32", f"-d{seconds}s", "--latency", "-s", handle.name, url],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
    ).stdout
    os.unlink(handle.name)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    return {
        "rps": float(rps.group(1)) if rps else 0.0,
        "p99_ms": float(p99.group(1)) * scale[p99.group(2)] if p99 else 0.0,
    }


SUBMIT_LUA = """
wrk.method = "POST"
wrk.body = '{"prompt": "a lighthouse", "aspect_ratio": "16:9"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer soak"
"""


def poll_lua(ids: list[str]) -> str:
    listed = ",".join(f'"{i}"' for i in ids)
    return f"""
local ids = {{{listed}}}
local n = 0
wrk.headers["Authorization"] = "Bearer soak"
request = function()
  n = n + 1
  return wrk.format("GET", "/api/v3/predictions/" .. ids[(n % #ids) + 1] .. "/result")
end
"""


def run(label: str, args: list[str], predictions: int, every: int, redis_port: int | None) -> dict[str, Any]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mock_server",
            "serve",
            "--port",
            str(port),
            "--progression",
            "polls",
            "--log-level",
            "warning",
            *args,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    samples: list[dict[str, Any]] = []
    try:
        wait_ready(f"{base}/_mock/health", process)
        done = 0
        while done < predictions:
            seconds = asyncio.run(feed(base, every))
            done += every
            sample = {
                "predictions": done,
                "rss_mib": round(rss_kib(process.pid) / 1024, 1),
                "seconds": round(seconds, 1),
            }
            if redis_port is not None:
                sample["redis_used_memory_mib"] = round(redis_used_memory(redis_port) / 2**20, 1)
            samples.append(sample)
            print(label, sample, flush=True)  # noqa: T201
        ids = [
            httpx.post(f"{base}/api/v3/{T2I}", json={"prompt": "p"}, headers=HEADERS).json()["data"]["id"]
            for _ in range(50)
        ]
        throughput = {"submit": wrk(f"{base}/api/v3/{T2I}", SUBMIT_LUA), "poll": wrk(base, poll_lua(ids))}
    finally:
        process.terminate()
        process.wait(30)
    return {"label": label, "samples": samples, "throughput": throughput}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--predictions", type=int, default=50_000)
    parser.add_argument("--every", type=int, default=5_000)
    parser.add_argument("--json", default="bench/results/soak.json")
    args = parser.parse_args()
    results = [run("memory, 1 worker", [], args.predictions, args.every, None)]
    redis_binary = shutil.which("redis-server")
    if redis_binary:
        redis_port = free_port()
        data_dir = tempfile.mkdtemp()
        redis = subprocess.Popen(
            [
                redis_binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(redis_port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                data_dir,
            ],
            stdout=subprocess.DEVNULL,
        )
        try:
            end = time.monotonic() + 10
            while time.monotonic() < end:  # readiness: the first PING that answers
                try:
                    redis_used_memory(redis_port)
                    break
                except OSError:
                    time.sleep(0.02)
            results.append(
                run(
                    "redis, 2 workers",
                    ["--store", f"redis://127.0.0.1:{redis_port}/0", "--workers", "2"],
                    args.predictions,
                    args.every,
                    redis_port,
                )
            )
        finally:
            redis.terminate()
            redis.wait(10)
            shutil.rmtree(data_dir, ignore_errors=True)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {"machine": {"nproc": os.cpu_count(), "python": sys.version.split()[0]}, "results": results}, indent=2
        )
    )
    print(f"wrote {out}")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
