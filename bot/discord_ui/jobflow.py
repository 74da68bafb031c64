"""Steps every job-starting command shares: reading attachments, and showing a new job (the
public reply, its thread, the status message)."""

from __future__ import annotations

import logging
from typing import Any

import discord

from bot.core.jobs import Job, JobStatus
from bot.core.ports import Ticket
from bot.core.services import Submitter
from bot.discord_ui.attachments import read_images as read_images  # the cogs import it here
from bot.discord_ui.render import NO_PINGS, reply_content, status_content, thread_name
from bot.discord_ui.tree import REPLIED
from bot.discord_ui.views import continue_view

log = logging.getLogger(__name__)


def ticket_for(interaction: discord.Interaction[Any], prompt: str = "") -> Ticket:
    """What the gate needs to know about this member, here."""
    user = interaction.user
    roles = tuple(r.id for r in user.roles) if isinstance(user, discord.Member) else ()
    return Ticket(
        guild_id=interaction.guild_id or 0,
        channel_id=interaction.channel_id or 0,
        user_id=user.id,
        role_ids=roles,
        prompt=prompt,
        manage_guild=interaction.permissions.manage_guild,
    )


async def show_new_job(interaction: discord.Interaction[Any], job: Job, service: Submitter) -> None:
    """Turn the loading message into the public reply, open the thread, post the status.

    The job is already safe in the ledger: a Discord failure here is logged and the tracker
    still posts the outcome (in the channel when there is no thread).
    """
    content = reply_content(job.prompt, job.mode.label, job.route.requester_id)
    try:
        reply = await interaction.edit_original_response(content=content, allowed_mentions=NO_PINGS)
    except Exception as exc:  # Discord errors, or the connection closing during a shutdown
        log.warning("job %s: could not post the reply: %r", job.id, exc)
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
        try:
            await interaction.followup.send(
                f"I couldn't open a thread here, so updates for task `{job.task_id}` "
                "will follow in this channel.",
                allowed_mentions=NO_PINGS,
            )
        except discord.HTTPException as note_exc:
            log.warning("job %s: could not say there is no thread: %s", job.id, note_exc)
    await post_status(where, job, service, placed)


async def show_follow_up(client: discord.Client, job: Job, service: Submitter) -> None:
    """A job started from a button: its status message goes where its parent's messages are."""
    channel = client.get_partial_messageable(job.route.post_channel_id, guild_id=job.route.guild_id)
    await post_status(channel, job, service, {})


async def post_status(
    where: discord.abc.Messageable, job: Job, service: Submitter, placed: dict[str, int]
) -> None:
    """Post the job's status message and record where everything lives."""
    try:
        if job.status is JobStatus.MODAL:  # the API waits for the member's prompt
            status = await where.send(
                status_content(job), allowed_mentions=NO_PINGS, view=continue_view(job)
            )
        else:
            status = await where.send(status_content(job), allowed_mentions=NO_PINGS)
        placed["status_message_id"] = status.id
    except discord.HTTPException as exc:
        log.warning("job %s: could not post the status message: %s", job.id, exc)
    if placed:
        current = await service.place(job.id, **placed)
        # The job may have moved on while the status message was on its way (a slow or retried
        # send): bring the message up to date once.
        if current is not None and "status_message_id" in placed:
            text = status_content(current)
            if text != status_content(job):
                try:
                    await status.edit(content=text, allowed_mentions=NO_PINGS)
                except discord.HTTPException as exc:
                    log.info("job %s: could not refresh the status message: %s", job.id, exc)
