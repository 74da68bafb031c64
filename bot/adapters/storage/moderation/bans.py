"""Bans (`mod_bans`) and banned terms (`mod_terms`)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.adapters.storage.moderation.base import Store
from bot.adapters.storage.schema import mod_bans, mod_terms
from bot.core.moderation import Ban, Term, TermKind


def _ban(row: Mapping[Any, Any]) -> Ban:
    return Ban(
        guild_id=row["guild_id"],
        user_id=row["user_id"],
        reason=row["reason"],
        at=row["at"],
        until=row["until"],
        by=row["by_id"],
    )


def _in_force(now: datetime) -> Any:
    return and_(
        mod_bans.c.lifted_at.is_(None), or_(mod_bans.c.until.is_(None), mod_bans.c.until > now)
    )


async def read_active_ban(
    conn: AsyncConnection, guild_id: int, user_id: int, now: datetime
) -> Ban | None:
    """The member's ban in force inside a transaction."""
    row = (
        (
            await conn.execute(
                select(mod_bans)
                .where(
                    mod_bans.c.guild_id == guild_id, mod_bans.c.user_id == user_id, _in_force(now)
                )
                .order_by(mod_bans.c.id.desc())
                .limit(1)
            )
        )
        .mappings()
        .first()
    )
    return None if row is None else _ban(row)


async def write_ban(conn: AsyncConnection, ban: Ban) -> None:
    """Ban a member inside a transaction, lifting the ban in force."""
    await conn.execute(
        update(mod_bans)
        .where(
            mod_bans.c.guild_id == ban.guild_id,
            mod_bans.c.user_id == ban.user_id,
            _in_force(ban.at),
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


class BanStore(Store):
    """Bans and banned terms."""

    async def active_ban(self, guild_id: int, user_id: int, now: datetime) -> Ban | None:
        """The member's ban in force now, if any."""
        async with self._begin() as conn:
            return await read_active_ban(conn, guild_id, user_id, now)

    async def add_ban(self, ban: Ban) -> None:
        """Ban a member, replacing a ban in force."""
        async with self._begin() as conn:
            await write_ban(conn, ban)

    async def lift_ban(self, guild_id: int, user_id: int, now: datetime) -> bool:
        """End the member's ban in force; False when there was none."""
        async with self._begin() as conn:
            result = await conn.execute(
                update(mod_bans)
                .where(
                    mod_bans.c.guild_id == guild_id,
                    mod_bans.c.user_id == user_id,
                    _in_force(now),
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
                    .where(mod_bans.c.guild_id == guild_id, _in_force(now))
                    .order_by(mod_bans.c.id.desc())
                )
            ).mappings()
            return [_ban(r) for r in rows]

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
