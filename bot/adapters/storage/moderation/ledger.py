"""The usage ledger (`mod_usage`), moderators' extra images (`mod_credits`) and strikes
(`mod_strikes`): reserving a unit, settling a job once, refunds, grants and resets.

The two operations that must hold across processes are `reserve` (two commands at the same
instant cannot both take a member's last unit) and `settle` (a job is refunded and struck at
most once). `reserve` first takes the server's lock on its settings row, so reservations for
one server run one at a time, each seeing every unit reserved before it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.adapters.storage.moderation.bans import read_active_ban, write_ban
from bot.adapters.storage.moderation.base import Store, aware
from bot.adapters.storage.moderation.settings import lock_server
from bot.adapters.storage.schema import mod_credits, mod_strikes, mod_usage
from bot.core.moderation import (
    DAY,
    Ban,
    Charge,
    Outcome,
    Refusal,
    Reservation,
    Settled,
    Strike,
    Usage,
)

#: How many of a member's latest strikes `settle` hands to the auto-ban rule.
_STRIKE_HISTORY = 100
#: A unit still pending after this long no longer counts as in flight (its job was lost).
_IN_FLIGHT_HORIZON = DAY


async def _usage(conn: AsyncConnection, guild_id: int, user_id: int, now: datetime) -> Usage:
    u = mod_usage.c
    recent = and_(u.guild_id == guild_id, u.at > now - DAY)
    mine = and_(recent, u.user_id == user_id)
    made = (
        await conn.execute(select(u.at, u.charge).where(mine, u.charge != Charge.REFUNDED.value))
    ).all()
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
        member_times=tuple(at for at, charge in made if charge == Charge.QUOTA.value),
        last_at=aware(last_at),
        member_in_flight=member_in_flight,
        server_times=tuple(server_times),
        server_in_flight=server_in_flight,
        credits=credits or 0,
        made_times=tuple(at for at, _ in made),
    )


async def _add_credits(conn: AsyncConnection, guild_id: int, user_id: int, units: int) -> int:
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
            insert(mod_credits).values(guild_id=guild_id, user_id=user_id, credits=max(units, 0))
        )
        return max(units, 0)
    return int(now_credits)


async def _refund(
    conn: AsyncConnection, job_id: int, charge: Charge, guild_id: int, user_id: int
) -> None:
    await conn.execute(
        update(mod_usage).where(mod_usage.c.job_id == job_id).values(charge=Charge.REFUNDED.value)
    )
    if charge is Charge.BONUS:
        await _add_credits(conn, guild_id, user_id, 1)


async def _strike(
    conn: AsyncConnection,
    strike: Strike,
    guild_id: int,
    user_id: int,
    job_id: int,
    now: datetime,
    auto_ban: Callable[[Sequence[datetime]], Ban | None],
) -> Ban | None:
    """Record the strike; ban the member when `auto_ban` says so and no longer ban holds."""
    s = mod_strikes.c
    await conn.execute(
        insert(mod_strikes).values(
            guild_id=guild_id, user_id=user_id, job_id=job_id, reason=strike.reason, at=strike.at
        )
    )
    times = (
        await conn.execute(
            select(s.at)
            .where(s.guild_id == guild_id, s.user_id == user_id)
            .order_by(s.at.desc())
            .limit(_STRIKE_HISTORY)
        )
    ).scalars()
    ban = auto_ban([aware(t) or now for t in times])
    if ban is None:
        return None
    current = await read_active_ban(conn, guild_id, user_id, now)
    if current is not None and (
        current.until is None or (ban.until and current.until >= ban.until)
    ):
        return None  # a longer ban is already in force
    await write_ban(conn, ban)
    return ban


class LedgerStore(Store):
    """Reservations, settlements, refunds, grants and resets."""

    async def usage(self, guild_id: int, user_id: int, now: datetime) -> Usage:
        """The member's and the server's recent use (no reservation)."""
        async with self._begin() as conn:
            return await _usage(conn, guild_id, user_id, now)

    async def reserve(
        self, reservation: Reservation, decide: Callable[[Usage], Refusal | Charge]
    ) -> Refusal | Charge:
        """Decide and record one unit in a single transaction serialised per server.

        Reserving again for the same job returns the charge already recorded.
        """
        r = reservation

        async def body(conn: AsyncConnection) -> Refusal | Charge:
            await lock_server(conn, r.guild_id)
            existing = (
                await conn.execute(select(mod_usage.c.charge).where(mod_usage.c.job_id == r.job_id))
            ).scalar()
            if existing is not None:
                return Charge(existing)
            decision = decide(await _usage(conn, r.guild_id, r.user_id, r.at))
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
                await _add_credits(conn, r.guild_id, r.user_id, -1)
            return decision

        return await self._retrying("quota reservation", body)

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
                await _refund(conn, job_id, charge, guild_id, user_id)
            ban = None
            if strike is not None:
                ban = await _strike(conn, strike, guild_id, user_id, job_id, now, auto_ban)
            return Settled(
                guild_id=guild_id,
                user_id=user_id,
                job_id=job_id,
                outcome=outcome,
                refunded=refunded,
                strike=strike is not None,
                ban=ban,
            )

    async def refund(self, job_id: int) -> bool:
        """Refund a job's unit; False when there was nothing to refund."""
        u = mod_usage.c
        async with self._begin(serial=True) as conn:
            row = (
                (
                    await conn.execute(
                        select(u.guild_id, u.user_id, u.charge).where(u.job_id == job_id)
                    )
                )
                .mappings()
                .first()
            )
            if row is None or row["charge"] == Charge.REFUNDED.value:
                return False
            await _refund(conn, job_id, Charge(row["charge"]), row["guild_id"], row["user_id"])
            return True

    async def grant(self, guild_id: int, user_id: int, units: int) -> int:
        """Give the member extra units; returns their credits now."""

        async def body(conn: AsyncConnection) -> int:
            return await _add_credits(conn, guild_id, user_id, units)

        return await self._retrying("granting", body)

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
