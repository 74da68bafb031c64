"""`python -m bench` (what `make bench` runs): every benchmark with a goal, then one line per goal,
`goal <name>: <measured> (<goal>) met|missed`.

Each benchmark runs in its own process (discord.py's REST and gateway URLs are process-wide), the
bot under test in yet another. The parts and their goals:

* `bench.tracking_goals`: tracking-idle, tracking-changing, cycle-stretch, memory-per-job,
  discord-window, finish-1000 (about 5 minutes);
* `bench.ack_goal`: ack-p99-ratio (about 3 minutes);
* `bench.refs_memory`, when present: refs-memory, refs-loop-gap.

The figures that are not goals (API traffic per job, SUCCESS-to-post latency, the in-process
acknowledgement figure, three processes against one) stay in `bench.tracking_scale`,
`bench.job_cost`, `bench.interaction_latency` and `bench.scale_out` (about 8 minutes, which would
take `make bench` past its 15).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PARTS = [
    ["bench.tracking_goals"],
    ["bench.ack_goal"],
    ["bench.refs_memory"],
]
ORDER = [
    "tracking-idle",
    "tracking-changing",
    "cycle-stretch",
    "memory-per-job",
    "refs-memory",
    "refs-loop-gap",
    "ack-p99-ratio",
    "discord-window",
    "finish-1000",
]


def main() -> None:
    goals: dict[str, str] = {}
    started = time.monotonic()
    for part in PARTS:
        if importlib.util.find_spec(part[0]) is None:
            print(f"({part[0]} is not here; its goals are not measured)", flush=True)
            continue
        print(f"== python -m {' '.join(part)}", flush=True)
        proc = subprocess.run(
            [sys.executable, "-m", *part], cwd=ROOT, capture_output=True, text=True, check=False
        )
        sys.stdout.write(proc.stdout)
        if proc.returncode:
            sys.stdout.write(proc.stderr[-3000:])
            print(f"({part[0]} failed with exit status {proc.returncode})", flush=True)
        for line in proc.stdout.splitlines():
            if line.startswith("goal "):
                goals[line.split(":", 1)[0].removeprefix("goal ")] = line
    print(f"\nall benchmarks in {time.monotonic() - started:.0f} s; the goals:")
    for name in sorted(goals, key=lambda n: ORDER.index(n) if n in ORDER else len(ORDER)):
        print(goals[name])
    for name in ORDER:
        if name not in goals:
            print(f"goal {name}: not measured (its benchmark is missing or failed) missed")


if __name__ == "__main__":
    main()
