"""/imagine: the member-facing command. Thin: parse options, defer, call the service, render."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.core.jobs import Mode, Route
from bot.core.modes import mode_for
from bot.core.ports import ImageFiles
from bot.core.services import ImagineService
from bot.discord_ui.jobflow import read_images, show_new_job, ticket_for
from bot.discord_ui.options import MODE_CHOICES
from bot.discord_ui.presenter import DiscordPresenter
from bot.discord_ui.worklane import after_defer

log = logging.getLogger(__name__)


class ImagineCog(commands.Cog):
    """The /imagine command."""

    def __init__(
        self,
        service: ImagineService,
        files: ImageFiles,
        presenter: DiscordPresenter,
        *,
        max_reference_bytes: int,
        default_mode: Mode = Mode.MID_JOURNEY,
        server_modes: Callable[[int], Awaitable[Mode]] | None = None,
    ) -> None:
        self.service = service
        self.files = files
        self.presenter = presenter
        self.max_reference_bytes = max_reference_bytes
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
        await after_defer(interaction)  # acknowledgements first (bot.discord_ui.worklane)
        chosen = await mode_for(
            mode.value if mode else None, interaction.guild_id, self.server_modes
        )
        ticket = ticket_for(interaction, prompt)
        await self.service.admit(ticket)
        attachments = [("image1", image1), ("image2", image2), ("image3", image3)]
        given = [(o, a) for o, a in attachments if a is not None]
        images = await read_images(self.files, given, self.max_reference_bytes)
        route = Route(
            guild_id=interaction.guild_id or 0,
            channel_id=interaction.channel_id or 0,
            requester_id=interaction.user.id,
        )
        job = await self.service.submit(route, chosen, prompt, images, ticket=ticket)
        await show_new_job(interaction, job, self.service)
