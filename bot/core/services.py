"""Use cases: submit a job, track unfinished jobs, post each outcome exactly once, resume.

The rules that make "nothing lost, nothing twice" hold:
- a job is written to the ledger (SUBMITTING) before the API is called, and again with its task
  id before anyone sees that id;
- every change to a job goes through `Ledger.update`, which serialises changes per job, so the
  tracker and a command handler never overwrite each other;
- a finished job is saved with `PostState.INTENT` before its outcome is posted, and marked POSTED
  with the message id after. After a crash, INTENT jobs are posted again, and the observer first
  looks for its own earlier post (see `JobObserver.post_finish`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from bot.core.errors import ApiError, RateLimited
from bot.core.jobs import Job, JobStatus, Mode, PostState, ReferenceImage, Route, TaskSnapshot
from bot.core.ports import Clock, Gate, ImageApi, ImagineRequest, JobObserver, JobRepository, Ticket

log = logging.getLogger(__name__)

_CAS_ATTEMPTS = 5
RESTART_REASON = "The bot restarted before the image service confirmed this job."


class SystemClock:
    """The real clock (UTC)."""

    def now(self) -> datetime:
        """Now, timezone-aware UTC."""
        return datetime.now(UTC)


class AllowAll:
    """A gate that admits everything and refunds nothing (before moderation is configured)."""

    async def admit(self, ticket: Ticket) -> None:
        """Admit."""

    async def settle(self, job: Job) -> None:
        """Nothing to settle."""


class Ledger:
    """The job repository plus per-job serialisation of read-modify-write changes."""

    def __init__(self, repo: JobRepository) -> None:
        self.repo = repo
        self._locks: dict[int, asyncio.Lock] = {}

    async def update(self, job_id: int, change: Callable[[Job], Job]) -> Job | None:
        """Apply `change` to the freshest copy of the job and save it if anything changed.

        Returns the job as saved, or None when the job is gone or `change` changed nothing.
        Within a process a per-job lock serialises changes; across processes sharing one
        database, the write is a compare-and-set, retried on a fresh copy when another process
        wrote in between (so a stale writer can never undo a finish).
        """
        lock = self._locks.setdefault(job_id, asyncio.Lock())
        try:
            async with lock:
                for _ in range(_CAS_ATTEMPTS):
                    job = await self.repo.get(job_id)
                    if job is None:
                        return None
                    new = change(job)
                    if new == job:
                        return None
                    if await self.repo.replace(job, new):
                        return new
                raise RuntimeError(f"job {job_id}: too many concurrent writers")
        finally:
            if not lock.locked() and not lock._waiters:  # type: ignore[attr-defined]
                self._locks.pop(job_id, None)


class ImagineService:
    """Submits new jobs: record first, then call the API, then record the task id."""

    def __init__(
        self,
        api: ImageApi,
        ledger: Ledger,
        gate: Gate,
        clock: Clock,
        *,
        notify_hook: str | None = None,
    ) -> None:
        self.api = api
        self.ledger = ledger
        self.gate = gate
        self.clock = clock
        self.notify_hook = notify_hook

    async def admit(self, ticket: Ticket) -> None:
        """Run the moderation gate; raises Refused with the member's sentence."""
        await self.gate.admit(ticket)

    async def submit(
        self, route: Route, mode: Mode, prompt: str, images: Sequence[ReferenceImage] = ()
    ) -> Job:
        """Submit an /imagine. Returns the accepted job (stored with its task id).

        Raises the API's error after recording the job as failed and settling it with the gate
        (so a refused job is never charged).
        """
        now = self.clock.now()
        job = await self.ledger.repo.add(
            Job(
                id=0,
                route=route,
                mode=mode,
                prompt=prompt,
                created_at=now,
                updated_at=now,
                reference_count=len(images),
            )
        )
        request = ImagineRequest(
            prompt=prompt,
            mode=mode,
            images=images,
            state=job_state(job.id),
            notify_hook=self.notify_hook,
        )
        try:
            submission = await self.api.imagine(request)
        except ApiError as exc:
            log.log(
                logging.INFO if exc.member_fault else logging.WARNING,
                "job %s: submit refused: %s: %s",
                job.id,
                type(exc).__name__,
                exc.detail,
            )
            reason = exc.detail or exc.member_message
            failed = await self.ledger.update(
                job.id,
                lambda j: dataclasses.replace(
                    j,
                    status=JobStatus.FAILED,
                    fail_reason=reason,
                    finished_at=self.clock.now(),
                    updated_at=self.clock.now(),
                    # The member sees the refusal at once, so there is nothing left to post.
                    post_state=PostState.POSTED,
                ),
            )
            await self.gate.settle(failed or job)
            raise
        status = JobStatus.MODAL if submission.needs_input else JobStatus.QUEUED
        accepted = await self.ledger.update(
            job.id,
            lambda j: dataclasses.replace(
                j,
                task_id=submission.task_id,
                status=status,
                queue_position=submission.queue_position,
                final_prompt=submission.final_prompt,
                updated_at=self.clock.now(),
            ),
        )
        assert accepted is not None  # the row was written above and nothing else knows its id
        log.info("job %s: accepted as task %s (%s)", job.id, submission.task_id, mode.value)
        return accepted

    async def place(self, job_id: int, **route_fields: int) -> Job | None:
        """Record where the job's messages now live (reply, thread, status message)."""
        return await self.ledger.update(
            job_id,
            lambda j: dataclasses.replace(j, route=dataclasses.replace(j.route, **route_fields)),
        )


def job_state(job_id: int) -> str:
    """The `state` sent with a task: it routes a callback back to its job."""
    return f"mjcord:{job_id}"


def _duration(span: timedelta) -> str:
    seconds = round(span.total_seconds())
    if seconds < 120:
        return "1 second" if seconds == 1 else f"{seconds} seconds"
    return f"{round(seconds / 60)} minutes"


class Tracker:
    """Follows unfinished jobs to their end and posts each outcome exactly once.

    One `list_by_ids` call per cycle covers every unfinished job (the client splits it into
    chunks). A job unfinished past `timeout` is failed. `wake()` makes the next cycle start now.
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
    ) -> None:
        self.api = api
        self.ledger = ledger
        self.observer = observer
        self.gate = gate
        self.clock = clock
        self.timeout = timeout
        self.interval = interval
        self._wake = asyncio.Event()
        self._backoff = 0.0
        self.last_api_success: datetime | None = None

    def wake(self) -> None:
        """Start the next cycle now (a callback arrived, or a job was just accepted)."""
        self._wake.set()

    async def run(self) -> None:
        """Resume, then poll until cancelled. Errors of one cycle are logged, never fatal."""
        await self.resume()
        while True:
            try:
                await self.poll_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("tracker cycle failed; retrying next cycle")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval + self._backoff)
            self._wake.clear()

    async def resume(self) -> None:
        """After a start: fail jobs whose submit was interrupted, and post every pending outcome."""
        for job in await self.ledger.repo.stuck_submitting():
            failed = await self.ledger.update(
                job.id, lambda j: j.fail(RESTART_REASON, self.clock.now())
            )
            if failed:
                log.warning("job %s: interrupted during submit; failed", job.id)
        await self.flush_posts()

    async def poll_once(self) -> None:
        """One tracking cycle over all unfinished jobs."""
        jobs = await self.ledger.repo.unfinished()
        if jobs:
            snaps = await self._fetch([j.task_id for j in jobs if j.task_id])
            now = self.clock.now()
            for job in jobs:
                snap = snaps.get(job.task_id or "")
                current = (await self.apply(job.id, snap) if snap else None) or job
                if self._overdue(current, now):
                    await self._time_out(job.id)
        await self.flush_posts()

    async def apply(self, job_id: int, snap: TaskSnapshot) -> Job | None:
        """Apply one API snapshot to its job; show progress or post the outcome."""
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
        for job in await self.ledger.repo.unposted():
            await self._post(job)

    def _overdue(self, job: Job, now: datetime) -> bool:
        return not job.finished and now - job.created_at > self.timeout

    async def _time_out(self, job_id: int) -> None:
        limit = _duration(self.timeout)
        reason = f"The image service did not finish this job within {limit}."
        failed = await self.ledger.update(job_id, lambda j: j.fail(reason, self.clock.now()))
        if failed:
            log.warning("job %s: timed out after %s", job_id, limit)
            await self._post(failed)

    async def _fetch(self, task_ids: list[str]) -> dict[str, TaskSnapshot]:
        try:
            snaps = await self.api.list_by_ids(task_ids)
        except RateLimited as exc:
            self._backoff = min(60.0, max(self._backoff * 2, exc.retry_after or self.interval))
            log.warning("tracker: rate limited; next cycle in %.1fs", self.interval + self._backoff)
            return {}
        except ApiError as exc:
            self._backoff = min(60.0, max(self._backoff * 2, self.interval))
            log.warning("tracker: polling failed (%s): %s", type(exc).__name__, exc.detail)
            return {}
        self._backoff = 0.0
        self.last_api_success = self.clock.now()
        return {s.task_id: s for s in snaps}

    async def _show(self, job: Job) -> None:
        try:
            await self.observer.show_progress(job)
        except Exception:
            log.exception("job %s: progress update failed", job.id)

    async def _post(self, job: Job) -> None:
        if job.post_state is not PostState.INTENT:
            return
        try:
            message_id = await self.observer.post_finish(job)
        except Exception:
            # Left in INTENT: the next cycle tries again, and the observer's look-up prevents a
            # second post if this one actually reached Discord.
            log.exception("job %s: posting the outcome failed; will retry", job.id)
            return
        posted = await self.ledger.update(
            job.id,
            lambda j: dataclasses.replace(
                j, post_state=PostState.POSTED, result_message_id=message_id
            ),
        )
        if posted is not None:
            log.info("job %s: outcome posted (message %s)", job.id, message_id)
            await self.gate.settle(posted)
