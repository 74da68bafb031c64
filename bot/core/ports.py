"""The ports: what the use cases need from the outside world, as Protocols.

Adapters implement them (bot.adapters, bot.discord_ui); unit tests use small hand-written fakes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bot.core.jobs import Job, Mode, ReferenceImage, Submission, TaskSnapshot


class Clock(Protocol):
    """Time comes in through here, so rules can be tested with a fake clock."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


@dataclass(frozen=True, slots=True)
class ImagineRequest:
    """What `/imagine` sends to the API."""

    prompt: str
    mode: Mode
    images: Sequence[ReferenceImage] = ()
    state: str = ""  # ≤ 255 chars, echoed back in the task
    notify_hook: str | None = None


class ImageApi(Protocol):
    """A Midjourney-proxy compatible API. Every failure is raised as an `ApiError`."""

    async def imagine(self, request: ImagineRequest) -> Submission:
        """POST /mj/submit/imagine."""
        ...

    async def action(
        self, task_id: str, custom_id: str, *, state: str = "", notify_hook: str | None = None
    ) -> Submission:
        """POST /mj/submit/action: press one of a finished task's buttons."""
        ...

    async def modal(
        self,
        task_id: str,
        *,
        prompt: str = "",
        mask_base64: str = "",
        state: str = "",
        notify_hook: str | None = None,
    ) -> Submission:
        """POST /mj/submit/modal: confirm a task that waits in MODAL."""
        ...

    async def describe(
        self, image: ReferenceImage, mode: Mode, *, state: str = "", notify_hook: str | None = None
    ) -> Submission:
        """POST /mj/submit/describe."""
        ...

    async def blend(
        self,
        images: Sequence[ReferenceImage],
        mode: Mode,
        *,
        dimensions: str = "SQUARE",
        state: str = "",
        notify_hook: str | None = None,
    ) -> Submission:
        """POST /mj/submit/blend (2–5 images)."""
        ...

    async def fetch(self, task_id: str) -> TaskSnapshot:
        """GET /mj/task/{id}/fetch. Raises TaskNotFound for an unknown id."""
        ...

    async def list_by_ids(self, task_ids: Sequence[str]) -> list[TaskSnapshot]:
        """Several tasks at once (list-by-condition in chunks, or per-task fetch where the server
        lacks it). Ids the API does not know are simply absent from the answer."""
        ...


class JobRepository(Protocol):
    """The durable job ledger. Writes are atomic per call."""

    async def add(self, job: Job) -> Job:
        """Store a new job (its `id` is ignored) and return it with the id the ledger gave it."""
        ...

    async def save(self, job: Job) -> None:
        """Write every field of an existing job."""
        ...

    async def replace(self, expected: Job, job: Job) -> bool:
        """Compare-and-set: write `job` only if the stored row still equals `expected`."""
        ...

    async def get(self, job_id: int) -> Job | None:
        """One job by id."""
        ...

    async def by_task_id(self, task_id: str) -> Job | None:
        """The job that owns an API task id."""
        ...

    async def children(self, parent_job_id: int) -> list[Job]:
        """Jobs made by pressing a button on this job, oldest first."""
        ...

    async def unfinished(self) -> list[Job]:
        """Jobs whose task is still running (have a task id, not finished)."""
        ...

    async def unposted(self) -> list[Job]:
        """Finished jobs whose finish post is not yet recorded (post_state INTENT)."""
        ...

    async def stuck_submitting(self) -> list[Job]:
        """Jobs left in SUBMITTING (the process died during a submit)."""
        ...


@dataclass(frozen=True, slots=True)
class Ticket:
    """Who asks for what, where: everything the gate needs to decide."""

    guild_id: int
    channel_id: int
    user_id: int
    role_ids: tuple[int, ...] = ()
    prompt: str = ""
    is_moderator: bool = False


class Gate(Protocol):
    """Moderation before submitting: bans, channels, quota, cooldown, banned terms.

    `admit` raises `bot.core.errors.Refused` with the member's sentence; `settle` is called once
    a job is finished, so a failed, refused or timed-out job can be refunded.
    """

    async def admit(self, ticket: Ticket) -> None:
        """Raise Refused when the request may not go ahead."""
        ...

    async def settle(self, job: Job) -> None:
        """Account for a finished job (refund it when it failed)."""
        ...


class ImageFiles(Protocol):
    """Moves image bytes: members' attachments in, the API's results out, smaller renditions."""

    async def fetch_reference(self, url: str, max_bytes: int) -> bytes:
        """An attachment from Discord's CDN only (host allowlist, no redirects, size and time
        caps). Raises DownloadError."""
        ...

    async def download(self, url: str) -> bytes:
        """The bytes behind a result image URL from the API. Raises Unavailable."""
        ...

    async def fit(self, data: bytes, max_bytes: int) -> bytes | None:
        """A smaller rendition within max_bytes (JPEG or PNG), or None if none is possible."""
        ...


class JobObserver(Protocol):
    """Shows jobs to members (the Discord presenter). Implementations must not raise for
    Discord-side failures they can absorb; they raise only what the caller should retry."""

    async def show_progress(self, job: Job) -> None:
        """Edit the job's status message (rate-limited by the implementation)."""
        ...

    async def post_finish(self, job: Job) -> int:
        """Post the outcome once and return the message id (0 if the place is gone).

        Called again after a crash for a job in PostState.INTENT: the implementation first looks
        for its own earlier post of this job and returns that id instead of posting twice.
        """
        ...
