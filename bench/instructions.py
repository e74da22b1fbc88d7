"""CPU instructions per submit and per poll, counted by valgrind's callgrind: repeatable where timings are not.

    python bench/instructions.py                      this checkout: the app alone
    PYTHONPATH=../other python bench/instructions.py  another checkout of the package, to compare two versions
    python bench/instructions.py --server             whole server processes: ours and the bare endpoint

Each kind runs ``bench/inproc.py requests KIND N`` under callgrind at two values of N (the set-up is the same in
both: 50 predictions, each polled 100 times); the difference in instructions, divided by the difference in N, is
what one request costs the app. valgrind (Debian's package, installed by this script if missing) runs Python ~50x
slower: about 5 minutes in all. Prints one JSON object.

``--server`` counts whole processes instead: ``wavespeed-mock serve`` (as bench/run.py starts it) and the bare
endpoint (bench/bare_app.py), each under callgrind, sent N requests one after another on one keep-alive
connection, at two values of N. Uvicorn, the event loop and the socket calls are then counted too: what the app's
share is of a whole server's work, one request per event-loop wake-up (wrk at c=1).
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import signal
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
FEW, MANY = 10, 1010
KINDS = ("submit", "poll")


def instructions(kind: str, n: int) -> int:
    done = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            str(BENCH / "inproc.py"),
            "requests",
            kind,
            str(n),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise SystemExit(f"callgrind printed no total:\n{done.stderr[-2000:]}")
    return int(found.group(1))


SERVER_FEW, SERVER_MANY = 100, 600
SERVER_IDS = 20


def server_instructions(target: str, kind: str, n: int) -> int:
    """Instructions of one whole server process (``target``: ours | bare) that answered ``n`` requests of ``kind``
    (ours: submit | poll; bare: the same methods on its constant endpoint), set-up and shut-down included."""
    from run import KEY, SUBMIT_BODY, SUBMIT_PATH, free_port, wait_http

    port = free_port()
    if target == "bare":
        argv = [sys.executable, str(BENCH / "bare_app.py"), str(port)]
    else:
        argv = [sys.executable, "-m", "mock_server", "serve", "--host", "127.0.0.1", "--port", str(port)]
        argv += ["--progression", "polls", "--latency-scale", "0", "--max-predictions", "1000000"]
        argv += ["--log-level", "warning"]
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *argv]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_http(proc, f"http://127.0.0.1:{port}/", 300)
        body = json.dumps(SUBMIT_BODY).encode()
        headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

        def call(method: str, path: str, payload: bytes | None) -> bytes:
            connection.request(method, path, body=payload, headers=headers)
            answer = connection.getresponse()
            data = answer.read()
            if answer.status != 200:
                raise SystemExit(f"bench: {target} answered {method} {path} with {answer.status}: {data[:300]!r}")
            return data

        if target == "bare":
            for _ in range(n):
                call("POST" if kind == "submit" else "GET", "/ping", body if kind == "submit" else None)
        else:
            ids = [json.loads(call("POST", SUBMIT_PATH, body))["data"]["id"] for _ in range(SERVER_IDS)]
            for i in range(n):
                if kind == "submit":
                    call("POST", SUBMIT_PATH, body)
                else:
                    call("GET", f"/api/v3/predictions/{ids[i % SERVER_IDS]}/result", None)
        connection.close()
    finally:
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=300)
    found = re.search(r"Collected : (\d+)", stderr.decode(errors="replace"))
    if found is None:
        raise SystemExit(f"callgrind printed no total for {target}:\n{stderr.decode(errors='replace')[-2000:]}")
    return int(found.group(1))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--server", action="store_true", help="count whole server processes, ours and the bare one")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(BENCH))
    from run import ensure_apt

    why = ensure_apt("valgrind", "valgrind")
    if why:
        raise SystemExit(f"bench: valgrind is required: {why}")
    if args.server:
        span = SERVER_MANY - SERVER_FEW
        per_request = {
            f"{target}_{kind}_instructions": (
                server_instructions(target, kind, SERVER_MANY) - server_instructions(target, kind, SERVER_FEW)
            )
            // span
            for target in ("ours", "bare")
            for kind in KINDS
        }
    else:
        per_request = {
            f"{kind}_instructions": (instructions(kind, MANY) - instructions(kind, FEW)) // (MANY - FEW)
            for kind in KINDS
        }
    sys.stdout.write(json.dumps(per_request) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
