"""Shows jobs in Discord through the bot's own REST calls (interaction tokens expire after 15
minutes; jobs can take longer). Implements the core `JobObserver` port.
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from datetime import UTC, datetime
from typing import Any

import discord

from bot.core.errors import ApiError
from bot.core.jobs import Job, JobStatus
from bot.core.ports import ImageFiles
from bot.discord_ui.render import NO_PINGS, finish_content, marker, only_user, status_content
from bot.discord_ui.views import continue_view, result_view

log = logging.getLogger(__name__)

DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024
HISTORY_LOOKBACK = 50


class DiscordPresenter:
    """Edits status messages (at most one edit per job per `min_edit_interval` seconds; later
    updates inside the interval are coalesced into one) and posts finished jobs exactly once."""

    def __init__(
        self, bot: discord.Client, files: ImageFiles, *, min_edit_interval: float = 3.0
    ) -> None:
        self._bot = bot
        self._files = files
        self._interval = min_edit_interval
        self._last_edit: dict[int, float] = {}
        self._pending: dict[int, Job] = {}
        self._timers: dict[int, asyncio.Task[None]] = {}
        self._started = datetime.now(UTC)
        self._attempted: set[int] = set()
        #: Upload limits Discord reported per guild in recent interactions (authoritative).
        self.upload_limits: dict[int, int] = {}

    # --- progress ---------------------------------------------------------------------------

    async def show_progress(self, job: Job) -> None:
        """Edit the status message now, or once the job's edit interval has passed."""
        if not job.route.status_message_id:
            return
        now = time.monotonic()
        last = self._last_edit.get(job.id)
        if last is None or now - last >= self._interval:
            await self._edit_status(job)
            return
        self._pending[job.id] = job
        if job.id not in self._timers:
            delay = last + self._interval - now
            self._timers[job.id] = asyncio.create_task(self._edit_later(job.id, delay))

    async def _edit_later(self, job_id: int, delay: float) -> None:
        await asyncio.sleep(delay)
        self._timers.pop(job_id, None)
        job = self._pending.pop(job_id, None)
        if job is not None:
            await self._edit_status(job)

    async def _edit_status(self, job: Job) -> None:
        self._last_edit[job.id] = time.monotonic()
        channel = self._bot.get_partial_messageable(
            job.route.post_channel_id, guild_id=job.route.guild_id
        )
        message = channel.get_partial_message(job.route.status_message_id)
        embed = None
        if job.status is JobStatus.IN_PROGRESS and job.image_url:
            embed = discord.Embed(title="Preview").set_image(url=job.image_url)
        try:
            # A job that waits for the member's prompt gets the button that asks for it.
            view = continue_view(job) if job.status is JobStatus.MODAL else None
            await message.edit(
                content=status_content(job), embed=embed, allowed_mentions=NO_PINGS, view=view
            )
        except discord.HTTPException as exc:
            # A deleted thread or message must not stop the job; the finish post handles places.
            log.warning("job %s: status edit failed: %s %s", job.id, exc.status, exc.text)

    # --- finish -----------------------------------------------------------------------------

    async def post_finish(self, job: Job) -> int:
        """Post the outcome in the job's thread (else its channel) and return the message id.

        Exactly once: the post carries a deterministic nonce (Discord drops a repeat within its
        window) and, when this job may have been posted before (it finished before this process
        started, or an earlier attempt failed midway), the channel is searched for the post first.
        """
        if job.finished_at is not None and (
            job.finished_at < self._started or job.id in self._attempted
        ):
            existing = await self._find_post(job)
            if existing:
                log.info("job %s: found its earlier finish post %s", job.id, existing)
                return existing
        self._attempted.add(job.id)
        # The status message shows the end too, within the same per-job edit budget.
        await self.show_progress(job)
        if job.status is JobStatus.SUCCEEDED:
            return await self._post_result(job)
        return await self._send(job, content=finish_content(job))

    async def _post_result(self, job: Job) -> int:
        data: bytes | None = None
        if job.image_url:
            try:
                data = await self._files.download(job.image_url)
            except ApiError as exc:
                log.warning("job %s: could not download the result: %s", job.id, exc.detail)
        if data is None:
            return await self._send(job, content=finish_content(job, link=job.image_url))
        limit = self._upload_limit(job.route.guild_id)
        name = f"mjcord-{job.task_id}"
        if len(data) > limit:
            smaller = await self._files.fit(data, limit)
            if smaller is None:
                return await self._send(job, content=finish_content(job, link=job.image_url))
            data, name = smaller, name + ".jpg"
        else:
            name += ".png"
        try:
            return await self._send(
                job, content=finish_content(job), file=discord.File(io.BytesIO(data), name)
            )
        except _Refused as exc:
            # No permission to attach files (50013), or over a limit we did not know (40005).
            log.warning("job %s: upload refused (%s); posting a link instead", job.id, exc)
            return await self._send(job, content=finish_content(job, link=job.image_url))

    async def _send(self, job: Job, *, content: str, file: discord.File | None = None) -> int:
        """Send to the thread; if it is gone, to the channel; if that is gone too, give up (0)."""
        places = [job.route.post_channel_id]
        if job.route.channel_id not in places:
            places.append(job.route.channel_id)
        kwargs: dict[str, Any] = {
            "content": content,
            "allowed_mentions": only_user(job.route.requester_id),
            "nonce": job.post_nonce,
        }
        if job.status is JobStatus.SUCCEEDED and (job.buttons or job.action == "DESCRIBE"):
            kwargs["view"] = result_view(job)
        for place in places:
            channel = self._bot.get_partial_messageable(place, guild_id=job.route.guild_id)
            try:
                if file is not None:
                    file.reset()
                    message = await channel.send(file=file, **kwargs)
                else:
                    message = await channel.send(**kwargs)
                return message.id
            except discord.NotFound as exc:
                log.warning("job %s: channel %s is gone (%s)", job.id, place, exc.code)
            except discord.Forbidden as exc:
                if file is not None:
                    raise _Refused(f"{exc.status}/{exc.code}") from None
                log.warning("job %s: no permission to post in %s (%s)", job.id, place, exc.code)
            except discord.HTTPException as exc:
                if exc.status == 413 and file is not None:
                    raise _Refused(f"{exc.status}/{exc.code}") from None
                raise
        log.error("job %s: nowhere left to post its outcome; giving up", job.id)
        return 0

    async def _find_post(self, job: Job) -> int:
        needle = marker(job)
        me = self._bot.user.id if self._bot.user else 0
        for place in {job.route.post_channel_id, job.route.channel_id}:
            channel = self._bot.get_partial_messageable(place, guild_id=job.route.guild_id)
            after = discord.Object(job.route.status_message_id or job.route.reply_message_id or 0)
            try:
                async for message in channel.history(limit=HISTORY_LOOKBACK, after=after):
                    if message.author.id == me and needle in message.content:
                        return message.id
            except discord.HTTPException as exc:
                log.warning("job %s: cannot read %s to look for its post: %s", job.id, place, exc)
        return 0

    def _upload_limit(self, guild_id: int) -> int:
        if guild_id in self.upload_limits:
            return self.upload_limits[guild_id]
        guild = self._bot.get_guild(guild_id)
        return guild.filesize_limit if guild else DEFAULT_UPLOAD_LIMIT


class _Refused(Exception):
    """Discord refused the upload itself (permission or size): fall back to a link."""
