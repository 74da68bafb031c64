"""Which locale a message is written in: the member's for what only they see, the server's for
what the whole channel sees (Discord sends both with every interaction; a server's is its
"preferred locale", which Community servers choose and others leave at en-US).

The server's locale has one home, `server_locale`: a language the server's moderators chose
with `/mod language` comes first (the bot holds every server's choice in memory, see
`bot.core.moderation.languages`), then Discord's server setting.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import discord

from bot.core.moderation.languages import ServerLanguages

DEFAULT_LOCALE = "en-US"


@runtime_checkable
class ChoosesLanguages(Protocol):
    """A client that knows each server's chosen language (the bot, `MjcordBot.languages`)."""

    languages: ServerLanguages


def server_locale(client: discord.Client, guild_id: int) -> str:
    """The locale of what the whole channel sees in a server: its moderators' choice, else the
    server's preferred locale from the bot's cache, else English."""
    if isinstance(client, ChoosesLanguages):
        chosen = client.languages.chosen(guild_id)
        if chosen:
            return chosen
    guild = client.get_guild(guild_id)
    return guild.preferred_locale.value if guild is not None else DEFAULT_LOCALE


def member_locale(interaction: discord.Interaction[Any]) -> str:
    """The locale of what only the interaction's member sees: their client's language."""
    return interaction.locale.value
