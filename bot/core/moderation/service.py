"""What moderators do, and `/quota` for members: the use cases behind the `/mod` commands and
the log channel's buttons. Each moderator action checks the moderator rule itself (the commands
check it too: a crafted interaction must still be refused here), checks its numbers against
their declared bounds, and is written to the audit log.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from bot.core.jobs import Job, PostState
from bot.core.messages import Code, Message, UserRef, msg
from bot.core.moderation import bounds
from bot.core.moderation.audit import AuditEntry, AuditKind, UsageReport
from bot.core.moderation.bans import Ban, check_ban
from bot.core.moderation.gate import ModerationGate
from bot.core.moderation.normalise import fold
from bot.core.moderation.policy import NotAllowed, Policy, Refusal
from bot.core.moderation.quota import decide_quota, describe_quota, quota_status
from bot.core.moderation.settings import PolicyChange, difference, duration
from bot.core.moderation.terms import MAX_TERMS, BadTerm, Hit, Term, TermKind, check_term
from bot.core.moderation.wording import number
from bot.core.ports import JobRepository, Ticket

#: What a member who does not moderate is told when they try.
NOT_A_MODERATOR = msg("Only moderators (Manage Server, or the moderator role) can use /mod.")
#: A job id a moderator (or a button) named that this server has no record of.
NOT_HERE = msg("That job is not in this server's records.")


class NotModerator(NotAllowed):
    """A member without Manage Server or the moderator role tried a moderator action."""

    message = NOT_A_MODERATOR


class LogAction(enum.StrEnum):
    """The quick actions under a log-channel entry."""

    BAN = "ban"
    REFUND = "refund"
    DELETE = "delete"


class Deletion(enum.Enum):
    """What became of an attempt to delete a posted result."""

    DELETED = "deleted"
    GONE = "gone"  # it was deleted already
    FAILED = "failed"  # Discord refused (permissions) or was unreachable


class ResultMessages(Protocol):
    """Posted results, as the place they were posted in (Discord) can remove them."""

    async def delete(self, guild_id: int, channel_id: int, message_id: int) -> Deletion:
        """Delete one posted message."""
        ...


@dataclass(frozen=True, slots=True)
class ServerStatus:
    """What `/mod status` shows about the server's jobs and settings."""

    policy: Policy
    in_progress: int
    queued: int
    failures: tuple[tuple[int, str], ...]  # (job id, its failure reason as recorded), newest first


class ModerationService:
    """The moderators' use cases (and `/quota`). Every change is written to the audit log."""

    def __init__(self, gate: ModerationGate, jobs: JobRepository) -> None:
        self.gate = gate
        self.jobs = jobs
        self.repo = gate.repo
        self.clock = gate.clock
        self.audit_log = gate.audit_log

    # --- members ---------------------------------------------------------------------------

    async def quota(self, ticket: Ticket) -> tuple[Message, ...]:
        """The member's `/quota` answer: what they made in the last day and hour and, where limits
        apply, what is left and when the next image frees up."""
        now = self.clock.now()
        policy = await self.gate.policy(ticket.guild_id)
        usage = await self.repo.usage(ticket.guild_id, ticket.user_id, now)
        ban = await self.repo.active_ban(ticket.guild_id, ticket.user_id, now)
        refusal = decide_quota(policy, ticket.role_ids, usage, now)
        status = quota_status(policy, ticket.role_ids, usage, now)
        return describe_quota(
            status,
            refusal if isinstance(refusal, Refusal) else None,
            ban if check_ban(ban, now) else None,
        )

    async def is_moderator(self, ticket: Ticket) -> bool:
        """Manage Server, or the server's moderator role (the gate's one rule)."""
        return await self.gate.is_moderator(ticket)

    async def require_moderator(self, ticket: Ticket) -> None:
        """Raise NotModerator unless the ticket's member moderates the server."""
        if not ticket.guild_id or not await self.gate.is_moderator(ticket):
            raise NotModerator(f"user {ticket.user_id} is not a moderator")

    async def policy(self, guild_id: int) -> Policy:
        """The server's settings."""
        return await self.gate.policy(guild_id)

    async def load_languages(self) -> None:
        """Every server's chosen public language, into memory (at start-up)."""
        await self.gate.load_languages()

    async def report_job(self, ticket: Ticket, job_id: int) -> Message:
        """A member's 🚩 report of a result: recorded and shown to moderators; the sentence
        thanks the member."""
        job = await self._job(ticket, job_id, msg("That image is not in this server's records."))
        await self.audit_log.record(
            AuditEntry(
                guild_id=ticket.guild_id,
                kind=AuditKind.REPORT,
                at=self.clock.now(),
                actor_id=ticket.user_id,
                target_id=job.route.requester_id,
                action="report",
                prompt=job.prompt,
                mode=job.mode.value,
                job_id=job.id,
                channel_id=ticket.channel_id,
            )
        )
        if (await self.gate.policy(ticket.guild_id)).log_channel_id:
            return msg("Thank you: the moderators have been told about this image.")
        return msg("Thank you: your report is recorded for the moderators.")

    # --- moderators ------------------------------------------------------------------------

    async def _action(
        self, ticket: Ticket, action: str, detail: str, *, target_id: int = 0, job_id: int = 0
    ) -> AuditEntry:
        return await self.audit_log.record(
            AuditEntry(
                guild_id=ticket.guild_id,
                kind=AuditKind.MOD_ACTION,
                at=self.clock.now(),
                actor_id=ticket.user_id,
                target_id=target_id,
                action=action,
                detail=detail,
                job_id=job_id,
            )
        )

    async def _job(self, ticket: Ticket, job_id: int, missing: Message = NOT_HERE) -> Job:
        job = await self.jobs.get(job_id) if 0 < job_id < 2**63 else None
        if job is None or job.route.guild_id != ticket.guild_id:
            raise NotAllowed(f"job {job_id} not in guild {ticket.guild_id}", message=missing)
        return job

    async def ban(
        self,
        ticket: Ticket,
        target: Ticket,
        reason: str,
        length: str | None,
        *,
        bot_user_id: int,
    ) -> Ban:
        """Ban a member from the bot, for `length` (`12h`) or until lifted. Refused for the bot
        itself and for a moderator (moderators settle disagreements elsewhere)."""
        await self.require_moderator(ticket)
        if len(reason) > bounds.REASON_LENGTH:
            raise NotAllowed(
                "reason too long",
                message=msg(
                    "reason can be at most {limit} characters.", limit=bounds.REASON_LENGTH
                ),
            )
        span = duration("duration", length) if length else None
        if target.user_id == bot_user_id:
            raise NotAllowed("ban the bot", message=msg("I can't ban myself from the bot."))
        if await self.gate.is_moderator(dataclasses.replace(target, guild_id=ticket.guild_id)):
            raise NotAllowed(
                f"ban moderator {target.user_id}",
                message=msg(
                    "{member} is a moderator (Manage Server or the moderator role), and "
                    "moderators can't be banned from the bot.",
                    member=UserRef(target.user_id),
                ),
            )
        now = self.clock.now()
        ban = Ban(
            guild_id=ticket.guild_id,
            user_id=target.user_id,
            reason=" ".join(reason.split()),
            at=now,
            until=now + span if span else None,
            by=ticket.user_id,
        )
        await self.repo.add_ban(ban)
        until = f" until {ban.until.isoformat(timespec='minutes')}" if ban.until else ""
        await self._action(
            ticket, "ban", f"{ban.reason or 'no reason'}{until}", target_id=target.user_id
        )
        return ban

    async def unban(self, ticket: Ticket, user_id: int) -> bool:
        """Lift a member's ban; False when they were not banned."""
        await self.require_moderator(ticket)
        lifted = await self.repo.lift_ban(ticket.guild_id, user_id, self.clock.now())
        if lifted:
            await self._action(ticket, "unban", "ban lifted", target_id=user_id)
        return lifted

    async def bans(self, ticket: Ticket) -> list[Ban]:
        """Bans in force."""
        await self.require_moderator(ticket)
        return await self.repo.bans(ticket.guild_id, self.clock.now())

    async def change(self, ticket: Ticket, action: str, change: PolicyChange) -> Policy:
        """Change the server's settings (see `settings` for the checked changes); the audit
        log gets what changed."""
        await self.require_moderator(ticket)
        before = await self.repo.policy(ticket.guild_id)
        after = change(before)
        await self.repo.save_policy(after)
        self.gate.languages.remember(after)
        await self._action(ticket, action, difference(before, after))
        return after

    async def grant(self, ticket: Ticket, user_id: int, images: int) -> int:
        """Give a member extra images beyond their quota; returns their extra images now."""
        await self.require_moderator(ticket)
        bounds.GRANT_IMAGES.check(images)
        held = (await self.repo.usage(ticket.guild_id, user_id, self.clock.now())).credits
        if held + images > bounds.CREDITS_HELD.high:
            raise NotAllowed(
                "credits overflow",
                message=msg(
                    "{member} has {held} extra images; a member can hold at most {most}.",
                    member=UserRef(user_id),
                    held=number(held),
                    most=number(bounds.CREDITS_HELD.high),
                ),
            )
        credits = await self.repo.grant(ticket.guild_id, user_id, images)
        await self._action(ticket, "grant", f"{images:+d} extra (now {credits})", target_id=user_id)
        return credits

    async def reset(self, ticket: Ticket, user_id: int) -> int:
        """Forget a member's use of their quota in the last day; returns how many images."""
        await self.require_moderator(ticket)
        count = await self.repo.reset(ticket.guild_id, user_id, self.clock.now())
        await self._action(ticket, "reset", f"{count} images forgiven", target_id=user_id)
        return count

    async def refund(self, ticket: Ticket, job_id: int) -> Message:
        """Refund one job's image to its requester; the sentence says what happened."""
        await self.require_moderator(ticket)
        job = await self._job(ticket, job_id)
        requester = job.route.requester_id
        if not await self.repo.refund(job.id):
            return msg("Job {job} was already refunded (or never charged).", job=job.id)
        await self._action(
            ticket, "refund", f"job {job.id} refunded", target_id=requester, job_id=job.id
        )
        return msg("Job {job} is refunded to {member}.", job=job.id, member=UserRef(requester))

    async def delete_result(self, ticket: Ticket, job_id: int, results: ResultMessages) -> Message:
        """Delete a job's posted result; the sentence says what happened."""
        await self.require_moderator(ticket)
        job = await self._job(ticket, job_id)
        if not job.result_message_id:
            if job.post_state is PostState.INTENT:
                # Its outcome is known and on its way (or posted a moment ago, its message id
                # not yet recorded): the moderator can see it, so "no result" would be wrong.
                return msg(
                    "Job {job}'s result is still being posted. Please try again in a minute.",
                    job=job.id,
                )
            return msg("Job {job} has no posted result to delete.", job=job.id)
        outcome = await results.delete(
            ticket.guild_id, job.route.post_channel_id, job.result_message_id
        )
        if outcome is Deletion.GONE:
            return msg("Job {job}'s result was already deleted.", job=job.id)
        if outcome is Deletion.FAILED:
            return msg("I couldn't delete that result (check my permissions there).")
        await self._action(
            ticket,
            "delete_result",
            f"job {job.id}'s result deleted",
            target_id=job.route.requester_id,
            job_id=job.id,
        )
        return msg("Job {job}'s result is deleted.", job=job.id)

    async def log_action(
        self,
        ticket: Ticket,
        action: LogAction,
        job_id: int,
        target: Ticket,
        results: ResultMessages,
        *,
        bot_user_id: int,
    ) -> Message:
        """A press of a log-channel button: ban the requester, refund, delete the result."""
        if action is LogAction.BAN:
            reason = f"from the log channel (job {job_id})" if job_id else "from the log channel"
            ban = await self.ban(ticket, target, reason, None, bot_user_id=bot_user_id)
            return msg(
                "{member} is banned from making images until you lift it.",
                member=UserRef(ban.user_id),
            )
        if action is LogAction.REFUND:
            return await self.refund(ticket, job_id)
        return await self.delete_result(ticket, job_id, results)

    async def add_term(self, ticket: Ticket, kind: TermKind, text: str) -> Term:
        """Add a banned word or pattern; NotAllowed says why one is refused."""
        await self.require_moderator(ticket)
        try:
            term = check_term(kind, text)
        except BadTerm as exc:
            raise NotAllowed(str(exc), message=exc.message) from None
        if len(await self.repo.terms(ticket.guild_id)) >= MAX_TERMS:
            raise NotAllowed(
                "too many terms",
                message=msg(
                    "A server can ban at most {limit} words and patterns; remove one first.",
                    limit=MAX_TERMS,
                ),
            )
        if not await self.repo.add_term(ticket.guild_id, term, ticket.user_id, self.clock.now()):
            raise NotAllowed(
                "duplicate term", message=msg("{term} is already banned.", term=Code(term.text))
            )
        await self._action(ticket, "term_add", f"{term.kind.value}: {term.text}")
        return term

    async def remove_term(self, ticket: Ticket, text: str) -> bool:
        """Remove a banned word or pattern by its text."""
        await self.require_moderator(ticket)
        text = text.strip()
        removed = await self.repo.remove_term(ticket.guild_id, text) or (
            await self.repo.remove_term(ticket.guild_id, " ".join(fold(text).split()))
        )
        if removed:
            await self._action(ticket, "term_remove", text)
        return removed

    async def terms(self, ticket: Ticket) -> list[Term]:
        """The server's banned terms."""
        await self.require_moderator(ticket)
        return await self.repo.terms(ticket.guild_id)

    async def test_prompt(self, ticket: Ticket, prompt: str) -> Hit | None:
        """The banned term a prompt would be refused for, if any."""
        await self.require_moderator(ticket)
        return await (await self.gate.matcher(ticket.guild_id)).find_async(prompt)

    async def report(self, ticket: Ticket, days: int, user_id: int = 0) -> UsageReport:
        """Use over the last `days` days (1 to 90), for the server or one member."""
        await self.require_moderator(ticket)
        bounds.REPORT_DAYS.check(days)
        now = self.clock.now()
        return await self.repo.report(
            ticket.guild_id, now - timedelta(days=days), now, user_id=user_id
        )

    async def status(self, ticket: Ticket) -> ServerStatus:
        """The server's jobs in progress (and how many wait in the API's queue), its settings
        and its latest failures (their reasons, for the Discord side to put in plain words)."""
        await self.require_moderator(ticket)
        guild_id = ticket.guild_id
        unfinished = [j for j in await self.jobs.unfinished() if j.route.guild_id == guild_id]
        failures: list[tuple[int, str]] = []
        for job_id in await self.repo.recent_failures(guild_id):
            job = await self.jobs.get(job_id)
            if job is not None:
                failures.append((job.id, job.fail_reason))
        return ServerStatus(
            policy=await self.gate.policy(guild_id),
            in_progress=len(unfinished),
            queued=sum(1 for j in unfinished if j.queue_position),
            failures=tuple(failures),
        )
