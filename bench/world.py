"""A deployment in miniature: the Discord emulator and the Midjourney-proxy simulator in this
process, the bot as its own process (`python -m bot`), so its CPU time and memory are its own.

Jobs can be written straight into the bot's database and their tasks straight into the
simulator (running, never finishing), each with a status message in a channel of its own or
shared.
"""

from __future__ import annotations

import asyncio
import bisect
import os
import signal
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert

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
SECRET = "bench-callback-secret-0123456789"
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def bot_token_calls(emu: DiscordEmulator, since: int = 0) -> list[float]:
    """Arrival times of the REST calls made with the bot's token (interaction callbacks and
    webhooks use the interaction token instead, and are outside the global limit)."""
    return [
        r.at
        for r in emu.requests[since:]
        if "/interactions/" not in r.path and "/webhooks/" not in r.path
    ]


def most_in_window(times: list[float], span: float = 1.0) -> int:
    """The largest number of `times` in any half-open window of `span` seconds."""
    ordered = sorted(times)
    return max(
        (bisect.bisect_left(ordered, t + span) - i for i, t in enumerate(ordered)), default=0
    )


class World:
    """One emulator, one simulator, one database, one bot process."""

    def __init__(
        self, *, profile: str = "upstream", auto_advance: bool = False, rate_limits: bool = True
    ) -> None:
        self.emu = DiscordEmulator(rate_limits=rate_limits)
        self.sim = MjProxySimulator(
            profile=profile,  # type: ignore[arg-type]
            api_key="bench-key",
            auto_advance=auto_advance,
        )
        self.sim.faults.never_finish = True
        self.dir = tempfile.mkdtemp(prefix="mjcord-bench-")
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

    async def seed(self, count: int, *, channels: int = 50, callbacks: bool = False) -> None:
        """`count` running jobs: tasks in the simulator, rows in the ledger, status messages
        spread over `channels` channels."""
        hook = f"http://127.0.0.1:{self.port}/mj/callback/{SECRET}" if callbacks else None
        task_ids = self.sim.seed_running(
            count, notify_hook=hook, states=[f"mjcord:{i + 1}" for i in range(count)]
        )
        places = [self.emu.add_channel(f"bench-{i}") for i in range(channels)]
        user = self.emu.add_user("member")
        now = datetime.now(UTC)
        rows = []
        for i, task_id in enumerate(task_ids):
            channel = places[i % channels]
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

    def env(self, **extra: str) -> dict[str, str]:
        """The bot's environment against the two stand-ins."""
        return {
            **os.environ,
            "DISCORD_TOKEN": self.emu.token,
            "DISCORD_API_BASE_URL": self.emu.api_base_url,
            "DISCORD_GATEWAY_URL": self.emu.gateway_url,
            "DEV_GUILD_ID": str(self.emu.guild_id),
            "MJ_API_BASE_URL": self.sim.base_url,
            "MJ_API_KEY": "bench-key",
            "MJ_AUTH_STYLE": "mj-api-secret" if self.sim.profile == "upstream" else "bearer",
            "DATABASE_URL": self.db_url,
            "PORT": str(self.port),
            "MJ_POLL_INTERVAL": "3",
            "LOG_LEVEL": os.environ.get("BENCH_BOT_LOG", "ERROR"),
            **extra,
        }

    async def start_bot(self, *args: str, **extra: str) -> None:
        """`python -m bot` (or `python -m <args>`), waiting until its commands are synced."""
        module = list(args) or ["bot"]
        with Path(f"{self.dir}/bot.log").open("ab") as log:  # noqa: ASYNC230 - set-up only
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                *module,
                cwd=ROOT,
                env=self.env(**extra),
                stdout=log,
                stderr=log,
            )
        await self.emu.wait_for(lambda: bool(self.emu.guild_commands), timeout=90, what="sync")

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
        """The bot's user + system CPU time so far."""
        assert self.proc is not None
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK

    def rss_mb(self, peak: bool = True) -> float:
        """The bot's resident set (peak by default), MB."""
        assert self.proc is not None
        key = "VmHWM:" if peak else "VmRSS:"
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) / 1024
        return 0.0

    async def advance_all(self) -> None:
        """Every seeded task's progress moves one step on (in slices: the emulator shares this
        loop, and one long stall would bunch the arrival times it records)."""
        for n, task in enumerate(list(self.sim.tasks.values())):
            self.sim._book.step(task)
            if n % 200 == 199:
                await asyncio.sleep(0)

    async def complete_all(self) -> None:
        """Every seeded task finishes now (in slices, as above)."""
        for n, (_, task_id, _) in enumerate(self.jobs):
            self.sim.complete(task_id)
            if n % 200 == 199:
                await asyncio.sleep(0)

    def log_tail(self, lines: int = 20) -> str:
        text = Path(f"{self.dir}/bot.log").read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])
