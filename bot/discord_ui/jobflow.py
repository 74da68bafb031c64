"""Steps every job-starting command shares: the member's ticket and acknowledgement, the
attachments as sources, and showing a new job (the public reply, its thread, the status
message), each Discord object recorded in its own write as soon as it exists."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import discord

from bot.core.jobs import Ack, Job, JobStatus, Route, Source
from bot.core.messages import Code, msg
from bot.core.modes import ServerDefault, mode_for
from bot.core.ports import Ticket
from bot.core.services import Submitter, ack_of
from bot.discord_ui.i18n.render import render
from bot.discord_ui.i18n.where import DEFAULT_LOCALE, server_locale
from bot.discord_ui.render import (
    NO_PINGS,
    headline,
    reply_content,
    status_content,
    thread_name,
)
from bot.discord_ui.tree import REPLIED, tell_error
from bot.discord_ui.views import continue_view

log = logging.getLogger(__name__)

#: Discord's JSON error code for "a thread has already been created for this message".
THREAD_EXISTS = 160004


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


async def record_mode(
    service: Submitter, job: Job, chosen: str | None, server_modes: ServerDefault | None
) -> Job:
    """The job's mode by the one rule (`mode_for`), recorded once the job is: the server's
    default is a settings read that must not come before the job is safe in the ledger."""
    mode = await mode_for(chosen, job.route.guild_id, server_modes)
    if mode is job.mode:
        return job
    return await service.choose_mode(job.id, mode) or job


def route_of(interaction: discord.Interaction[Any]) -> Route:
    """Where a command's job lives before its reply and thread exist."""
    return Route(
        guild_id=interaction.guild_id or 0,
        channel_id=interaction.channel_id or 0,
        requester_id=interaction.user.id,
    )


def ack_for(interaction: discord.Interaction[Any]) -> Ack:
    """The interaction's application id and token, valid 15 minutes from its creation."""
    return ack_of(interaction.application_id, interaction.token, interaction.created_at)


def sources_of(attachments: list[tuple[str, discord.Attachment | None]]) -> list[Source]:
    """The given attachments, in option order, as the ledger keeps them."""
    return [Source(o, a.url, a.filename, a.size) for o, a in attachments if a is not None]


async def run_command(
    interaction: discord.Interaction[Any],
    service: Submitter,
    job: Job,
    ticket: Ticket,
    show: Callable[[Job], Awaitable[None]],
) -> None:
    """Carry a recorded job through the gate and the API, then show it. A refusal reaches the
    member as one private sentence; the token is forgotten once they have been told."""
    try:
        job = await service.run(job, ticket)
    except Exception as exc:
        await service.abandon(job, exc)
        await tell_error(interaction, exc)
        await service.forget_token(job.id)
        return
    await show(job)


async def show_new_job(interaction: discord.Interaction[Any], job: Job, service: Submitter) -> None:
    """Turn the loading message into the public reply, open the thread, post the status.

    The job is already safe in the ledger: a Discord failure here is logged and a restarted
    process (bot.core.recovery) or the tracker carries on from the last recorded object.
    """
    # Everyone in the channel sees the reply and the thread: the server's language.
    locale = server_locale(interaction.client, job.route.guild_id)
    content = reply_content(headline(job, locale), job.mode.label, job.route.requester_id, locale)
    try:
        reply = await interaction.edit_original_response(content=content, allowed_mentions=NO_PINGS)
    except Exception as exc:  # Discord errors, or the connection closing during a shutdown
        log.warning("job %s: could not post the reply: %r", job.id, exc)
        return
    interaction.extras[REPLIED] = True
    await service.place(job.id, reply_message_id=reply.id)
    await service.forget_token(job.id)
    note = msg(
        "I couldn't open a thread here, so updates for task {task} follow here.",
        task=Code(job.task_id or "—"),
    )
    thread_id = await open_thread(reply, job, service, locale)
    if not thread_id:
        try:
            await interaction.followup.send(render(note, locale), allowed_mentions=NO_PINGS)
        except discord.HTTPException as note_exc:
            log.warning("job %s: could not say there is no thread: %s", job.id, note_exc)
    where = interaction.client.get_partial_messageable(
        thread_id or reply.channel.id, guild_id=job.route.guild_id
    )
    await post_status(where, job, service, locale)


async def open_thread(
    reply: discord.Message | discord.PartialMessage,
    job: Job,
    service: Submitter,
    locale: str = DEFAULT_LOCALE,
) -> int:
    """Open the job's thread on its reply and record it; 0 when Discord refuses (recorded as
    `no_thread`, so the outcome goes to the channel without waiting). A thread started from a
    message has that message's id, so one made by a process that died before recording it is
    found by that id."""
    try:
        await reply.create_thread(name=thread_name(headline(job, locale)))
    except discord.HTTPException as exc:
        if exc.code != THREAD_EXISTS:
            log.info("job %s: no thread (%s); carrying on in the channel", job.id, exc)
            await service.place(job.id, no_thread=True)
            return 0
    await service.place(job.id, thread_id=reply.id)
    return reply.id


async def show_follow_up(client: discord.Client, job: Job, service: Submitter) -> None:
    """A job started from a button: its status message goes where its parent's messages are."""
    channel = client.get_partial_messageable(job.route.post_channel_id, guild_id=job.route.guild_id)
    await post_status(channel, job, service, server_locale(client, job.route.guild_id))


async def post_status(
    where: discord.abc.Messageable, job: Job, service: Submitter, locale: str = DEFAULT_LOCALE
) -> None:
    """Post the job's status message (in the server's `locale`) and record it."""
    try:
        if job.status is JobStatus.MODAL:  # the API waits for the member's prompt
            status = await where.send(
                status_content(job, locale),
                allowed_mentions=NO_PINGS,
                view=continue_view(job, locale),
            )
        else:
            status = await where.send(status_content(job, locale), allowed_mentions=NO_PINGS)
    except discord.HTTPException as exc:
        log.warning("job %s: could not post the status message: %s", job.id, exc)
        return
    current = await service.place_status(job.id, status.id)
    if current is None:
        # Another process took this job over and posted its status message first: one stays.
        log.info("job %s: a status message was already recorded; removing this one", job.id)
        try:
            await status.delete()
        except discord.HTTPException as exc:
            log.warning("job %s: could not remove a second status message: %s", job.id, exc)
        return
    # The job may have moved on while the status message was on its way (a slow or retried
    # send): bring the message up to date once.
    text = status_content(current, locale)
    if text != status_content(job, locale):
        try:
            await status.edit(content=text, allowed_mentions=NO_PINGS)
        except discord.HTTPException as exc:
            log.info("job %s: could not refresh the status message: %s", job.id, exc)
