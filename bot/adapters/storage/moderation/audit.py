"""The audit log (`mod_audit`) and the usage reports read from the ledger, the log and the
strikes."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select

from bot.adapters.storage.moderation.base import Store
from bot.adapters.storage.schema import mod_audit, mod_strikes, mod_usage
from bot.core.moderation import (
    AuditEntry,
    AuditKind,
    Charge,
    Outcome,
    UsageReport,
    daily_counts,
)


def _entry(row: Mapping[Any, Any]) -> AuditEntry:
    return AuditEntry(
        id=row["id"],
        guild_id=row["guild_id"],
        kind=AuditKind(row["kind"]),
        at=row["at"],
        actor_id=row["actor_id"],
        target_id=row["target_id"],
        action=row["action"],
        detail=row["detail"],
        prompt=row["prompt"],
        mode=row["mode"],
        job_id=row["job_id"],
        channel_id=row["channel_id"],
    )


class AuditStore(Store):
    """The audit log and usage reports."""

    async def record(self, entry: AuditEntry) -> AuditEntry:
        """Append to the audit log; returns the entry with its id."""
        async with self._begin() as conn:
            result = await conn.execute(
                insert(mod_audit)
                .values(
                    guild_id=entry.guild_id,
                    kind=entry.kind.value,
                    at=entry.at,
                    actor_id=entry.actor_id,
                    target_id=entry.target_id,
                    action=entry.action[:64],
                    detail=entry.detail,
                    prompt=entry.prompt,
                    mode=entry.mode[:32],
                    job_id=entry.job_id,
                    channel_id=entry.channel_id,
                )
                .returning(mod_audit.c.id)
            )
            new_id = result.scalar_one()
        return dataclasses.replace(entry, id=new_id)

    async def audit(self, guild_id: int, *, limit: int = 20) -> list[AuditEntry]:
        """The newest audit entries, newest first."""
        async with self._begin() as conn:
            rows = (
                await conn.execute(
                    select(mod_audit)
                    .where(mod_audit.c.guild_id == guild_id)
                    .order_by(mod_audit.c.id.desc())
                    .limit(limit)
                )
            ).mappings()
            return [_entry(r) for r in rows]

    async def report(
        self, guild_id: int, since: datetime, until: datetime, *, user_id: int = 0
    ) -> UsageReport:
        """Use over a period, for the server or one member."""
        u, a, s = mod_usage.c, mod_audit.c, mod_strikes.c
        async with self._begin() as conn:
            where = [u.guild_id == guild_id, u.at > since, u.at <= until]
            if user_id:
                where.append(u.user_id == user_id)
            rows = (
                await conn.execute(select(u.user_id, u.at, u.outcome, u.charge).where(*where))
            ).all()
            refusal_where = [
                a.guild_id == guild_id,
                a.kind == AuditKind.REFUSAL.value,
                a.at > since,
                a.at <= until,
            ]
            if user_id:
                refusal_where.append(a.actor_id == user_id)
            refusals = (await conn.execute(select(func.count()).where(*refusal_where))).scalar_one()
            strike_where = [s.guild_id == guild_id, s.at > since, s.at <= until]
            if user_id:
                strike_where.append(s.user_id == user_id)
            strikes = (await conn.execute(select(func.count()).where(*strike_where))).scalar_one()
        by_user = Counter(r.user_id for r in rows)
        return UsageReport(
            guild_id=guild_id,
            since=since,
            until=until,
            user_id=user_id,
            jobs=len(rows),
            succeeded=sum(1 for r in rows if r.outcome == Outcome.SUCCEEDED.value),
            failed=sum(1 for r in rows if r.outcome == Outcome.FAILED.value),
            refunded=sum(1 for r in rows if r.charge == Charge.REFUNDED.value),
            refusals=refusals,
            strikes=strikes,
            top=tuple(by_user.most_common(5)),
            daily=daily_counts((r.at for r in rows), since, until),
        )

    async def recent_failures(self, guild_id: int, *, limit: int = 5) -> list[int]:
        """Ids of the server's most recently failed jobs, newest first."""
        u = mod_usage.c
        async with self._begin() as conn:
            rows = await conn.execute(
                select(u.job_id)
                .where(u.guild_id == guild_id, u.outcome == Outcome.FAILED.value)
                .order_by(u.settled_at.desc(), u.id.desc())
                .limit(limit)
            )
            return [int(job_id) for job_id in rows.scalars()]
