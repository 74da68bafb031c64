"""Use cases that submit work: /imagine, /describe, /blend, "Imagine n" under a /describe,
button presses and modal input. Each records its job the moment its interaction is
acknowledged and carries it through the gate and the API with `Submitter.run` (see
bot.core.submitter for the record-each-step rule); each takes the member's `Ticket`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Sequence
from datetime import timedelta

from bot.core.errors import ApiError, Refused
from bot.core.followups import action_of, describe_prompts, offered
from bot.core.images import safe_filename
from bot.core.jobs import Ack, Job, JobStatus, Mode, ReferenceImage, Route, Source
from bot.core.messages import msg
from bot.core.ports import Ticket
from bot.core.submitter import (
    Submitter,
    SystemClock,
    ack_of,
    inputs_of,
    job_state,
    ticket_of,
)

__all__ = [
    "BLEND_DIMENSIONS",
    "ActionService",
    "AlreadyUnderWay",
    "ImagineService",
    "Submitter",
    "SystemClock",
    "ack_of",
    "job_state",
    "ticket_of",
]

log = logging.getLogger(__name__)

#: A second press of the same button within this window joins the first job instead.
DOUBLE_PRESS_WINDOW = timedelta(seconds=30)

BLEND_DIMENSIONS = ("PORTRAIT", "SQUARE", "LANDSCAPE")

UNAVAILABLE = msg("This button is no longer available.")


class AlreadyUnderWay(Refused):
    """The same button was pressed again while its job is still fresh."""

    message = msg("That is already under way; follow it in this thread.")

    def __init__(self, job: Job) -> None:
        super().__init__(f"duplicate press joins job {job.id}")
        self.job = job


class ImagineService(Submitter):
    """/imagine, /describe, /blend and "Imagine n": each records its job at acknowledgement
    (`open_*`), and `run` carries it through the gate and the API."""

    def open_imagine(
        self,
        route: Route,
        mode: Mode,
        prompt: str,
        sources: Sequence[Source],
        ack: Ack | None,
        ticket: Ticket,
    ) -> Awaitable[Job]:
        """Record an /imagine as acknowledged."""
        return self.open(
            Job(
                id=0,
                route=route,
                mode=mode,
                prompt=prompt,
                reference_count=len(sources),
                ack=ack,
                inputs=inputs_of(ticket, sources=tuple(sources)),
            )
        )

    def open_describe(
        self, route: Route, mode: Mode, source: Source, ack: Ack | None, ticket: Ticket
    ) -> Awaitable[Job]:
        """Record a /describe of one image (the result is four prompts) as acknowledged."""
        return self.open(
            Job(
                id=0,
                route=route,
                mode=mode,
                prompt=f"Describe {safe_filename(source.filename)}",
                action="DESCRIBE",
                reference_count=1,
                ack=ack,
                inputs=inputs_of(ticket, sources=(source,)),
            )
        )

    def open_blend(
        self,
        route: Route,
        mode: Mode,
        sources: Sequence[Source],
        dimensions: str,
        ack: Ack | None,
        ticket: Ticket,
    ) -> Awaitable[Job]:
        """Record a /blend of 2–5 images. Fewer or more are refused before anything is recorded."""
        if not 2 <= len(sources) <= 5:
            raise Refused(
                f"blend of {len(sources)} images",
                message=msg("A blend needs 2 to 5 images."),
            )
        return self.open(
            Job(
                id=0,
                route=route,
                mode=mode,
                prompt=f"Blend of {len(sources)} images ({dimensions.lower()})",
                action="BLEND",
                reference_count=len(sources),
                ack=ack,
                inputs=inputs_of(ticket, sources=tuple(sources), dimensions=dimensions),
            )
        )

    async def submit(
        self,
        route: Route,
        mode: Mode,
        prompt: str,
        images: Sequence[ReferenceImage] = (),
        *,
        ticket: Ticket,
    ) -> Job:
        """Record and submit an /imagine whose images are already read (tests, the demo)."""
        job = await self.open_imagine(route, mode, prompt, (), None, ticket)
        try:
            await self.gate.admit(dataclasses.replace(ticket, job_id=job.id))
        except Exception as exc:
            await self.abandon(job, exc)
            raise
        return await self.send(job, images)

    async def imagine_described(self, parent_id: int, index: int, ticket: Ticket) -> Job:
        """ "Imagine n" under a /describe result: imagine its prompt `index`, in the same place.

        Only the member who asked for the prompts, or a moderator, may press it.
        """
        parent = await self.ledger.repo.get(parent_id)
        prompts = describe_prompts(parent.final_prompt) if parent else []
        if parent is None or parent.action != "DESCRIBE" or not 0 <= index < len(prompts):
            raise Refused(f"describe {parent_id} has no prompt {index}", message=UNAVAILABLE)
        if ticket.user_id != parent.route.requester_id and not await self.gate.is_moderator(ticket):
            raise Refused(
                f"user {ticket.user_id} pressed describe {parent.id}",
                message=msg("Only the member who asked for these prompts can use them."),
            )
        prompt = prompts[index]
        job = await self.open_imagine(
            _inherit(parent.route, ticket.user_id),
            parent.mode,
            prompt,
            (),
            None,
            dataclasses.replace(ticket, prompt=prompt),
        )
        return await self.run(job, dataclasses.replace(ticket, prompt=prompt))


def _inherit(parent: Route, requester_id: int) -> Route:
    """A follow-up job's place: its parent's reply and thread (already placed)."""
    return Route(
        guild_id=parent.guild_id,
        channel_id=parent.channel_id,
        requester_id=requester_id,
        reply_message_id=parent.reply_message_id,
        thread_id=parent.thread_id,
        no_thread=parent.no_thread or not parent.thread_id,
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
            raise Refused(f"job {job_id} button {index} not available", message=UNAVAILABLE)
        if ticket.user_id != parent.route.requester_id and not await self.gate.is_moderator(ticket):
            raise Refused(
                f"user {ticket.user_id} pressed job {job_id}'s button",
                message=msg("Only the member who asked for this image can use its buttons."),
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
        try:
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
                job = await self.open(
                    Job(
                        id=0,
                        route=_inherit(parent.route, ticket.user_id),
                        mode=parent.mode,
                        prompt=prompt or parent.final_prompt or parent.prompt,
                        action=action_of(button.custom_id),
                        parent_job_id=parent.id,
                        custom_id=button.custom_id,
                        inputs=inputs_of(
                            ticket, parent_task_id=parent.task_id or "", modal_prompt=prompt
                        ),
                    )
                )
            return await self.run(job, ticket)
        finally:
            if not lock.locked():
                self._locks.pop(key, None)

    async def confirm(self, job_id: int, prompt: str, ticket: Ticket) -> Job:
        """Answer a job waiting in MODAL (remix, custom zoom) with the member's prompt; an empty
        prompt keeps the job's own."""
        job = await self.ledger.repo.get(job_id)
        if job is None or job.status is not JobStatus.MODAL or not job.task_id:
            raise Refused(
                f"job {job_id} not waiting for input",
                message=msg("This job is not waiting for input any more."),
            )
        if ticket.user_id != job.route.requester_id and not await self.gate.is_moderator(ticket):
            raise Refused(
                f"user {ticket.user_id} answered job {job_id}",
                message=msg("Only the member who started this job can continue it."),
            )
        task_id, prompt = job.task_id, prompt or job.final_prompt or job.prompt
        await self.ledger.update(job.id, lambda j: dataclasses.replace(j, prompt=prompt))
        try:
            submission = await self.api.modal(
                task_id, prompt=prompt, state=job_state(job.id), notify_hook=self.notify_hook
            )
        except ApiError as exc:
            await self._refused(job, exc)
            raise
        return await self.accept(job.id, submission)
