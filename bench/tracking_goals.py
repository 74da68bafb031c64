"""Issue 12's tracking and Discord goals, with the bot as its own process:

* tracking-idle: CPU share of one core while 10,000 unfinished jobs are tracked and no task
  changes (goal ≤ 2%);
* tracking-changing: the same while every task moves on every 10 s (goal ≤ 10%);
* cycle-stretch: the longest time between two polls of one task over the planned cycle length
  `max(MJ_POLL_INTERVAL, chunks / 10 per s)` (goal ≤ 1.2);
* memory-per-job: (peak RSS with 10,000 jobs − peak RSS with 100) / 9,900 (goal ≤ 2 KB);
* discord-window: the most REST calls with the bot's token in any one second, over the
  changing phase and the finish burst (goal ≤ 45);
* finish-1000: 1,000 tracked tasks finish at once; seconds until the last finish post reaches
  the emulator (goal ≤ 25 s).

    python -m bench.tracking_goals [--jobs 10000] [--idle 30] [--changing 30]

CPU figures are CPU time of the bot process (user + system from /proc), not wall-clock, so
other load on the machine changes them little. The simulator runs in this process, the Discord
emulator in one of its own (`bench.discord_host`): sharing a loop with the simulator rendering
1,000 result images, it would record arrivals in bunches.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import math
import sys
import time
from dataclasses import dataclass, field

from bench.world import SECRET, Call, World, bot_token_calls, most_in_window
from bot.log import configure

POLL_INTERVAL = 3.0
CHUNK = 100
RATE = 10.0  # the tracker's default request rate
CHANGE_EVERY = 10.0


@dataclass
class Tracking:
    jobs: int
    idle_share: float = 0.0  # of one core
    changing_share: float = 0.0
    stretch: float = 0.0
    peak_rss_mb: float = 0.0
    discord_window: int = 0
    notes: list[str] = field(default_factory=list)


def planned_cycle(jobs: int) -> float:
    return max(POLL_INTERVAL, math.ceil(jobs / CHUNK) / RATE)


def poll_times(world: World, task_id: str, since: float) -> list[float]:
    return [
        r.at
        for r in world.sim.requests_to("/mj/task/list-by-condition")
        if r.at >= since and task_id in (r.json or {}).get("ids", [])
    ]


async def wait_covered(world: World, count: int, timeout: float) -> None:
    """Until every seeded task has been polled at least once (the first cycle is over)."""
    deadline = time.monotonic() + timeout
    seen: set[str] = set()
    done = 0
    while len(seen) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the first cycle covered {len(seen)} of {count} tasks")
        requests = world.sim.requests_to("/mj/task/list-by-condition")
        for r in requests[done:]:
            seen.update((r.json or {}).get("ids", []))
        done = len(requests)
        await asyncio.sleep(0.5)


async def measure_tracking(count: int, *, idle: float, changing: float) -> Tracking:
    out = Tracking(count)
    async with World(discord_process=True) as world:
        await world.seed(count)
        await world.start_bot(MJ_POLL_INTERVAL=str(POLL_INTERVAL))
        await wait_covered(world, count, timeout=120)
        await asyncio.sleep(POLL_INTERVAL)  # the second cycle: every snapshot is known now

        cpu0, t0 = world.cpu_seconds(), time.monotonic()
        await asyncio.sleep(idle)
        out.idle_share = (world.cpu_seconds() - cpu0) / (time.monotonic() - t0)

        discord0 = await world.call_count()
        cpu0, t0 = world.cpu_seconds(), time.monotonic()
        ticks = max(1, round(changing / CHANGE_EVERY))
        for tick in range(ticks):
            await world.advance_all()
            await asyncio.sleep(max(0.0, t0 + (tick + 1) * CHANGE_EVERY - time.monotonic()))
        out.changing_share = (world.cpu_seconds() - cpu0) / (time.monotonic() - t0)
        out.discord_window = most_in_window(bot_token_calls(await world.calls(discord0)))
        out.peak_rss_mb = world.rss_mb()

        planned = planned_cycle(count)
        probes = [world.jobs[0][1], world.jobs[len(world.jobs) // 2][1], world.jobs[-1][1]]
        gaps = []
        for task_id in probes:
            times = poll_times(world, task_id, t0 - idle)
            gaps += [b - a for a, b in itertools.pairwise(times)]
        out.stretch = max(gaps, default=float("inf")) / planned
        out.notes.append(
            f"{count:,} jobs: planned cycle {planned:.1f} s, longest gap between polls of one "
            f"task {max(gaps, default=0):.1f} s over {len(gaps)} gaps"
        )
    return out


async def measure_finishes(count: int, *, channels: int) -> tuple[float, int, str]:
    """Seconds from `count` tasks finishing at once to the last finish post, and the most
    bot-token calls in any second meanwhile. Callbacks on (upstream servers send them), so the
    figure is the bot's delivery, not the polling interval's wait."""
    async with World(discord_process=True) as world:
        await world.seed(count, channels=channels, callbacks=True)
        await world.start_bot(
            MJ_POLL_INTERVAL=str(POLL_INTERVAL),
            PUBLIC_BASE_URL=f"http://127.0.0.1:{world.port}",
            WEBHOOK_SECRET=SECRET,
        )
        await wait_covered(world, count, timeout=60)
        discord0 = await world.call_count()
        start = time.monotonic()
        await world.complete_all()

        # Only the calls since the last look: the whole list, dumped on the emulator's loop
        # every half second, stalled it for longer each time and bunched the arrivals it
        # timestamps behind the stall. A call is recorded as it arrives and completed when
        # answered (status 0 until then), so the next look starts at the first unanswered one.
        seen: list[Call] = []
        done: list[float] = []
        deadline = start + 180
        while len(done) < count and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            new = await world.calls(discord0 + len(seen))
            answered = next((i for i, c in enumerate(new) if not c.status), len(new))
            seen += new[:answered]
            done += [
                c.at
                for c in new[:answered]
                if c.method == "POST" and c.path.endswith("/messages") and "-# job " in c.content
            ]
        if len(done) < count:
            return float("inf"), 0, f"only {len(done)} of {count} finish posts within 180 s"
        made = [c for c in seen if c.bot_token and c.at <= max(done)]
        calls = [c.at for c in made]
        window = most_in_window(calls)
        edits = sum(c.method == "PATCH" for c in made)
        limited = sum(c.status == 429 for c in made)
        note = (
            f"{count:,} finishes (callbacks on, {channels} channels): first post "
            f"{min(done) - start:.1f} s after SUCCESS, last {max(done) - start:.1f} s; "
            f"{len(calls):,} bot calls ({edits} status edits, {limited} answered 429) until "
            f"the last post; most in any 1 s: {window}"
        )
        return max(done) - start, window, note


async def run(jobs: int, idle: float, changing: float) -> list[tuple[str, float, str, bool]]:
    """The goal rows: (name, measured, shown goal, met)."""
    small = await measure_tracking(100, idle=min(idle, 15), changing=min(changing, 20))
    print("  measured tracking at 100 jobs", file=sys.stderr)
    big = await measure_tracking(jobs, idle=idle, changing=changing)
    print(f"  measured tracking at {jobs:,} jobs", file=sys.stderr)
    finish_s, finish_window, finish_note = await measure_finishes(1000, channels=500)
    print("  measured 1,000 finishes", file=sys.stderr)
    per_job_kb = (big.peak_rss_mb - small.peak_rss_mb) * 1024 / (jobs - 100)
    for note in (*small.notes, *big.notes, finish_note):
        print(f"    {note}")
    print(
        f"    peak RSS: {small.peak_rss_mb:.0f} MB at 100 jobs, {big.peak_rss_mb:.0f} MB at "
        f"{jobs:,}; CPU share at 100 jobs: idle {small.idle_share:.1%}, changing "
        f"{small.changing_share:.1%}"
    )
    window = max(big.discord_window, finish_window)
    print(
        f"    most bot calls in any 1 s: {big.discord_window} while {jobs:,} tasks moved, "
        f"{finish_window} during the finishes"
    )
    return [
        ("tracking-idle", big.idle_share * 100, "≤ 2% of a core", big.idle_share <= 0.02),
        (
            "tracking-changing",
            big.changing_share * 100,
            "≤ 10% of a core",
            big.changing_share <= 0.10,
        ),
        ("cycle-stretch", big.stretch, "≤ 1.2× planned", big.stretch <= 1.2),
        ("memory-per-job", per_job_kb, "≤ 2 KB", per_job_kb <= 2.0),
        ("discord-window", float(window), "≤ 45 calls in any 1 s", window <= 45),
        ("finish-1000", finish_s, "≤ 25 s", finish_s <= 25.0),
    ]


def format_goal(name: str, measured: float, goal: str, met: bool) -> str:
    units = {
        "tracking-idle": f"{measured:.2f}% of a core",
        "tracking-changing": f"{measured:.2f}% of a core",
        "cycle-stretch": f"{measured:.2f}× planned",
        "memory-per-job": f"{measured:.2f} KB",
        "discord-window": f"{measured:.0f} calls in 1 s",
        "finish-1000": f"{measured:.1f} s",
    }
    shown = units.get(name, f"{measured:.2f}")
    return f"goal {name}: {shown} ({goal}) {'met' if met else 'missed'}"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--idle", type=float, default=30.0, help="seconds measured idle")
    parser.add_argument("--changing", type=float, default=30.0, help="seconds measured moving")
    args = parser.parse_args()
    configure("ERROR")
    for row in await run(args.jobs, args.idle, args.changing):
        print(format_goal(*row))


if __name__ == "__main__":
    asyncio.run(main())
