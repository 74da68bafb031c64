"""What moderators see, split into `mod_embeds` (embeds and texts), `mod_chart` (the usage
chart) and `mod_buttons` (the restart-proof buttons); re-exported here so imports keep working."""

from bot.discord_ui.mod_buttons import (
    MODERATION_COG,
    DiscordResults,
    ModerationHandler,
    ModLogButton,
    ReportButton,
    entry_view,
)
from bot.discord_ui.mod_chart import daily_chart
from bot.discord_ui.mod_embeds import (
    bans_text,
    entry_embed,
    jump_url,
    report_embed,
    status_text,
    thread_parent,
)

__all__ = [
    "MODERATION_COG",
    "DiscordResults",
    "ModLogButton",
    "ModerationHandler",
    "ReportButton",
    "bans_text",
    "daily_chart",
    "entry_embed",
    "entry_view",
    "jump_url",
    "report_embed",
    "status_text",
    "thread_parent",
]
