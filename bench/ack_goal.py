"""Acknowledging a burst (issue 12, goal ack-p99-ratio): 200 /imagine, each with a 1 MB image,
from INTERACTION_CREATE sent by the emulator to the defer callback it receives.

mjcord runs as its own process (`python -m bot`) against the emulator and the simulator in this
process; the baseline is a bare discord.py bot whose /imagine only defers (`bench.bare_bot`),
also its own process, against its own emulator here. Bursts alternate, bare then mjcord, for
`--pairs` pairs; the figure is the median of mjcord's p99s over the median of the bare bot's
(goal ≤ 1.1), and mjcord must still submit all 200 as soon as before (16–20 s on this machine).

    python -m bench.ack_goal [--pairs 5] [--burst 200] [--attachment-mb 1]

The in-process figure (emulator in the bot's own loop) stays in `bench.interaction_latency`.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from typing import Any

from bench.common import noise_png, percentile
from bench.interaction_latency import burst
from bench.world import World
from bot.log import configure

#: Unmeasured pairs first: both processes warm (first connections, lazy imports, caches).
WARMUP = 1


def settled(world: World, inters: list[Any], since: int) -> int:
    """Commands of the burst that have been submitted to the API or refused to the member."""
    submitted = len(world.sim.requests_to("/mj/submit/imagine")) - since
    return submitted + sum(1 for i in inters if i.ephemeral_messages)


async def settle(world: World, quiet: float = 1.0, timeout: float = 90.0) -> None:
    """Until the bot has made no Discord call for `quiet` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        last = world.emu.requests[-1].at if world.emu.requests else 0.0
        if time.monotonic() - last >= quiet:
            return
        await asyncio.sleep(0.2)


async def run(pairs: int, size: int, attachment: bytes) -> tuple[float, list[str]]:
    lines: list[str] = []
    bare_p99: list[float] = []
    ours_p99: list[float] = []
    submit_spans: list[float] = []
    async with World() as bare, World() as ours:  # Discord's rate limits on, for both
        await bare.start_bot("bench.bare_bot")
        await ours.start_bot(MJ_POLL_INTERVAL="3")
        for n in range(-WARMUP, pairs):  # the warm-up pairs (n < 0) are not counted
            lat = await burst(bare.emu, size, attachment)
            bare_p99.append(percentile(lat, 99))
            since = len(ours.sim.requests_to("/mj/submit/imagine"))
            inters: list[Any] = []
            start = time.monotonic()
            lat_ours = await burst(ours.emu, size, attachment, keep=inters)
            ours_p99.append(percentile(lat_ours, 99))
            await ours.emu.wait_for(
                lambda i=inters, s=since: settled(ours, i, s) >= size,  # type: ignore[misc]
                timeout=180,
                what="the burst",
            )
            submits = ours.sim.requests_to("/mj/submit/imagine")[since:]
            span = max((r.at for r in submits), default=start) - start
            # The next burst meets an idle bot, as the bare one is: its replies, threads and
            # status messages for this burst are all out first.
            await settle(ours)
            # The emulator walks every thread on every request (to archive idle ones): the
            # bare bot opens none, so the threads of earlier bursts would slow only mjcord's
            # measured acknowledgements. Each pair starts with none (the jobs keep running).
            for thread in [c for c, ch in ours.emu.channels.items() if ch.get("type") == 11]:
                del ours.emu.channels[thread]
            if n < 0:
                bare_p99.pop(), ours_p99.pop()
                print(
                    f"  warm-up pair: bare p99 {percentile(lat, 99):.0f} ms, mjcord p99 "
                    f"{percentile(lat_ours, 99):.0f} ms",
                    file=sys.stderr,
                )
                continue
            submit_spans.append(span)
            lines.append(
                f"pair {n + 1}: bare p99 {bare_p99[-1]:.0f} ms (p50 {statistics.median(lat):.0f}),"
                f" mjcord p99 {ours_p99[-1]:.0f} ms (p50 {statistics.median(lat_ours):.0f}); "
                f"{len(submits)} submitted, the last {span:.1f} s after the burst"
            )
            print(f"  {lines[-1]}", file=sys.stderr)
    ratio = statistics.median(ours_p99) / statistics.median(bare_p99)
    lines.append(
        f"medians: bare p99 {statistics.median(bare_p99):.0f} ms, mjcord p99 "
        f"{statistics.median(ours_p99):.0f} ms; all submitted within "
        f"{statistics.median(submit_spans):.1f} s (median)"
    )
    return ratio, lines


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--attachment-mb", type=float, default=1.0)
    args = parser.parse_args()
    configure("ERROR")
    attachment = noise_png(int(args.attachment_mb * 1024 * 1024))
    ratio, lines = await run(args.pairs, args.burst, attachment)
    for line in lines:
        print(f"    {line}")
    verdict = "met" if ratio <= 1.1 else "missed"
    print(f"goal ack-p99-ratio: {ratio:.2f}× bare discord.py (≤ 1.1×) {verdict}")


if __name__ == "__main__":
    asyncio.run(main())
