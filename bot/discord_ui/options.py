"""Option declarations several commands share, declared once."""

from __future__ import annotations

from discord import app_commands

from bot.core.jobs import Mode

#: The `mode` option's choices: display names "Midjourney" and "Niji", values the API's botType.
MODE_CHOICES = [app_commands.Choice(name=mode.label, value=mode.value) for mode in Mode]
