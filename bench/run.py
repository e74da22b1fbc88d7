"""Benchmark the fake against a bare Starlette ceiling and two peer mock servers, in one run, on loopback only.

    python bench/run.py            # full run (~11 minutes), writes bench/results/latest.{json,md}
    python bench/run.py --quick    # smoke run (~2 minutes)

Load comes from ``wrk`` in its own process (Lua scripts in bench/lua/). Measured: the ceiling (a constant JSON
endpoint under the same uvicorn settings); the fake's submit, poll, full cycle, sync submit, upload and output
download at concurrency 1, 16 and 64, on the memory store and (when the CLI offers it) on Redis with 2
workers; Prism and WireMock answering submit and result; placeholder render times; fixture start times; the
server's RSS after many predictions. Missing tools are installed by this script (apt-get for wrk and
redis-server, npm into bench/.cache for Prism and WireMock); a peer that cannot run is recorded as skipped.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import functools
import importlib.metadata
import importlib.util
import io
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
LUA = BENCH / "lua"
CACHE = BENCH / ".cache"
RESULTS = BENCH / "results"
NPM_PACKAGES = ("@stoplight/prism-cli@5.16.0", "wiremock@3.13.2")

KEY = "bench-key"
T2I = "wavespeed-ai/flux-kontext-pro/text-to-image"
SUBMIT_PATH = f"/api/v3/{T2I}"
SUBMIT_BODY = {"prompt": "a lighthouse at dusk", "aspect_ratio": "16:9"}
CONCURRENCY = (1, 16, 64)
WRK_TIMEOUT = "10s"  # per request; a request slower than this counts as a wrk timeout error


@dataclass(frozen=True)
class Plan:
    """How long and how much: the full run and the --quick smoke run differ only here."""

    duration: int  # seconds per wrk measurement
    rounds: int  # measurements per cell, spread over the run; the cell reports their medians
    warmup: int  # seconds of load on each server before its first measurement
    jit_warmup: int  # WireMock: at least this many seconds of load before measuring (at most 6x), for the JIT
    poll_ids: int  # pre-submitted ids the poll scenario cycles through
    fill: int  # predictions submitted before reading the server's RSS


FULL = Plan(duration=2, rounds=5, warmup=2, jit_warmup=6, poll_ids=1000, fill=100_000)
QUICK = Plan(duration=1, rounds=1, warmup=1, jit_warmup=2, poll_ids=100, fill=5_000)


def log(message: str) -> None:
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


# --------------------------------------------------------------------------------------------------------------
# processes


@dataclass
class Processes:
    """Every subprocess this run starts, each in its own process group so its children go with it."""

    started: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def start(
        self,
        name: str,
        argv: list[str],
        *,
        cwd: Path = ROOT,
        env: dict[str, str] | None = None,
    ) -> subprocess.Popen[bytes]:
        logs = CACHE / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        with open(logs / f"{name}.out", "wb") as out, open(logs / f"{name}.err", "wb") as err:
            proc = subprocess.Popen(
                argv, cwd=cwd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env, start_new_session=True
            )
        self.started.append((name, proc))
        return proc

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout)
        # workers of a multi-process server may outlive their parent: the group goes too
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)

    def stop_all(self) -> None:
        for _, proc in reversed(self.started):
            self.stop(proc)
        self.started.clear()

    @staticmethod
    def error_line(name: str) -> str:
        """The last non-empty line a process wrote to stderr (or stdout): why it did not start."""
        for stream in ("err", "out"):
            path = CACHE / "logs" / f"{name}.{stream}"
            lines = (
                [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
                if path.exists()
                else []
            )
            if lines:
                return lines[-1][:300]
        return "(no output)"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_http(proc: subprocess.Popen[bytes], url: str, timeout: float, headers: dict[str, str] | None = None) -> None:
    """Until ``url`` answers with any HTTP status; raises if the process exits or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with status {proc.returncode}")
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"no answer from {url} within {timeout:.0f} s")
        time.sleep(0.1)  # start-up poll with a deadline


def rss_kib(pid: int) -> int:
    """Resident set of a process and its children (a multi-worker server), in KiB."""
    total = 0
    for p in [pid, *children_of(pid)]:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its children (a multi-worker server, a launcher's server), in
    seconds. Counted in clock ticks, so a run of a few seconds reads it to within a percent."""
    ticks = 0
    for p in [pid, *children_of(pid)]:
        with contextlib.suppress(OSError, ValueError, IndexError):
            # Fields after the parenthesized command name; utime and stime are the 14th and 15th of the line.
            fields = Path(f"/proc/{p}/stat").read_text().rpartition(")")[2].split()
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def children_of(pid: int) -> list[int]:
    found = []
    with contextlib.suppress(OSError):
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            found += [int(child), *children_of(int(child))]
    return found


# --------------------------------------------------------------------------------------------------------------
# tools


def ensure_apt(binary: str, package: str) -> str | None:
    """The path of ``binary``, installing the Debian package when missing; None (and why) if impossible."""
    if shutil.which(binary):
        return None
    log(f"{binary} missing: apt-get install -y {package}")
    apt = ["apt-get", "install", "-y", "--no-install-recommends", package]
    if os.geteuid() != 0:
        apt = ["sudo", "-n", *apt]
    done = subprocess.run(
        apt, capture_output=True, text=True, timeout=600, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    )
    if done.returncode != 0 or not shutil.which(binary):
        update = ["apt-get", "update"] if os.geteuid() == 0 else ["sudo", "-n", "apt-get", "update"]
        subprocess.run(update, capture_output=True, timeout=600)
        done = subprocess.run(
            apt, capture_output=True, text=True, timeout=600, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        )
    if not shutil.which(binary):
        lines = (done.stderr or done.stdout).strip().splitlines()
        return f"cannot install {package}: {lines[-1] if lines else 'apt-get failed'}"
    return None


def ensure_npm() -> str | None:
    """Prism and WireMock into bench/.cache/npm (once); None when ready, else why not."""
    prefix = CACHE / "npm"
    if (prefix / "node_modules/.bin/prism").exists() and list(prefix.glob("node_modules/wiremock/build/*.jar")):
        return None
    if not shutil.which("npm"):
        return "npm is not installed"
    log(f"npm install {' '.join(NPM_PACKAGES)} into {prefix}")
    prefix.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["npm", "install", "--prefix", str(prefix), "--no-audit", "--no-fund", "--loglevel=error", *NPM_PACKAGES],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        return f"npm install failed: {lines[-1] if lines else done.returncode}"
    return None


def command_version(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "unavailable"
    lines = (done.stdout + done.stderr).strip().splitlines()
    return lines[0].strip() if lines else "unknown"


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with contextlib.suppress(OSError):
        mem_kib = int(Path("/proc/meminfo").read_text().split()[1])

    def version(dist: str) -> str:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    from mock_server.http.server import UVICORN_OPTIONS

    loop, http = UVICORN_OPTIONS["loop"], UVICORN_OPTIONS["http"]
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "uvicorn": version("uvicorn"),
        "starlette": version("starlette"),
        "wavespeed_mock": version("wavespeed-mock"),
        "uvicorn_loop": loop,
        "uvicorn_http": http,
        "wrk": command_version(["wrk", "-v"]).split(" [")[0],
        "java": command_version(["java", "-version"]),
        "node": command_version(["node", "--version"]),
        "redis": command_version(["redis-server", "--version"]),
        "loadavg_start": os.getloadavg()[0],
        "calibration_ms": calibration_ms(),
    }


def calibration_ms() -> float:
    """Milliseconds for a fixed pure-Python workload (best of 7): how fast this machine runs Python, so the
    absolute times of two runs on different machines can be compared. The ratios need no such help."""

    def workload() -> int:
        total = 0
        table: dict[int, int] = {}
        for i in range(200_000):
            table[i & 1023] = total
            total = (total + i * 7) % 1_000_003
        return total

    best = float("inf")
    for _ in range(7):
        started = time.perf_counter()
        workload()
        best = min(best, time.perf_counter() - started)
    return round(best * 1000, 1)


# --------------------------------------------------------------------------------------------------------------
# load


@dataclass
class Load:
    """One wrk run."""

    target: str
    scenario: str
    concurrency: int
    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: dict[str, int]
    cycles: int
    bytes: int
    cpu_us: float | None = None  # the server's CPU time per request (user + system, its processes only)
    rounds_rps: list[float] = field(default_factory=list)
    rounds_p99_ms: list[float] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def to_json(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "target": self.target,
            "scenario": self.scenario,
            "concurrency": self.concurrency,
            "rps": round(self.rps, 1),
            "p50_ms": self.p50_ms,
            "p90_ms": self.p90_ms,
            "p99_ms": self.p99_ms,
            "max_ms": self.max_ms,
            "requests": self.requests,
            "seconds": round(self.seconds, 2),
            "errors": self.errors,
            "bytes_per_response": round(self.bytes / self.requests) if self.requests else 0,
            "rounds_rps": self.rounds_rps,
            "rounds_p99_ms": self.rounds_p99_ms,
            "server_cpu_us_per_request": self.cpu_us,
        }
        if self.scenario == "cycle":
            row["cycles_per_s"] = round(self.cycles / self.seconds, 1) if self.seconds else 0.0
        return row


class Wrk:
    def __init__(self, scripts: Path) -> None:
        self.scripts = scripts
        scripts.mkdir(parents=True, exist_ok=True)
        self.common = (LUA / "common.lua").read_text()

    def script(self, *parts: str) -> Path:
        """bench/lua/common.lua followed by the named scenario scripts, as one file wrk can load."""
        path = self.scripts / ("-".join(parts) + ".lua")
        path.write_text(self.common + "\n" + "\n".join((LUA / f"{p}.lua").read_text() for p in parts))
        return path

    def run(
        self,
        url: str,
        script: Path,
        args: list[str],
        *,
        connections: int,
        seconds: int,
        until: list[Path] | None = None,
    ) -> dict[str, Any]:
        """One wrk run; with ``until``, it is interrupted as soon as all those marker files exist."""
        threads = min(2, connections)
        argv = [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "--timeout",
            WRK_TIMEOUT,
            "-s",
            str(script),
            url,
            "--",
            *args,
        ]
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            if until:
                deadline = time.monotonic() + seconds + 5
                while proc.poll() is None and time.monotonic() < deadline:
                    if all(marker.exists() for marker in until):
                        proc.send_signal(signal.SIGINT)  # wrk prints its summary on SIGINT
                        break
                    time.sleep(0.2)  # progress poll with a deadline
            out, err = proc.communicate(timeout=seconds + 60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for line in out.splitlines():
            if line.startswith("BENCH_JSON "):
                result: dict[str, Any] = json.loads(line.removeprefix("BENCH_JSON "))
                return result
        raise RuntimeError(f"wrk gave no result (exit {proc.returncode}): {(err or out)[-300:]}")

    def measure(
        self,
        target: str,
        scenario: str,
        url: str,
        script: Path,
        args: list[str],
        connections: int,
        seconds: int,
        pid: int | None = None,
    ) -> Load:
        """One wrk run against ``url``; with the server's ``pid``, also its CPU time per request."""
        cpu_before = cpu_seconds(pid) if pid is not None else 0.0
        raw = self.run(url, script, args, connections=connections, seconds=seconds)
        cpu = cpu_seconds(pid) - cpu_before if pid is not None else None

        def ms(us: float) -> float:
            return round(us / 1000, 3)

        load = Load(
            target,
            scenario,
            connections,
            raw["requests"],
            raw["duration_us"] / 1e6,
            ms(raw["p50_us"]),
            ms(raw["p90_us"]),
            ms(raw["p99_us"]),
            ms(raw["max_us"]),
            {k: v for k, v in raw["errors"].items() if v},
            raw["cycles"],
            raw["bytes"],
            round(cpu * 1e6 / raw["requests"], 1) if cpu is not None and raw["requests"] else None,
        )
        cpu_text = f"  cpu {load.cpu_us:6.1f} µs/req" if load.cpu_us is not None else ""
        bad = f", errors {load.errors}" if load.errors else ""
        log(
            f"  {target:<16} {scenario:<9} c={connections:<3} {load.rps:9.1f} req/s  p50 {load.p50_ms:7.2f} ms  "
            f"p99 {load.p99_ms:7.2f} ms{cpu_text}{bad}"
        )
        return load


# --------------------------------------------------------------------------------------------------------------
# the run


@dataclass
class Scenario:
    """A scenario's wrk script and arguments (the URL is the server's)."""

    name: str
    parts: tuple[str, ...]
    args: list[str]


@dataclass
class Server:
    """A started target and the scenarios to measure on it."""

    target: str
    url: str
    proc: subprocess.Popen[bytes]
    scenarios: list[Scenario]


class Bench:
    def __init__(self, plan: Plan, quick: bool) -> None:
        self.plan = plan
        self.quick = quick
        self.procs = Processes()
        self.work = CACHE / "run"
        self.work.mkdir(parents=True, exist_ok=True)
        self.wrk = Wrk(self.work / "lua")
        self.loads: list[Load] = []
        self.skipped: list[dict[str, str]] = []
        self.notes: list[str] = []
        self.bodies: dict[str, str] = {}  # captured submit and result bodies: the peers' static answers

    # --- helpers --------------------------------------------------------------------------------------------

    def file(self, name: str, data: bytes) -> str:
        path = self.work / name
        path.write_bytes(data)
        return str(path)

    def skip(self, target: str, reason: str) -> None:
        log(f"  {target}: skipped: {reason}")
        self.skipped.append({"target": target, "reason": f"skipped: {reason}"})

    def warm(self, url: str, scenario: Scenario, seconds: int) -> None:
        self.wrk.run(url, self.wrk.script(*scenario.parts), scenario.args, connections=16, seconds=seconds)

    def warm_until_steady(self, url: str, scenario: Scenario, at_least: int, at_most: int) -> float:
        """Load in 2-second rounds until two rounds agree within 10% (a JIT has settled); seconds spent."""
        script = self.wrk.script(*scenario.parts)
        spent, previous = 0.0, 0.0
        while spent < at_most:
            raw = self.wrk.run(url, script, scenario.args, connections=16, seconds=2)
            spent += 2
            rps = raw["requests"] / (raw["duration_us"] / 1e6) if raw["duration_us"] else 0.0
            if spent >= at_least and previous and abs(rps - previous) <= 0.1 * previous:
                break
            previous = rps
        return spent

    def serve(self, name: str, extra: list[str], port: int) -> subprocess.Popen[bytes]:
        cli = Path(sys.executable).with_name("wavespeed-mock")
        command = [str(cli)] if cli.exists() else [sys.executable, "-m", "mock_server"]
        # --progression polls: a poll moves a prediction one step, nothing waits on a clock; --latency-scale 0
        # makes sync mode answer at once; --max-predictions: the submit rounds create far more than the default
        # bound of 10,000, which would evict the ids the poll rounds read (and the fill measures 100k kept).
        argv = [
            *command,
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--progression",
            "polls",
            "--latency-scale",
            "0",
            "--max-predictions",
            "1000000",
            "--log-level",
            "warning",
            *extra,
        ]
        return self.procs.start(name, argv)

    # --- targets: each starts its server and returns what to measure on it (None: skipped) -------------------

    def bare(self) -> Server:
        log("ceiling: bare Starlette endpoint")
        port = free_port()
        proc = self.procs.start("bare", [sys.executable, str(BENCH / "bare_app.py"), str(port)])
        url = f"http://127.0.0.1:{port}"
        wait_http(proc, url + "/ping", 60)
        body = self.file("bare-body.json", json.dumps(SUBMIT_BODY).encode())
        get = Scenario("get", ("static",), ["GET", "/ping", KEY])
        post = Scenario("post", ("static",), ["POST", "/ping", KEY, "application/json", body])
        self.warm(url, get, self.plan.warmup)
        return Server("bare", url, proc, [get, post])

    def ours(self, target: str, extra: list[str], *, redis: bool = False) -> Server | None:
        log(f"ours: {target}")
        port = free_port()
        proc = self.serve(target, extra, port)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_http(proc, url + "/api/v3/balance", 60, {"Authorization": f"Bearer {KEY}"})
        except RuntimeError as exc:
            if proc.poll() is None:
                raise
            self.skip(target, Processes.error_line(target) if redis else str(exc))
            return None
        return Server(target, url, proc, self.our_scenarios(target, url))

    def our_scenarios(self, target: str, url: str) -> list[Scenario]:
        import httpx
        from PIL import Image

        submit_body = self.file("submit.json", json.dumps(SUBMIT_BODY).encode())
        sync_body = self.file("sync.json", json.dumps({**SUBMIT_BODY, "enable_sync_mode": True}).encode())
        upload_type, upload = multipart_png()
        upload_body = self.file("upload.multipart", upload)
        headers = {"Authorization": f"Bearer {KEY}"}
        with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
            ids = []
            for _ in range(self.plan.poll_ids):
                answer = client.post(SUBMIT_PATH, json=SUBMIT_BODY)
                answer.raise_for_status()
                ids.append(answer.json()["data"]["id"])
            self.bodies.setdefault("submit", answer.text)
            # one prediction to the end: its result is the peers' static answer, its output the download
            finished = client.get(f"/api/v3/predictions/{ids[0]}/result").json()["data"]
            while finished["status"] not in ("completed", "failed"):
                result = client.get(f"/api/v3/predictions/{ids[0]}/result")
                finished = result.json()["data"]
                self.bodies.setdefault("result", result.text)
            output = httpx.URL(finished["outputs"][0])
            image = client.get(output.path)  # renders it: the download scenario measures the cached file
            image.raise_for_status()
        width, height = Image.open(io.BytesIO(image.content)).size
        if target == "ours-memory":
            self.notes.append(
                f"download: one {width}x{height} {output.path.rsplit('.', 1)[-1]} output "
                f"({len(image.content):,} bytes), rendered by a first GET before measuring, so cached"
            )
            self.notes.append(
                f"poll: {len(ids)} ids in turn; one step per poll, so after two passes they read completed"
            )
        id_file = self.file(f"ids-{target}.txt", "\n".join(ids).encode())
        scenarios = [
            Scenario("submit", ("static",), ["POST", SUBMIT_PATH, KEY, "application/json", submit_body]),
            Scenario("poll", ("ids",), [id_file, KEY]),
            Scenario("cycle", ("cycle",), [SUBMIT_PATH, submit_body, KEY]),
            Scenario("sync", ("static",), ["POST", SUBMIT_PATH, KEY, "application/json", sync_body]),
            Scenario("upload", ("static",), ["POST", "/api/v3/media/upload/binary", KEY, upload_type, upload_body]),
            Scenario("download", ("static",), ["GET", output.path, "-"]),
        ]
        self.warm(url, scenarios[0], self.plan.warmup)
        return scenarios

    def redis(self) -> Server | None:
        target = "ours-redis-2w"
        why = ensure_apt("redis-server", "redis-server")
        if why:
            self.skip(target, why)
            return None
        port = free_port()
        server = self.procs.start(
            "redis-server",
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ],
        )
        deadline = time.monotonic() + 30
        while not port_open(port):
            if server.poll() is not None or time.monotonic() > deadline:
                self.skip(target, f"redis-server did not start: {Processes.error_line('redis-server')}")
                return None
            time.sleep(0.05)  # start-up poll with a deadline
        found = self.ours(target, ["--store", f"redis://127.0.0.1:{port}/0", "--workers", "2"], redis=True)
        if found is None:
            self.procs.stop(server)
        else:
            self.notes.append(
                f"{target}: download rendered once per worker, the first GET on the other worker renders it again"
            )
        return found

    def prism(self) -> Server | None:
        target = "prism"
        why = ensure_npm()
        if why:
            self.skip(target, why)
            return None
        log("peer: Prism (mocking schemas/openapi.json)")
        port = free_port()
        binary = CACHE / "npm/node_modules/.bin/prism"
        # -v error: Prism logs every request at info, which would measure its logger
        proc = self.procs.start(
            target,
            [
                str(binary),
                "mock",
                str(ROOT / "schemas/openapi.json"),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-v",
                "error",
            ],
        )
        return self.peer(target, proc, port, warmup=self.plan.warmup)

    def wiremock(self) -> Server | None:
        target = "wiremock"
        why = ensure_npm()
        if why:
            self.skip(target, why)
            return None
        if not shutil.which("java"):
            self.skip(target, "java is not installed")
            return None
        jars = sorted((CACHE / "npm/node_modules/wiremock/build").glob("wiremock-standalone-*.jar"))
        if not jars:
            self.skip(target, "no wiremock-standalone jar in the npm package")
            return None
        if "submit" not in self.bodies or "result" not in self.bodies:
            self.skip(target, "no captured answers of ours to stub (the memory-store server did not run)")
            return None
        log("peer: WireMock (static stubs of our own submit and result answers)")
        root = self.work / "wiremock"
        (root / "mappings").mkdir(parents=True, exist_ok=True)
        (root / "__files").mkdir(exist_ok=True)
        stubs = {
            "mappings": [
                {
                    "request": {"method": "POST", "url": SUBMIT_PATH},
                    "response": {
                        "status": 200,
                        "headers": {"Content-Type": "application/json"},
                        "body": self.bodies["submit"],
                    },
                },
                {
                    "request": {"method": "GET", "urlPathPattern": "/api/v3/predictions/[0-9a-f]+/result"},
                    "response": {
                        "status": 200,
                        "headers": {"Content-Type": "application/json"},
                        "body": self.bodies["result"],
                    },
                },
            ]
        }
        (root / "mappings/stubs.json").write_text(json.dumps(stubs))
        port = free_port()
        proc = self.procs.start(
            target,
            [
                "java",
                "-jar",
                str(jars[-1]),
                "--port",
                str(port),
                "--bind-address",
                "127.0.0.1",
                "--root-dir",
                str(root),
                "--no-request-journal",
                "--disable-request-logging",
                "--disable-banner",
            ],
        )
        return self.peer(target, proc, port, warmup=self.plan.jit_warmup, jit=True)

    def peer(
        self,
        target: str,
        proc: subprocess.Popen[bytes],
        port: int,
        *,
        warmup: int,
        jit: bool = False,
    ) -> Server | None:
        url = f"http://127.0.0.1:{port}"
        try:
            wait_http(proc, url + "/", 120)
        except RuntimeError as exc:
            self.skip(target, f"{exc}: {Processes.error_line(target)}")
            self.procs.stop(proc)
            return None
        submit_body = self.file("submit.json", json.dumps(SUBMIT_BODY).encode())
        ids = self.work / "ids-ours-memory.txt"
        id_file = ids if ids.exists() else Path(self.file("ids-peer.txt", b"0" * 32))
        scenarios = [
            Scenario("submit", ("static",), ["POST", SUBMIT_PATH, KEY, "application/json", submit_body]),
            Scenario("poll", ("ids",), [str(id_file), KEY]),
        ]
        if target == "prism":
            self.notes.append(f"prism: {prism_violations(url)}")
        for scenario in scenarios:
            if jit:
                spent = self.warm_until_steady(url, scenario, warmup, 6 * warmup)
                self.notes.append(f"{target} {scenario.name}: {spent:.0f} s of JIT warm-up")
            else:
                self.warm(url, scenario, warmup)
        return Server(target, url, proc, scenarios)

    # --- in-process and memory ------------------------------------------------------------------------------

    def inproc(self, *args: str) -> dict[str, Any]:
        done = subprocess.run(
            [sys.executable, str(BENCH / "inproc.py"), *args],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=ROOT,
            check=True,
        )
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return result

    def memory(self) -> dict[str, Any]:
        target = "ours-rss"
        log(f"memory: RSS after {self.plan.fill} predictions")
        port = free_port()
        proc = self.serve(target, [], port)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_http(proc, url + "/api/v3/balance", 60, {"Authorization": f"Bearer {KEY}"})
            before = rss_kib(proc.pid)
            body = self.file("submit.json", json.dumps(SUBMIT_BODY).encode())
            threads = 2
            per_thread = -(-self.plan.fill // threads)
            markers = [self.work / f"fill-done-{i}" for i in range(1, threads + 1)]
            for marker in markers:
                marker.unlink(missing_ok=True)
            started = time.monotonic()
            # bounded: at most 10 minutes of submits, whatever the rate
            raw = self.wrk.run(
                url,
                self.wrk.script("static", "fill"),
                ["POST", SUBMIT_PATH, KEY, "application/json", body, str(per_thread), str(self.work / "fill-done-")],
                connections=16,
                seconds=600,
                until=markers,
            )
            seconds = time.monotonic() - started
            after = rss_kib(proc.pid)
            accepted = int(raw["cycles"])
            result = {
                "predictions": accepted,
                "rss_idle_mib": round(before / 1024, 1),
                "rss_after_mib": round(after / 1024, 1),
                "bytes_per_prediction": round((after - before) * 1024 / accepted) if accepted else None,
                "fill_seconds": round(seconds, 1),
                "fill_rps": round(accepted / seconds, 1),
            }
            log(f"  {result}")
            return result
        finally:
            self.procs.stop(proc)

    # --- everything -----------------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        started = time.monotonic()
        why = ensure_apt("wrk", "wrk")
        if why:
            raise SystemExit(f"bench: wrk is required: {why}")
        info = machine()
        log(f"machine: {info['nproc']} x {info['cpu']}, Python {info['python']}, load {info['loadavg_start']:.2f}")
        renders = self.inproc("render", *(["--quick"] if self.quick else []))["renders"]
        log("fixture start times")
        # Bytecode first, as an installed package has it (pip compiles wheels on install): without it a cold start
        # also compiles our sources, ~50 ms here, where PYTHONDONTWRITEBYTECODE=1 keeps Python from caching it.
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "mock_server")], check=True)
        fixtures = [self.inproc("fixture", kind) for kind in ("inprocess", "live")]
        log("the app's own cost per request")
        app_cost = self.inproc("app")
        try:
            servers = [self.bare()]
            starts: list[Callable[[], Server | None]] = [
                functools.partial(self.ours, "ours-memory", []),
                self.redis,
                self.prism,
                self.wiremock,
            ]
            for start in starts:
                server = start()
                if server is not None:
                    servers.append(server)
            # Every cell is measured `rounds` times, each round going through every concurrency, target and
            # scenario: the two sides of a ratio are measured close together, and a burst of load from other jobs
            # on the machine lands in one round of a cell, which the median round then leaves out.
            measured: dict[tuple[str, str, int], list[Load]] = {}
            for round_number in range(1, self.plan.rounds + 1):
                for connections in CONCURRENCY:
                    log(f"round {round_number}/{self.plan.rounds}, concurrency {connections}")
                    for server in servers:
                        for scenario in server.scenarios:
                            load = self.wrk.measure(
                                server.target,
                                scenario.name,
                                server.url,
                                self.wrk.script(*scenario.parts),
                                scenario.args,
                                connections,
                                self.plan.duration,
                                server.proc.pid,
                            )
                            measured.setdefault((server.target, scenario.name, connections), []).append(load)
            self.loads = [median_round(rounds) for rounds in measured.values()]
            for server in servers:
                self.procs.stop(server.proc)
            memory = self.memory()
        finally:
            self.procs.stop_all()
        info["loadavg_end"] = os.getloadavg()[0]
        return {
            "generated": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "command": "python bench/run.py" + (" --quick" if self.quick else ""),
            "plan": {
                "duration_s": self.plan.duration,
                "rounds": self.plan.rounds,
                "concurrency": list(CONCURRENCY),
                "wrk_threads": 2,
                "warmup_s": self.plan.warmup,
                "wiremock_jit_warmup_s": self.plan.jit_warmup,
                "poll_ids": self.plan.poll_ids,
                "fill": self.plan.fill,
            },
            "machine": info,
            "http": [load.to_json() for load in self.loads],
            "ratios": ratios(self.loads),
            "skipped": self.skipped,
            "renders": renders,
            "fixtures": fixtures,
            "app_cost": app_cost,
            "memory": memory,
            "notes": self.notes,
            "elapsed_s": round(time.monotonic() - started, 1),
        }


def prism_violations(url: str) -> str:
    """What Prism says about its own answer to our submit (its sl-violations header)."""
    request = urllib.request.Request(
        url + SUBMIT_PATH,
        data=json.dumps(SUBMIT_BODY).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            status, header = answer.status, answer.headers.get("sl-violations")
    except urllib.error.HTTPError as exc:
        status, header = exc.code, exc.headers.get("sl-violations")
    except (urllib.error.URLError, OSError) as exc:
        return f"submit probe failed: {exc}"
    found = json.loads(header) if header else []
    codes = sorted({str(v.get("code")) for v in found if isinstance(v, dict)})
    return (
        f"answers submit with HTTP {status}, a static example from the OpenAPI document; its sl-violations "
        f"header lists {len(found)} schema violation(s) of that answer" + (f" ({', '.join(codes)})" if codes else "")
    )


def median_round(rounds: list[Load]) -> Load:
    """The round with the median requests/s, with each latency percentile and the CPU time per request replaced by
    their medians over the rounds, remembering every round's requests/s and p99.

    Not the median round's own latencies: on this shared machine the bare endpoint's p99 in identical 2-second
    rounds ranged from 7.7 to 38 ms, so one round's p99 says more about the neighbours than about the server."""
    ordered = sorted(rounds, key=lambda load: load.rps)
    chosen = ordered[(len(ordered) - 1) // 2]
    chosen.rounds_rps = [round(load.rps, 1) for load in rounds]
    chosen.rounds_p99_ms = [load.p99_ms for load in rounds]
    chosen.p50_ms = statistics.median(load.p50_ms for load in rounds)
    chosen.p90_ms = statistics.median(load.p90_ms for load in rounds)
    chosen.p99_ms = statistics.median(load.p99_ms for load in rounds)
    cpu = [load.cpu_us for load in rounds if load.cpu_us is not None]
    chosen.cpu_us = round(statistics.median(cpu), 1) if cpu else None
    return chosen


def port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def multipart_png() -> tuple[str, bytes]:
    """A small PNG as the multipart form the binary upload takes (field ``file``)."""
    from PIL import Image

    picture = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 120, 40)).save(picture, format="PNG")
    boundary = "benchboundary7d2f"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="bench.png"\r\n'
            f"Content-Type: image/png\r\n\r\n"
        ).encode()
        + picture.getvalue()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return f"multipart/form-data; boundary={boundary}", body


# --------------------------------------------------------------------------------------------------------------
# ratios and the report

# (ours scenario, bare scenario it is held against)
CEILING = {"submit": "post", "poll": "get", "cycle": "get", "sync": "post", "upload": "post", "download": "get"}


def ratios(loads: list[Load]) -> list[dict[str, Any]]:
    """requests/s of ours divided by the same concurrency's requests/s of the other (1.0 = as fast)."""
    by_key = {(load.target, load.scenario, load.concurrency): load for load in loads}
    rows = []

    def add(label: str, ours: tuple[str, str], other: tuple[str, str]) -> None:
        values = {}
        for c in CONCURRENCY:
            mine, theirs = by_key.get((*ours, c)), by_key.get((*other, c))
            if mine and theirs and theirs.rps:
                values[str(c)] = round(mine.rps / theirs.rps, 3)
        if values:
            rows.append({"comparison": label, "by_concurrency": values})

    for target in ("ours-memory", "ours-redis-2w"):
        for scenario, ceiling in CEILING.items():
            add(f"{target} {scenario} / bare {ceiling.upper()}", (target, scenario), ("bare", ceiling))
    for peer in ("prism", "wiremock"):
        for scenario in ("submit", "poll"):
            add(f"ours-memory {scenario} / {peer} {scenario}", ("ours-memory", scenario), (peer, scenario))
    return rows


def cpu_table(result: dict[str, Any]) -> list[str]:
    """Server CPU per request, and at 64 connections its multiple of the bare endpoint's: a saturated server's
    latency follows what each request costs it, where requests/s and p99 move with whatever else the machine runs."""
    plan = result["plan"]
    cpu: dict[tuple[str, str], dict[int, float]] = {}
    for row in result["http"]:
        if row.get("server_cpu_us_per_request") is not None:
            cpu.setdefault((row["target"], row["scenario"]), {})[row["concurrency"]] = row["server_cpu_us_per_request"]
    if not cpu:
        return []
    top = max(plan["concurrency"])
    lines = [
        "",
        "## Server CPU per request (µs of user + system time in the server's processes; wrk and redis-server not "
        "counted)",
        "",
        "| target | scenario | " + " | ".join(f"c={c}" for c in plan["concurrency"]) + f" | c={top} ÷ bare |",
        "|---|---|" + "---:|" * (len(plan["concurrency"]) + 1),
    ]
    for (target, scenario), cells in cpu.items():
        ceiling = cpu.get(("bare", CEILING.get(scenario, "")), {}).get(top)
        mine = cells.get(top)
        times = f"{mine / ceiling:.2f}" if target != "bare" and mine and ceiling else "-"
        values = " | ".join(f"{cells[c]:,.1f}" if c in cells else "-" for c in plan["concurrency"])
        lines.append(f"| {target} | {scenario} | {values} | {times} |")
    return lines


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    plan = result["plan"]
    lines = [
        "# wavespeed-mock benchmark",
        "",
        f"`{result['command']}` on {result['generated']}: {m['nproc']} x {m['cpu']}, {m['memory_gib']} GiB, "
        f"Python {m['python']}, uvicorn {m['uvicorn']} ({m['uvicorn_loop']} + {m['uvicorn_http']}), "
        f"starlette {m['starlette']}, {m['wrk']}, load average {m['loadavg_start']:.2f} at the start and "
        f"{m['loadavg_end']:.2f} at the end; pure-Python calibration loop {m.get('calibration_ms', '?')} ms (a faster "
        "machine takes less, and the absolute times below scale with it). Each cell: the median of "
        f"{plan['rounds']} round(s) of wrk -t2 (-t1 at "
        f"c=1) -d{plan['duration_s']}s --latency, spread over the run; all on 127.0.0.1, load generator and "
        "servers sharing the same cores; bytes/response includes the headers.",
        "",
        "## HTTP: requests/s and p50 / p99 latency (ms)",
        "",
        "| target | scenario | bytes/response | "
        + " | ".join(f"c={c} req/s | c={c} p50 / p99" for c in plan["concurrency"])
        + " |",
        "|---|---|---:|" + "---:|---:|" * len(plan["concurrency"]),
    ]
    rows: dict[tuple[str, str], dict[int, dict[str, Any]]] = {}
    for row in result["http"]:
        rows.setdefault((row["target"], row["scenario"]), {})[row["concurrency"]] = row
    for (target, scenario), cells in rows.items():
        parts = []
        for c in plan["concurrency"]:
            cell = cells.get(c)
            if cell is None:
                parts += ["-", "-"]
                continue
            rps = f"{cell['rps']:,.0f}"
            if "cycles_per_s" in cell:
                rps += f" ({cell['cycles_per_s']:,.0f} cycles/s)"
            if cell["errors"]:
                rps += " ⚠ " + ", ".join(f"{n} {k}" for k, v in cell["errors"].items() for n in [v])
            parts += [rps, f"{cell['p50_ms']:.2f} / {cell['p99_ms']:.2f}"]
        size = next(iter(cells.values()))["bytes_per_response"]
        lines.append(f"| {target} | {scenario} | {size:,} | " + " | ".join(parts) + " |")
    for skipped in result["skipped"]:
        filler = " |" * (2 * len(plan["concurrency"]) - 1)
        lines.append(f"| {skipped['target']} | all | | {skipped['reason']} |{filler}")
    lines += [
        "",
        "## Ratios of requests/s (ours / other, same concurrency)",
        "",
        "| comparison | " + " | ".join(f"c={c}" for c in plan["concurrency"]) + " |",
        "|---|" + "---:|" * len(plan["concurrency"]),
    ]
    for row in result["ratios"]:
        lines.append(
            f"| {row['comparison']} | "
            + " | ".join(f"{row['by_concurrency'].get(str(c), '-')}" for c in plan["concurrency"])
            + " |"
        )
    lines += cpu_table(result)
    lines += [
        "",
        "## Placeholder images (in-process `images.render`, `ImageCache.get_or_render`)",
        "",
        "| size | format | bytes | first render (ms) | cached (µs) |",
        "|---|---|---:|---:|---:|",
    ]
    for r in result["renders"]:
        lines.append(f"| {r['size']} | {r['format']} | {r['bytes']:,} | {r['first_ms']:.1f} | {r['cached_us']:.1f} |")
    lines += [
        "",
        "## Fixture start (ms)",
        "",
        "| fixture | cold: fresh interpreter, imports included (bytecode compiled) | warm start | warm stop |",
        "|---|---:|---:|---:|",
    ]
    names = {
        "inprocess": "in-process (`InProcessServer(create_app(...))`)",
        "live": "live (`run_in_thread`, uvicorn on loopback)",
    }
    for f in result["fixtures"]:
        lines.append(
            f"| {names[f['fixture']]} | {f['cold_start_ms']:.0f} | {f['warm_start_ms']:.1f} | {f['warm_stop_ms']:.1f} |"
        )
    cost = result.get("app_cost")
    if cost:
        lines += [
            "",
            "## The app's own cost per request (`python bench/inproc.py app`: ASGI calls, no server, best of 5)",
            "",
            f"Submit {cost['submit_us']} µs, poll {cost['poll_us']} µs: what the fake adds to the bare endpoint's "
            "server, event loop and socket work.",
        ]
    mem = result["memory"]
    lines += [
        "",
        "## Memory (memory store)",
        "",
        f"RSS {mem['rss_idle_mib']} MiB idle, {mem['rss_after_mib']} MiB after {mem['predictions']:,} "
        f"predictions submitted ({mem['bytes_per_prediction']:,} bytes per prediction; submitted at "
        f"{mem['fill_rps']:,.0f}/s over {mem['fill_seconds']} s).",
        "",
    ]
    if result["notes"]:
        lines += ["Notes: " + "; ".join(result["notes"]) + ".", ""]
    lines.append(f"Total run time: {result['elapsed_s']:.0f} s.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short smoke run (1 s per measurement, small fills)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where latest.json and latest.md go")
    args = parser.parse_args(argv)
    # a plain SIGTERM would skip the finally below and leave servers running
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    bench = Bench(QUICK if args.quick else FULL, args.quick)
    try:
        result = bench.run()
    finally:
        bench.procs.stop_all()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "latest.md").write_text(markdown(result))
    sys.stdout.write(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
