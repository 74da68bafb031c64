"""Shows jobs in Discord through the bot's own REST calls (interaction tokens expire after 15
minutes; jobs can take longer). Implements the core `JobObserver` port.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import heapq
import io
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import discord

from bot.core.errors import ApiError
from bot.core.jobs import Job, JobStatus, PostState
from bot.core.messages import Message, Stamp, msg
from bot.core.ports import ImageFiles
from bot.discord_ui.budget import EditBudget
from bot.discord_ui.finish_turns import FinishTurns
from bot.discord_ui.i18n.render import render
from bot.discord_ui.i18n.where import server_locale
from bot.discord_ui.render import NO_PINGS, finish_content, marker, only_user, status_content
from bot.discord_ui.views import continue_view, result_view

log = logging.getLogger(__name__)

DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024
#: Discord's JSON error code for "Request entity too large" (the upload limit).
TOO_LARGE_CODE = 40005

# Why a finish post is not what or where the member expects, in their words (rendered in the
# server's language with the image's {link}). A size is blamed only when size was the reason.
TOO_LARGE = msg("It was too large to upload here, so here is a link: {link}", link="")
NO_FILES = msg("I'm not allowed to attach files here, so here is a link: {link}", link="")
NOT_FETCHED = msg(
    "I couldn't fetch the image from the image service to attach it, so here is a link: {link}",
    link="",
)
NOT_IN_THREAD = msg(
    "I'm not allowed to post the image in this job's thread, so it is here instead."
)
THREAD_GONE = msg("This job's thread is gone, so it is here instead.")
HISTORY_LOOKBACK = 50
# Discord's JSON error codes (docs/topics/opcodes-and-status-codes.md).
UNKNOWN_MESSAGE = 10008
THREAD_ARCHIVED = 50083
THREAD_LOCKED = 160005
LOCKED_NOTE = msg("The thread for this job is locked, so the result is posted here.")


#: A waiting status edit drops the job's texts above this many characters (see _slim).
SLIM_ABOVE = 300
#: Status edits in flight at once.
EDIT_CONCURRENCY = 8
#: Waiting edits whose jobs are read at once (from the head of the queue), with `load`.
READ_AHEAD = 32


class DiscordPresenter:
    """Edits status messages and posts finished jobs exactly once, within one Discord budget.

    Every REST call goes through `EditBudget` (the bot's global rate and each channel's). A
    finish post always goes, waiting only for the budget itself; a status edit goes only when
    the budget has room above a reserve kept for finish posts. Status edits wait in a queue that
    holds one entry per job: a newer state replaces the waiting one (intermediate progress is
    dropped), and a job is edited at most once per `min_edit_interval` seconds.

    With `load` (the ledger's read of several jobs by id), a waiting edit holds only the job's
    id, and the jobs next in line are read (READ_AHEAD at once) when their turn comes: 10,000
    jobs waiting cost no 10,000 copies in memory (issue 12), and an edit shows the newest state.
    Without it the newest state given is held.
    """

    def __init__(
        self,
        bot: discord.Client,
        files: ImageFiles,
        *,
        min_edit_interval: float = 3.0,
        budget: EditBudget | None = None,
        load: Callable[[Sequence[int]], Awaitable[Sequence[Job]]] | None = None,
    ) -> None:
        self._bot = bot
        self._load = load
        self._files = files
        self._interval = min_edit_interval
        self.budget = budget or EditBudget()
        self._turns = FinishTurns(self.budget)
        self._last_edit: dict[int, float] = {}
        # job id → the newest state waiting to be shown; None: read it (`load`) when due.
        self._pending: dict[int, Job | None] = {}
        self._queue: list[tuple[float, int, int]] = []  # (not before, seq, job id), a heap
        self._seq = itertools.count()
        self._pump: asyncio.Task[None] | None = None
        self._kick = asyncio.Event()
        self._edits = asyncio.Semaphore(EDIT_CONCURRENCY)
        self._in_flight: set[asyncio.Task[None]] = set()
        #: REST calls made, by kind (progress edits, finish calls); dropped = coalesced states.
        self.counts = {"edits": 0, "finish_calls": 0, "coalesced": 0}
        self._started = datetime.now(UTC)
        self._attempted: set[int] = set()
        self._outage_since: datetime | None = None  # a long outage, noted on status messages
        self._finishing = 0  # finish posts under way; status edits wait for none
        self._shown: dict[int, int] = {}  # job id → what its status message shows (a hash)
        self._edit_locks: dict[int, asyncio.Lock] = {}  # job id → its status edits, in order

    # --- progress ---------------------------------------------------------------------------

    async def show_progress(self, job: Job) -> None:
        """Queue an edit of the status message; it replaces one still waiting for this job."""
        self._queue_edit(job, keep=self._load is None)

    @property
    def reads_jobs(self) -> bool:
        """True with `load`: `show_progress_of` may be used."""
        return self._load is not None

    async def show_progress_of(self, job_id: int) -> None:
        """Queue an edit of the job's status message, showing the job as the ledger holds it
        when the edit is due (only with `load`)."""
        assert self._load is not None
        self._queue_id(job_id, None)

    def _queue_edit(self, job: Job, *, keep: bool) -> None:
        """Queue an edit showing `job`: the job itself with `keep`, else its id only."""
        if not job.route.status_message_id:
            return
        if keep and job.id not in self._pending and self._shown.get(job.id) == self._looks(job):
            return  # the message already shows exactly this (a change members cannot see)
        # (With `load`, that is checked when the edit is due, on the job as it is then: at most
        # one rendering per edit sent, not one per change absorbed.)
        self._queue_id(job.id, _slim(job) if keep else None)

    def _queue_id(self, job_id: int, state: Job | None) -> None:
        """Queue an edit of this job showing `state` (None: read when due)."""
        if job_id in self._pending:
            if state is not None or self._pending[job_id] is None:
                self._pending[job_id] = state  # (a finish's own state is never read over)
            self.counts["coalesced"] += 1
            return
        self._pending[job_id] = state
        not_before = self._last_edit.get(job_id, float("-inf")) + self._interval
        heapq.heappush(self._queue, (not_before, next(self._seq), job_id))
        if self._queue[0][2] == job_id:
            # Only a new head can make the pump's wait shorter; waking it for every progress
            # change (a thousand a second at 10,000 moving jobs) cost CPU for nothing.
            self._kick.set()
        if self._pump is None or self._pump.done():
            self._pump = asyncio.create_task(self._run_pump())

    async def show_outage(self, since: datetime | None, jobs: Sequence[Job]) -> None:
        """Note on these jobs' status messages that the image service is down since `since`
        (once per outage, queued like progress); with None, take the note away."""
        self._outage_since = since
        for job in jobs:
            await self.show_progress(job)

    def _looks(self, job: Job) -> int:
        """What the job's status message would show, as a hash (text, preview, button)."""
        preview = job.image_url if job.status is JobStatus.IN_PROGRESS else None
        modal = job.status is JobStatus.MODAL
        return hash((self._status_text(job), preview, modal))

    def _status_text(self, job: Job) -> str:
        """The status message's text in the server's language, with the outage note if any."""
        locale = self._locale(job)
        text = status_content(job, locale)
        if self._outage_since is not None:
            note = msg(
                "⚠️ The image service has not answered since {since}; "
                "this job carries on when it is back.",
                since=Stamp(self._outage_since),
            )
            text += f"\n-# {render(note, locale)}"
        return text

    async def _run_pump(self) -> None:
        """Send queued status edits, earliest due first, while the budget has room for them."""
        while self._queue:
            not_before, _, job_id = self._queue[0]
            now = time.monotonic()
            wait = max(not_before - now, self.budget.progress_wait(now))
            if self._finishing:
                wait = max(wait, 0.05)  # finish posts first; woken when the last one is sent
            if job_id not in self._pending:  # its finish was posted meanwhile: no edit
                heapq.heappop(self._queue)
                continue
            if wait <= 0:
                held = self._pending[job_id]
                if held is None:
                    await self._read_due()
                    continue  # the budget may have moved while reading: look again
                job = held
                channel_wait = self.budget.channel_wait(job.route.post_channel_id, now)
                if channel_wait > 0:  # this thread is busy: let other jobs go first
                    heapq.heapreplace(self._queue, (now + channel_wait, next(self._seq), job_id))
                    continue
                heapq.heappop(self._queue)
                del self._pending[job_id]
                looks = self._looks(job)
                if self._shown.get(job.id) == looks:
                    continue  # what the message shows already: no call
                self._shown[job.id] = looks
                self.budget.take(job.route.post_channel_id, now)
                self._last_edit[job.id] = now
                await self._edits.acquire()
                task = asyncio.create_task(self._edit_safely(job))
                self._in_flight.add(task)
                task.add_done_callback(self._edit_done)
                continue
            self._kick.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), min(wait, 1.0))

    async def _read_due(self) -> None:
        """Read the jobs whose edits come next (the head of the queue and those near it) as the
        ledger has them now, in one read. A job with nothing to show is dropped: gone, without
        a status message, or finished but not yet posted (the finish goes first, then queues its
        own edit). A failed read drops them too; their next change queues them again."""
        assert self._load is not None
        ids = [i for _, _, i in self._queue[:READ_AHEAD] if self._pending.get(i, 0) is None]
        try:
            found = {job.id: job for job in await self._load(ids)}
        except Exception:
            log.exception("reading %d jobs for their status edits failed", len(ids))
            found = {}
        for job_id in ids:
            if job_id not in self._pending or self._pending[job_id] is not None:
                continue  # taken by a finish post meanwhile, or its own state given meanwhile
            job = found.get(job_id)
            if job is not None and _showable(job):
                self._pending[job_id] = _slim(job)
            else:
                del self._pending[job_id]

    def _edit_done(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._edits.release()

    async def _edit_safely(self, job: Job) -> None:
        # One edit of a job's message at a time, in the order they were sent: an edit held back
        # by a rate limit (discord.py sleeps, then retries) must not land after a newer one.
        lock = self._edit_locks.setdefault(job.id, asyncio.Lock())
        try:
            async with lock:
                await self._edit_status(job)
        except Exception:
            log.exception("job %s: status edit failed", job.id)
        finally:
            if job.finished and not lock.locked():
                self._edit_locks.pop(job.id, None)

    async def close(self) -> None:
        """Stop sending queued status edits (at shutdown; finish posts are the tracker's)."""
        tasks = [t for t in (self._pump, *self._in_flight) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _edit_status(self, job: Job, *, retried: bool = False) -> None:
        self.counts["edits"] += 1
        if job.finished:
            self._last_edit.pop(job.id, None)  # the last edit of this job
            self._shown.pop(job.id, None)
        channel = self._bot.get_partial_messageable(
            job.route.post_channel_id, guild_id=job.route.guild_id
        )
        message = channel.get_partial_message(job.route.status_message_id)
        embed = None
        if job.status is JobStatus.IN_PROGRESS and job.image_url:
            # TRANSLATORS: an embed's title, at most 256 characters.
            title = render(msg("Preview"), self._locale(job))
            embed = discord.Embed(title=title).set_image(url=job.image_url)
        try:
            # A job that waits for the member's prompt gets the button that asks for it.
            view = continue_view(job, self._locale(job)) if job.status is JobStatus.MODAL else None
            content = self._status_text(job)
            await message.edit(content=content, embed=embed, allowed_mentions=NO_PINGS, view=view)
        except discord.HTTPException as exc:
            if exc.code == THREAD_ARCHIVED and not retried and await self._reopen(job):
                await self._edit_status(job, retried=True)
                return
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
        # The finish goes first: a waiting edit of this job is stale now, and no status edit
        # goes while any finish is being posted (issue 12: 283–383 of 1,000 finishes waited
        # behind their own last status edit). The status message shows the end afterwards,
        # from whatever budget the finishes leave.
        self._pending.pop(job.id, None)
        self._finishing += 1
        try:
            if job.status is JobStatus.SUCCEEDED:
                message_id = await self._post_result(job)
            else:
                message_id = await self._send(job)
        finally:
            self._finishing -= 1
            self._kick.set()
        self._queue_edit(job, keep=True)  # the end, as posted (the ledger says POSTED later)
        return message_id

    async def _post_result(self, job: Job) -> int:
        data: bytes | None = None
        if job.image_url:
            try:
                data = await self._files.download(job.image_url)
            except ApiError as exc:
                log.warning("job %s: could not download the result: %s", job.id, exc.detail)
        if data is None:
            return await self._send(job, link=job.image_url, why=NOT_FETCHED)
        limit = self._upload_limit(job.route.guild_id)
        name = f"mjcord-{job.task_id}"
        if len(data) > limit:
            smaller = await self._files.fit(data, limit)
            if smaller is None:
                return await self._send(job, link=job.image_url, why=TOO_LARGE)
            data, name = smaller, name + ".jpg"
        else:
            name += ".png"
        try:
            return await self._send(job, file=discord.File(io.BytesIO(data), name))
        except _Refused as exc:
            # No file can be uploaded anywhere: link it, saying why (size only if it was size).
            log.warning("job %s: upload refused (%s); posting a link instead", job.id, exc)
            return await self._send(job, link=job.image_url, why=exc.why)

    async def _send(
        self,
        job: Job,
        *,
        file: discord.File | None = None,
        link: str | None = None,
        why: Message | None = None,
    ) -> int:
        """Send to the thread; if it is gone or refuses, to the channel, saying so; if that is
        gone too, give up (0). Raises _Refused when the file itself cannot go anywhere."""
        places = [job.route.post_channel_id]
        if job.route.channel_id not in places:
            places.append(job.route.channel_id)
        kwargs: dict[str, Any] = {
            "allowed_mentions": only_user(job.route.requester_id),
            "nonce": job.post_nonce,
        }
        if job.status is JobStatus.SUCCEEDED and (job.buttons or job.action == "DESCRIBE"):
            kwargs["view"] = result_view(job, self._locale(job))
        note: Message | None = None
        for place in places:
            channel = self._bot.get_partial_messageable(place, guild_id=job.route.guild_id)
            content = finish_content(job, link=link, why=why, note=note, locale=self._locale(job))
            await self._finish_slot(place)
            try:
                if file is not None:
                    file.reset()
                    message = await channel.send(content=content, file=file, **kwargs)
                else:
                    message = await channel.send(content=content, **kwargs)
                return message.id
            except discord.NotFound as exc:
                if exc.code == UNKNOWN_MESSAGE:
                    # Our nonce matched a post made earlier (within Discord's nonce window)
                    # that has since been deleted: it was posted; do not post it again.
                    log.info("job %s: its post in %s was made and since deleted", job.id, place)
                    return 0
                log.warning("job %s: channel %s is gone (%s)", job.id, place, exc.code)
                note = THREAD_GONE
            except discord.Forbidden as exc:
                log.warning("job %s: no permission to post in %s (%s)", job.id, place, exc.code)
                if place != job.route.channel_id:  # the thread refuses: try the channel
                    note = NOT_IN_THREAD
                    continue
                if file is not None:
                    raise _Refused(f"{exc.status}/{exc.code}", NO_FILES) from None
            except discord.HTTPException as exc:
                if exc.code == THREAD_LOCKED and place != job.route.channel_id:
                    # A moderator locked the thread: post in its channel and say why.
                    log.info("job %s: thread %s is locked; posting in its channel", job.id, place)
                    note = LOCKED_NOTE
                    continue
                if file is not None and (exc.status == 413 or exc.code == TOO_LARGE_CODE):
                    raise _Refused(f"{exc.status}/{exc.code}", TOO_LARGE) from None
                raise
        log.error("job %s: nowhere left to post its outcome; giving up", job.id)
        return 0

    async def _reopen(self, job: Job) -> bool:
        """Unarchive the job's thread, which archived itself while the job ran (Send Messages
        is enough for an unlocked thread); whether it worked."""
        try:
            thread = await self._bot.fetch_channel(job.route.post_channel_id)
            if isinstance(thread, discord.Thread):
                await thread.edit(archived=False)
                return True
        except discord.HTTPException as exc:
            log.warning("job %s: could not reopen its thread: %s %s", job.id, exc.status, exc.text)
        return False

    async def _find_post(self, job: Job) -> int:
        needle = marker(job)
        me = self._bot.user.id if self._bot.user else 0
        for place in {job.route.post_channel_id, job.route.channel_id}:
            channel = self._bot.get_partial_messageable(place, guild_id=job.route.guild_id)
            await self._finish_slot(place)
            after = discord.Object(job.route.status_message_id or job.route.reply_message_id or 0)
            try:
                async for message in channel.history(limit=HISTORY_LOOKBACK, after=after):
                    if message.author.id == me and needle in message.content:
                        return message.id
            except discord.HTTPException as exc:
                log.warning("job %s: cannot read %s to look for its post: %s", job.id, place, exc)
        return 0

    async def _finish_slot(self, channel_id: int) -> None:
        """Wait for the budget to allow one finish call (never skipped, only delayed); booked
        as it is sent (the caller awaits nothing in between)."""
        self.counts["finish_calls"] += 1
        await self._turns.take(channel_id)

    def _locale(self, job: Job) -> str:
        """Status messages and finish posts are public: the server's language."""
        return server_locale(self._bot, job.route.guild_id)

    def _upload_limit(self, guild_id: int) -> int:
        """The bot's own per-file limit in this server: its boost tier's (`filesize_limit`).

        Never `Interaction.filesize_limit`: that is the invoking member's limit (their Nitro,
        if larger), which a bot's upload does not get.
        """
        guild = self._bot.get_guild(guild_id)
        return guild.filesize_limit if guild else DEFAULT_UPLOAD_LIMIT


def _showable(job: Job) -> bool:
    """A job read for its status edit has one to show: a status message, and not a finish
    still to be posted."""
    unposted = job.finished and job.post_state is not PostState.POSTED
    return bool(job.route.status_message_id) and not unposted


def _slim(job: Job) -> Job:
    """The job without the text its status message never shows, when that text is long
    (prompts run to 4,000 characters; with 10,000 jobs waiting for an edit, theirs would be most
    of the memory). Short texts stay: a copy costs more CPU than they cost memory."""
    if len(job.prompt) + len(job.final_prompt) + len(job.fail_reason) < SLIM_ABOVE:
        return job
    return dataclasses.replace(job, prompt="", final_prompt="", fail_reason="", buttons=())


class _Refused(Exception):
    """Discord refused the upload itself (permission or size): fall back to a link."""

    def __init__(self, detail: str, why: Message) -> None:
        super().__init__(detail)
        self.why = why  # the member's sentence: why the image is linked, not attached
