"""The language each server chose for what the whole channel reads (`/mod language`), held in
memory so the Discord layer can look it up while it renders, without a database call.

The one home of that choice at run time: the gate remembers it from every policy it reads (so a
change made in another process arrives with the next job of that server), the moderator service
when a moderator changes it, and the bot loads every server's choice when it starts and again
every minute (another process's change then reaches this one's status messages and finish posts
even for a server it has no new job from).
"""

from __future__ import annotations

from collections.abc import Mapping

from bot.core.moderation.policy import Policy


class ServerLanguages:
    """Each server's chosen public language; "" (the default) means Discord's server setting."""

    def __init__(self) -> None:
        self._chosen: dict[int, str] = {}

    def chosen(self, guild_id: int) -> str:
        """The server's chosen locale, or "" when it follows Discord's setting."""
        return self._chosen.get(guild_id, "")

    def remember(self, policy: Policy) -> None:
        """Note the language of a policy just read or saved."""
        if policy.language:
            self._chosen[policy.guild_id] = policy.language
        else:
            self._chosen.pop(policy.guild_id, None)

    def load(self, chosen: Mapping[int, str]) -> None:
        """Every server's choice, as stored: replaces what was held (a server missing from
        `chosen` follows Discord's setting again)."""
        self._chosen = {guild_id: locale for guild_id, locale in chosen.items() if locale}
