"""/imagine: the member-facing command. Thin: parse options, defer, call the service, render."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.core.jobs import Mode
from bot.core.services import ImagineService
from bot.discord_ui.jobflow import (
    ack_for,
    record_mode,
    route_of,
    run_command,
    show_new_job,
    sources_of,
    ticket_for,
)
from bot.discord_ui.options import MODE_CHOICES
from bot.discord_ui.presenter import DiscordPresenter
from bot.discord_ui.worklane import after_defer

log = logging.getLogger(__name__)


class ImagineCog(commands.Cog):
    """The /imagine command."""

    def __init__(
        self,
        service: ImagineService,
        presenter: DiscordPresenter,
        *,
        default_mode: Mode = Mode.MID_JOURNEY,
        server_modes: Callable[[int], Awaitable[Mode]] | None = None,
    ) -> None:
        self.service = service
        self.presenter = presenter
        self.default_mode = default_mode
        self.server_modes = server_modes  # the server's default mode (moderators set it)

    @app_commands.command(name="imagine")
    @app_commands.describe(
        prompt="What to draw, with any Midjourney parameters (--ar 16:9, --v 6.1 …)",
        mode="Midjourney or Niji (the server's default when left out)",
        image1="A reference image: PNG, JPEG, WebP or GIF",
        image2="A second reference image",
        image3="A third reference image",
    )
    @app_commands.choices(mode=MODE_CHOICES)
    async def imagine(
        self,
        interaction: discord.Interaction[Any],
        prompt: app_commands.Range[str, 1, 4000],
        mode: app_commands.Choice[str] | None = None,
        image1: discord.Attachment | None = None,
        image2: discord.Attachment | None = None,
        image3: discord.Attachment | None = None,
    ) -> None:
        """Generate an image with Midjourney or Niji; follow it in its own thread."""
        await interaction.response.defer(thinking=True)
        ticket = ticket_for(interaction, prompt)
        sources = sources_of([("image1", image1), ("image2", image2), ("image3", image3)])
        chosen = mode.value if mode else None
        # Recorded now, before any download, gate or API work: a restart carries it on.
        job = await self.service.open_imagine(
            route_of(interaction),
            Mode(chosen or Mode.MID_JOURNEY),
            prompt,
            sources,
            ack_for(interaction),
            ticket,
        )
        await after_defer(interaction)  # acknowledgements first (bot.discord_ui.worklane)
        job = await record_mode(self.service, job, chosen, self.server_modes)
        await run_command(
            interaction,
            self.service,
            job,
            ticket,
            lambda accepted: show_new_job(interaction, accepted, self.service),
        )
