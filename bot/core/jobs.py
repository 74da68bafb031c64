"""Jobs and image-API tasks: the types every layer speaks, and the rules for moving a job on.

A *task* is what the image API knows (its id, status, progress, image URL, buttons). A *job* is
what mjcord knows: a task plus who asked for it, where its messages live, and what has already
been posted. Updates from the API may arrive late, twice or out of order (callbacks and polls
race); `Job.absorb` applies only those that move a job forward.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime


class Mode(enum.StrEnum):
    """Which Midjourney bot renders the job (the API's `botType`)."""

    MID_JOURNEY = "MID_JOURNEY"
    NIJI_JOURNEY = "NIJI_JOURNEY"

    @property
    def label(self) -> str:
        """The name members see."""
        return "Niji" if self is Mode.NIJI_JOURNEY else "Midjourney"


class TaskStatus(enum.StrEnum):
    """A task's status as the API reports it. `UNKNOWN` is new-api's `""` (accepted, not polled)."""

    UNKNOWN = ""
    NOT_START = "NOT_START"
    SUBMITTED = "SUBMITTED"
    MODAL = "MODAL"
    IN_PROGRESS = "IN_PROGRESS"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"

    @classmethod
    def parse(cls, raw: object) -> TaskStatus:
        """Read a status string leniently: unknown values (CANCEL, new enum members) count as
        FAILURE when they look terminal, else UNKNOWN."""
        text = str(raw or "").strip().upper()
        try:
            return cls(text)
        except ValueError:
            return cls.FAILURE if text in {"CANCEL", "CANCELLED", "CANCELED"} else cls.UNKNOWN


class JobStatus(enum.StrEnum):
    """A job's place in mjcord's ledger."""

    SUBMITTING = "SUBMITTING"  # recorded, the API has not yet confirmed a task id
    QUEUED = "QUEUED"  # accepted; waiting in the API's queue
    SUBMITTED = "SUBMITTED"
    IN_PROGRESS = "IN_PROGRESS"
    MODAL = "MODAL"  # waits for the member's input (remix, custom zoom)
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"

    @property
    def finished(self) -> bool:
        """True for the two terminal statuses."""
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED)


# Rank of each status along the one way a job moves; an update may never lower it.
_RANK = {
    JobStatus.SUBMITTING: 0,
    JobStatus.QUEUED: 1,
    JobStatus.SUBMITTED: 2,
    JobStatus.MODAL: 2,
    JobStatus.IN_PROGRESS: 3,
    JobStatus.SUCCEEDED: 4,
    JobStatus.FAILED: 4,
}

_FROM_TASK = {
    TaskStatus.UNKNOWN: JobStatus.QUEUED,
    TaskStatus.NOT_START: JobStatus.QUEUED,
    TaskStatus.SUBMITTED: JobStatus.SUBMITTED,
    TaskStatus.MODAL: JobStatus.MODAL,
    TaskStatus.IN_PROGRESS: JobStatus.IN_PROGRESS,
    TaskStatus.SUCCESS: JobStatus.SUCCEEDED,
    TaskStatus.FAILURE: JobStatus.FAILED,
}


class PostState(enum.StrEnum):
    """How far the finish post has gone; the key to posting each outcome exactly once."""

    NONE = "NONE"  # nothing to post yet
    INTENT = "INTENT"  # the outcome is known and about to be posted (it may already be)
    POSTED = "POSTED"  # the post exists and its message id is recorded


@dataclass(frozen=True, slots=True)
class Button:
    """One of the API's follow-up buttons (U1, V2, 🔄, Zoom Out 2x …)."""

    custom_id: str
    label: str = ""
    emoji: str = ""
    style: int = 2


@dataclass(frozen=True, slots=True)
class Submission:
    """The API's answer to an accepted submit (codes 1, 21 and 22)."""

    task_id: str
    queue_position: int | None = None  # code 22's numberOfQueues
    needs_input: bool = False  # code 21: the task waits in MODAL for /submit/modal
    description: str = ""
    final_prompt: str = ""


@dataclass(frozen=True, slots=True)
class TaskSnapshot:
    """What the API says about one task at one moment, in either of its two shapes."""

    task_id: str
    status: TaskStatus
    progress: int = 0  # percent, 0–100
    action: str = ""
    prompt: str = ""
    final_prompt: str = ""
    image_url: str | None = None
    fail_reason: str = ""
    state: str = ""
    buttons: tuple[Button, ...] = ()
    submit_time_ms: int | None = None
    finish_time_ms: int | None = None


@dataclass(frozen=True, slots=True)
class ReferenceImage:
    """A member's attachment, checked and ready to send."""

    option: str  # the option it came from (image1 …)
    filename: str
    content_type: str  # sniffed from the bytes, e.g. image/png
    data: bytes

    @property
    def size(self) -> int:
        """Size in bytes."""
        return len(self.data)


@dataclass(frozen=True, slots=True)
class Route:
    """Where a job's messages live in Discord. Ids are plain ints; 0 means not made yet."""

    guild_id: int
    channel_id: int
    requester_id: int
    reply_message_id: int = 0  # the public reply (the thread's starter message)
    thread_id: int = 0  # 0 while not made, or when none could be made (see `no_thread`)
    status_message_id: int = 0
    no_thread: bool = False  # Discord refused the thread: the job's messages go to channel_id

    @property
    def post_channel_id(self) -> int:
        """Where job messages go: the thread, else the channel."""
        return self.thread_id or self.channel_id

    @property
    def placed(self) -> bool:
        """True once it is known where the outcome goes: the reply exists and the thread exists
        or is known to be impossible. Before that, posting could land in the wrong place."""
        return bool(self.reply_message_id) and (bool(self.thread_id) or self.no_thread)


@dataclass(frozen=True, slots=True)
class Source:
    """A member's attachment as Discord described it: enough to download it again after a
    restart (Discord's attachment URLs stay valid for about a day)."""

    option: str  # image1 …
    url: str
    filename: str
    size: int


@dataclass(frozen=True, slots=True)
class Inputs:
    """Everything needed to send a job's submit again after a restart, beyond the Job's own
    fields: the attachments, the blend shape, the parent's task and button, the modal answer,
    and the member's roles and Manage Server bit (for the gate's ticket)."""

    sources: tuple[Source, ...] = ()
    dimensions: str = ""
    parent_task_id: str = ""
    modal_prompt: str | None = None  # Custom Zoom: answer the API's request for input at once
    role_ids: tuple[int, ...] = ()
    manage_guild: bool = False


@dataclass(frozen=True, slots=True)
class Ack:
    """How to answer the interaction that started a job, while its token lives (15 minutes).

    The token is a credential for the member's reply: never logged (it is left out of `repr`),
    and cleared from the ledger once the reply exists or the member has been told.
    """

    application_id: int
    token: str = field(repr=False)
    expires_at: datetime

    def valid(self, now: datetime) -> bool:
        """True while Discord still accepts the token."""
        return bool(self.token) and now < self.expires_at


@dataclass(frozen=True, slots=True)
class Job:
    """One accepted request and everything mjcord must remember about it."""

    id: int
    route: Route
    mode: Mode
    prompt: str
    action: str = "IMAGINE"
    task_id: str | None = None
    parent_job_id: int | None = None
    custom_id: str = ""  # the button that made this job, for actions
    status: JobStatus = JobStatus.SUBMITTING
    progress: int = 0
    queue_position: int | None = None
    image_url: str | None = None
    fail_reason: str = ""
    final_prompt: str = ""
    buttons: tuple[Button, ...] = ()
    created_at: datetime = field(default_factory=lambda: datetime.fromtimestamp(0, UTC))
    updated_at: datetime = field(default_factory=lambda: datetime.fromtimestamp(0, UTC))
    finished_at: datetime | None = None
    post_state: PostState = PostState.NONE
    result_message_id: int = 0
    reference_count: int = 0
    #: The interaction that started the job, while its reply may still need the token.
    ack: Ack | None = None
    inputs: Inputs = field(default_factory=Inputs)
    #: When the submit was sent to the API (written just before sending). None: never sent,
    #: so a restart may send it; set without a task id: it may have arrived (see recovery).
    sent_at: datetime | None = None

    @property
    def finished(self) -> bool:
        """True once the job succeeded or failed."""
        return self.status.finished

    @property
    def post_nonce(self) -> str:
        """The deterministic nonce of the finish post: the same job always sends the same one,
        so Discord drops a repeated send within its nonce window."""
        return f"mjcord-{self.id}"

    def absorb(self, snap: TaskSnapshot, now: datetime) -> Job:
        """Apply an API snapshot. Returns self unchanged when it is stale or says nothing new.

        The rule: a finished job never changes; a status never moves back; within one status,
        progress never goes down.
        """
        if self.finished:
            return self
        new_status = _FROM_TASK[snap.status]
        if _RANK[new_status] < _RANK[self.status]:
            return self
        progress = snap.progress
        if new_status is self.status and progress < self.progress:
            return self
        if new_status is JobStatus.SUCCEEDED:
            progress = 100
        image_url = snap.image_url or self.image_url
        fail_reason = snap.fail_reason if new_status is JobStatus.FAILED else self.fail_reason
        final_prompt = snap.final_prompt or self.final_prompt
        buttons = snap.buttons or self.buttons
        queue_position = None if new_status is not JobStatus.QUEUED else self.queue_position
        if (
            new_status,
            progress,
            image_url,
            fail_reason,
            final_prompt,
            buttons,
            queue_position,
        ) == (
            self.status,
            self.progress,
            self.image_url,
            self.fail_reason,
            self.final_prompt,
            self.buttons,
            self.queue_position,
        ):
            return self  # nothing new: no copy (the tracker asks this of every task it polls)
        return dataclasses.replace(
            self,
            status=new_status,
            progress=progress,
            image_url=image_url,
            fail_reason=fail_reason,
            final_prompt=final_prompt,
            buttons=buttons,
            queue_position=queue_position,
            updated_at=now,
            finished_at=now if new_status.finished else None,
            post_state=PostState.INTENT if new_status.finished else self.post_state,
        )

    def fail(self, reason: str, now: datetime) -> Job:
        """End the job as failed (time limit, lost upstream task). A finished job stays as it is."""
        if self.finished:
            return self
        return dataclasses.replace(
            self,
            status=JobStatus.FAILED,
            fail_reason=reason,
            updated_at=now,
            finished_at=now,
            post_state=PostState.INTENT,
        )
