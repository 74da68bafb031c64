"""Carrying on after a restart: a new process finishes what a dead one started, from the last
step the ledger recorded (see services.py for the steps, README "Nothing lost, nothing twice").

For each job an earlier process left midway:
- **the submit**, while the job is SUBMITTING. With no `sent_at`, the submit never went out:
  send it (attachments downloaded again, quota reserved again — the gate returns the existing
  charge for a job it reserved before). With `sent_at`, it may have reached the API without its
  answer being recorded: ask the API for the task whose `state` is `mjcord:<job id>`
  (`ImageApi.find_by_state`). Found: record its task id, and the tracker follows it. Not there:
  it never arrived, so send it. The server cannot say (aggregators): fail the job with a sentence
  saying so — never a second submit that could make and charge a second task. The API is down:
  try again every `retry` seconds until the job's time limit.
- **the Discord objects**: the reply, the thread, the status message, each made when missing
  (`JobPlaces.restore`); a refusal the member was not yet told about is told.

Which process does it, and when. Several processes may share one database (README "Scaling
out"), and one may die while the others run on; its commands must not wait for a restart. Each
job is leased to the process working on its steps (bot.core.leases: renewed by every process in
one statement every 2 s, lapsed 6 s after its process's last renewal). Every process
(`watch`) looks every `SWEEP` seconds for jobs left midway whose lease lapsed, claims them with a
compare-and-set (exactly one process wins each), and carries them on as above: a command
interrupted by its process's death is finished within about 8 s of it (6 s lease + 2 s sweep),
by whichever process claims it first. At its own start a process also takes the jobs nobody
holds (rows older than the leases, and jobs given up after an hour); on SQLite, where one
process serves the file, everything an earlier process held, at once.

Why leases, and not the tracking leader's advisory lock (bot.core.leadership): a process's
death ends its database session at once, but the leader cannot tell which other process
received a command, nor whether that process is alive; leases say both, per job, on either
backend. Why per-job leases renewed in one statement, and not a lease per process: the claim
and the submit's fence (bot.core.leases: a process extends its lease on a job just before
submitting it, and stops if another has claimed it) are each one row's compare-and-set, with no
second table to join. Why a lapse of 6 s: it must outlast a few missed renewals under load (a
live process's job claimed by another is a race for its submit), and stay well inside the
10 s in which a dead process's commands are to be taken over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from bot.core.errors import ApiError, MjcordError, Unsupported
from bot.core.jobs import Job, JobStatus, Submission
from bot.core.leases import LEASE, JobLeases, LeaseLost
from bot.core.messages import msg
from bot.core.ports import Clock, JobPlaces
from bot.core.submitter import Submitter, job_state, ticket_of

log = logging.getLogger(__name__)

# Failure reasons, kept in the ledger in English; each is its own catalogue key, so the finish
# post shows it in the server's language (`bot.core.errors.failure_messages`).
UNKNOWN_ARRIVAL = msg(
    "The bot restarted while sending this job, and this image service offers no way to check "
    "whether it arrived, so it is not followed; please ask again."
).text
NEVER_CONFIRMED = msg("The image service did not confirm this job after the bot restarted.").text

Sleep = Callable[[float], Awaitable[None]]

#: How often every process looks for jobs whose process died (lapsed leases).
SWEEP = 2.0


class Recovery:
    """Finishes, after a start, every job that an earlier process left midway."""

    def __init__(
        self,
        submitter: Submitter,
        places: JobPlaces,
        clock: Clock,
        *,
        timeout: timedelta,
        retry: float = 5.0,
        sleep: Sleep = asyncio.sleep,
        leases: JobLeases | None = None,
        sweep: float = SWEEP,
    ) -> None:
        self.submitter = submitter
        self.places = places
        self.clock = clock
        self.timeout = timeout
        self.retry = retry
        self._sleep = sleep
        self.leases = leases  # None: one process, nothing to claim (unit tests)
        self.sweep = sweep

    async def run(self, born: datetime) -> None:
        """At a start: carry on every job an earlier process left with a step to do (without
        leases: those recorded before `born`, this process's start; with them: those claimed
        from dead or absent holders). Jobs whose submit cannot be decided now are tried again
        until decided."""
        if self.leases is None:
            repo = self.submitter.ledger.repo
            left = [j for j in await repo.interrupted() if j.created_at < born]
        else:
            left = await self._claim(orphans=True)
        if left:
            log.info("recovery: %d jobs left midway by an earlier process", len(left))
        await self._see_through(left)

    async def watch(self, born: datetime) -> None:
        """`run(born)`, then, every `sweep` seconds until cancelled, claim and carry on the jobs
        whose process died midway (their lease lapsed). Each claimed batch is carried on in its
        own task, so an undecided submit never holds back the next sweep."""
        carrying: set[asyncio.Task[None]] = set()

        def carry(coro: Awaitable[None]) -> None:
            task = asyncio.ensure_future(coro)
            carrying.add(task)
            task.add_done_callback(carrying.discard)

        if self.leases is None or not self.leases.shared:  # the only process: nothing to sweep
            await self.run(born)
            return
        try:
            carry(self.run(born))
            while True:
                await self._sleep(self.sweep)
                try:
                    taken = await self._claim(orphans=False)
                except Exception:
                    log.exception("recovery: looking for jobs left by a dead process failed")
                    continue
                if taken:
                    log.info(
                        "recovery: took over %d jobs left midway by a process that died: %s",
                        len(taken),
                        ", ".join(str(j.id) for j in taken),
                    )
                    carry(self._see_through(taken))
        finally:
            for task in list(carrying):
                task.cancel()
            await asyncio.gather(*carrying, return_exceptions=True)

    async def _claim(self, *, orphans: bool) -> list[Job]:
        """The jobs this process just won (see JobLeases.claim), freshly read."""
        assert self.leases is not None
        now = self.clock.now()
        ids = await self.leases.claim(now, now + LEASE, orphans=orphans)
        repo = self.submitter.ledger.repo
        return [j for j in [await repo.get(i) for i in ids] if j is not None]

    async def _see_through(self, left: list[Job]) -> None:
        """Carry on each job; those whose submit is undecided again every `retry` seconds."""
        repo = self.submitter.ledger.repo
        while left:
            results = await asyncio.gather(*(self._carry_on(j) for j in left))
            left = [j for j, done in zip(left, results, strict=True) if not done]
            if left:
                await self._sleep(self.retry)
                left = [j for j in [await repo.get(j.id) for j in left] if j is not None]

    async def _carry_on(self, job: Job) -> bool:
        """One job: its submit, then its Discord objects. False when the submit is undecided."""
        decided = True
        try:
            if job.status is JobStatus.SUBMITTING:
                decided = await self.resubmit(job)
        except LeaseLost:
            log.warning("job %s: taken over by another process while recovering it", job.id)
            return True
        except Exception:
            log.exception("job %s: recovering the submit failed; trying again", job.id)
            decided = False
        fresh = await self.submitter.ledger.repo.get(job.id)
        if fresh is not None:
            try:
                await self.places.restore(fresh)
            except Exception:
                log.exception("job %s: restoring its Discord messages failed", job.id)
        return decided

    async def resubmit(self, job: Job) -> bool:
        """Settle a SUBMITTING job's submit (see the module docstring). False: not decided yet
        (the API did not answer); True otherwise."""
        s = self.submitter
        if job.sent_at is not None:
            try:
                snap = await s.api.find_by_state(job_state(job.id))
            except Unsupported:
                log.warning("job %s: submit may have arrived; the server cannot say", job.id)
                await self._fail(job, UNKNOWN_ARRIVAL)
                return True
            except ApiError as exc:
                if self.clock.now() - job.created_at > self.timeout:
                    await self._fail(job, NEVER_CONFIRMED)
                    return True
                log.info("job %s: cannot look for its task yet: %s", job.id, exc.detail)
                return False
            if snap is not None:
                log.info("job %s: its submit had arrived as task %s", job.id, snap.task_id)
                await s.accept(job.id, Submission(task_id=snap.task_id))
                await s.ledger.update(job.id, lambda j: j.absorb(snap, self.clock.now()))
                return True
            log.info("job %s: its submit never reached the API; sending it", job.id)
        try:
            images = await s.load_images(job)
            await s.gate.admit(ticket_of(job))
        except MjcordError as exc:
            await s.abandon(job, exc)
            return True
        # A refusal is recorded as failed by send(); restore() then tells the member.
        with contextlib.suppress(ApiError):
            await s.send(job, images)
        return True

    async def _fail(self, job: Job, reason: str) -> None:
        """Fail a job whose submit was sent: its outcome is posted (and settled) by the tracker."""
        await self.submitter.ledger.update(
            job.id,
            lambda j: j.fail(reason, self.clock.now()) if j.status is JobStatus.SUBMITTING else j,
        )
