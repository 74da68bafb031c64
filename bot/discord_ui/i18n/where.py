"""Which locale a message is written in: the member's for what only they see, the server's for
what the whole channel sees (Discord sends both with every interaction; a server's is its
"preferred locale", which Community servers choose and others leave at en-US)."""

from __future__ import annotations

import discord

DEFAULT_LOCALE = "en-US"


def server_locale(client: discord.Client, guild_id: int) -> str:
    """The server's locale, from the bot's cache (English when the server is not cached)."""
    guild = client.get_guild(guild_id)
    return guild.preferred_locale.value if guild is not None else DEFAULT_LOCALE
