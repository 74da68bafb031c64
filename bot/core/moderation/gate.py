"""The gate every job passes (`ModerationGate`, the `Gate` port): bans, allowed channels,
banned terms, then quota, cooldown and in-flight caps; and the settling of finished jobs.
Every refusal, submission and strike is written to the audit log (`AuditLog`).

The rules themselves are in the sibling modules; the atomic parts (reserving the last unit,
settling a job once) are the repository's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from datetime import datetime

from bot.core.errors import Refused, is_banned_content
from bot.core.jobs import Job, JobStatus, Mode
from bot.core.moderation.audit import AuditEntry, AuditKind
from bot.core.moderation.auditlog import AuditLog
from bot.core.moderation.bans import check_ban
from bot.core.moderation.languages import ServerLanguages
from bot.core.moderation.policy import Policy, Refusal, can_moderate, check_channel
from bot.core.moderation.quota import Charge, Outcome, Reservation, Usage, decide_quota
from bot.core.moderation.strikes import Strike, strike_ban
from bot.core.moderation.terms import TermKind, TermMatcher, refusal_for
from bot.core.ports import AuditObserver, Clock, ModerationRepository, Ticket

log = logging.getLogger(__name__)


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
        languages: ServerLanguages | None = None,
    ) -> None:
        self.repo = repo
        self.clock = clock
        #: Each server's public language, remembered from every policy this gate reads.
        self.languages = languages if languages is not None else ServerLanguages()
        #: The audit log this gate writes to; the moderator service shares it.
        self.audit_log = AuditLog(repo, observer)
        self.parent_of = parent_of
        self._matchers: dict[int, TermMatcher] = {}

    async def matcher(self, guild_id: int) -> TermMatcher:
        """The server's banned terms, compiled (recompiled only when they change; patterns are
        timed on probe prompts then, so that runs in a worker thread)."""
        terms = tuple(await self.repo.terms(guild_id))
        cached = self._matchers.get(guild_id)
        if cached is None or cached.terms != terms:
            if any(t.kind is TermKind.PATTERN for t in terms):
                cached = await asyncio.to_thread(TermMatcher, terms)
            else:
                cached = TermMatcher(terms)
            self._matchers[guild_id] = cached
        return cached

    async def policy(self, guild_id: int) -> Policy:
        """The server's settings (its language remembered for the Discord layer)."""
        policy = await self.repo.policy(guild_id)
        self.languages.remember(policy)
        return policy

    async def load_languages(self) -> None:
        """Every server's chosen public language, from the database (at start-up)."""
        self.languages.load(await self.repo.languages())

    async def is_moderator(self, ticket: Ticket) -> bool:
        """Manage Server, or the server's moderator role (the one rule; see `can_moderate`)."""
        if ticket.manage_guild:
            return True
        policy = await self.policy(ticket.guild_id)
        return can_moderate(policy, manage_guild=False, role_ids=ticket.role_ids)

    async def admit(self, ticket: Ticket) -> None:
        """Raise Refused (one sentence for the member) when the request may not go ahead.

        With `ticket.job_id` set, the unit is reserved for that job in the same transaction
        that checks the quota.
        """
        now = self.clock.now()
        policy = await self.policy(ticket.guild_id)
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
                await self.audit_log.record(
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
            await self.audit_log.record(
                AuditEntry(
                    guild_id=ticket.guild_id,
                    kind=AuditKind.REFUSAL,
                    at=now,
                    actor_id=ticket.user_id,
                    target_id=ticket.user_id,
                    action=refusal.rule.value,
                    detail=refusal.reason.plain(),
                    note=refusal.reason,
                    prompt=ticket.prompt,
                    job_id=ticket.job_id,
                    channel_id=ticket.channel_id,
                )
            )
            raise Refused(
                f"{refusal.rule.value} (user {ticket.user_id}): {refusal.reason.plain()}",
                message=refusal.reason,
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
            matcher = await self.matcher(ticket.guild_id)
            return refusal_for(await matcher.find_async(ticket.prompt))
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
        # The settings matter only to a strike's ban: one read fewer for every other finish.
        policy = await self.policy(guild_id) if banned else None
        settled = await self.repo.settle(
            job.id,
            Outcome.FAILED if failed else Outcome.SUCCEEDED,
            now,
            refund=failed,
            strike=Strike(guild_id, user_id, now, job.fail_reason[:500], job.id)
            if banned
            else None,
            auto_ban=lambda times: (
                None if policy is None else strike_ban(policy, guild_id, user_id, times, now)
            ),
        )
        if settled is None:
            return
        if settled.refunded:
            log.info("job %s: failed; refunded to user %s", job.id, user_id)
        if settled.strike:
            await self.audit_log.record(
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
            await self.audit_log.record(
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
        return (await self.policy(guild_id)).default_mode


def _decider(
    policy: Policy, role_ids: Iterable[int], now: datetime
) -> Callable[[Usage], Refusal | Charge]:
    roles = tuple(role_ids)
    return lambda usage: decide_quota(policy, roles, usage, now)
