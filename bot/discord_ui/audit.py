"""The log channel: every audit entry is mirrored to the server's moderator log channel, when one
is set (`AuditObserver`).

Mirroring never holds up the member: each entry is posted from a background task. A submission
is posted once its job has a task id and a public reply (or after a short wait), so the entry
carries the task id and a jump link.
"""

from __future__ import annotations

import asyncio
import logging

import discord

from bot.core.jobs import Job
from bot.core.moderation import AuditEntry, AuditKind
from bot.core.ports import JobRepository, ModerationRepository
from bot.discord_ui.i18n.where import server_locale
from bot.discord_ui.mod_buttons import entry_view
from bot.discord_ui.mod_embeds import entry_embed
from bot.discord_ui.render import NO_PINGS

log = logging.getLogger(__name__)


class LogChannelMirror:
    """`AuditObserver` that posts each entry to the server's log channel."""

    def __init__(
        self,
        client: discord.Client,
        moderation: ModerationRepository,
        jobs: JobRepository,
        *,
        submission_wait: float = 15.0,
        poll: float = 0.2,
    ) -> None:
        self.client = client
        self.moderation = moderation
        self.jobs = jobs
        self.submission_wait = submission_wait
        self.poll = poll
        self._tasks: set[asyncio.Task[None]] = set()

    async def recorded(self, entry: AuditEntry) -> None:
        """Post the entry in the background (returns at once; never raises)."""
        task = asyncio.create_task(self._mirror(entry))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for the posts under way (tests; shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Stop posting."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _mirror(self, entry: AuditEntry) -> None:
        try:
            policy = await self.moderation.policy(entry.guild_id)
            if not policy.log_channel_id:
                return
            job = await self._job(entry)
            channel = self.client.get_partial_messageable(
                policy.log_channel_id, guild_id=entry.guild_id
            )
            # The moderators' channel reads the server's language (or the one they chose).
            locale = server_locale(self.client, entry.guild_id)
            embed = entry_embed(entry, job, locale)
            view = entry_view(entry, job, locale)
            content = f"-# audit {entry.id}"
            if view is None:
                await channel.send(content, embed=embed, allowed_mentions=NO_PINGS)
            else:
                await channel.send(content, embed=embed, view=view, allowed_mentions=NO_PINGS)
        except asyncio.CancelledError:
            raise
        except discord.HTTPException as exc:
            log.warning("audit %s: could not post to the log channel: %s", entry.id, exc)
        except Exception:
            log.exception("audit %s: mirroring failed", entry.id)

    async def _job(self, entry: AuditEntry) -> Job | None:
        if not entry.job_id:
            return None
        job = await self.jobs.get(entry.job_id)
        if entry.kind is AuditKind.SUBMISSION:
            # A submission is recorded before the API call: wait for the task id and the reply.
            ready = _placed
        elif entry.kind is AuditKind.REPORT:
            # A report is pressed on the result post, whose id may not be recorded yet: Discord
            # can hold the post's answer while its rate-limit bucket resets (discord.py sleeps).
            ready = _posted
        else:
            return job
        deadline = asyncio.get_running_loop().time() + self.submission_wait
        while job is not None and not ready(job):
            if asyncio.get_running_loop().time() >= deadline:
                break
            await asyncio.sleep(self.poll)
            job = await self.jobs.get(entry.job_id)
        return job


def _placed(job: Job) -> bool:
    return job.finished or bool(job.task_id and job.route.reply_message_id)


def _posted(job: Job) -> bool:
    return bool(job.result_message_id)
