"""Use cases that submit work: /imagine, /describe, /blend, button presses and modal input.

The rule: a job is written to the ledger (SUBMITTING) before the API is called, and again with
its task id before anyone sees that id. A refused submit is recorded as failed and settled with
the gate, so it is never charged.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta

from bot.core.errors import ApiError, Refused
from bot.core.followups import action_of, offered
from bot.core.jobs import Job, JobStatus, Mode, PostState, ReferenceImage, Route, Submission
from bot.core.ledger import Ledger
from bot.core.ports import Clock, Gate, ImageApi, ImagineRequest, Ticket

log = logging.getLogger(__name__)

#: A second press of the same button within this window joins the first job instead.
DOUBLE_PRESS_WINDOW = timedelta(seconds=30)

BLEND_DIMENSIONS = ("PORTRAIT", "SQUARE", "LANDSCAPE")


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

    async def is_moderator(self, ticket: Ticket) -> bool:
        """Manage Server alone (no moderator role without moderation)."""
        return ticket.manage_guild


class AlreadyUnderWay(Refused):
    """The same button was pressed again while its job is still fresh."""

    member_message = "That is already under way; follow it in this thread."

    def __init__(self, job: Job) -> None:
        super().__init__(f"duplicate press joins job {job.id}")
        self.job = job


def job_state(job_id: int) -> str:
    """The `state` sent with a task: it routes a callback back to its job."""
    return f"mjcord:{job_id}"


class Submitter:
    """What every submitting use case shares: the gate, the record-then-call rule, placement."""

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
        self._locks: dict[tuple[int, str], asyncio.Lock] = {}

    async def admit(self, ticket: Ticket) -> None:
        """Run the moderation gate; raises Refused with the member's sentence."""
        await self.gate.admit(ticket)

    async def place(self, job_id: int, **route_fields: int) -> Job | None:
        """Record where the job's messages now live (reply, thread, status message)."""
        return await self.ledger.update(
            job_id,
            lambda j: dataclasses.replace(j, route=dataclasses.replace(j.route, **route_fields)),
        )

    async def _record(self, job: Job, ticket: Ticket | None = None) -> Job:
        """Write the new job to the ledger; with a ticket, reserve its quota at the gate (a
        refusal fails the recorded job, which then has nothing to post, and is raised)."""
        now = self.clock.now()
        job = await self.ledger.repo.add(dataclasses.replace(job, created_at=now, updated_at=now))
        if ticket is not None:
            try:
                await self.gate.admit(dataclasses.replace(ticket, job_id=job.id))
            except Refused as exc:
                reason = f"Refused by moderation: {exc.member_message}"
                await self.ledger.update(
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
                raise
        return job

    async def _send(self, job: Job, call: Callable[[str], Awaitable[Submission]]) -> Job:
        """Call the API for a recorded job and record the answer.

        On refusal the job is recorded as failed (nothing left to post: the member is told at
        once), settled with the gate, and the error is raised again.
        """
        try:
            submission = await call(job_state(job.id))
        except ApiError as exc:
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
            raise
        status = JobStatus.MODAL if submission.needs_input else JobStatus.QUEUED
        accepted = await self.ledger.update(
            job.id,
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
            accepted = await self.ledger.repo.get(job.id)
        assert accepted is not None  # the row was written by _record and is never deleted
        log.info("job %s: %s accepted as task %s", job.id, job.action.lower(), submission.task_id)
        return accepted


class ImagineService(Submitter):
    """/imagine, /describe and /blend."""

    async def submit(
        self,
        route: Route,
        mode: Mode,
        prompt: str,
        images: Sequence[ReferenceImage] = (),
        *,
        ticket: Ticket | None = None,
    ) -> Job:
        """Submit an /imagine. Returns the accepted job (stored with its task id).

        With the member's ticket, the job's quota is reserved at the gate before the API call.
        """
        job = await self._record(
            Job(id=0, route=route, mode=mode, prompt=prompt, reference_count=len(images)), ticket
        )

        async def call(state: str) -> Submission:
            request = ImagineRequest(prompt, mode, images, state, self.notify_hook)
            return await self.api.imagine(request)

        return await self._send(job, call)

    async def describe(
        self, route: Route, mode: Mode, image: ReferenceImage, *, ticket: Ticket | None = None
    ) -> Job:
        """Submit a /describe of one image (the result is four prompts)."""
        job = await self._record(
            Job(
                id=0,
                route=route,
                mode=mode,
                prompt=f"Describe {image.filename}",
                action="DESCRIBE",
                reference_count=1,
            ),
            ticket,
        )
        return await self._send(
            job,
            lambda state: self.api.describe(image, mode, state=state, notify_hook=self.notify_hook),
        )

    async def blend(
        self,
        route: Route,
        mode: Mode,
        images: Sequence[ReferenceImage],
        dimensions: str,
        *,
        ticket: Ticket | None = None,
    ) -> Job:
        """Submit a /blend of 2–5 images. Fewer or more are refused before any API call."""
        if not 2 <= len(images) <= 5:
            raise Refused(
                f"blend of {len(images)} images",
                member_message="A blend needs 2 to 5 images.",
            )
        job = await self._record(
            Job(
                id=0,
                route=route,
                mode=mode,
                prompt=f"Blend of {len(images)} images ({dimensions.lower()})",
                action="BLEND",
                reference_count=len(images),
            ),
            ticket,
        )
        return await self._send(
            job,
            lambda state: self.api.blend(
                images, mode, dimensions=dimensions, state=state, notify_hook=self.notify_hook
            ),
        )


class ActionService(Submitter):
    """Button presses on finished jobs (U1, V2, 🔄, zoom, pan …) and input for MODAL tasks."""

    async def parent_button(self, job_id: int, index: int, ticket: Ticket) -> Job:
        """The finished job whose button `index` the member may press; else Refused.

        Only the member who asked for the image, or a moderator, may press its buttons.
        """
        parent = await self.ledger.repo.get(job_id)
        if (
            parent is None
            or parent.status is not JobStatus.SUCCEEDED
            or not parent.task_id
            or not 0 <= index < len(parent.buttons)
            or not offered(parent.buttons[index])
        ):
            raise Refused(
                f"job {job_id} button {index} not available",
                member_message="This button is no longer available.",
            )
        if ticket.user_id != parent.route.requester_id and not await self.gate.is_moderator(ticket):
            raise Refused(
                f"user {ticket.user_id} pressed job {job_id}'s button",
                member_message="Only the member who asked for this image can use its buttons.",
            )
        return parent

    async def press(
        self, job_id: int, index: int, ticket: Ticket, *, prompt: str | None = None
    ) -> Job:
        """Press button `index` of a finished job: one new job, linked to its parent, in the same
        place, through the same gate. A second press of the same button while the first is
        fresh raises AlreadyUnderWay. With `prompt` (Custom Zoom), the API's request for input
        is answered at once.
        """
        parent = await self.parent_button(job_id, index, ticket)
        button = parent.buttons[index]
        key = (parent.id, button.custom_id)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            now = self.clock.now()
            for child in await self.ledger.repo.children(parent.id):
                fresh = now - child.created_at < DOUBLE_PRESS_WINDOW or not child.finished
                if (
                    child.custom_id == button.custom_id
                    and child.status is not JobStatus.FAILED
                    and fresh
                ):
                    raise AlreadyUnderWay(child)
            await self.gate.admit(ticket)
            route = Route(
                guild_id=parent.route.guild_id,
                channel_id=parent.route.channel_id,
                requester_id=ticket.user_id,
                reply_message_id=parent.route.reply_message_id,
                thread_id=parent.route.thread_id,
            )
            job = await self._record(
                Job(
                    id=0,
                    route=route,
                    mode=parent.mode,
                    prompt=prompt or parent.final_prompt or parent.prompt,
                    action=action_of(button.custom_id),
                    parent_job_id=parent.id,
                    custom_id=button.custom_id,
                ),
                ticket,
            )
        parent_task = parent.task_id or ""

        async def call(state: str) -> Submission:
            submission = await self.api.action(
                parent_task, button.custom_id, state=state, notify_hook=self.notify_hook
            )
            if prompt is not None and submission.needs_input:
                return await self.api.modal(
                    submission.task_id, prompt=prompt, state=state, notify_hook=self.notify_hook
                )
            return submission

        try:
            return await self._send(job, call)
        finally:
            if not lock.locked():
                self._locks.pop(key, None)

    async def confirm(self, job_id: int, prompt: str, ticket: Ticket) -> Job:
        """Answer a job waiting in MODAL (remix, custom zoom) with the member's prompt."""
        job = await self.ledger.repo.get(job_id)
        if job is None or job.status is not JobStatus.MODAL or not job.task_id:
            raise Refused(
                f"job {job_id} not waiting for input",
                member_message="This job is not waiting for input any more.",
            )
        if ticket.user_id != job.route.requester_id and not await self.gate.is_moderator(ticket):
            raise Refused(
                f"user {ticket.user_id} answered job {job_id}",
                member_message="Only the member who started this job can continue it.",
            )
        task_id = job.task_id
        await self.ledger.update(job.id, lambda j: dataclasses.replace(j, prompt=prompt))
        return await self._send(
            job,
            lambda state: self.api.modal(
                task_id, prompt=prompt, state=state, notify_hook=self.notify_hook
            ),
        )
