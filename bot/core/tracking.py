"""Tracking: follow unfinished jobs to their end and post each outcome exactly once.

The rules that make "nothing lost, nothing twice" hold:
- a finished job is saved with `PostState.INTENT` before its outcome is posted, and marked POSTED
  with the message id after. After a crash, INTENT jobs are posted again, and the observer first
  looks for its own earlier post (see `JobObserver.post_finish`);
- a job left in SUBMITTING by a crash is failed with a message on the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from datetime import datetime, timedelta

from bot.core.errors import ApiError, RateLimited
from bot.core.jobs import Job, PostState, TaskSnapshot
from bot.core.ledger import Ledger
from bot.core.ports import Clock, Gate, ImageApi, JobObserver

log = logging.getLogger(__name__)

RESTART_REASON = "The bot restarted before the image service confirmed this job."


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
