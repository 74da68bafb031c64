"""Helpers to run the real discord.py client against the Discord emulator over loopback.

Only two class attributes point discord.py elsewhere (``Route.BASE`` and
``DiscordWebSocket.DEFAULT_GATEWAY``); they are patched with pytest's ``monkeypatch`` so every
test gets its own emulator and bot, and nothing leaks between tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import discord
import discord.gateway
import discord.http
import pytest
import yarl
from discord.ext import commands
from PIL import Image

from bot.sandbox.discord import DiscordEmulator


def png_bytes(
    width: int = 4, height: int = 3, color: tuple[int, int, int] = (200, 30, 30)
) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, format="PNG")
    return buf.getvalue()


def point_discord_at(emu: DiscordEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(discord.http.Route, "BASE", emu.api_base_url)
    monkeypatch.setattr(
        discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(emu.gateway_url)
    )


class _QuickBot(commands.Bot):
    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        # discord.py sleeps 5 s before every re-IDENTIFY (Discord's identify rate limit); the
        # emulator has no such limit, and the documented hook is the place to skip the wait.
        return None


def new_bot() -> commands.Bot:
    # guild_ready_timeout: discord.py otherwise waits 2 s after the last GUILD_CREATE per start.
    return _QuickBot(
        command_prefix="!", intents=discord.Intents.default(), guild_ready_timeout=0.01
    )


class BotRun:
    """A started bot whose task is watched: a crash in discord.py fails the waiting test."""

    def __init__(self, emu: DiscordEmulator, bot: commands.Bot, task: asyncio.Task[None]) -> None:
        self.emu = emu
        self.bot = bot
        self.task = task

    def check(self) -> None:
        if self.task.done():
            exc = self.task.exception()
            if exc is not None:
                raise exc
            raise RuntimeError("the bot stopped unexpectedly")

    async def wait(
        self, predicate: Callable[[], bool], timeout: float = 5.0, what: str = ""
    ) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            self.check()
            if time.monotonic() > deadline:
                tail = ", ".join(
                    f"{r.method} {r.route} -> {r.status}" for r in self.emu.requests[-6:]
                )
                raise TimeoutError(
                    f"{what or predicate!r} not met in {timeout}s; last requests: {tail}"
                )
            await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def running_bot(
    emu: DiscordEmulator, bot: commands.Bot, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[BotRun]:
    point_discord_at(emu, monkeypatch)
    task: asyncio.Task[None] = asyncio.create_task(bot.start(emu.token))
    run = BotRun(emu, bot, task)
    try:
        await run.wait(bot.is_ready, timeout=10.0, what="bot ready")
        yield run
        run.check()
    finally:
        await bot.close()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def errors_recorder(bot: commands.Bot) -> list[BaseException]:
    """Collect exceptions raised inside app command callbacks (discord.py only logs them)."""
    errors: list[BaseException] = []

    async def on_error(interaction: discord.Interaction, error: Exception) -> None:
        errors.append(getattr(error, "original", error))

    bot.tree.on_error = on_error  # type: ignore[method-assign]
    return errors


def sync_on_setup(bot: commands.Bot, *, guild: int | None = None) -> None:
    async def setup_hook() -> None:
        if guild is None:
            await bot.tree.sync()
        else:
            bot.tree.copy_global_to(guild=discord.Object(guild))
            await bot.tree.sync(guild=discord.Object(guild))

    bot.setup_hook = setup_hook  # type: ignore[method-assign]


def spec_state(emu: DiscordEmulator) -> dict[str, Any]:
    """What every test asserts at the end: no unknown routes and no OpenAPI violations."""
    return {"unhandled": [(r.method, r.path) for r in emu.unhandled], "violations": emu.violations}
