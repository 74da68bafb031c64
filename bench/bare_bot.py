"""The baseline of the acknowledgement benchmark: a bare discord.py bot whose /imagine only
defers, run as its own process the way mjcord is.

    DISCORD_TOKEN=… DISCORD_API_BASE_URL=… DISCORD_GATEWAY_URL=… DEV_GUILD_ID=… \\
        python -m bench.bare_bot
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord_ui.client import point_discord_at


class BareBot(commands.Bot):
    def __init__(self, guild_id: int) -> None:
        super().__init__(
            command_prefix="!", intents=discord.Intents.default(), guild_ready_timeout=0.01
        )
        self.guild_id = guild_id

    async def setup_hook(self) -> None:
        guild = discord.Object(self.guild_id)

        @app_commands.command(name="imagine", description="defer only")
        async def imagine(
            interaction: discord.Interaction[Any],
            prompt: str,
            image1: discord.Attachment | None = None,
        ) -> None:
            await interaction.response.defer(thinking=True)

        self.tree.add_command(imagine, guild=guild)
        await self.tree.sync(guild=guild)


async def main() -> None:
    logging.basicConfig(level=logging.ERROR)
    point_discord_at(os.environ["DISCORD_API_BASE_URL"], os.environ["DISCORD_GATEWAY_URL"])
    bot = BareBot(int(os.environ["DEV_GUILD_ID"]))
    async with bot:
        await bot.start(os.environ["DISCORD_TOKEN"])


if __name__ == "__main__":
    asyncio.run(main())
