"""`python -m bot.sandbox.discord` as a subprocess, with the real discord.py client connecting."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import AsyncIterator

import discord
import discord.gateway
import discord.http
import pytest
import yarl
from discord.ext import commands

from tests.conftest import free_port

REQUIRED = (
    "DISCORD_API_BASE_URL",
    "DISCORD_GATEWAY_URL",
    "DISCORD_TOKEN",
    "GUILD_ID",
    "CHANNEL_ID",
)


@contextlib.asynccontextmanager
async def standalone(
    *args: str,
) -> AsyncIterator[tuple[asyncio.subprocess.Process, dict[str, str]]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.sandbox.discord",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        first = await asyncio.wait_for(proc.stdout.readline(), timeout=30)
        line = first.decode().rstrip("\n")
        pairs = dict(item.split("=", 1) for item in line.split(" "))
        yield proc, pairs
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


class Quick(commands.AutoShardedBot):
    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        return None  # discord.py waits 5 s between shards' IDENTIFYs; the emulator needs none


async def _ready(bot: commands.Bot, task: asyncio.Task[None], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not bot.is_ready():
        if task.done():
            task.result()
            raise AssertionError("the bot stopped before READY")
        assert time.monotonic() < deadline, "bot not ready in time"
        await asyncio.sleep(0.02)


async def test_serves_one_world_until_sigterm(monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    async with standalone("--port", str(port), "--shards", "2", "--guilds", "3") as (proc, env):
        # The first line's format is a contract: KEY=value pairs, these keys first.
        assert list(env)[: len(REQUIRED)] == list(REQUIRED)
        assert env["DISCORD_API_BASE_URL"] == f"http://127.0.0.1:{port}/api/v10"
        assert env["DISCORD_GATEWAY_URL"] == f"ws://127.0.0.1:{port}/gateway"
        guild_ids = [int(g) for g in env["GUILD_IDS"].split(",")]
        assert len(guild_ids) == 3 and guild_ids[0] == int(env["GUILD_ID"])

        monkeypatch.setattr(discord.http.Route, "BASE", env["DISCORD_API_BASE_URL"])
        monkeypatch.setattr(
            discord.gateway.DiscordWebSocket,
            "DEFAULT_GATEWAY",
            yarl.URL(env["DISCORD_GATEWAY_URL"]),
        )
        bot = Quick(command_prefix="!", intents=discord.Intents.default(), guild_ready_timeout=0.01)
        task = asyncio.create_task(bot.start(env["DISCORD_TOKEN"]))
        try:
            await _ready(bot, task)
            assert bot.shard_count == 2  # from GET /gateway/bot
            assert sorted(g.id for g in bot.guilds) == sorted(guild_ids)
            channel = bot.get_channel(int(env["CHANNEL_ID"]))
            assert isinstance(channel, discord.TextChannel)
            assert channel.guild.id == int(env["GUILD_ID"])
            sent = await channel.send("hello from a subprocess test")
            fetched = await channel.fetch_message(sent.id)
            assert fetched.content == "hello from a subprocess test"
        finally:
            await bot.close()
            with contextlib.suppress(asyncio.CancelledError):
                await task

        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), timeout=15) == 0
        assert proc.stderr is not None
        tail = (await proc.stderr.read()).decode()
        assert "stopped after" in tail


async def test_sigint_stops_it_cleanly() -> None:
    token = "fixed.token.for-tests"
    async with standalone("--port", "0", "--latency-ms", "20", "--token", token) as (proc, env):
        assert env["DISCORD_TOKEN"] == token
        assert env["DISCORD_API_BASE_URL"].startswith("http://127.0.0.1:")
        proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), timeout=15) == 0
