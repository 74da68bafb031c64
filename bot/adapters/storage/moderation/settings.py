"""A server's settings and role limits (`mod_settings`, `mod_role_limits`), and the per-server
lock reservations take on the settings row."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.adapters.storage.moderation.base import Store
from bot.adapters.storage.schema import mod_role_limits, mod_settings
from bot.core.jobs import Mode
from bot.core.moderation import Limits, Policy


def settings_values(policy: Policy) -> dict[str, Any]:
    """The settings row's columns for a policy."""
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
        "language": policy.language,
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
        language=row["language"],
    )


async def read_policy(conn: AsyncConnection, guild_id: int) -> Policy:
    """The server's settings inside a transaction."""
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


async def lock_server(conn: AsyncConnection, guild_id: int) -> None:
    """Take the server's reservation lock (creating its settings row if needed).

    Bumping `serial` takes that row's lock on PostgreSQL and the write lock on SQLite (BEGIN
    IMMEDIATE). Raises IntegrityError when another process inserted the row first: the caller
    retries.
    """
    result = await conn.execute(
        update(mod_settings)
        .where(mod_settings.c.guild_id == guild_id)
        .values(serial=mod_settings.c.serial + 1)
    )
    if result.rowcount == 0:
        await conn.execute(
            insert(mod_settings).values(
                guild_id=guild_id, serial=1, **settings_values(Policy(guild_id))
            )
        )


class SettingsStore(Store):
    """Settings and role limits."""

    async def policy(self, guild_id: int) -> Policy:
        """The server's settings (defaults when it has none)."""
        async with self._begin() as conn:
            return await read_policy(conn, guild_id)

    async def languages(self) -> dict[int, str]:
        """Every server's chosen public language, where one is set."""
        async with self._begin() as conn:
            rows = await conn.execute(
                select(mod_settings.c.guild_id, mod_settings.c.language).where(
                    mod_settings.c.language != ""
                )
            )
            return {int(guild_id): str(language) for guild_id, language in rows}

    async def save_policy(self, policy: Policy) -> None:
        """Write the server's settings and role limits."""

        async def write(conn: AsyncConnection) -> None:
            values = settings_values(policy)
            result = await conn.execute(
                update(mod_settings)
                .where(mod_settings.c.guild_id == policy.guild_id)
                .values(**values)
            )
            if result.rowcount == 0:
                await conn.execute(
                    insert(mod_settings).values(guild_id=policy.guild_id, serial=0, **values)
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

        await self._retrying("saving the settings", write)
