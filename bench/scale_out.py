"""Scaling out (issue 13): API requests and CPU per bot process for 10,000 tracked jobs, with
three processes (shards 0, 1 and 2 of 3) against one process running all three shards, on one
PostgreSQL database.

    python -m bench.scale_out [--jobs 10000] [--seconds 40] [--pairs 1]

The Discord emulator (three shards, one server on each) and the Midjourney-proxy simulator run
in this process; each bot is its own process (`python -m bot`). The jobs are written straight
into a fresh PostgreSQL database and their tasks into the simulator (running, never finishing),
spread over the three servers; every task moves on every 10 s, so tracking has changes to
apply. Each process is given its own mode prefix of the same API (`/mj-fast`, `/mj-relax`,
`/mj-turbo`), so the simulator tells whose request each is. CPU is the process's user + system
time from /proc. Each figure is per minute, the median over 10-second slices of the window;
the baseline (one process) is measured in the same run, on the same database, right before,
after one unmeasured run (the first process on a fresh ledger does more than any later one).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import insert

from bench.world import TICK
from bot.adapters.storage import open_storage
from bot.adapters.storage.jobs import _values
from bot.adapters.storage.schema import jobs as jobs_table
from bot.core.jobs import Job, JobStatus, Mode, Route
from bot.sandbox.discord import DiscordEmulator
from bot.sandbox.discord.messages import compose_message
from bot.sandbox.discord.rest import store_message
from bot.sandbox.mjproxy import MjProxySimulator
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get(
    "MJCORD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
SHARDS = 3
PREFIXES = ("/mj-fast", "/mj-relax", "/mj-turbo")
SLICE = 10.0  # seconds per sample; every task moves on once per slice
WARM_UP = 20.0  # the first cycles read every job; not measured
LEADS = "this process now leads tracking"


@dataclass
class Proc:
    """One bot process and its samples."""

    prefix: str
    shards: str
    log: Path
    proc: asyncio.subprocess.Process | None = None
    api: list[float] = field(default_factory=list)  # requests per minute, per slice
    cpu: list[float] = field(default_factory=list)  # CPU-s per minute, per slice

    def cpu_seconds(self) -> float:
        assert self.proc is not None
        stat = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(stat[11]) + int(stat[12])) / TICK

    @property
    def leads(self) -> bool:
        return self.log.exists() and LEADS in self.log.read_text(errors="replace")

    @property
    def role(self) -> str:
        return "leader" if self.leads else "standby"


class Fleet:
    """The stand-ins, the database and the seeded jobs; bot processes come and go."""

    def __init__(self, jobs: int) -> None:
        self.count = jobs
        self.emu = DiscordEmulator(shards=SHARDS)
        self.sim = MjProxySimulator(profile="upstream", api_key="bench-key")
        self.sim.faults.never_finish = True
        self.dir = Path(tempfile.mkdtemp(prefix="mjcord-scale-"))
        self.db_name = f"mjcord_bench_{uuid.uuid4().hex[:12]}"
        self.db_url = POSTGRES_URL.rsplit("/", 1)[0] + f"/{self.db_name}"
        self.guilds: list[int] = []
        self.task_ids: list[str] = []

    async def __aenter__(self) -> Fleet:
        admin = await asyncpg.connect(POSTGRES_URL)
        try:
            await admin.execute(f"CREATE DATABASE {self.db_name}")
        finally:
            await admin.close()
        await self.emu.start()
        await self.sim.start()
        first = (self.emu.guild_id >> 22) % SHARDS
        by_shard = {first: self.emu.guild_id}
        for shard in range(SHARDS):
            if shard not in by_shard:
                by_shard[shard] = self.emu.add_guild(f"server {shard}", shard=(shard, SHARDS))
        self.guilds = [by_shard[s] for s in range(SHARDS)]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.sim.stop()
        await self.emu.stop()
        admin = await asyncpg.connect(POSTGRES_URL)
        try:
            await admin.execute(f"DROP DATABASE IF EXISTS {self.db_name} WITH (FORCE)")
        finally:
            await admin.close()

    async def seed(self, per_guild_channels: int = 20) -> None:
        """The jobs: tasks running in the simulator, rows in the ledger, status messages spread
        over channels of the three servers (so every shard's server has jobs)."""
        self.task_ids = self.sim.seed_running(
            self.count, states=[f"mjcord:{i + 1}" for i in range(self.count)]
        )
        places = [
            (guild, self.emu.add_channel(f"bench-{n}", guild_id=guild))
            for guild in self.guilds
            for n in range(per_guild_channels)
        ]
        users = {g: self.emu.add_user(f"member {g}", guild_id=g) for g in self.guilds}
        now = datetime.now(UTC)
        rows = []
        for i, task_id in enumerate(self.task_ids):
            guild, channel = places[i % len(places)]
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
                    guild_id=guild,
                    channel_id=channel,
                    requester_id=users[guild],
                    reply_message_id=int(status["id"]),
                    status_message_id=int(status["id"]),
                    no_thread=True,
                ),
                mode=Mode.MID_JOURNEY,
                prompt=f"seeded task {i}",
                final_prompt=f"seeded task {i}",
                task_id=task_id,
                status=JobStatus.IN_PROGRESS,
                created_at=now,
                updated_at=now,
            )
            rows.append(_values(job))
        storage = await open_storage(self.db_url)
        try:
            async with storage.engine.begin() as conn:
                for start in range(0, len(rows), 2000):
                    await conn.execute(insert(jobs_table), rows[start : start + 2000])
        finally:
            await storage.close()

    def env(self, prefix: str, shards: str) -> dict[str, str]:
        return {
            **os.environ,
            "DISCORD_TOKEN": self.emu.token,
            "DISCORD_API_BASE_URL": self.emu.api_base_url,
            "DISCORD_GATEWAY_URL": self.emu.gateway_url,
            "DEV_GUILD_ID": "",
            "MJ_API_BASE_URL": self.sim.base_url + prefix,
            "MJ_API_KEY": "bench-key",
            "MJ_AUTH_STYLE": "mj-api-secret",
            "DATABASE_URL": self.db_url,
            "PORT": str(free_port()),
            "MJ_POLL_INTERVAL": "3",
            "SHARD_COUNT": str(SHARDS),
            "SHARD_IDS": shards,
            "LOG_LEVEL": "INFO",
        }

    async def start(self, layout: list[str], tag: str) -> list[Proc]:
        """One process per entry of `layout` (its SHARD_IDS), ready and one of them leading."""
        procs = []
        for n, shards in enumerate(layout):
            p = Proc(PREFIXES[n], shards, self.dir / f"{tag}-{n}.log")
            with p.log.open("ab") as out:
                p.proc = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "bot",
                    cwd=ROOT,
                    env=self.env(p.prefix, shards),
                    stdout=out,
                    stderr=out,
                )
            procs.append(p)
        deadline = time.monotonic() + 120
        while not (
            all("mjcord is ready" in p.log.read_text(errors="replace") for p in procs)
            and any(p.leads for p in procs)
        ):
            if time.monotonic() > deadline:
                raise TimeoutError("the bot processes did not get ready")
            await asyncio.sleep(0.2)
        return procs

    async def stop(self, procs: list[Proc]) -> None:
        for p in procs:
            if p.proc is not None and p.proc.returncode is None:
                p.proc.send_signal(signal.SIGTERM)
        for p in procs:
            if p.proc is None:
                continue
            try:
                await asyncio.wait_for(p.proc.wait(), 15)
            except TimeoutError:
                p.proc.kill()
                await p.proc.wait()

    def api_count(self, prefix: str) -> int:
        return sum(1 for r in self.sim.requests if r.path.startswith(prefix + "/"))

    async def advance_all(self) -> None:
        """Every task moves on one step (in slices: the emulator shares this loop)."""
        for n, task_id in enumerate(self.task_ids):
            self.sim.advance(task_id)
            if n % 200 == 199:
                await asyncio.sleep(0)

    async def measure(self, layout: list[str], tag: str, seconds: float) -> list[Proc]:
        procs = await self.start(layout, tag)
        try:
            await asyncio.sleep(WARM_UP)
            cpu = [p.cpu_seconds() for p in procs]
            api = [self.api_count(p.prefix) for p in procs]
            for _ in range(max(1, round(seconds / SLICE))):
                await self.advance_all()
                await asyncio.sleep(SLICE)
                for n, p in enumerate(procs):
                    now_cpu, now_api = p.cpu_seconds(), self.api_count(p.prefix)
                    p.cpu.append((now_cpu - cpu[n]) * 60 / SLICE)
                    p.api.append((now_api - api[n]) * 60 / SLICE)
                    cpu[n], api[n] = now_cpu, now_api
        finally:
            await self.stop(procs)
        return procs


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def report(name: str, procs: list[Proc]) -> tuple[float, float]:
    """Print one line per process; return the totals (API req/min, CPU-s/min) of the medians."""
    total_api = total_cpu = 0.0
    for p in procs:
        api, cpu = median(p.api), median(p.cpu)
        total_api += api
        total_cpu += cpu
        print(
            f"  {name:<11} shards {p.shards or '0-2':<5} {p.role:<8} "
            f"API {api:7.0f} req/min   CPU {cpu:5.2f} s/min ({cpu / 60:5.1%} of a core)",
            flush=True,
        )
    return total_api, total_cpu


async def run(jobs: int, seconds: float, pairs: int) -> None:
    async with Fleet(jobs) as fleet:
        print(f"seeding {jobs} jobs over {SHARDS} servers (one per shard) …", flush=True)
        await fleet.seed()
        # The first process on a fresh ledger does more than any later one (its first reads
        # of every job and task): a run that is not measured brings both to a steady state.
        print("warm-up run (not measured) …", flush=True)
        await fleet.measure([""], "warm-up", SLICE)
        singles: list[tuple[float, float]] = []
        triples: list[tuple[float, float]] = []
        per_role: dict[str, list[tuple[float, float]]] = {"leader": [], "standby": []}
        for pair in range(pairs):
            one = await fleet.measure([""], f"one-{pair}", seconds)
            print(f"pair {pair + 1}: one process (all shards)", flush=True)
            singles.append(report("1 process", one))
            three = await fleet.measure(["0", "1", "2"], f"three-{pair}", seconds)
            print(f"pair {pair + 1}: three processes (one shard each)", flush=True)
            triples.append(report("3 processes", three))
            for p in three:
                per_role[p.role].append((median(p.api), median(p.cpu)))
        api1 = median([a for a, _ in singles])
        cpu1 = median([c for _, c in singles])
        api3 = median([a for a, _ in triples])
        cpu3 = median([c for _, c in triples])
        lead_api = median([a for a, _ in per_role["leader"]])
        lead_cpu = median([c for _, c in per_role["leader"]])
        stand_api = median([a for a, _ in per_role["standby"]])
        stand_cpu = median([c for _, c in per_role["standby"]])
        print(
            f"scale-out, {jobs} jobs: 1 process {api1:.0f} API req/min, {cpu1:.2f} CPU-s/min; "
            f"3 processes {api3:.0f} API req/min ({api3 / api1 if api1 else 0:.2f}x), "
            f"{cpu3:.2f} CPU-s/min in all ({cpu3 / cpu1 if cpu1 else 0:.2f}x): the leader "
            f"{lead_api:.0f} req/min and {lead_cpu:.2f} CPU-s/min, each standby "
            f"{stand_api:.0f} req/min and {stand_cpu:.2f} CPU-s/min",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=40.0, help="measured window per run")
    parser.add_argument("--pairs", type=int, default=1, help="1-process/3-process pairs")
    args = parser.parse_args()
    asyncio.run(run(args.jobs, args.seconds, args.pairs))


if __name__ == "__main__":
    main()
