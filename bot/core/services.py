"""Use cases that submit work: /imagine (and, later, button actions, /describe, /blend).

The rule: a job is written to the ledger (SUBMITTING) before the API is called, and again with
its task id before anyone sees that id. A refused submit is recorded as failed and settled with
the gate, so it is never charged.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from datetime import UTC, datetime

from bot.core.errors import ApiError
from bot.core.jobs import Job, JobStatus, Mode, PostState, ReferenceImage, Route
from bot.core.ledger import Ledger
from bot.core.ports import Clock, Gate, ImageApi, ImagineRequest, Ticket

log = logging.getLogger(__name__)


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
