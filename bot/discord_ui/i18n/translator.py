"""Slash-command names and descriptions in the member's language, through discord.py's
`app_commands.Translator` (called once per string and locale when the tree is synced; Discord
then shows each member the localisation for their client's language).

Command names stay English on purpose: /imagine, /describe and /blend are Midjourney's own names,
which members know and documentation uses, and /mod and /quota follow them. Option and choice
names, and every description, are localised. Discord sends the base (English) option names in
interactions whatever the member's language, so parsing is unaffected.
"""

from __future__ import annotations

import discord
from discord import app_commands

from bot.discord_ui.i18n.catalog import Catalogues, load_catalogues

#: The gettext domain of command strings, and the msgctxt for each kind of string.
DOMAIN = "commands"
CONTEXTS: dict[app_commands.TranslationContextLocation, str] = {
    app_commands.TranslationContextLocation.command_description: "description",
    app_commands.TranslationContextLocation.group_description: "description",
    app_commands.TranslationContextLocation.parameter_description: "description",
    app_commands.TranslationContextLocation.parameter_name: "option name",
    app_commands.TranslationContextLocation.choice_name: "choice",
}


class CommandTranslator(app_commands.Translator):
    """Looks command strings up in the `commands` catalogues; None keeps the English."""

    def __init__(self, catalogues: Catalogues | None = None) -> None:
        self.catalogues = catalogues or load_catalogues(DOMAIN)

    async def translate(
        self,
        string: app_commands.locale_str,
        locale: discord.Locale,
        context: app_commands.TranslationContextTypes,
    ) -> str | None:
        """The string in `locale`, or None for English, a command name, or no translation."""
        kind = CONTEXTS.get(context.location)
        if kind is None:
            return None
        return self.catalogues.lookup(locale.value, string.message, kind)
