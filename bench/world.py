"""A deployment in miniature: the Midjourney-proxy simulator in this process, the Discord
emulator in this process or (`World(discord_process=True)`) in one of its own
(`bench.discord_host`), the bot as its own process (`python -m bot`), so its CPU time and
memory are its own, and the emulator's arrival times are not bunched by the simulator's work.

Jobs can be written straight into the bot's database and their tasks straight into the
simulator (running, never finishing), each with a status message in a channel of its own or
shared.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import os
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from bench.discord_host import content_of
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


@dataclass(frozen=True, slots=True)
class Call:
    """One REST call as the emulator recorded it: arrival (monotonic), method, path, content,
    the HTTP status answered (0 while unanswered)."""

    at: float
    method: str
    path: str
    content: str
    status: int

    @property
    def bot_token(self) -> bool:
        """Made with the bot's token (interaction callbacks and webhooks use the interaction
        token instead, and are outside the global limit)."""
        return "/interactions/" not in self.path and "/webhooks/" not in self.path


def bot_token_calls(calls: list[Call]) -> list[float]:
    """Arrival times of the calls made with the bot's token."""
    return [c.at for c in calls if c.bot_token]


class RemoteDiscord:
    """The Discord emulator in its own process (`python -m bench.discord_host`), driven over
    its stdin and stdout (one JSON line each way per command)."""

    def __init__(self, *, rate_limits: bool = True) -> None:
        self.rate_limits = rate_limits
        self.proc: asyncio.subprocess.Process | None = None
        self.world: dict[str, Any] = {}
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.discord_host",
            "--rate-limits",
            "on" if self.rate_limits else "off",
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=256 * 1024 * 1024,
        )
        assert self.proc.stdout is not None
        self.world = json.loads(await asyncio.wait_for(self.proc.stdout.readline(), 60))

    async def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.returncode is not None:
            return
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()

    async def ask(self, **command: Any) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdin is not None
        assert self.proc.stdout is not None
        async with self._lock:
            self.proc.stdin.write(json.dumps(command).encode() + b"\n")
            await self.proc.stdin.drain()
            answer: dict[str, Any] = json.loads(await self.proc.stdout.readline())
        return answer

    async def calls(self, since: int = 0) -> list[Call]:
        answer = await self.ask(op="calls", since=since)
        return [Call(*c) for c in answer["calls"]]

    async def count(self) -> int:
        return int((await self.ask(op="calls", since=1 << 62))["total"])


def most_in_window(times: list[float], span: float = 1.0) -> int:
    """The largest number of `times` in any half-open window of `span` seconds."""
    ordered = sorted(times)
    return max(
        (bisect.bisect_left(ordered, t + span) - i for i, t in enumerate(ordered)), default=0
    )


class World:
    """One emulator, one simulator, one database, one bot process.

    With `discord_process`, the emulator runs in a process of its own (`remote`), and `emu` is
    None: read its calls with `calls()`, not `emu.requests`.
    """

    def __init__(
        self,
        *,
        profile: str = "upstream",
        auto_advance: bool = False,
        rate_limits: bool = True,
        discord_process: bool = False,
    ) -> None:
        self.emu: DiscordEmulator | None = None
        self.remote: RemoteDiscord | None = None
        if discord_process:
            self.remote = RemoteDiscord(rate_limits=rate_limits)
        else:
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
        if self.remote is not None:
            await self.remote.start()
        else:
            assert self.emu is not None
            await self.emu.start()
        await self.sim.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop_bot()
        await self.sim.stop()
        if self.remote is not None:
            await self.remote.stop()
        if self.emu is not None:
            await self.emu.stop()

    @property
    def discord(self) -> dict[str, Any]:
        """token, api_base_url, gateway_url, guild_id of the emulator."""
        if self.remote is not None:
            return self.remote.world
        assert self.emu is not None
        return {
            "token": self.emu.token,
            "api_base_url": self.emu.api_base_url,
            "gateway_url": self.emu.gateway_url,
            "guild_id": self.emu.guild_id,
        }

    async def calls(self, since: int = 0) -> list[Call]:
        """The REST calls the emulator recorded, from the `since`-th on."""
        if self.remote is not None:
            return await self.remote.calls(since)
        assert self.emu is not None
        return [
            Call(r.at, r.method, r.path, content_of(r.json), r.status)
            for r in self.emu.requests[since:]
        ]

    async def call_count(self) -> int:
        """How many REST calls the emulator has recorded."""
        if self.remote is not None:
            return await self.remote.count()
        assert self.emu is not None
        return len(self.emu.requests)

    async def _status_messages(
        self, channels: int, contents: list[tuple[int, str]]
    ) -> tuple[list[int], int, list[int]]:
        """`channels` channels, a member, and the bot's messages (channel index, content)."""
        if self.remote is not None:
            answer = await self.remote.ask(op="seed", channels=channels, messages=contents)
            return answer["channels"], answer["user"], answer["messages"]
        emu = self.emu
        assert emu is not None
        places = [emu.add_channel(f"bench-{i}") for i in range(channels)]
        user = emu.add_user("member")
        ids = []
        for index, content in contents:
            status = compose_message(
                emu, {"content": content}, [], channel_id=places[index], author_id=emu.bot_user_id
            )
            await store_message(emu, status, dispatch=False)
            ids.append(int(status["id"]))
        return places, user, ids

    async def seed(self, count: int, *, channels: int = 50, callbacks: bool = False) -> None:
        """`count` running jobs: tasks in the simulator, rows in the ledger, status messages
        spread over `channels` channels."""
        hook = f"http://127.0.0.1:{self.port}/mj/callback/{SECRET}" if callbacks else None
        task_ids = self.sim.seed_running(
            count, notify_hook=hook, states=[f"mjcord:{i + 1}" for i in range(count)]
        )
        places, user, messages = await self._status_messages(
            channels, [(i % channels, f"job {i + 1}: running") for i in range(count)]
        )
        guild_id = int(self.discord["guild_id"])
        now = datetime.now(UTC)
        rows = []
        for i, task_id in enumerate(task_ids):
            channel = places[i % channels]
            job = Job(
                id=0,
                route=Route(
                    guild_id=guild_id,
                    channel_id=channel,
                    requester_id=user,
                    reply_message_id=messages[i],
                    status_message_id=messages[i],
                    # Placed: its messages live in the channel. A job with neither a thread nor
                    # `no_thread` is one whose command died midway, and the bot's recovery would
                    # open a thread for each of them, thousands of calls no tracking makes.
                    no_thread=True,
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
        discord = self.discord
        return {
            **os.environ,
            "DISCORD_TOKEN": discord["token"],
            "DISCORD_API_BASE_URL": discord["api_base_url"],
            "DISCORD_GATEWAY_URL": discord["gateway_url"],
            "DEV_GUILD_ID": str(discord["guild_id"]),
            "MJ_API_BASE_URL": self.sim.base_url,
            "MJ_API_KEY": "bench-key",
            "MJ_AUTH_STYLE": "mj-api-secret" if self.sim.profile == "upstream" else "bearer",
            "DATABASE_URL": self.db_url,
            "PORT": str(self.port),
            "MJ_POLL_INTERVAL": "3",
            "LOG_LEVEL": os.environ.get("BENCH_BOT_LOG", "ERROR"),
            **extra,
        }

    async def synced(self) -> bool:
        """Whether the bot has registered its commands at the emulator."""
        if self.remote is not None:
            return bool((await self.remote.ask(op="synced"))["synced"])
        assert self.emu is not None
        return bool(self.emu.guild_commands)

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
        deadline = time.monotonic() + 90
        while not await self.synced():
            if time.monotonic() > deadline or self.proc.returncode is not None:
                raise TimeoutError(f"the bot did not sync its commands:\n{self.log_tail()}")
            await asyncio.sleep(0.2)

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
        """Every seeded task's progress moves one step on (in slices: an emulator sharing this
        loop would record bunched arrival times behind one long stall)."""
        for n, task_id in enumerate(list(self.sim.tasks)):
            self.sim.advance(task_id)
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
