"""What the tracker reads and writes on every cycle, kept small so 10,000 jobs cost little.

A cycle needs, per unfinished job, only its id, task id and status (and, in the database, its
age): the `Watched` view. Progress is not in it: while every task moves, a view that held it
would be read afresh, 10,000 rows, on every cycle. Full jobs are read only for the few whose API
answer moved on. Progress-only changes are written in one transaction per chunk
(`save_progress`); status changes and finishes still go through `Ledger.update`, one
compare-and-set each, before anything is shown, so a crash between two chunks loses at most
progress, which the next cycle reads from the API again. Above
PROGRESS_THROTTLE_ABOVE jobs a running job's progress is saved at most every
PROGRESS_SAVE_EVERY seconds (the Discord budget could not show it more often), and jobs whose
progress is saved are read as the slim `progress_view` when the observer reads what it shows.

`TrackingStore` is the port; `bot.adapters.storage.jobs.SqlJobRepository` implements it with
three additive queries. `LedgerTrackingStore` implements it over any `JobRepository` (the unit
fakes), one job at a time.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Hashable, Sequence
from datetime import datetime
from typing import NamedTuple, Protocol, runtime_checkable

from bot.core.jobs import Job, JobStatus, TaskSnapshot, TaskStatus
from bot.core.ledger import Ledger
from bot.core.ports import Clock

log = logging.getLogger(__name__)

#: An unchanged view of the unfinished jobs is still read in full every this many cycles.
FULL_READ_EVERY = 10
#: Status changes applied at once (each is a compare-and-set, and a finish post may follow).
APPLY_CONCURRENCY = 16
#: Above this many unfinished jobs, a running job's progress is saved (and shown) at most once
#: every PROGRESS_SAVE_EVERY seconds: the Discord budget (10 status edits a second) shows each
#: of 1,000 jobs' progress only once every 100 s anyway, and progress is what a crash may lose.
PROGRESS_THROTTLE_ABOVE = 1_000
PROGRESS_SAVE_EVERY = 30.0


class Watched(NamedTuple):
    """One unfinished job as a tracking cycle sees it (a few dozen bytes, no route, no text).
    A tuple: built 10,000 times a cycle, and a frozen dataclass costs several times more."""

    id: int
    task_id: str
    status: JobStatus


@runtime_checkable
class TrackingStore(Protocol):
    """The tracker's batched view of the ledger."""

    async def watched(self) -> list[Watched]:
        """Every job with a task id that is not finished, oldest first."""
        ...

    async def many(self, job_ids: Sequence[int]) -> list[Job]:
        """Full jobs by id, in one read (missing ids are absent)."""
        ...

    async def progress_view(self, job_ids: Sequence[int]) -> list[Job]:
        """Jobs by id, in one read, holding only what `Job.absorb` and `progress_only` read
        and `save_progress` writes (id, task id, status, progress, queue position, preview,
        fail reason, final prompt, buttons, post state, whether finished); the other fields are
        placeholders, so such a job is never shown or stored whole."""
        ...

    async def watched_version(self) -> tuple[int, ...]:
        """A cheap fingerprint of what `watched` would return (computed by the database): when
        it is unchanged, so is the view, but for a coincidence a periodic full read corrects."""
        ...

    async def overdue(self, created_before: datetime) -> list[int]:
        """Ids of unfinished jobs with a task id created before the given time."""
        ...

    async def save_progress(self, jobs: Sequence[Job]) -> None:
        """Write the progress fields (progress, preview image, final prompt, buttons,
        updated_at) of each job in one transaction, only where the stored job still has the
        same status and no higher progress (drivers cannot all count executemany's rows, so
        nothing is returned)."""
        ...


@runtime_checkable
class ChangedLists(Protocol):
    """An image API that can say a chunk's answer is the one it gave last time, unread."""

    async def list_if_changed(
        self, task_ids: Sequence[str], last: Hashable | None
    ) -> tuple[Hashable | None, list[TaskSnapshot] | None]:
        """`(mark, snapshots)` for one chunk, or `(mark, None)` when the answer is the one the
        mark `last` came with (the same snapshots). None as a mark matches nothing."""
        ...


@runtime_checkable
class ShowsById(Protocol):
    """An observer that can show a job's progress from its id alone, reading the job itself
    when the edit is due (`reads_jobs`): progress changes then need no full job."""

    @property
    def reads_jobs(self) -> bool:
        """True when `show_progress_of` may be used."""
        ...

    async def show_progress_of(self, job_id: int) -> None:
        """Show the job's progress as the ledger will hold it when the edit goes."""
        ...


def progress_only(before: Job, after: Job) -> bool:
    """True when `after` differs from `before` only in what `save_progress` writes: such a
    change may be batched; anything else (a status, a finish) needs its own compare-and-set."""
    return (
        after.status is before.status
        and after.post_state is before.post_state
        and after.finished_at == before.finished_at
        and after.queue_position == before.queue_position
        and after.fail_reason == before.fail_reason
    )


class LedgerTrackingStore:
    """`TrackingStore` over any `JobRepository`, one call per job (for stores without batches)."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._reads = 0

    async def watched(self) -> list[Watched]:
        """Every unfinished job with a task id, oldest first."""
        jobs = await self._ledger.repo.unfinished()
        return [
            Watched(j.id, j.task_id, j.status)
            for j in sorted(jobs, key=lambda j: j.id)
            if j.task_id
        ]

    async def many(self, job_ids: Sequence[int]) -> list[Job]:
        """Jobs by id, one read each."""
        found = [await self._ledger.repo.get(i) for i in job_ids]
        return [j for j in found if j is not None]

    async def progress_view(self, job_ids: Sequence[int]) -> list[Job]:
        """The full jobs (a superset of the view)."""
        return await self.many(job_ids)

    async def watched_version(self) -> tuple[int, ...]:
        """No cheap fingerprint here: a new one every time (the view is always read)."""
        self._reads += 1
        return (self._reads,)

    async def overdue(self, created_before: datetime) -> list[int]:
        """Ids of unfinished jobs created before the time."""
        jobs = await self._ledger.repo.unfinished()
        return [j.id for j in jobs if j.task_id and j.created_at < created_before]

    async def save_progress(self, jobs: Sequence[Job]) -> None:
        """Each job's progress through the ledger's compare-and-set, with the same guard."""
        for new in jobs:

            def change(current: Job, new: Job = new) -> Job:
                if current.status is not new.status or current.progress > new.progress:
                    return current
                return dataclasses.replace(
                    current,
                    progress=new.progress,
                    image_url=new.image_url,
                    final_prompt=new.final_prompt,
                    buttons=new.buttons,
                    updated_at=new.updated_at,
                )

            await self._ledger.update(new.id, change)


class WatchedView:
    """The unfinished jobs as the last cycle read them, kept while the database's fingerprint of
    them is unchanged (an idle cycle reads one row, not 10,000); read afresh otherwise, and at
    least every FULL_READ_EVERY cycles."""

    def __init__(self, store: TrackingStore) -> None:
        self._store = store
        self._view: list[Watched] = []
        self._owners: dict[str, int] | None = None  # task id → job id, made when first asked
        self._version: tuple[int, ...] = ()
        self._since_full = 0

    async def read(self) -> list[Watched]:
        """The view, in id order."""
        version = await self._store.watched_version()
        self._since_full += 1
        if version != self._version or self._since_full >= FULL_READ_EVERY:
            self._view = await self._store.watched()
            self._owners = None
            self._version, self._since_full = version, 0
        return self._view

    def owner(self, task_id: str) -> int | None:
        """The id of the job the last read saw owning `task_id` (it may have finished since);
        None when it saw none (the job may be newer than the read)."""
        if self._owners is None:
            self._owners = {w.task_id: w.id for w in self._view}
        return self._owners.get(task_id)


class Absorber:
    """Applies a chunk's API snapshots to its jobs at the least cost (see `bot.core.tracking`).

    Remembers, per task, the hash of the snapshot last absorbed: an equal snapshot costs a hash
    and a look-up, nothing else. `apply` (a compare-and-set, then show or post) takes status
    changes and finishes; progress-only changes are saved in one batch, then `show`n. With
    `show_id` (an observer that reads the jobs it shows) the jobs are read as the slim
    `progress_view` and shown by id; otherwise read and shown whole.
    """

    def __init__(
        self,
        store: TrackingStore,
        clock: Clock,
        *,
        apply: Callable[[int, TaskSnapshot], Awaitable[object]],
        show: Callable[[Job], Awaitable[None]],
        show_id: Callable[[int], Awaitable[None]] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._monotonic = monotonic
        #: True while progress saves are throttled (the tracker sets it from the job count).
        self.throttle = False
        self._saved: dict[int, float] = {}  # job id → when its progress was saved (throttled)
        self._clock = clock
        self._apply = apply
        self._show = show
        self._show_id = show_id
        self._seen: dict[str, int] = {}  # task id → hash of the snapshot last absorbed

    def forget_all_but(self, watched: Sequence[Watched]) -> None:
        """Drop the hashes of tasks no longer watched (finished), when they pile up; sets
        `throttle` from the number watched."""
        self.throttle = len(watched) > PROGRESS_THROTTLE_ABOVE
        if not self.throttle:
            self._saved = {}
        if len(self._seen) > 2 * len(watched) + 1000:
            live = {w.task_id for w in watched}
            self._seen = {t: h for t, h in self._seen.items() if t in live}
        if len(self._saved) > 2 * len(watched) + 1000:
            ids = {w.id for w in watched}
            self._saved = {i: t for i, t in self._saved.items() if i in ids}

    async def absorb(self, chunk: Sequence[Watched], snaps: Sequence[TaskSnapshot]) -> bool:
        """Apply the snapshots that move a job on; True when every one was applied. Failures
        are logged (the next cycle retries: a snapshot is remembered only once applied)."""
        try:
            return await self._absorb(chunk, snaps)
        except Exception:
            log.exception("tracker: applying a chunk of %d failed; retrying next cycle", len(chunk))
            return False

    async def _absorb(self, chunk: Sequence[Watched], snaps: Sequence[TaskSnapshot]) -> bool:
        by_task = {s.task_id: s for s in snaps}
        moved: dict[int, tuple[TaskSnapshot, int]] = {}
        held_back = False
        recent = self._monotonic() - PROGRESS_SAVE_EVERY
        for w in chunk:
            snap = by_task.get(w.task_id)
            if snap is not None and self._seen.get(w.task_id) != (key := hash(snap)):
                if (
                    self.throttle
                    and snap.status is TaskStatus.IN_PROGRESS
                    and w.status is JobStatus.IN_PROGRESS
                    and self._saved.get(w.id, recent) > recent
                ):
                    # Progress saved moments ago: this one waits (unremembered, so a later
                    # cycle takes it, or a newer one, once the job's save is due again).
                    held_back = True
                    continue
                moved[w.id] = (snap, key)
        if not moved:
            return not held_back
        now = self._clock.now()
        batch: list[Job] = []
        changes: list[tuple[int, TaskSnapshot]] = []
        read = self._store.many if self._show_id is None else self._store.progress_view
        for job in await read(list(moved)):
            snap, key = moved[job.id]
            new = job.absorb(snap, now)
            if new is job:
                self._seen[snap.task_id] = key  # nothing new in it: never read the job for it
            elif progress_only(job, new):
                batch.append(new)
            else:
                changes.append((job.id, snap))
        if batch:
            await self._store.save_progress(batch)
            if self.throttle:
                saved_at = self._monotonic()
                for new in batch:
                    self._saved[new.id] = saved_at
            for new in batch:
                snap, key = moved[new.id]
                self._seen[snap.task_id] = key
                if self._show_id is None:
                    await self._show(new)
                else:
                    await self._show_id(new.id)
        slots = asyncio.Semaphore(APPLY_CONCURRENCY)

        async def change(job_id: int, snap: TaskSnapshot) -> bool:
            async with slots:
                try:
                    await self._apply(job_id, snap)
                except Exception:
                    log.exception("job %s: applying a status change failed; retrying", job_id)
                    return False
            self._seen[snap.task_id] = moved[job_id][1]
            return True

        done = await asyncio.gather(*(change(job_id, snap) for job_id, snap in changes))
        return all(done) and not held_back
