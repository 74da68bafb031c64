"""mjcord in the member's language: gettext catalogues (read with Babel) and the translator
that localises slash-command names and descriptions when the command tree is synced.

Catalogues live in `bot/locales/<Discord locale>/LC_MESSAGES/<domain>.po`; English is the source
language, so an English string is its own fallback and a missing translation never breaks a
command. `python -m bot.discord_ui.i18n.extract` refreshes the template and every locale's file.
"""

from bot.discord_ui.i18n.catalog import LOCALES, Catalogues, load_catalogues
from bot.discord_ui.i18n.translator import CommandTranslator

__all__ = ["LOCALES", "Catalogues", "CommandTranslator", "load_catalogues"]
