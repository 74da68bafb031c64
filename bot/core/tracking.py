"""Tracking: follow unfinished jobs to their end and post each outcome exactly once.

The rules that make "nothing lost, nothing twice" hold:
- a finished job is saved with `PostState.INTENT` before its outcome is posted, and marked POSTED
  with the message id after. After a crash, INTENT jobs are posted again, and the observer first
  looks for its own earlier post (see `JobObserver.post_finish`);
- a job left in SUBMITTING by a crash is failed with a message on the next start;
- within a process, one job's outcome is posted by one caller at a time.

The rules that keep the API's load bounded whatever the number of jobs:
- a cycle asks for every unfinished job with one list request per chunk of `chunk_size` ids;
- every API request the tracker makes (cycle chunks and callback look-ups alike) takes a slot
  from one `bot.core.pacing.Pacer` of at most `max_requests_per_second`, so a cycle over N jobs
  lasts at least ceil(N / chunk_size) / rate seconds: the cycle grows with the number of jobs.
  429s and outages back off there; a cycle cut short resumes where it stopped, so no job starves
  behind a limit that always bites at the same chunk;
- an API callback is a hint: `hint(task_id)` makes the tracker read that task from the API and
  act on what the API says, never on the callback's body. With callbacks on, polling goes on as
  a slower safety net.

A cycle is cheap (issue 12): it reads the slim view of unfinished jobs, skips a chunk whose API
answer is the one last absorbed in full (where the API client can tell, unparsed: `ChangedLists`)
and snapshots equal to the last one absorbed, batches progress per chunk and absorbs chunks while
the next request is on its way (at most ABSORB_AHEAD at once); see `bot.core.watchlist`.

Outages (issue 10): once the API answers again every unfinished job is polled within
`max(2 × interval, 15 s)` (see `bot.core.pacing`); when an outage outlasts
`outage_notice_after`, every status message says so once (`OutageNotices`), and says no more
once the API answers.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import dataclasses
import functools
import logging
import math
import time
from collections.abc import Awaitable, Callable, Hashable, Iterable, Sequence
from datetime import datetime, timedelta

from bot.core.errors import TaskNotFound
from bot.core.jobs import Job, PostState, TaskSnapshot
from bot.core.ledger import Ledger
from bot.core.messages import msg
from bot.core.pacing import MAX_BACKOFF, MIN_REQUESTS_PER_SECOND, OutageNotices, Pacer, Sleep
from bot.core.ports import Clock, Gate, ImageApi, JobObserver
from bot.core.watchlist import (
    Absorber,
    ChangedLists,
    LedgerTrackingStore,
    ShowsById,
    TrackingStore,
    Watched,
    WatchedView,
)

log = logging.getLogger(__name__)

# A failure reason kept in the ledger in English; its own catalogue key (see recovery.py).
RESTART_REASON = msg("The bot restarted before the image service confirmed this job.").text
#: How long a finished job waits for its command to record where its messages live (reply,
#: thread); past it (the command died midway), the outcome goes to the channel.
PLACEMENT_GRACE = timedelta(seconds=30)

#: With callbacks on, polling (the safety net) runs this many times less often.
CALLBACK_POLL_FACTOR = 5
#: Callback hints waiting to be looked up; beyond this they are dropped (polling covers them).
MAX_PENDING_HINTS = 10_000
#: Outcomes posted at once (the observer paces Discord traffic itself). Enough that a finish is
#: always ready when the budget has room, though each holds its slot while it is recorded.
POST_CONCURRENCY = 64
#: Updates applied at once (each is a few database round trips).
APPLY_CONCURRENCY = 16
#: Chunks being absorbed while the cycle requests the next ones.
ABSORB_AHEAD = 4
#: An outage longer than this is shown on every status message (once), until it ends.
OUTAGE_NOTICE_AFTER = timedelta(seconds=60)

__all__ = ["MAX_BACKOFF", "MIN_REQUESTS_PER_SECOND", "Sleep", "Tracker"]


def _duration(span: timedelta) -> str:
    seconds = round(span.total_seconds())
    if seconds < 120:
        return "1 second" if seconds == 1 else f"{seconds} seconds"
    return f"{round(seconds / 60)} minutes"


class Tracker:
    """Follows unfinished jobs to their end and posts each outcome exactly once.

    See the module docstring for the rules. `wake()` makes the next cycle start now (unless a
    429 asked for a pause); `hint(task_id)` looks one task up at once.
    """

    def __init__(
        self,
        api: ImageApi,
        ledger: Ledger,
        observer: JobObserver,
        gate: Gate,
        clock: Clock,
        *,
        timeout: timedelta,
        interval: float,
        chunk_size: int = 100,
        max_requests_per_second: float = 10.0,
        callbacks: bool = False,
        sleep: Sleep = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        store: TrackingStore | None = None,
        outage_notice_after: timedelta = OUTAGE_NOTICE_AFTER,
    ) -> None:
        if chunk_size < 1 or max_requests_per_second <= 0:
            raise ValueError("chunk_size and max_requests_per_second must be positive")
        self.api = api
        self.ledger = ledger
        self.observer = observer
        self.gate = gate
        self.clock = clock
        # The SQL repository offers the batched view itself; other stores go job by job.
        repo = ledger.repo
        self.store = store or (
            repo if isinstance(repo, TrackingStore) else LedgerTrackingStore(ledger)
        )
        # Jobs recorded from here on belong to this process; only older SUBMITTING jobs were
        # interrupted by a restart.
        self._born = clock.now()
        self.timeout = timeout
        self.interval = interval * CALLBACK_POLL_FACTOR if callbacks else interval
        self.chunk_size = chunk_size
        self.pacer = Pacer(
            clock,
            max_rate=max_requests_per_second,
            interval=interval,
            sleep=sleep,
            monotonic=monotonic,
        )
        self.outage_notice_after = outage_notice_after
        self._monotonic = monotonic
        self._wake = asyncio.Event()
        self._hint_ready = asyncio.Event()
        self._hinted: dict[str, int] = {}  # task id → job id, in arrival order
        self._posting: set[int] = set()
        self._post_slots = asyncio.Semaphore(POST_CONCURRENCY)
        # Narrowed once here: a runtime Protocol check per progress change (or per chunk) was on
        # the hot path.
        self._changed_lists = api if isinstance(api, ChangedLists) else None
        self._by_id: ShowsById | None = (
            observer if isinstance(observer, ShowsById) and observer.reads_jobs else None
        )
        self._absorber = Absorber(
            self.store,
            clock,
            apply=self.apply,
            show=self._show,
            show_id=self._show_id if self._by_id is not None else None,
            monotonic=monotonic,
        )
        self._cursor = 0  # the last job id polled; the next cycle starts after it
        self._outage_shown: datetime | None = None  # the outage members were told about
        self.tracked = 0  # unfinished jobs seen by the last cycle
        self._view = WatchedView(self.store)
        # Per chunk (its task ids), the mark of the API's answer last absorbed in full: an
        # answer with the same mark is the same snapshots, neither parsed nor looked at.
        self._marks: dict[tuple[str, ...], Hashable] = {}

    # --- the public surface -----------------------------------------------------------------

    @property
    def rate(self) -> float:
        """API requests per second the tracker allows itself now."""
        return self.pacer.rate

    @property
    def last_api_success(self) -> datetime | None:
        """When the API last answered a tracker request."""
        return self.pacer.last_success

    def wake(self) -> None:
        """Start the next cycle now (a job was just accepted)."""
        self._wake.set()

    async def hint(self, task_id: str) -> bool:
        """A callback says this task changed: look it up in the API soon, and act on that.

        Returns False (and does nothing) when no unfinished job owns the task id. The owner is
        looked up in the last cycle's view first (a burst of 1,000 callbacks then costs no
        1,000 reads ahead of the finishes they announce), else in the ledger.
        """
        job_id = self._view.owner(task_id)
        if job_id is None:
            job = await self.ledger.repo.by_task_id(task_id)
            if job is None or job.finished:
                return False
            job_id = job.id
        if task_id in self._hinted or len(self._hinted) < MAX_PENDING_HINTS:
            self._hinted[task_id] = job_id
            self._hint_ready.set()
        else:
            log.debug(
                "tracker: %d hints waiting; task %s left to polling", len(self._hinted), task_id
            )
        return True

    def cycle_seconds(self, jobs: int | None = None) -> float:
        """How long one cycle over `jobs` (default: the last count) lasts at the current rate."""
        n = self.tracked if jobs is None else jobs
        return max(self.interval, math.ceil(n / self.chunk_size) / self.rate)

    async def run(self) -> None:
        """Resume, then poll and serve hints until cancelled. Errors are logged, never fatal."""
        await self.resume()
        async with asyncio.TaskGroup() as group:
            group.create_task(self._poll_loop())
            group.create_task(self._hint_loop())

    async def resume(self) -> None:
        """After a start: post every pending outcome. Jobs an earlier process left in
        SUBMITTING are bot.core.recovery's: their submit may have reached the API."""
        await self.flush_posts()

    async def poll_once(self) -> None:
        """One tracking cycle over all unfinished jobs: one request per chunk, paced."""
        watched = await self._view.read()
        self.tracked = len(watched)
        self._absorber.forget_all_but(watched)
        # Rotate so that a cycle cut short by a 429 resumes after the last job it reached.
        # (`watched` is in id order, so the cut is a bisection.)
        cut = bisect.bisect_right(watched, self._cursor, key=lambda w: w.id)
        order = watched[cut:] + watched[:cut]
        clean = True
        absorbing: set[asyncio.Task[None]] = set()
        ahead = asyncio.Semaphore(ABSORB_AHEAD)
        marks, self._marks = self._marks, {}  # chunks that moved or vanished drop their marks
        try:
            for start in range(0, len(order), self.chunk_size):
                chunk = order[start : start + self.chunk_size]
                ids = tuple(w.task_id for w in chunk)
                read = await self.pacer.request(functools.partial(self._list, ids, marks.get(ids)))
                if read is None:
                    clean = False
                    break
                if self._outage_shown is not None:
                    await self._tell_outage()  # over: take the note back before any finish
                self._cursor = chunk[-1].id
                mark, snaps = read
                if snaps is None:  # the same answer as last time, all of it absorbed then
                    self._marks[ids] = marks[ids]
                    continue
                await ahead.acquire()
                task = asyncio.create_task(self._absorb(chunk, snaps, ids, mark))
                absorbing.add(task)
                task.add_done_callback(absorbing.discard)
                task.add_done_callback(lambda _: ahead.release())
        finally:
            if absorbing:
                await asyncio.gather(*absorbing, return_exceptions=True)
        if clean and watched:
            self.pacer.recover()
        # The age rule runs in the database: the cycle's view carries no timestamps to parse.
        for job_id in await self.store.overdue(self.clock.now() - self.timeout):
            await self._time_out(job_id)
        await self._tell_outage()
        await self.flush_posts()

    async def _list(
        self, ids: tuple[str, ...], last: Hashable | None
    ) -> tuple[Hashable | None, list[TaskSnapshot] | None]:
        """One chunk from the API: `(mark, None)` when the API can tell it is unchanged since
        the answer marked `last`, else `(mark, snapshots)`."""
        if self._changed_lists is not None:
            return await self._changed_lists.list_if_changed(ids, last)
        return None, await self.api.list_by_ids(ids)

    async def _absorb(
        self,
        chunk: Sequence[Watched],
        snaps: list[TaskSnapshot],
        ids: tuple[str, ...],
        mark: Hashable | None,
    ) -> None:
        """Absorb one chunk; its mark is kept only when every snapshot was applied, so an
        answer that failed to apply is read again, whatever its bytes."""
        if await self._absorber.absorb(chunk, snaps) and mark is not None:
            self._marks[ids] = mark

    async def apply(self, job_id: int, snap: TaskSnapshot) -> Job | None:
        """Apply one API snapshot to its job with a compare-and-set; show progress or post the
        outcome."""
        changed = await self.ledger.update(job_id, lambda j: j.absorb(snap, self.clock.now()))
        if changed is None:
            return None
        log.info("job %s: %s %s%%", job_id, changed.status.value, changed.progress)
        if changed.finished:
            await self._post(changed)
        else:
            await self._show(changed)
        return changed

    async def flush_posts(self) -> None:
        """Post every finished job whose outcome is not yet recorded as posted."""
        await self._gather(self._post(job) for job in await self.ledger.repo.unposted())

    # --- loops ------------------------------------------------------------------------------

    async def _poll_loop(self) -> None:
        while True:
            started = self._monotonic()
            try:
                await self.poll_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("tracker cycle failed; retrying next cycle")
            now = self._monotonic()
            paused = self.pacer.paused_until - now
            if self.pacer.outage_since is not None:
                # During an outage the pause alone decides: the probe that finds the API back
                # must not wait for a (callback-lengthened) interval too.
                delay = max(paused, 0.0)
            else:
                delay = max(self.interval - (now - started), paused, 0.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
            self._wake.clear()
            # A wake-up during a pause a 429 asked for starts the cycle, whose first request
            # still waits for the pause to end (see Pacer).

    async def _hint_loop(self) -> None:
        while True:
            await self._hint_ready.wait()
            self._hint_ready.clear()
            batch, self._hinted = self._hinted, {}
            try:
                await self._look_up(batch)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("tracker: looking up %d hinted tasks failed", len(batch))

    async def _look_up(self, batch: dict[str, int]) -> None:
        """Read hinted tasks from the API (fetch for one, list requests for several) and apply
        what the API says."""
        ids = list(batch)
        for start in range(0, len(ids), self.chunk_size):
            chunk = ids[start : start + self.chunk_size]
            if len(chunk) == 1:
                snaps = await self.pacer.request(functools.partial(self._fetch_one, chunk[0]))
            else:
                snaps = await self.pacer.request(functools.partial(self.api.list_by_ids, chunk))
            if snaps is None:
                return  # rate limited or failing: polling covers the rest
            await self._gather(self.apply(batch[s.task_id], s) for s in snaps if s.task_id in batch)

    async def _fetch_one(self, task_id: str) -> list[TaskSnapshot]:
        try:
            return [await self.api.fetch(task_id)]
        except TaskNotFound:
            log.info("tracker: hinted task %s is unknown to the API; left to polling", task_id)
            return []

    # --- applying ---------------------------------------------------------------------------

    async def _gather(self, calls: Iterable[Awaitable[object]]) -> None:
        """Run `calls` with at most APPLY_CONCURRENCY at once (the database pool is small);
        one failing call is logged and does not stop the others."""
        slots = asyncio.Semaphore(APPLY_CONCURRENCY)

        async def one(call: Awaitable[object]) -> None:
            async with slots:
                try:
                    await call
                except Exception:
                    log.exception("tracker: applying an update failed; retrying next cycle")

        await asyncio.gather(*(one(c) for c in calls))

    async def _tell_outage(self) -> None:
        """Tell members once when an outage outlasts the threshold; take it back once over."""
        if not isinstance(self.observer, OutageNotices):
            return
        since = self.pacer.outage_since
        if since is not None and self._outage_shown is None:
            if self.clock.now() - since < self.outage_notice_after:
                return
            self._outage_shown = since
            log.warning("tracker: the image API has been down since %s; members told", since)
        elif since is None and self._outage_shown is not None:
            self._outage_shown = None
        else:
            return
        ids = [w.id for w in await self.store.watched()]
        for start in range(0, len(ids), self.chunk_size):
            jobs = await self.store.many(ids[start : start + self.chunk_size])
            await self.observer.show_outage(since, jobs)

    async def _time_out(self, job_id: int) -> None:
        limit = _duration(self.timeout)
        reason = f"The image service did not finish this job within {limit}."
        failed = await self.ledger.update(job_id, lambda j: j.fail(reason, self.clock.now()))
        if failed:
            log.warning("job %s: timed out after %s", job_id, limit)
            await self._post(failed)

    async def _show(self, job: Job) -> None:
        try:
            await self.observer.show_progress(job)
        except Exception:
            log.exception("job %s: progress update failed", job.id)

    async def _show_id(self, job_id: int) -> None:
        assert self._by_id is not None  # only handed to the absorber when set
        try:
            await self._by_id.show_progress_of(job_id)
        except Exception:
            log.exception("job %s: progress update failed", job_id)

    async def _post(self, job: Job) -> None:
        if job.post_state is not PostState.INTENT or job.id in self._posting:
            return
        self._posting.add(job.id)
        try:
            async with self._post_slots:
                await self._post_now(job)
        finally:
            self._posting.discard(job.id)

    async def _post_now(self, job: Job) -> None:
        fresh = await self.ledger.repo.get(job.id)
        if fresh is None or fresh.post_state is not PostState.INTENT:
            return  # another caller posted it since `job` was read
        if not fresh.route.placed and self.clock.now() - fresh.created_at < PLACEMENT_GRACE:
            return  # its command is still opening the reply and thread; a later cycle posts it
        job = fresh
        try:
            message_id = await self.observer.post_finish(job)
        except Exception:
            # Left in INTENT: the next cycle tries again, and the observer's look-up prevents a
            # second post if this one actually reached Discord.
            log.exception("job %s: posting the outcome failed; will retry", job.id)
            return
        # The message id at once (moderators' links use it); settled before POSTED is recorded:
        # settling is idempotent, so a crash in between settles again after the restart's
        # re-post (which finds this post) instead of never.
        # Each write starts from the copy just read or saved: no read before it (a stale copy
        # only costs a retry).
        recorded = await self.ledger.update(
            job.id, lambda j: dataclasses.replace(j, result_message_id=message_id), current=job
        )
        await self.gate.settle(job)
        posted = await self.ledger.update(
            job.id,
            lambda j: dataclasses.replace(
                j, post_state=PostState.POSTED, result_message_id=message_id
            ),
            current=recorded,
        )
        if posted is not None:
            log.info("job %s: outcome posted (message %s)", job.id, message_id)
