"""Moderation state on SQL: `bot.core.ports.ModerationRepository` over the `mod_*` tables.

Rows never leave this module: every method takes and returns core types. The two operations
that must hold across processes are `reserve` (two commands at the same instant cannot both take
a member's last unit) and `settle` (a job is refunded and struck at most once). `reserve` first
bumps the server's `mod_settings.serial`, which takes that row's lock on PostgreSQL and the
write lock on SQLite (BEGIN IMMEDIATE), so reservations for one server run one at a time, each
seeing every unit reserved before it.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.adapters.storage.engine import SQLITE_BEGIN_OPTION, StorageError
from bot.adapters.storage.schema import (
    mod_audit,
    mod_bans,
    mod_credits,
    mod_role_limits,
    mod_settings,
    mod_strikes,
    mod_terms,
    mod_usage,
)
from bot.core.jobs import Mode
from bot.core.moderation import (
    DAY,
    AuditEntry,
    AuditKind,
    Ban,
    Charge,
    Limits,
    Outcome,
    Policy,
    Refusal,
    Reservation,
    Settled,
    Strike,
    Term,
    TermKind,
    Usage,
    UsageReport,
    daily_counts,
)

log = logging.getLogger(__name__)

_ATTEMPTS = 5
#: How many of a member's latest strikes `settle` hands to the auto-ban rule.
_STRIKE_HISTORY = 100
#: A unit still pending after this long no longer counts as in flight (its job was lost).
_IN_FLIGHT_HORIZON = DAY


def _settings_values(policy: Policy) -> dict[str, Any]:
    return {
        "per_day": policy.limits.per_day,
        "per_hour": policy.limits.per_hour,
        "server_per_day": policy.server_per_day,
        "cooldown_s": int(policy.cooldown.total_seconds()),
        "member_in_flight": policy.member_in_flight,
        "server_in_flight": policy.server_in_flight,
        "strike_limit": policy.strike_limit,
        "strike_window_s": int(policy.strike_window.total_seconds()),
        "strike_ban_s": int(policy.strike_ban.total_seconds()),
        "allowed_channels": ",".join(str(c) for c in sorted(policy.allowed_channels)),
        "default_mode": policy.default_mode.value,
        "log_channel_id": policy.log_channel_id,
        "moderator_role_id": policy.moderator_role_id,
    }


def _policy(guild_id: int, row: Mapping[Any, Any] | None, roles: dict[int, Limits]) -> Policy:
    if row is None:
        return Policy(guild_id=guild_id, role_limits=roles)
    return Policy(
        guild_id=guild_id,
        limits=Limits(per_day=row["per_day"], per_hour=row["per_hour"]),
        role_limits=roles,
        server_per_day=row["server_per_day"],
        cooldown=timedelta(seconds=row["cooldown_s"]),
        member_in_flight=row["member_in_flight"],
        server_in_flight=row["server_in_flight"],
        strike_limit=row["strike_limit"],
        strike_window=timedelta(seconds=row["strike_window_s"]),
        strike_ban=timedelta(seconds=row["strike_ban_s"]),
        allowed_channels=frozenset(int(c) for c in row["allowed_channels"].split(",") if c),
        default_mode=Mode(row["default_mode"]),
        log_channel_id=row["log_channel_id"],
        moderator_role_id=row["moderator_role_id"],
    )


def _ban(row: Mapping[Any, Any]) -> Ban:
    return Ban(
        guild_id=row["guild_id"],
        user_id=row["user_id"],
        reason=row["reason"],
        at=row["at"],
        until=row["until"],
        by=row["by_id"],
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


def _ban_in_force(now: datetime) -> Any:
    return and_(
        mod_bans.c.lifted_at.is_(None), or_(mod_bans.c.until.is_(None), mod_bans.c.until > now)
    )


class SqlModerationRepository:
    """`ModerationRepository` on SQLite or PostgreSQL. Each call is one transaction.

    Database failures are raised as `StorageError`.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @asynccontextmanager
    async def _begin(self, *, serial: bool = False) -> AsyncIterator[AsyncConnection]:
        """One transaction. `serial`: on SQLite, take the write lock at BEGIN (IMMEDIATE), so
        a read-then-write transaction cannot be overtaken between its read and its write."""
        try:
            async with self._engine.connect() as conn:
                if serial and self._engine.dialect.name == "sqlite":
                    conn = await conn.execution_options(**{SQLITE_BEGIN_OPTION: "BEGIN IMMEDIATE"})
                async with conn.begin():
                    yield conn
        except IntegrityError:
            raise
        except SQLAlchemyError as exc:
            raise StorageError(f"moderation store unavailable: {exc}") from exc

    # --- settings --------------------------------------------------------------------------

    async def policy(self, guild_id: int) -> Policy:
        """The server's settings (defaults when it has none)."""
        async with self._begin() as conn:
            return await self._policy(conn, guild_id)

    async def _policy(self, conn: AsyncConnection, guild_id: int) -> Policy:
        row = (
            (await conn.execute(select(mod_settings).where(mod_settings.c.guild_id == guild_id)))
            .mappings()
            .first()
        )
        roles = {
            r["role_id"]: Limits(per_day=r["per_day"], per_hour=r["per_hour"])
            for r in (
                await conn.execute(
                    select(mod_role_limits).where(mod_role_limits.c.guild_id == guild_id)
                )
            ).mappings()
        }
        return _policy(guild_id, row, roles)

    async def save_policy(self, policy: Policy) -> None:
        """Write the server's settings and role limits."""
        for attempt in range(_ATTEMPTS):
            try:
                async with self._begin(serial=True) as conn:
                    values = _settings_values(policy)
                    result = await conn.execute(
                        update(mod_settings)
                        .where(mod_settings.c.guild_id == policy.guild_id)
                        .values(**values)
                    )
                    if result.rowcount == 0:
                        await conn.execute(
                            insert(mod_settings).values(
                                guild_id=policy.guild_id, serial=0, **values
                            )
                        )
                    await conn.execute(
                        delete(mod_role_limits).where(mod_role_limits.c.guild_id == policy.guild_id)
                    )
                    if policy.role_limits:
                        await conn.execute(
                            insert(mod_role_limits),
                            [
                                {
                                    "guild_id": policy.guild_id,
                                    "role_id": role_id,
                                    "per_day": limits.per_day,
                                    "per_hour": limits.per_hour,
                                }
                                for role_id, limits in policy.role_limits.items()
                            ],
                        )
                return
            except IntegrityError:
                if attempt == _ATTEMPTS - 1:
                    raise StorageError("settings kept colliding with another writer") from None

    async def _lock_server(self, conn: AsyncConnection, guild_id: int) -> None:
        """Take the server's reservation lock (creating its settings row if needed)."""
        result = await conn.execute(
            update(mod_settings)
            .where(mod_settings.c.guild_id == guild_id)
            .values(serial=mod_settings.c.serial + 1)
        )
        if result.rowcount == 0:
            # Raises IntegrityError when another process inserted it first: the caller retries.
            await conn.execute(
                insert(mod_settings).values(
                    guild_id=guild_id, serial=1, **_settings_values(Policy(guild_id))
                )
            )

    # --- bans ------------------------------------------------------------------------------

    async def active_ban(self, guild_id: int, user_id: int, now: datetime) -> Ban | None:
        """The member's ban in force now, if any."""
        async with self._begin() as conn:
            return await self._active_ban(conn, guild_id, user_id, now)

    async def _active_ban(
        self, conn: AsyncConnection, guild_id: int, user_id: int, now: datetime
    ) -> Ban | None:
        row = (
            (
                await conn.execute(
                    select(mod_bans)
                    .where(
                        mod_bans.c.guild_id == guild_id,
                        mod_bans.c.user_id == user_id,
                        _ban_in_force(now),
                    )
                    .order_by(mod_bans.c.id.desc())
                    .limit(1)
                )
            )
            .mappings()
            .first()
        )
        return None if row is None else _ban(row)

    async def add_ban(self, ban: Ban) -> None:
        """Ban a member, replacing a ban in force."""
        async with self._begin() as conn:
            await self._add_ban(conn, ban)

    async def _add_ban(self, conn: AsyncConnection, ban: Ban) -> None:
        await conn.execute(
            update(mod_bans)
            .where(
                mod_bans.c.guild_id == ban.guild_id,
                mod_bans.c.user_id == ban.user_id,
                _ban_in_force(ban.at),
            )
            .values(lifted_at=ban.at)
        )
        await conn.execute(
            insert(mod_bans).values(
                guild_id=ban.guild_id,
                user_id=ban.user_id,
                reason=ban.reason,
                by_id=ban.by,
                at=ban.at,
                until=ban.until,
            )
        )

    async def lift_ban(self, guild_id: int, user_id: int, now: datetime) -> bool:
        """End the member's ban in force; False when there was none."""
        async with self._begin() as conn:
            result = await conn.execute(
                update(mod_bans)
                .where(
                    mod_bans.c.guild_id == guild_id,
                    mod_bans.c.user_id == user_id,
                    _ban_in_force(now),
                )
                .values(lifted_at=now)
            )
            return result.rowcount > 0

    async def bans(self, guild_id: int, now: datetime) -> list[Ban]:
        """Bans in force, newest first."""
        async with self._begin() as conn:
            rows = (
                await conn.execute(
                    select(mod_bans)
                    .where(mod_bans.c.guild_id == guild_id, _ban_in_force(now))
                    .order_by(mod_bans.c.id.desc())
                )
            ).mappings()
            return [_ban(r) for r in rows]

    # --- terms -----------------------------------------------------------------------------

    async def terms(self, guild_id: int) -> list[Term]:
        """The server's banned terms, in the order they were added."""
        async with self._begin() as conn:
            rows = await conn.execute(
                select(mod_terms.c.kind, mod_terms.c.text)
                .where(mod_terms.c.guild_id == guild_id)
                .order_by(mod_terms.c.id)
            )
            return [Term(TermKind(kind), text) for kind, text in rows]

    async def add_term(self, guild_id: int, term: Term, by: int, now: datetime) -> bool:
        """Add a banned term; False when it was there already."""
        try:
            async with self._begin() as conn:
                await conn.execute(
                    insert(mod_terms).values(
                        guild_id=guild_id, kind=term.kind.value, text=term.text, by_id=by, at=now
                    )
                )
        except IntegrityError:
            return False
        return True

    async def remove_term(self, guild_id: int, text: str) -> bool:
        """Remove a banned term (word or pattern) by its text; False when absent."""
        async with self._begin() as conn:
            result = await conn.execute(
                delete(mod_terms).where(mod_terms.c.guild_id == guild_id, mod_terms.c.text == text)
            )
            return result.rowcount > 0

    # --- the usage ledger ------------------------------------------------------------------

    async def usage(self, guild_id: int, user_id: int, now: datetime) -> Usage:
        """The member's and the server's recent use (no reservation)."""
        async with self._begin() as conn:
            return await self._usage(conn, guild_id, user_id, now)

    async def _usage(
        self, conn: AsyncConnection, guild_id: int, user_id: int, now: datetime
    ) -> Usage:
        u = mod_usage.c
        recent = and_(u.guild_id == guild_id, u.at > now - DAY)
        mine = and_(recent, u.user_id == user_id)
        member_times = (
            await conn.execute(select(u.at).where(mine, u.charge == Charge.QUOTA.value))
        ).scalars()
        last_at = (
            await conn.execute(
                select(func.max(u.at)).where(u.guild_id == guild_id, u.user_id == user_id)
            )
        ).scalar()
        pending = and_(u.outcome == Outcome.PENDING.value, u.at > now - _IN_FLIGHT_HORIZON)
        member_in_flight = (
            await conn.execute(
                select(func.count()).where(u.guild_id == guild_id, u.user_id == user_id, pending)
            )
        ).scalar_one()
        server_times = (
            await conn.execute(select(u.at).where(recent, u.charge != Charge.REFUNDED.value))
        ).scalars()
        server_in_flight = (
            await conn.execute(select(func.count()).where(u.guild_id == guild_id, pending))
        ).scalar_one()
        credits = (
            await conn.execute(
                select(mod_credits.c.credits).where(
                    mod_credits.c.guild_id == guild_id, mod_credits.c.user_id == user_id
                )
            )
        ).scalar()
        return Usage(
            member_times=tuple(member_times),
            last_at=_aware(last_at),
            member_in_flight=member_in_flight,
            server_times=tuple(server_times),
            server_in_flight=server_in_flight,
            credits=credits or 0,
        )

    async def reserve(
        self, reservation: Reservation, decide: Callable[[Usage], Refusal | Charge]
    ) -> Refusal | Charge:
        """Decide and record one unit in a single transaction serialised per server.

        Reserving again for the same job returns the charge already recorded.
        """
        r = reservation
        for attempt in range(_ATTEMPTS):
            try:
                async with self._begin(serial=True) as conn:
                    await self._lock_server(conn, r.guild_id)
                    existing = (
                        await conn.execute(
                            select(mod_usage.c.charge).where(mod_usage.c.job_id == r.job_id)
                        )
                    ).scalar()
                    if existing is not None:
                        return Charge(existing)
                    decision = decide(await self._usage(conn, r.guild_id, r.user_id, r.at))
                    if isinstance(decision, Refusal):
                        return decision
                    await conn.execute(
                        insert(mod_usage).values(
                            guild_id=r.guild_id,
                            user_id=r.user_id,
                            channel_id=r.channel_id,
                            job_id=r.job_id,
                            at=r.at,
                            charge=decision.value,
                            outcome=Outcome.PENDING.value,
                        )
                    )
                    if decision is Charge.BONUS:
                        await self._add_credits(conn, r.guild_id, r.user_id, -1)
                    return decision
            except IntegrityError:
                # Another process created the server's settings row at the same moment.
                if attempt == _ATTEMPTS - 1:
                    raise StorageError("quota reservation kept colliding") from None
        raise AssertionError("unreachable")

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
        """Record a reserved job's outcome once, with its refund, strike and ban."""
        u = mod_usage.c
        async with self._begin(serial=True) as conn:
            row = (
                (
                    await conn.execute(
                        update(mod_usage)
                        .where(u.job_id == job_id, u.settled_at.is_(None))
                        .values(outcome=outcome.value, settled_at=now)
                        .returning(u.guild_id, u.user_id, u.charge)
                    )
                )
                .mappings()
                .first()
            )
            if row is None:
                return None
            guild_id, user_id, charge = row["guild_id"], row["user_id"], Charge(row["charge"])
            refunded = refund and charge is not Charge.REFUNDED
            if refunded:
                await self._refund(conn, job_id, charge, guild_id, user_id)
            ban = None
            if strike is not None:
                await conn.execute(
                    insert(mod_strikes).values(
                        guild_id=guild_id,
                        user_id=user_id,
                        job_id=job_id,
                        reason=strike.reason,
                        at=strike.at,
                    )
                )
                times = (
                    await conn.execute(
                        select(mod_strikes.c.at)
                        .where(mod_strikes.c.guild_id == guild_id, mod_strikes.c.user_id == user_id)
                        .order_by(mod_strikes.c.at.desc())
                        .limit(_STRIKE_HISTORY)
                    )
                ).scalars()
                ban = auto_ban([_aware(t) or now for t in times])
                if ban is not None:
                    current = await self._active_ban(conn, guild_id, user_id, now)
                    if current is not None and (
                        current.until is None or (ban.until and current.until >= ban.until)
                    ):
                        ban = None  # a longer ban is already in force
                    else:
                        await self._add_ban(conn, ban)
            return Settled(
                guild_id=guild_id,
                user_id=user_id,
                job_id=job_id,
                outcome=outcome,
                refunded=refunded,
                strike=strike is not None,
                ban=ban,
            )

    async def _refund(
        self, conn: AsyncConnection, job_id: int, charge: Charge, guild_id: int, user_id: int
    ) -> None:
        await conn.execute(
            update(mod_usage)
            .where(mod_usage.c.job_id == job_id)
            .values(charge=Charge.REFUNDED.value)
        )
        if charge is Charge.BONUS:
            await self._add_credits(conn, guild_id, user_id, 1)

    async def refund(self, job_id: int) -> bool:
        """Refund a job's unit; False when there was nothing to refund."""
        async with self._begin(serial=True) as conn:
            row = (
                (
                    await conn.execute(
                        select(mod_usage.c.guild_id, mod_usage.c.user_id, mod_usage.c.charge).where(
                            mod_usage.c.job_id == job_id
                        )
                    )
                )
                .mappings()
                .first()
            )
            if row is None or row["charge"] == Charge.REFUNDED.value:
                return False
            await self._refund(conn, job_id, Charge(row["charge"]), row["guild_id"], row["user_id"])
            return True

    async def _add_credits(
        self, conn: AsyncConnection, guild_id: int, user_id: int, units: int
    ) -> int:
        c = mod_credits.c
        result = await conn.execute(
            update(mod_credits)
            .where(c.guild_id == guild_id, c.user_id == user_id)
            .values(credits=c.credits + units)
            .returning(c.credits)
        )
        now_credits = result.scalar()
        if now_credits is None:
            await conn.execute(
                insert(mod_credits).values(
                    guild_id=guild_id, user_id=user_id, credits=max(units, 0)
                )
            )
            return max(units, 0)
        return int(now_credits)

    async def grant(self, guild_id: int, user_id: int, units: int) -> int:
        """Give the member extra units; returns their credits now."""
        for attempt in range(_ATTEMPTS):
            try:
                async with self._begin(serial=True) as conn:
                    return await self._add_credits(conn, guild_id, user_id, units)
            except IntegrityError:
                if attempt == _ATTEMPTS - 1:
                    raise StorageError("granting kept colliding") from None
        raise AssertionError("unreachable")

    async def reset(self, guild_id: int, user_id: int, now: datetime) -> int:
        """Forget the member's use of their quota in the last day; returns how many units."""
        u = mod_usage.c
        async with self._begin(serial=True) as conn:
            result = await conn.execute(
                update(mod_usage)
                .where(
                    u.guild_id == guild_id,
                    u.user_id == user_id,
                    u.charge == Charge.QUOTA.value,
                    u.at > now - DAY,
                )
                .values(charge=Charge.RESET.value)
            )
            return int(result.rowcount)

    # --- strikes ---------------------------------------------------------------------------

    async def strikes(self, guild_id: int, user_id: int, since: datetime) -> list[Strike]:
        """The member's strikes since a time, oldest first."""
        s = mod_strikes.c
        async with self._begin() as conn:
            rows = (
                await conn.execute(
                    select(mod_strikes)
                    .where(s.guild_id == guild_id, s.user_id == user_id, s.at > since)
                    .order_by(s.at)
                )
            ).mappings()
            return [
                Strike(
                    guild_id=r["guild_id"],
                    user_id=r["user_id"],
                    at=r["at"],
                    reason=r["reason"],
                    job_id=r["job_id"] or 0,
                )
                for r in rows
            ]

    async def add_strike(self, strike: Strike) -> None:
        """Record a strike that did not come from a reserved job."""
        async with self._begin() as conn:
            await conn.execute(
                insert(mod_strikes).values(
                    guild_id=strike.guild_id,
                    user_id=strike.user_id,
                    job_id=strike.job_id or None,
                    reason=strike.reason,
                    at=strike.at,
                )
            )

    # --- the audit log and reports ---------------------------------------------------------

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


def _aware(value: datetime | None) -> datetime | None:
    """Aggregates (max) bypass the column type on SQLite and may come back naive or as text."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
