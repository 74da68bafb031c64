"""Moderation use cases: the gate every job passes (`ModerationGate`, the `Gate` port) and what
moderators do (`ModerationService`). Every refusal, submission, strike and moderator action is
written to the audit log and handed to the audit observer (the log channel).

The rules themselves are in `bot.core.moderation`; the atomic parts (reserving the last unit,
settling a job once) are the repository's.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from bot.core.errors import Refused, is_banned_content
from bot.core.jobs import Job, JobStatus, Mode
from bot.core.moderation import (
    AuditEntry,
    AuditKind,
    BadTerm,
    Ban,
    Charge,
    Hit,
    Outcome,
    Policy,
    Refusal,
    Reservation,
    Strike,
    Term,
    TermKind,
    TermMatcher,
    Usage,
    UsageReport,
    can_moderate,
    check_ban,
    check_channel,
    check_term,
    check_terms,
    decide_quota,
    describe_duration,
    describe_quota,
    fold,
    quota_status,
    strike_ban,
)
from bot.core.ports import AuditObserver, Clock, ModerationRepository, Ticket

log = logging.getLogger(__name__)

#: Longest period a usage report covers.
MAX_REPORT_DAYS = 90


class ModerationGate:
    """The `Gate`: bans, allowed channels, banned terms, then quota, cooldown and in-flight
    caps; settles finished jobs (refund on failure, strike on banned content, auto-ban).

    `parent_of` maps a thread to the channel it belongs to (0 when it is not a thread), so a
    button pressed in a job's thread counts as the allowed channel it was started in.
    """

    def __init__(
        self,
        repo: ModerationRepository,
        clock: Clock,
        *,
        observer: AuditObserver | None = None,
        parent_of: Callable[[int], int] | None = None,
    ) -> None:
        self.repo = repo
        self.clock = clock
        self.observer = observer
        self.parent_of = parent_of
        self._matchers: dict[int, TermMatcher] = {}

    async def matcher(self, guild_id: int) -> TermMatcher:
        """The server's banned terms, compiled (recompiled only when they change)."""
        terms = tuple(await self.repo.terms(guild_id))
        cached = self._matchers.get(guild_id)
        if cached is None or cached.terms != terms:
            cached = self._matchers[guild_id] = TermMatcher(terms)
        return cached

    async def is_moderator(self, ticket: Ticket) -> bool:
        """Manage Server, or the server's moderator role (the one rule; see `can_moderate`)."""
        if ticket.manage_guild:
            return True
        policy = await self.repo.policy(ticket.guild_id)
        return can_moderate(policy, manage_guild=False, role_ids=ticket.role_ids)

    async def admit(self, ticket: Ticket) -> None:
        """Raise Refused (one sentence for the member) when the request may not go ahead.

        With `ticket.job_id` set, the unit is reserved for that job in the same transaction
        that checks the quota.
        """
        now = self.clock.now()
        policy = await self.repo.policy(ticket.guild_id)
        refusal = await self._standing(policy, ticket, now)
        if refusal is None:
            decide = _decider(policy, ticket.role_ids, now)
            if ticket.job_id:
                reservation = Reservation(
                    guild_id=ticket.guild_id,
                    user_id=ticket.user_id,
                    channel_id=ticket.channel_id,
                    job_id=ticket.job_id,
                    at=now,
                )
                decision = await self.repo.reserve(reservation, decide)
            else:
                decision = decide(await self.repo.usage(ticket.guild_id, ticket.user_id, now))
            if isinstance(decision, Refusal):
                refusal = decision
            elif ticket.job_id:
                await self._audit(
                    AuditEntry(
                        guild_id=ticket.guild_id,
                        kind=AuditKind.SUBMISSION,
                        at=now,
                        actor_id=ticket.user_id,
                        target_id=ticket.user_id,
                        action="extra" if decision is Charge.BONUS else "quota",
                        prompt=ticket.prompt,
                        job_id=ticket.job_id,
                        channel_id=ticket.channel_id,
                    )
                )
        if refusal is not None:
            await self._audit(
                AuditEntry(
                    guild_id=ticket.guild_id,
                    kind=AuditKind.REFUSAL,
                    at=now,
                    actor_id=ticket.user_id,
                    target_id=ticket.user_id,
                    action=refusal.rule.value,
                    detail=refusal.reason,
                    prompt=ticket.prompt,
                    job_id=ticket.job_id,
                    channel_id=ticket.channel_id,
                )
            )
            raise Refused(
                f"{refusal.rule.value} (user {ticket.user_id}): {refusal.reason}",
                member_message=refusal.reason,
            )

    async def _standing(self, policy: Policy, ticket: Ticket, now: datetime) -> Refusal | None:
        banned = check_ban(await self.repo.active_ban(ticket.guild_id, ticket.user_id, now), now)
        if banned:
            return banned
        places = [ticket.channel_id]
        if self.parent_of is not None:
            places.append(self.parent_of(ticket.channel_id))
        outside = check_channel(policy, places)
        if outside:
            return outside
        if ticket.prompt:
            return check_terms(await self.matcher(ticket.guild_id), ticket.prompt)
        return None

    async def settle(self, job: Job) -> None:
        """Account for a finished job once: refund a failure, strike banned content (and ban
        after too many strikes). Repeating it for the same job does nothing."""
        if not job.finished:
            return
        now = self.clock.now()
        failed = job.status is JobStatus.FAILED
        banned = failed and is_banned_content(job.fail_reason)
        guild_id, user_id = job.route.guild_id, job.route.requester_id
        policy = await self.repo.policy(guild_id)
        settled = await self.repo.settle(
            job.id,
            Outcome.FAILED if failed else Outcome.SUCCEEDED,
            now,
            refund=failed,
            strike=Strike(guild_id, user_id, now, job.fail_reason[:500], job.id)
            if banned
            else None,
            auto_ban=lambda times: strike_ban(policy, guild_id, user_id, times, now),
        )
        if settled is None:
            return
        if settled.refunded:
            log.info("job %s: failed; refunded to user %s", job.id, user_id)
        if settled.strike:
            await self._audit(
                AuditEntry(
                    guild_id=guild_id,
                    kind=AuditKind.STRIKE,
                    at=now,
                    target_id=user_id,
                    action="banned_prompt",
                    detail=job.fail_reason[:500],
                    prompt=job.prompt,
                    mode=job.mode.value,
                    job_id=job.id,
                    channel_id=job.route.channel_id,
                )
            )
        if settled.ban is not None:
            await self._audit(
                AuditEntry(
                    guild_id=guild_id,
                    kind=AuditKind.AUTO_BAN,
                    at=now,
                    target_id=user_id,
                    action="ban",
                    detail=settled.ban.reason,
                    job_id=job.id,
                    channel_id=job.route.channel_id,
                )
            )

    async def default_mode(self, guild_id: int) -> Mode:
        """The mode `/imagine` uses when the member gives none."""
        return (await self.repo.policy(guild_id)).default_mode

    async def _audit(self, entry: AuditEntry) -> AuditEntry:
        saved = await self.repo.record(entry)
        if self.observer is not None:
            try:
                await self.observer.recorded(saved)
            except Exception:
                log.exception("audit entry %s could not be shown in the log channel", saved.id)
        return saved


def _decider(
    policy: Policy, role_ids: Iterable[int], now: datetime
) -> Callable[[Usage], Refusal | Charge]:
    roles = tuple(role_ids)
    return lambda usage: decide_quota(policy, roles, usage, now)


class NotAllowed(Refused):
    """A moderator command's input is refused (a bad term, an unknown job …)."""


class ModerationService:
    """What moderators (and `/quota`) do. Every change is written to the audit log."""

    def __init__(self, gate: ModerationGate) -> None:
        self.gate = gate
        self.repo = gate.repo
        self.clock = gate.clock

    # --- members ---------------------------------------------------------------------------

    async def quota(self, ticket: Ticket) -> str:
        """The member's `/quota` answer: what is left, and when the next unit frees up."""
        now = self.clock.now()
        policy = await self.repo.policy(ticket.guild_id)
        usage = await self.repo.usage(ticket.guild_id, ticket.user_id, now)
        ban = check_ban(await self.repo.active_ban(ticket.guild_id, ticket.user_id, now), now)
        if ban:
            return ban.reason
        refusal = decide_quota(policy, ticket.role_ids, usage, now)
        status = quota_status(policy, ticket.role_ids, usage, now)
        return describe_quota(status, refusal if isinstance(refusal, Refusal) else None)

    async def is_moderator(self, ticket: Ticket) -> bool:
        """Manage Server, or the server's moderator role."""
        return await self.gate.is_moderator(ticket)

    async def policy(self, guild_id: int) -> Policy:
        """The server's settings."""
        return await self.repo.policy(guild_id)

    async def report_job(
        self, guild_id: int, reporter_id: int, job: Job, channel_id: int
    ) -> AuditEntry:
        """A member's 🚩 report of a result: recorded and shown to moderators."""
        return await self.gate._audit(
            AuditEntry(
                guild_id=guild_id,
                kind=AuditKind.REPORT,
                at=self.clock.now(),
                actor_id=reporter_id,
                target_id=job.route.requester_id,
                action="report",
                prompt=job.prompt,
                mode=job.mode.value,
                job_id=job.id,
                channel_id=channel_id,
            )
        )

    # --- moderators ------------------------------------------------------------------------

    async def _action(
        self,
        guild_id: int,
        actor_id: int,
        action: str,
        detail: str,
        *,
        target_id: int = 0,
        job_id: int = 0,
    ) -> AuditEntry:
        return await self.gate._audit(
            AuditEntry(
                guild_id=guild_id,
                kind=AuditKind.MOD_ACTION,
                at=self.clock.now(),
                actor_id=actor_id,
                target_id=target_id,
                action=action,
                detail=detail,
                job_id=job_id,
            )
        )

    async def ban(
        self, guild_id: int, actor_id: int, user_id: int, reason: str, duration: timedelta | None
    ) -> Ban:
        """Ban a member from the bot, for a while or until lifted."""
        now = self.clock.now()
        ban = Ban(
            guild_id=guild_id,
            user_id=user_id,
            reason=reason.strip()[:300],
            at=now,
            until=now + duration if duration else None,
            by=actor_id,
        )
        await self.repo.add_ban(ban)
        until = f" until {ban.until.isoformat(timespec='minutes')}" if ban.until else ""
        await self._action(
            guild_id, actor_id, "ban", f"{ban.reason or 'no reason'}{until}", target_id=user_id
        )
        return ban

    async def unban(self, guild_id: int, actor_id: int, user_id: int) -> bool:
        """Lift a member's ban; False when they were not banned."""
        lifted = await self.repo.lift_ban(guild_id, user_id, self.clock.now())
        if lifted:
            await self._action(guild_id, actor_id, "unban", "ban lifted", target_id=user_id)
        return lifted

    async def bans(self, guild_id: int) -> list[Ban]:
        """Bans in force."""
        return await self.repo.bans(guild_id, self.clock.now())

    async def change(
        self, guild_id: int, actor_id: int, action: str, change: Callable[[Policy], Policy]
    ) -> Policy:
        """Change the server's settings; the audit log gets what changed."""
        before = await self.repo.policy(guild_id)
        after = change(before)
        await self.repo.save_policy(after)
        await self._action(guild_id, actor_id, action, _difference(before, after))
        return after

    async def grant(self, guild_id: int, actor_id: int, user_id: int, units: int) -> int:
        """Give a member extra images beyond their quota; returns their extra images now."""
        credits = await self.repo.grant(guild_id, user_id, units)
        await self._action(
            guild_id, actor_id, "grant", f"{units:+d} extra (now {credits})", target_id=user_id
        )
        return credits

    async def reset(self, guild_id: int, actor_id: int, user_id: int) -> int:
        """Forget a member's use of their quota in the last day; returns how many images."""
        count = await self.repo.reset(guild_id, user_id, self.clock.now())
        await self._action(
            guild_id, actor_id, "reset", f"{count} images forgiven", target_id=user_id
        )
        return count

    async def refund(self, guild_id: int, actor_id: int, job: Job) -> bool:
        """Refund one job's image to its requester; False when there was nothing to refund."""
        if job.route.guild_id != guild_id:
            return False
        refunded = await self.repo.refund(job.id)
        if refunded:
            await self._action(
                guild_id,
                actor_id,
                "refund",
                f"job {job.id} refunded",
                target_id=job.route.requester_id,
                job_id=job.id,
            )
        return refunded

    async def record_action(
        self,
        guild_id: int,
        actor_id: int,
        action: str,
        detail: str,
        *,
        target_id: int = 0,
        job_id: int = 0,
    ) -> None:
        """Record a moderator action done in Discord (deleting a result …)."""
        await self._action(guild_id, actor_id, action, detail, target_id=target_id, job_id=job_id)

    async def add_term(self, guild_id: int, actor_id: int, kind: TermKind, text: str) -> Term:
        """Add a banned word or pattern; NotAllowed says why one is refused."""
        try:
            term = check_term(kind, text)
        except BadTerm as exc:
            raise NotAllowed(str(exc), member_message=str(exc)) from None
        if not await self.repo.add_term(guild_id, term, actor_id, self.clock.now()):
            raise NotAllowed("duplicate term", member_message=f"“{term.text}” is already banned.")
        await self._action(guild_id, actor_id, "term_add", f"{term.kind.value}: {term.text}")
        return term

    async def remove_term(self, guild_id: int, actor_id: int, text: str) -> bool:
        """Remove a banned word or pattern by its text."""
        text = text.strip()
        removed = await self.repo.remove_term(guild_id, text) or await self.repo.remove_term(
            guild_id, " ".join(fold(text).split())
        )
        if removed:
            await self._action(guild_id, actor_id, "term_remove", text)
        return removed

    async def terms(self, guild_id: int) -> list[Term]:
        """The server's banned terms."""
        return await self.repo.terms(guild_id)

    async def test_prompt(self, guild_id: int, prompt: str) -> Hit | None:
        """The banned term a prompt would be refused for, if any."""
        return (await self.gate.matcher(guild_id)).find(prompt)

    async def report(self, guild_id: int, days: int, user_id: int = 0) -> UsageReport:
        """Use over the last `days` days (at most 90), for the server or one member."""
        now = self.clock.now()
        days = max(1, min(days, MAX_REPORT_DAYS))
        return await self.repo.report(guild_id, now - timedelta(days=days), now, user_id=user_id)

    async def audit(self, guild_id: int, limit: int = 10) -> list[AuditEntry]:
        """The newest audit entries."""
        return await self.repo.audit(guild_id, limit=limit)

    async def recent_failures(self, guild_id: int) -> list[int]:
        """Ids of the server's latest failed jobs."""
        return await self.repo.recent_failures(guild_id)


def _difference(before: Policy, after: Policy) -> str:
    """`per_day: 5 → 3; cooldown: 0:00:00 → 0:00:30` (what a settings change did)."""
    changes = []
    for f in dataclasses.fields(Policy):
        old, new = getattr(before, f.name), getattr(after, f.name)
        if old != new:
            changes.append(f"{f.name}: {_show(old)} → {_show(new)}")
    return "; ".join(changes) or "no change"


def _show(value: object) -> str:
    if isinstance(value, frozenset):
        return ", ".join(str(v) for v in sorted(value)) or "any"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v.describe()}" for k, v in value.items()) or "none"
    if isinstance(value, timedelta):
        return describe_duration(value) if value else "none"
    if hasattr(value, "describe"):
        return str(value.describe())
    return str(value.value if isinstance(value, Mode) else value)
