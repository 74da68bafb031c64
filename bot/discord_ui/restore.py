"""The Discord side of recovery: a restarted process makes the reply, thread and status message a
dead one did not, from the last one the ledger recorded (implements `bot.core.ports.JobPlaces`).

The member's reply is the interaction's deferred "thinking" message. Its token stays valid for
15 minutes after the interaction was created, and through it the message can be read and
edited (`GET`/`PATCH /webhooks/{application id}/{token}/messages/@original`, Discord's
"Receiving and Responding" docs). While the token is valid: read `@original`; still loading →
edit it into the reply; already edited (the edit arrived, its answer did not) → record its id.
Past the token's life: post a fresh public reply in the channel.
"""

from __future__ import annotations

import logging
from typing import cast

import discord

from bot.core.jobs import Job, PostState
from bot.core.messages import msg
from bot.core.ports import Clock
from bot.core.services import Submitter
from bot.discord_ui.i18n.render import render
from bot.discord_ui.i18n.where import server_locale
from bot.discord_ui.jobflow import open_thread, post_status
from bot.discord_ui.render import NO_PINGS, headline, reply_content

log = logging.getLogger(__name__)

#: discord.py types webhook message ids as int but puts them into the route as given; Discord's
#: route takes "@original" for an interaction's original response.
ORIGINAL = cast(int, "@original")

RESTARTED = msg(
    "The bot restarted before it could answer this request; it was not carried out and "
    "nothing was charged. Please try again."
)


class DiscordPlaces:
    """Restores a job's missing Discord objects after a restart, recording each at once."""

    def __init__(self, bot: discord.Client, service: Submitter, clock: Clock) -> None:
        self._bot = bot
        self._service = service
        self._clock = clock

    async def restore(self, job: Job) -> None:
        """See `bot.core.ports.JobPlaces.restore`."""
        if job.post_state is PostState.POSTED and job.finished:
            if not job.route.reply_message_id:  # refused before any reply: say so once
                await self._tell_refused(job)
            await self._service.forget_token(job.id)
            return
        reply_id = job.route.reply_message_id or await self._reply(job)
        if not reply_id:
            return
        if not job.route.thread_id and not job.route.no_thread:
            locale = server_locale(self._bot, job.route.guild_id)
            await open_thread(await self._threadable(job, reply_id), job, self._service, locale)
        fresh = await self._service.ledger.repo.get(job.id)
        if fresh is not None and not fresh.route.status_message_id:
            where = self._bot.get_partial_messageable(
                fresh.route.post_channel_id, guild_id=fresh.route.guild_id
            )
            locale = server_locale(self._bot, fresh.route.guild_id)
            await post_status(where, fresh, self._service, locale)
        await self._service.forget_token(job.id)

    async def _reply(self, job: Job) -> int:
        """Make (or find) the job's public reply and record it; 0 when Discord refused."""
        locale = server_locale(self._bot, job.route.guild_id)
        content = reply_content(
            headline(job, locale), job.mode.label, job.route.requester_id, locale
        )
        hook = self._hook(job)
        if hook is not None:
            try:
                message = await hook.fetch_message(ORIGINAL)
                if message.flags.loading or not message.content:
                    message = await hook.edit_message(
                        ORIGINAL, content=content, allowed_mentions=NO_PINGS
                    )
                await self._service.place(job.id, reply_message_id=message.id)
                log.info("job %s: reply restored through the interaction token", job.id)
                return message.id
            except discord.HTTPException as exc:
                log.info("job %s: the original response is out of reach: %s", job.id, exc)
        channel = self._bot.get_partial_messageable(
            job.route.channel_id, guild_id=job.route.guild_id
        )
        try:
            fresh = await channel.send(content, allowed_mentions=NO_PINGS)
        except discord.HTTPException as exc:
            log.warning("job %s: could not post a fresh reply: %s", job.id, exc)
            return 0
        await self._service.place(job.id, reply_message_id=fresh.id)
        log.info("job %s: token expired; posted a fresh reply", job.id)
        return fresh.id

    async def _threadable(self, job: Job, reply_id: int) -> discord.PartialMessage:
        """The reply as a message a thread can be opened on. discord.py opens one only on a
        message whose server it knows; a process that does not run the server's shard (one
        carrying on a dead process's command) has no such server cached, so it reads the
        channel from Discord first."""
        channel: object = self._bot.get_channel(job.route.channel_id)
        if channel is None:
            try:
                channel = await self._bot.fetch_channel(job.route.channel_id)
            except discord.HTTPException as exc:
                log.info("job %s: could not read its channel: %s", job.id, exc)
        if isinstance(channel, discord.TextChannel | discord.VoiceChannel | discord.Thread):
            return channel.get_partial_message(reply_id)
        partial = self._bot.get_partial_messageable(
            job.route.channel_id, guild_id=job.route.guild_id
        )
        return partial.get_partial_message(reply_id)

    async def _tell_refused(self, job: Job) -> None:
        """A job refused before its reply was made, by a process that died before telling the
        member: the loading message, if still loading, says the request was not carried out."""
        hook = self._hook(job)
        if hook is None:
            return
        try:
            message = await hook.fetch_message(ORIGINAL)
            if message.flags.loading:
                # The loading message is public (a "thinking" defer): the server's language.
                content = render(RESTARTED, server_locale(self._bot, job.route.guild_id))
                await hook.edit_message(ORIGINAL, content=content, allowed_mentions=NO_PINGS)
        except discord.HTTPException as exc:
            log.info("job %s: could not tell the member about the refusal: %s", job.id, exc)

    def _hook(self, job: Job) -> discord.Webhook | None:
        """The interaction's webhook while its token is valid (the token is never logged)."""
        if job.ack is None or not job.ack.valid(self._clock.now()):
            return None
        return discord.Webhook.partial(job.ack.application_id, job.ack.token, client=self._bot)
