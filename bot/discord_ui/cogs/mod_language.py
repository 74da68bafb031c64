"""/mod language: the language of what the whole channel reads in this server (the public reply,
the status message, the finish post, the log channel), or Discord's server setting.

What only one member sees stays in that member's own language whatever is chosen here.
"""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands

from bot.core.messages import msg
from bot.core.moderation import settings as change
from bot.discord_ui.cogs.mod_common import MOD, ModBase, say
from bot.discord_ui.jobflow import ticket_for

#: The choice that clears the setting (Discord's choice values may not be empty).
SERVER_SETTING = "discord"

#: Each language by its own name (how a reader finds theirs in a list), by Discord locale.
NAMES: dict[str, str] = {
    "en-US": "English",
    "ja": "日本語",
    "zh-CN": "简体中文",
    "zh-TW": "繁體中文",
    "ko": "한국어",
    "es-ES": "Español",
    "pt-BR": "Português do Brasil",
    "fr": "Français",
    "de": "Deutsch",
    "ru": "Русский",
}

LANGUAGE_CHOICES = [
    *(app_commands.Choice(name=NAMES[locale], value=locale) for locale in change.LANGUAGES),
    app_commands.Choice(name="Discord's server setting", value=SERVER_SETTING),
]


class LanguageCommands(ModBase):
    """The command that sets the server's public language."""

    @MOD.command(name="language")
    @app_commands.describe(
        language="The language of replies, statuses, finished images and the log channel"
    )
    @app_commands.choices(language=LANGUAGE_CHOICES)
    async def language(
        self, interaction: discord.Interaction[Any], language: app_commands.Choice[str]
    ) -> None:
        """Set the language of what the whole channel reads here."""
        # discord.py's Choice transformer has refused a value outside the choices already;
        # the service checks the locale again.
        locale = "" if language.value == SERVER_SETTING else language.value
        await self.mods.change(ticket_for(interaction), "language", change.language(locale))
        if locale:
            await say(
                interaction,
                msg(
                    "Replies, statuses, finished images and the log channel are now in {language}.",
                    language=NAMES[locale],
                ),
            )
        else:
            await say(
                interaction,
                msg(
                    "Replies, statuses, finished images and the log channel now follow the "
                    "server's language in Discord's settings."
                ),
            )
