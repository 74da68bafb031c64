"""The ports: what the use cases need from the outside world, as Protocols.

Adapters implement them (bot.adapters, bot.discord_ui); unit tests use small hand-written fakes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bot.core.jobs import Job, Mode, ReferenceImage, Submission, TaskSnapshot
from bot.core.moderation import (
    AuditEntry,
    Ban,
    Charge,
    Outcome,
    Policy,
    Refusal,
    Reservation,
    Settled,
    Strike,
    Term,
    Usage,
    UsageReport,
)


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

    async def find_by_state(self, state: str) -> TaskSnapshot | None:
        """The task whose `state` field equals `state`, or None when the server holds none.
        Raises bot.core.errors.Unsupported when the server offers no way to look (aggregators)."""
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

    async def interrupted(self) -> list[Job]:
        """Jobs a process may have left midway, oldest first: still submitting, still holding
        an interaction token, or not finished posting with a Discord object (reply, thread,
        status message) not yet recorded."""
        ...


@dataclass(frozen=True, slots=True)
class Ticket:
    """Who asks for what, where: everything the gate needs to decide."""

    guild_id: int
    channel_id: int
    user_id: int
    role_ids: tuple[int, ...] = ()
    prompt: str = ""
    # The raw permission; whether the member moderates is Gate.is_moderator's rule.
    manage_guild: bool = False
    # 0 while checking; the recorded job's id when reserving its quota (see Gate.admit).
    job_id: int = 0


class Gate(Protocol):
    """Moderation before submitting: bans, channels, quota, cooldown, banned terms.

    `admit` raises `bot.core.errors.Refused` with the member's sentence; `settle` is called once
    a job is finished, so a failed, refused or timed-out job can be refunded.
    """

    async def admit(self, ticket: Ticket) -> None:
        """Raise Refused when the request may not go ahead.

        With `ticket.job_id == 0` it only checks (before attachments are read); with the id of
        the job just recorded it checks again and reserves that job's quota atomically.
        """
        ...

    async def settle(self, job: Job) -> None:
        """Account for a finished job (refund it when it failed)."""
        ...

    async def is_moderator(self, ticket: Ticket) -> bool:
        """The one rule for who moderates a server: Manage Server, or its moderator role."""
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


class JobPlaces(Protocol):
    """Makes a job's Discord objects that a dead process did not (the Discord side of
    `bot.core.recovery`). Each object is recorded through `Submitter.place` as soon as it
    exists."""

    async def restore(self, job: Job) -> None:
        """Finish the job's reply, thread and status message from the last recorded step:
        the reply through the stored interaction token while it is valid (else a fresh public
        message), the thread (a thread started from a message has that message's id), then
        the status message. For a job refused before any reply, tell the member instead."""
        ...


# --- moderation --------------------------------------------------------------------------------


class ModerationRepository(Protocol):
    """Per-server moderation state: settings, bans, terms, the usage ledger, strikes, the audit
    log. Each call is one transaction; `reserve` and `settle` are atomic across processes."""

    async def policy(self, guild_id: int) -> Policy:
        """The server's settings (defaults when it has none)."""
        ...

    async def save_policy(self, policy: Policy) -> None:
        """Write the server's settings (its role limits too)."""
        ...

    async def languages(self) -> dict[int, str]:
        """Every server's chosen public language (`Policy.language`), where one is set."""
        ...

    async def active_ban(self, guild_id: int, user_id: int, now: datetime) -> Ban | None:
        """The member's ban in force now, if any."""
        ...

    async def add_ban(self, ban: Ban) -> None:
        """Ban a member (replacing a ban in force)."""
        ...

    async def lift_ban(self, guild_id: int, user_id: int, now: datetime) -> bool:
        """End the member's ban in force; False when there was none."""
        ...

    async def bans(self, guild_id: int, now: datetime) -> list[Ban]:
        """Bans in force, newest first."""
        ...

    async def terms(self, guild_id: int) -> list[Term]:
        """The server's banned terms."""
        ...

    async def add_term(self, guild_id: int, term: Term, by: int, now: datetime) -> bool:
        """Add a banned term; False when it was there already."""
        ...

    async def remove_term(self, guild_id: int, text: str) -> bool:
        """Remove a banned term (word or pattern) by its text; False when absent."""
        ...

    async def usage(self, guild_id: int, user_id: int, now: datetime) -> Usage:
        """The member's and the server's recent use (no reservation)."""
        ...

    async def reserve(
        self, reservation: Reservation, decide: Callable[[Usage], Refusal | Charge]
    ) -> Refusal | Charge:
        """Run `decide` on the usage as it stands and, unless it refuses, record the unit, all
        in one transaction serialised per server: two reservations cannot both take the last
        unit. Reserving again for the same job returns its existing charge."""
        ...

    async def settle(
        self,
        job_id: int,
        outcome: Outcome,
        now: datetime,
        *,
        refund: bool,
        strike: Strike | None,
        auto_ban: Callable[[Sequence[datetime]], Ban | None],
    ) -> Settled | None:
        """Record a reserved job's outcome once: refund it, record the strike and, when
        `auto_ban` (given the member's strike times) says so, the ban. None when the job has no
        reservation or was settled already."""
        ...

    async def refund(self, job_id: int) -> bool:
        """Refund a job's unit (a moderator's decision); False when there was nothing to refund."""
        ...

    async def grant(self, guild_id: int, user_id: int, units: int) -> int:
        """Give the member extra units beyond their quota; returns their credits now."""
        ...

    async def reset(self, guild_id: int, user_id: int, now: datetime) -> int:
        """Forget the member's use of their quota in the last day; returns how many units."""
        ...

    async def record(self, entry: AuditEntry) -> AuditEntry:
        """Append to the audit log; returns the entry with its id."""
        ...

    async def audit(self, guild_id: int, *, limit: int = 20) -> list[AuditEntry]:
        """The newest audit entries, newest first."""
        ...

    async def report(
        self, guild_id: int, since: datetime, until: datetime, *, user_id: int = 0
    ) -> UsageReport:
        """Use over a period, for the server or one member."""
        ...

    async def recent_failures(self, guild_id: int, *, limit: int = 5) -> list[int]:
        """Ids of the server's most recently failed jobs, newest first."""
        ...


class AuditObserver(Protocol):
    """Shows audit entries to moderators (the log channel). Must not raise."""

    async def recorded(self, entry: AuditEntry) -> None:
        """An entry was written to the audit log."""
        ...
