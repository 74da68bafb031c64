"""/describe and /blend: the other two ways to start a job, shown and tracked like /imagine."""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.core.jobs import Mode
from bot.core.modes import ServerDefault
from bot.core.services import BLEND_DIMENSIONS, ImagineService
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
from bot.discord_ui.tree import tell_error
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
        *,
        default_mode: Mode = Mode.MID_JOURNEY,
        server_modes: ServerDefault | None = None,
    ) -> None:
        self.service = service
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
        ticket = ticket_for(interaction)
        (source,) = sources_of([("image", image)])
        chosen = mode.value if mode else None
        # Recorded now, before any download, gate or API work: a restart carries it on.
        job = await self.service.open_describe(
            route_of(interaction),
            Mode(chosen or Mode.MID_JOURNEY),
            source,
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
        sources = sources_of(
            [(f"image{i}", a) for i, a in enumerate((image1, image2, image3, image4, image5), 1)]
        )
        chosen = mode.value if mode else None
        shape = dimensions.value if dimensions else "SQUARE"
        ticket = ticket_for(interaction)
        try:
            # Recorded now, before any download, gate or API work: a restart carries it on.
            job = await self.service.open_blend(
                route_of(interaction),
                Mode(chosen or Mode.MID_JOURNEY),
                sources,
                shape,
                ack_for(interaction),
                ticket,
            )
        except Exception as exc:  # fewer than 2 or more than 5 images: nothing was recorded
            await tell_error(interaction, exc)
            return
        await after_defer(interaction)  # acknowledgements first (bot.discord_ui.worklane)
        job = await record_mode(self.service, job, chosen, self.server_modes)
        await run_command(
            interaction,
            self.service,
            job,
            ticket,
            lambda accepted: show_new_job(interaction, accepted, self.service),
        )
