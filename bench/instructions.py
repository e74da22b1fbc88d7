"""CPU instructions per submit and per poll, counted by valgrind's callgrind: repeatable where timings are not.

    python bench/instructions.py                      this checkout
    PYTHONPATH=../other python bench/instructions.py  another checkout of the package, to compare two versions

Each kind runs ``bench/inproc.py requests KIND N`` under callgrind at two values of N (the set-up is the same in
both: 50 predictions, each polled 100 times); the difference in instructions, divided by the difference in N, is
what one request costs the app. valgrind (Debian's package, installed by this script if missing) runs Python ~50x
slower: about 5 minutes in all. Prints one JSON object.
"""

from __future__ import annotations

import json
import re
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


def main() -> int:
    sys.path.insert(0, str(BENCH))
    from run import ensure_apt

    why = ensure_apt("valgrind", "valgrind")
    if why:
        raise SystemExit(f"bench: valgrind is required: {why}")
    per_request = {
        f"{kind}_instructions": (instructions(kind, MANY) - instructions(kind, FEW)) // (MANY - FEW) for kind in KINDS
    }
    sys.stdout.write(json.dumps(per_request) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
