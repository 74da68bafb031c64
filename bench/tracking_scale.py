"""Tracking at scale: what the bot costs while it tracks 100, 1,000 and 10,000 unfinished jobs,
and how soon a finished image is posted with callbacks and with polling.

    python -m bench.tracking_scale [--window SECONDS] [--sizes 100,1000,10000]

The bot runs as its own process (`python -m bot`, so its CPU time and memory are its own)
against the Midjourney-proxy simulator (upstream profile) in this process and the Discord
emulator in one of its own, on loopback (`bench.world`). Jobs are written straight into the
bot's database and their tasks straight into the simulator (running, never finishing); each job
has a status message in one of 50 channels. During each measuring window every task moves on
twice (two progress changes per job).

For each size, two runs:
* `list`: the bot as shipped, one list-by-condition request per chunk of 100 ids per cycle;
* `fetch`: the baseline: the simulator answers list-by-condition with 404, so the same bot
  falls back to one fetch per job per cycle.

Then, with 1,000 jobs tracked, tasks are finished one at a time and the time from the API's
SUCCESS to the finish post reaching the emulator is measured, with callbacks (PUBLIC_BASE_URL
set; polling every 15 s as a safety net) and with polling alone (every 3 s).

Every wait is bounded; the whole run takes about four minutes with the defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import statistics
import sys
import time
from dataclasses import dataclass

from bench.common import percentile
from bench.world import SECRET, World
from bot.log import configure

POLL_INTERVAL = 3.0


@dataclass
class Figures:
    label: str
    jobs: int
    api_per_min: float
    cpu_s: float
    window_s: float
    rss_mb: float
    discord_calls: int
    api_kinds: dict[str, int]


def callback_env(world: World, callbacks: bool) -> dict[str, str]:
    """The bot's settings for callbacks on (polling every 15 s as a safety net) or off."""
    return {
        "MJ_POLL_INTERVAL": str(POLL_INTERVAL),
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{world.port}" if callbacks else "",
        "WEBHOOK_SECRET": SECRET if callbacks else "",
    }


def _kind(path: str) -> str:
    if path.endswith("/fetch"):
        return "fetch"
    return path.rsplit("/", 1)[-1]


async def measure_tracking(count: int, *, baseline: bool, window: float) -> Figures:
    async with World(discord_process=True) as world:
        await world.seed(count, callbacks=False)
        if baseline:
            world.sim.faults.list_by_condition_status = 404
        await world.start_bot(**callback_env(world, False))
        await asyncio.sleep(2.0)  # the first cycle (and the fallback's discovery) settle
        api0, discord0 = len(world.sim.requests), await world.call_count()
        cpu0, t0 = world.cpu_seconds(), time.monotonic()
        for fraction in (1 / 3, 2 / 3):
            await asyncio.sleep(max(0.0, t0 + window * fraction - time.monotonic()))
            await world.advance_all()  # every job's progress moves on
        await asyncio.sleep(max(0.0, t0 + window - time.monotonic()))
        elapsed = time.monotonic() - t0
        cpu = world.cpu_seconds() - cpu0
        api = world.sim.requests[api0:]
        kinds: dict[str, int] = {}
        for r in api:
            kinds[_kind(r.path)] = kinds.get(_kind(r.path), 0) + 1
        return Figures(
            label="fetch per job (baseline)" if baseline else "list-by-condition",
            jobs=count,
            api_per_min=len(api) / elapsed * 60,
            cpu_s=cpu,
            window_s=elapsed,
            rss_mb=world.rss_mb(),
            discord_calls=await world.call_count() - discord0,
            api_kinds=kinds,
        )


async def measure_latency(*, callbacks: bool, background: int, samples: int) -> list[float]:
    """Seconds from the API's SUCCESS to the finish post, for `samples` jobs finished one by
    one at random moments while `background` jobs are tracked."""
    async with World(discord_process=True) as world:
        await world.seed(background, callbacks=callbacks)
        await world.start_bot(**callback_env(world, callbacks))
        await asyncio.sleep(3.5)  # past the first cycle
        rng = random.Random(7)
        latencies = []
        for job_id, task_id, channel in rng.sample(world.jobs, samples):
            await asyncio.sleep(rng.uniform(0.2, 1.5))  # land anywhere in a polling cycle
            since = await world.call_count()
            start = time.monotonic()
            world.sim.complete(task_id)
            marker = f"job {job_id} "
            deadline = start + 40
            arrived = None
            while arrived is None:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the post of job {job_id}")
                await asyncio.sleep(0.05)
                arrived = next(
                    (
                        c.at
                        for c in await world.calls(since)
                        if c.method == "POST"
                        and c.path.endswith(f"/channels/{channel}/messages")
                        and marker in c.content
                    ),
                    None,
                )
            latencies.append(arrived - start)
        return latencies


def _print_tracking(rows: list[Figures]) -> None:
    print(
        "| jobs | tracking | API requests/min | bot CPU s per min | bot peak RSS MB "
        "| Discord REST calls/job (window) | Discord calls/s |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|")
    for f in rows:
        per_min = 60 / f.window_s
        print(
            f"| {f.jobs:,} | {f.label} | {f.api_per_min:,.0f} | {f.cpu_s * per_min:.1f} "
            f"| {f.rss_mb:.0f} | {f.discord_calls / f.jobs:.2f} "
            f"| {f.discord_calls / f.window_s:.1f} |"
        )
    print()
    for f in rows:
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(f.api_kinds.items()))
        print(f"    {f.jobs:>6,} {f.label}: API requests in {f.window_s:.0f} s: {kinds}")


def _print_latency(name: str, values: list[float]) -> None:
    ms = [v * 1000 for v in values]
    print(
        f"| {name} | {len(ms)} | {statistics.median(ms):,.0f} | {percentile(ms, 90):,.0f} "
        f"| {max(ms):,.0f} |"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--window", type=float, default=20.0, help="seconds measured per run")
    parser.add_argument("--sizes", default="100,1000,10000", help="job counts, comma-separated")
    parser.add_argument("--samples", type=int, default=8, help="jobs finished per latency run")
    args = parser.parse_args()
    configure("ERROR")
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"tracking window {args.window:.0f} s per run; poll interval 3 s; chunk 100 ids\n")
    rows = []
    for count in sizes:
        for baseline in (False, True):
            rows.append(await measure_tracking(count, baseline=baseline, window=args.window))
            print(f"  measured {count:,} jobs, {rows[-1].label}", file=sys.stderr)
    _print_tracking(rows)
    print()
    print("SUCCESS → finish post, with 1,000 jobs tracked:\n")
    print("| tracking | jobs finished | p50 ms | p90 ms | max ms |")
    print("|---|---:|---:|---:|---:|")
    with contextlib.suppress(KeyboardInterrupt):
        _print_latency(
            "callbacks (+ polling every 15 s)",
            await measure_latency(callbacks=True, background=1000, samples=args.samples),
        )
        _print_latency(
            "polling every 3 s",
            await measure_latency(callbacks=False, background=1000, samples=args.samples),
        )


if __name__ == "__main__":
    asyncio.run(main())
