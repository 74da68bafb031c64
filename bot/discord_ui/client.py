"""The Bot subclass: endpoints, start-up wiring (setup_hook) and the command sync policy."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import discord
import discord.gateway
import discord.http
import yarl
from discord.ext import commands

from bot.discord_ui.i18n import CommandTranslator
from bot.discord_ui.tree import MjcordTree
from bot.discord_ui.views import ButtonHandler, ContinueButton, JobButton

log = logging.getLogger(__name__)


def point_discord_at(api_base_url: str, gateway_url: str) -> None:
    """Send discord.py's REST and gateway traffic to these URLs (a REST proxy, the emulator).

    Both are process-wide class attributes of discord.py; the defaults are Discord's own.
    """
    discord.http.Route.BASE = api_base_url.rstrip("/")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


# The bot never joins voice: don't warn at every start that voice libraries are missing.
discord.VoiceClient.warn_nacl = False
discord.VoiceClient.warn_dave = False


class MjcordBot(commands.Bot):
    """The bot: cogs are handed in by the composition root and added in `setup_hook`."""

    def __init__(
        self,
        *,
        cogs: Sequence[commands.Cog] = (),
        dev_guild_id: int | None = None,
        guild_ready_timeout: float = 2.0,
    ) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=discord.Intents.default(),
            tree_cls=MjcordTree,
            help_command=None,
            guild_ready_timeout=guild_ready_timeout,
            allowed_mentions=discord.AllowedMentions.none(),
        )
        self._initial_cogs = list(cogs)
        self.dev_guild_id = dev_guild_id
        self.button_handler: ButtonHandler | None = None

    async def setup_hook(self) -> None:
        """Add the cogs and restart-proof buttons, then sync the slash commands."""
        for cog in self._initial_cogs:
            await self.add_cog(cog)
            if hasattr(cog, "on_job_button"):
                self.button_handler = cog  # type: ignore[assignment]
        self.add_dynamic_items(JobButton, ContinueButton)
        # Before the sync: the translator's localisations are part of the synced payload.
        await self.tree.set_translator(CommandTranslator())
        await self.sync_commands()

    async def sync_commands(self) -> list[Any]:
        """Sync to DEV_GUILD_ID when set (instant), else globally (may take Discord a while)."""
        if self.dev_guild_id:
            guild = discord.Object(self.dev_guild_id)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
        else:
            synced = await self.tree.sync()
        log.info(
            "synced %d slash commands%s",
            len(synced),
            " to the dev guild" if self.dev_guild_id else "",
        )
        return synced
