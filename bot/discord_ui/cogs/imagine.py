"""/imagine: the member-facing command. Thin: parse options, defer, call the service, render."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.core.errors import ImageRejected
from bot.core.images import check_reference, safe_filename
from bot.core.jobs import Job, Mode, ReferenceImage, Route
from bot.core.ports import ImageFiles, Ticket
from bot.core.services import ImagineService
from bot.discord_ui.presenter import DiscordPresenter
from bot.discord_ui.render import NO_PINGS, reply_content, status_content, thread_name
from bot.discord_ui.tree import REPLIED

log = logging.getLogger(__name__)

MODE_CHOICES = [
    app_commands.Choice(name="Midjourney", value=Mode.MID_JOURNEY.value),
    app_commands.Choice(name="Niji", value=Mode.NIJI_JOURNEY.value),
]


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
    ) -> None:
        self.service = service
        self.files = files
        self.presenter = presenter
        self.max_reference_bytes = max_reference_bytes
        self.default_mode = default_mode

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
        if interaction.guild_id:
            self.presenter.upload_limits[interaction.guild_id] = interaction.filesize_limit
        chosen = Mode(mode.value) if mode else self.default_mode
        await self.service.admit(_ticket(interaction, prompt))
        attachments = [("image1", image1), ("image2", image2), ("image3", image3)]
        images = await self._read_images([(o, a) for o, a in attachments if a is not None])
        route = Route(
            guild_id=interaction.guild_id or 0,
            channel_id=interaction.channel_id or 0,
            requester_id=interaction.user.id,
        )
        job = await self.service.submit(route, chosen, prompt, images)
        await self._show_job(interaction, job)

    async def _read_images(
        self, attachments: list[tuple[str, discord.Attachment]]
    ) -> list[ReferenceImage]:
        """Download and check every attachment, in option order; refuse the first bad one."""
        for option, attachment in attachments:
            if attachment.size > self.max_reference_bytes:
                limit_mb = self.max_reference_bytes / (1024 * 1024)
                raise ImageRejected(
                    f"{option}: {attachment.size} bytes",
                    member_message=f"{option}: `{safe_filename(attachment.filename)}` is "
                    f"{attachment.size / (1024 * 1024):.1f} MB; the limit is {limit_mb:.0f} MB.",
                )
        blobs = await asyncio.gather(
            *(self.files.fetch_reference(a.url, self.max_reference_bytes) for _, a in attachments)
        )
        return [
            check_reference(option, attachment.filename, data, max_bytes=self.max_reference_bytes)
            for (option, attachment), data in zip(attachments, blobs, strict=True)
        ]

    async def _show_job(self, interaction: discord.Interaction[Any], job: Job) -> None:
        """Turn the loading message into the public reply, open the thread, post the status.

        The job is already safe in the ledger: a Discord failure here is logged and the tracker
        still posts the outcome (in the channel when there is no thread).
        """
        content = reply_content(job.prompt, job.mode.label, job.route.requester_id)
        try:
            reply = await interaction.edit_original_response(
                content=content, allowed_mentions=NO_PINGS
            )
        except discord.HTTPException as exc:
            log.warning("job %s: could not post the reply: %s", job.id, exc)
            return
        interaction.extras[REPLIED] = True
        placed: dict[str, int] = {"reply_message_id": reply.id}
        where: discord.abc.Messageable = reply.channel
        try:
            thread = await reply.create_thread(name=thread_name(job.prompt))
            where = thread
            placed["thread_id"] = thread.id
        except (discord.HTTPException, ValueError) as exc:
            log.info("job %s: no thread (%s); carrying on in the channel", job.id, exc)
            await self._say_no_thread(interaction, job)
        try:
            status = await where.send(status_content(job), allowed_mentions=NO_PINGS)
            placed["status_message_id"] = status.id
        except discord.HTTPException as exc:
            log.warning("job %s: could not post the status message: %s", job.id, exc)
        await self.service.place(job.id, **placed)

    async def _say_no_thread(self, interaction: discord.Interaction[Any], job: Job) -> None:
        try:
            await interaction.followup.send(
                f"I couldn't open a thread here, so updates for task `{job.task_id}` "
                "will follow in this channel.",
                allowed_mentions=NO_PINGS,
            )
        except discord.HTTPException as exc:
            log.warning("job %s: could not say there is no thread: %s", job.id, exc)


def _ticket(interaction: discord.Interaction[Any], prompt: str) -> Ticket:
    user = interaction.user
    roles = tuple(r.id for r in user.roles) if isinstance(user, discord.Member) else ()
    perms = interaction.permissions
    return Ticket(
        guild_id=interaction.guild_id or 0,
        channel_id=interaction.channel_id or 0,
        user_id=user.id,
        role_ids=roles,
        prompt=prompt,
        is_moderator=perms.manage_guild,
    )
