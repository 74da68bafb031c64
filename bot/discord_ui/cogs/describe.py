"""/describe and /blend: the other two ways to start a job, shown and tracked like /imagine."""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.core.jobs import Mode, Route
from bot.core.modes import ServerDefault, mode_for
from bot.core.ports import ImageFiles
from bot.core.services import BLEND_DIMENSIONS, ImagineService
from bot.discord_ui.jobflow import read_images, show_new_job, ticket_for
from bot.discord_ui.options import MODE_CHOICES
from bot.discord_ui.worklane import after_defer

DIMENSION_CHOICES = [
    app_commands.Choice(name=f"{name.title()} ({ratio})", value=name)
    for name, ratio in zip(BLEND_DIMENSIONS, ("2:3", "1:1", "3:2"), strict=True)
]


class DescribeBlendCog(commands.Cog):
    """The /describe and /blend commands."""

    def __init__(
        self,
        service: ImagineService,
        files: ImageFiles,
        *,
        max_reference_bytes: int,
        default_mode: Mode = Mode.MID_JOURNEY,
        server_modes: ServerDefault | None = None,
    ) -> None:
        self.service = service
        self.files = files
        self.max_reference_bytes = max_reference_bytes
        self.default_mode = default_mode
        self.server_modes = server_modes  # the server's default mode (moderators set it)

    @app_commands.command(name="describe")
    @app_commands.describe(
        image="The image to describe: PNG, JPEG, WebP or GIF",
        mode="Midjourney or Niji (the server's default when left out)",
    )
    @app_commands.choices(mode=MODE_CHOICES)
    async def describe(
        self,
        interaction: discord.Interaction[Any],
        image: discord.Attachment,
        mode: app_commands.Choice[str] | None = None,
    ) -> None:
        """Get four prompts that describe an image; press one to imagine it."""
        await interaction.response.defer(thinking=True)
        await after_defer(interaction)  # acknowledgements first (bot.discord_ui.worklane)
        await self.service.admit(ticket_for(interaction))
        (reference,) = await read_images(self.files, [("image", image)], self.max_reference_bytes)
        chosen = await mode_for(
            mode.value if mode else None, interaction.guild_id, self.server_modes
        )
        job = await self.service.describe(
            _route(interaction), chosen, reference, ticket=ticket_for(interaction)
        )
        await show_new_job(interaction, job, self.service)

    @app_commands.command(name="blend")
    @app_commands.describe(
        image1="The first image",
        image2="The second image",
        image3="A third image",
        image4="A fourth image",
        image5="A fifth image",
        dimensions="The shape of the result (square when left out)",
        mode="Midjourney or Niji (the server's default when left out)",
    )
    @app_commands.choices(dimensions=DIMENSION_CHOICES, mode=MODE_CHOICES)
    async def blend(
        self,
        interaction: discord.Interaction[Any],
        image1: discord.Attachment,
        image2: discord.Attachment | None = None,
        image3: discord.Attachment | None = None,
        image4: discord.Attachment | None = None,
        image5: discord.Attachment | None = None,
        dimensions: app_commands.Choice[str] | None = None,
        mode: app_commands.Choice[str] | None = None,
    ) -> None:
        """Blend 2 to 5 images into a new one."""
        await interaction.response.defer(thinking=True)
        await after_defer(interaction)  # acknowledgements first (bot.discord_ui.worklane)
        await self.service.admit(ticket_for(interaction))
        given = [
            (f"image{i}", a)
            for i, a in enumerate((image1, image2, image3, image4, image5), 1)
            if a is not None
        ]
        images = await read_images(self.files, given, self.max_reference_bytes)
        chosen = await mode_for(
            mode.value if mode else None, interaction.guild_id, self.server_modes
        )
        shape = dimensions.value if dimensions else "SQUARE"
        job = await self.service.blend(
            _route(interaction), chosen, images, shape, ticket=ticket_for(interaction)
        )
        await show_new_job(interaction, job, self.service)


def _route(interaction: discord.Interaction[Any]) -> Route:
    return Route(
        guild_id=interaction.guild_id or 0,
        channel_id=interaction.channel_id or 0,
        requester_id=interaction.user.id,
    )
