"""Which bot renders a job: the one rule for /imagine, /describe and /blend alike."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bot.core.jobs import Mode

#: The server's default mode (what a moderator set with /mod mode), by guild id.
ServerDefault = Callable[[int], Awaitable[Mode]]


async def mode_for(
    chosen: str | None, guild_id: int | None, server_default: ServerDefault | None
) -> Mode:
    """The member's choice when they made one; else the server's default; else Midjourney.

    `chosen` is the option's value (already checked against the declared choices at the edge).
    """
    if chosen:
        return Mode(chosen)
    if guild_id and server_default is not None:
        return await server_default(guild_id)
    return Mode.MID_JOURNEY
