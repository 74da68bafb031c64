"""What every submitting use case shares (bot.core.services holds the use cases themselves).

The rule: every step is recorded as it happens, so a restarted process can carry on from the
last one (bot.core.recovery). A command's job is written to the ledger (SUBMITTING, with the
interaction's token and everything needed to send its submit again) as soon as the interaction
is acknowledged — before any download, gate or API work. `sent_at` is written just before the
submit goes out, the task id as soon as the API answers. A refused submit is recorded as failed
and settled with the gate, so it is never charged. Every submitting use case takes the member's
`Ticket`: the gate reserves the job's quota before the API is called.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta

from bot.core.errors import ApiError, DownloadError, ImageRejected, MjcordError, Unavailable
from bot.core.images import NOT_DOWNLOADED, AttachmentFault, about, check_reference, too_big
from bot.core.jobs import (
    Ack,
    Inputs,
    Job,
    JobStatus,
    Mode,
    PostState,
    ReferenceImage,
    Submission,
)
from bot.core.leases import LEASE, JobLeases, LeaseLost
from bot.core.ledger import Ledger
from bot.core.ports import Clock, Gate, ImageApi, ImageFiles, ImagineRequest, Ticket

log = logging.getLogger(__name__)

#: Discord accepts an interaction token for 15 minutes; stop using it a little before.
TOKEN_LIFETIME = timedelta(minutes=15) - timedelta(seconds=30)
DEFAULT_MAX_REFERENCE_BYTES = 10 * 1024 * 1024


class SystemClock:
    """The real clock (UTC)."""

    def now(self) -> datetime:
        """Now, timezone-aware UTC."""
        return datetime.now(UTC)


def job_state(job_id: int) -> str:
    """The `state` sent with a task: it routes a callback back to its job, and lets a restarted
    process find a task whose id it never recorded (`ImageApi.find_by_state`)."""
    return f"mjcord:{job_id}"


def ack_of(application_id: int, token: str, created_at: datetime) -> Ack:
    """The acknowledgement of an interaction created at `created_at` (its token's lifetime)."""
    return Ack(application_id, token, created_at + TOKEN_LIFETIME)


def inputs_of(ticket: Ticket, **fields: object) -> Inputs:
    """A job's inputs, with the parts of the member's ticket the gate needs again later."""
    return dataclasses.replace(
        Inputs(role_ids=ticket.role_ids, manage_guild=ticket.manage_guild),
        **fields,  # type: ignore[arg-type]
    )


def ticket_of(job: Job) -> Ticket:
    """The member's ticket for a recorded job (to reserve its quota, again if need be: the gate
    returns the existing charge for a job it has reserved before)."""
    return Ticket(
        guild_id=job.route.guild_id,
        channel_id=job.route.channel_id,
        user_id=job.route.requester_id,
        role_ids=job.inputs.role_ids,
        prompt=job.prompt,
        manage_guild=job.inputs.manage_guild,
        job_id=job.id,
    )


class Submitter:
    """What every submitting use case shares: the record-each-step rule, the gate, placement."""

    def __init__(
        self,
        api: ImageApi,
        ledger: Ledger,
        gate: Gate,
        clock: Clock,
        *,
        files: ImageFiles | None = None,
        max_reference_bytes: int = DEFAULT_MAX_REFERENCE_BYTES,
        notify_hook: str | None = None,
        leases: JobLeases | None = None,
    ) -> None:
        self.api = api
        # Several processes on one database: the submit is fenced by the job's lease.
        self.leases = leases
        self.ledger = ledger
        self.gate = gate
        self.clock = clock
        self.files = files
        self.max_reference_bytes = max_reference_bytes
        self.notify_hook = notify_hook
        self._locks: dict[tuple[int, str], asyncio.Lock] = {}

    # --- recording steps --------------------------------------------------------------------

    async def open(self, job: Job) -> Job:
        """Record a new job (SUBMITTING) the moment its interaction is acknowledged."""
        now = self.clock.now()
        return await self.ledger.repo.add(dataclasses.replace(job, created_at=now, updated_at=now))

    async def place(self, job_id: int, **route_fields: int | bool) -> Job | None:
        """Record one Discord object of the job as soon as it exists (reply, thread, status
        message), or that no thread could be made (`no_thread=True`)."""
        return await self.ledger.update(
            job_id,
            lambda j: dataclasses.replace(j, route=dataclasses.replace(j.route, **route_fields)),  # type: ignore[arg-type]
        )

    async def place_status(self, job_id: int, message_id: int) -> Job | None:
        """Record the job's status message unless one is recorded already: two processes may
        both post one (a stalled process and the one that took its job over, see leases.py);
        the first recorded stays. None: this one was not recorded (another stands, or the job is
        gone), and the caller deletes it."""
        return await self.ledger.update(
            job_id,
            lambda j: (
                j
                if j.route.status_message_id
                else dataclasses.replace(
                    j, route=dataclasses.replace(j.route, status_message_id=message_id)
                )
            ),
        )

    async def choose_mode(self, job_id: int, mode: Mode) -> Job | None:
        """Record the mode the job uses (the server's default, read after the job was opened)."""
        return await self.ledger.update(job_id, lambda j: dataclasses.replace(j, mode=mode))

    async def forget_token(self, job_id: int) -> None:
        """The interaction token is no longer needed (the reply exists, or the member was told)."""
        await self.ledger.update(job_id, lambda j: dataclasses.replace(j, ack=None))

    async def abandon(self, job: Job, error: BaseException) -> None:
        """A job stopped before its quota was reserved and its submit sent (a refusal, a bad
        attachment, an error in the handler): failed with nothing left to post — the member is
        told directly — and nothing to settle. A job already sent is left as it is."""
        reason = error.member_message if isinstance(error, MjcordError) else repr(error)
        await self.ledger.update(
            job.id,
            lambda j: (
                j
                if j.status is not JobStatus.SUBMITTING or j.sent_at is not None
                else dataclasses.replace(
                    j,
                    status=JobStatus.FAILED,
                    fail_reason=reason,
                    finished_at=self.clock.now(),
                    updated_at=self.clock.now(),
                    post_state=PostState.POSTED,
                )
            ),
        )

    # --- the submit -------------------------------------------------------------------------

    async def run(self, job: Job, ticket: Ticket) -> Job:
        """Carry a recorded job through the gate and the API: check the ticket, download the
        attachments, reserve the quota, record `sent_at`, submit, record the task id.

        Raises what stopped it (Refused, ImageRejected, DownloadError, ApiError); the job is then
        recorded as failed with nothing left to post, and settled.
        """
        try:
            await self.gate.admit(dataclasses.replace(ticket, job_id=0))
            images = await self.load_images(job)
            await self.gate.admit(dataclasses.replace(ticket, job_id=job.id))
        except Exception as exc:
            await self.abandon(job, exc)
            raise
        return await self.send(job, images)

    async def load_images(self, job: Job) -> list[ReferenceImage]:
        """Download and check the job's attachments, in option order; refuse the first bad one,
        naming its option and file. The declared size is checked before anything is downloaded
        (a member's client can lie either way: a real size over the limit is cut off while
        streaming); the bytes decide the type."""
        limit = self.max_reference_bytes
        for source in job.inputs.sources:
            if source.size > limit:
                raise ImageRejected(
                    f"{source.option}: declared {source.size} bytes > {limit}",
                    message=about(source.option, source.filename, too_big(source.size, limit)),
                )
        if not job.inputs.sources:
            return []
        if self.files is None:
            raise RuntimeError("a job with attachments needs ImageFiles")
        files = self.files
        results = await asyncio.gather(
            *(files.fetch_reference(s.url, limit) for s in job.inputs.sources),
            return_exceptions=True,
        )
        images = []
        for source, result in zip(job.inputs.sources, results, strict=True):
            if isinstance(result, AttachmentFault):
                raise result.named(source.option, source.filename)
            if isinstance(result, DownloadError):
                raise DownloadError(
                    f"{source.option}: {result.detail}",
                    message=about(source.option, source.filename, NOT_DOWNLOADED),
                )
            if isinstance(result, BaseException):
                raise result
            images.append(check_reference(source.option, source.filename, result, max_bytes=limit))
        return images

    async def send(self, job: Job, images: Sequence[ReferenceImage]) -> Job:
        """Record `sent_at`, call the API for the job, record the answer.

        On refusal the job is recorded as failed (nothing left to post: the member is told at
        once), settled with the gate, and the error is raised again.
        """
        # Never a second submit across processes: only the job's lease holder sends it, and
        # once the lease is extended here nobody may claim the job for LEASE (bot.core.leases).
        leases = self.leases
        if (
            leases is not None
            and leases.shared
            and not await leases.keep(job.id, self.clock.now() + LEASE)
        ):
            log.warning("job %s: another process took it over; this one stops", job.id)
            raise LeaseLost(job.id)
        sent = await self.ledger.update(
            job.id, lambda j: dataclasses.replace(j, sent_at=self.clock.now())
        )
        job = sent or job
        started = time.monotonic()
        try:
            submission = await self._call(job, images)(job_state(job.id))
        except Unavailable as exc:
            # A 5xx, a timeout or a dropped connection: the submit may have reached the API.
            found = await self._look_up(job)
            if found is None:
                await self._refused(job, exc)
                raise
            submission = found
        except ApiError as exc:
            await self._refused(job, exc)
            raise
        accepted = await self.accept(job.id, submission)
        log.info(
            "job %s: %s accepted as task %s after %.0f ms",
            job.id,
            job.action.lower(),
            submission.task_id,
            (time.monotonic() - started) * 1000,
        )
        return accepted

    async def _look_up(self, job: Job) -> Submission | None:
        """The task a submit of this job made upstream, if the server can say and holds one."""
        try:
            snap = await self.api.find_by_state(job_state(job.id))
        except ApiError as exc:  # Unsupported (aggregators) or still unavailable
            log.info("job %s: cannot check whether the submit arrived: %s", job.id, exc.detail)
            return None
        if snap is None:
            return None
        log.info("job %s: the submit had arrived as task %s", job.id, snap.task_id)
        return Submission(task_id=snap.task_id)

    async def _refused(self, job: Job, exc: ApiError) -> None:
        """The API refused the job: failed, nothing left to post (the member is told at once),
        settled with the gate."""
        log.log(
            logging.INFO if exc.member_fault else logging.WARNING,
            "job %s: %s refused: %s: %s",
            job.id,
            job.action.lower(),
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
                post_state=PostState.POSTED,
            ),
        )
        await self.gate.settle(failed or job)

    async def accept(self, job_id: int, submission: Submission) -> Job:
        """Record the API's acceptance: the task id and the job's first status."""
        status = JobStatus.MODAL if submission.needs_input else JobStatus.QUEUED
        accepted = await self.ledger.update(
            job_id,
            lambda j: dataclasses.replace(
                j,
                task_id=submission.task_id,
                status=status,
                queue_position=submission.queue_position,
                final_prompt=submission.final_prompt or j.final_prompt,
                updated_at=self.clock.now(),
            ),
        )
        if accepted is None:  # nothing changed: the same task id and status were recorded
            accepted = await self.ledger.repo.get(job_id)
        assert accepted is not None  # the row was written by open() and is never deleted
        return accepted

    def _call(
        self, job: Job, images: Sequence[ReferenceImage]
    ) -> Callable[[str], Awaitable[Submission]]:
        """The one API call that submits this job, from what the ledger holds about it."""
        api, hook, inputs = self.api, self.notify_hook, job.inputs
        if job.action == "DESCRIBE":
            return lambda state: api.describe(images[0], job.mode, state=state, notify_hook=hook)
        if job.action == "BLEND":
            return lambda state: api.blend(
                images, job.mode, dimensions=inputs.dimensions, state=state, notify_hook=hook
            )
        if job.parent_job_id is None:
            return lambda state: api.imagine(
                ImagineRequest(job.prompt, job.mode, images, state, hook)
            )

        async def press(state: str) -> Submission:
            submission = await api.action(
                inputs.parent_task_id, job.custom_id, state=state, notify_hook=hook
            )
            if inputs.modal_prompt is not None and submission.needs_input:
                return await api.modal(
                    submission.task_id, prompt=inputs.modal_prompt, state=state, notify_hook=hook
                )
            return submission

        return press
