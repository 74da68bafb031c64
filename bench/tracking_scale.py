"""Tracking at scale: what the bot costs while it tracks 100, 1,000 and 10,000 unfinished jobs,
and how soon a finished image is posted with callbacks and with polling.

    python -m bench.tracking_scale [--window SECONDS] [--sizes 100,1000,10000]

The bot runs as its own process (`python -m bot`, so its CPU time and memory are its own)
against the Discord emulator and the Midjourney-proxy simulator (upstream profile) on loopback,
both in this process. Jobs are written straight into the bot's database and their tasks straight
into the simulator (running, never finishing); each job has a status message in one of 50
channels. During each measuring window every task moves on twice (two progress changes per job).

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
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert

from bench.common import percentile
from bot.adapters.storage import open_storage
from bot.adapters.storage.jobs import _values
from bot.adapters.storage.schema import jobs as jobs_table
from bot.core.jobs import Job, JobStatus, Mode, Route
from bot.log import configure
from bot.sandbox.discord import DiscordEmulator
from bot.sandbox.discord.messages import compose_message
from bot.sandbox.discord.rest import store_message
from bot.sandbox.mjproxy import MjProxySimulator
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
CHANNELS = 50
SECRET = "bench-callback-secret-0123456789"
TICK = os.sysconf("SC_CLK_TCK")


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


class World:
    """One emulator, one simulator, one database, one bot process."""

    def __init__(self) -> None:
        self.emu = DiscordEmulator()
        self.sim = MjProxySimulator(profile="upstream", api_key="bench-key", auto_advance=False)
        self.sim.faults.never_finish = True
        self.dir = tempfile.mkdtemp(prefix="mjcord-scale-")
        self.db_url = f"sqlite:///{self.dir}/bench.db"
        self.port = free_port()
        self.proc: asyncio.subprocess.Process | None = None
        self.jobs: list[tuple[int, str, int]] = []  # (job id, task id, channel id)

    async def __aenter__(self) -> World:
        await self.emu.start()
        await self.sim.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop_bot()
        await self.sim.stop()
        await self.emu.stop()

    async def seed(self, count: int, *, callbacks: bool) -> None:
        """`count` running jobs: tasks in the simulator, rows in the ledger, status messages."""
        hook = f"http://127.0.0.1:{self.port}/mj/callback/{SECRET}" if callbacks else None
        task_ids = self.sim.seed_running(
            count, notify_hook=hook, states=[f"mjcord:{i + 1}" for i in range(count)]
        )
        channels = [self.emu.add_channel(f"bench-{i}") for i in range(CHANNELS)]
        user = self.emu.add_user("member")
        now = datetime.now(UTC)
        rows = []
        for i, task_id in enumerate(task_ids):
            channel = channels[i % CHANNELS]
            status = compose_message(
                self.emu,
                {"content": f"job {i + 1}: running"},
                [],
                channel_id=channel,
                author_id=self.emu.bot_user_id,
            )
            await store_message(self.emu, status, dispatch=False)
            job = Job(
                id=0,
                route=Route(
                    guild_id=self.emu.guild_id,
                    channel_id=channel,
                    requester_id=user,
                    reply_message_id=int(status["id"]),
                    status_message_id=int(status["id"]),
                ),
                mode=Mode.MID_JOURNEY,
                prompt=f"seeded task {i}",
                final_prompt=f"seeded task {i}",  # as the API reports it: no change to absorb
                task_id=task_id,
                status=JobStatus.IN_PROGRESS,
                created_at=now,
                updated_at=now,
            )
            rows.append(_values(job))
            self.jobs.append((i + 1, task_id, channel))
        storage = await open_storage(self.db_url)
        try:
            async with storage.engine.begin() as conn:
                await conn.execute(insert(jobs_table), rows)
        finally:
            await storage.close()

    async def start_bot(self, *, callbacks: bool, poll_interval: float = 3.0) -> None:
        env = {
            **os.environ,
            "DISCORD_TOKEN": self.emu.token,
            "DISCORD_API_BASE_URL": self.emu.api_base_url,
            "DISCORD_GATEWAY_URL": self.emu.gateway_url,
            "DEV_GUILD_ID": str(self.emu.guild_id),
            "MJ_API_BASE_URL": self.sim.base_url,
            "MJ_API_KEY": "bench-key",
            "MJ_AUTH_STYLE": "mj-api-secret",
            "DATABASE_URL": self.db_url,
            "PORT": str(self.port),
            "MJ_POLL_INTERVAL": str(poll_interval),
            "LOG_LEVEL": os.environ.get("BENCH_BOT_LOG", "ERROR"),
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{self.port}" if callbacks else "",
            "WEBHOOK_SECRET": SECRET if callbacks else "",
        }
        with Path(f"{self.dir}/bot.log").open("wb") as log:  # noqa: ASYNC230 - set-up only
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", cwd=ROOT, env=env, stdout=log, stderr=log
            )
        await self.emu.wait_for(lambda: bool(self.emu.guild_commands), timeout=60, what="sync")

    async def stop_bot(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.returncode is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()

    def cpu_seconds(self) -> float:
        assert self.proc is not None
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime

    def rss_mb(self) -> float:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):  # peak resident set size
                return int(line.split()[1]) / 1024
        return 0.0

    def advance_all(self) -> None:
        for task in list(self.sim.tasks.values()):
            self.sim._book.step(task)


def _kind(path: str) -> str:
    if path.endswith("/fetch"):
        return "fetch"
    return path.rsplit("/", 1)[-1]


async def measure_tracking(count: int, *, baseline: bool, window: float) -> Figures:
    async with World() as world:
        await world.seed(count, callbacks=False)
        if baseline:
            world.sim.faults.list_by_condition_status = 404
        await world.start_bot(callbacks=False)
        await asyncio.sleep(2.0)  # the first cycle (and the fallback's discovery) settle
        api0, discord0 = len(world.sim.requests), len(world.emu.requests)
        cpu0, t0 = world.cpu_seconds(), time.monotonic()
        for fraction in (1 / 3, 2 / 3):
            await asyncio.sleep(max(0.0, t0 + window * fraction - time.monotonic()))
            world.advance_all()  # every job's progress moves on
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
            discord_calls=len(world.emu.requests) - discord0,
            api_kinds=kinds,
        )


async def measure_latency(*, callbacks: bool, background: int, samples: int) -> list[float]:
    """Seconds from the API's SUCCESS to the finish post, for `samples` jobs finished one by
    one at random moments while `background` jobs are tracked."""
    async with World() as world:
        await world.seed(background, callbacks=callbacks)
        await world.start_bot(callbacks=callbacks)
        await asyncio.sleep(3.5)  # past the first cycle
        rng = random.Random(7)
        latencies = []
        for job_id, task_id, channel in rng.sample(world.jobs, samples):
            await asyncio.sleep(rng.uniform(0.2, 1.5))  # land anywhere in a polling cycle
            start = time.monotonic()
            world.sim.complete(task_id)

            def posted(channel: int = channel, marker: str = f"job {job_id} ") -> bool:
                return any(
                    r.method == "POST"
                    and r.path.endswith(f"/channels/{channel}/messages")
                    and marker in str((r.json or {}).get("content", ""))
                    for r in reversed(world.emu.requests[-200:])
                )

            await world.emu.wait_for(posted, timeout=40, what=f"the post of job {job_id}")
            arrived = next(
                r.at
                for r in world.emu.requests
                if r.path.endswith(f"/channels/{channel}/messages")
                and f"job {job_id} " in str((r.json or {}).get("content", ""))
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
