"""What the /mod commands share: the command groups (declared once, attached to the moderation
cog), the moderator's private answer, the target of a command as the moderator rule sees it,
and the base the command mixins build on."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.core.messages import Message
from bot.core.moderation import service
from bot.core.moderation.service import ModerationService
from bot.core.ports import Ticket
from bot.discord_ui.i18n.render import render
from bot.discord_ui.i18n.where import member_locale
from bot.discord_ui.options import MODE_CHOICES
from bot.discord_ui.tree import tell

__all__ = [
    "CHANNELS",
    "LIMITS",
    "MOD",
    "MODE_CHOICES",
    "TERMS",
    "Health",
    "ModBase",
    "NotModerator",
    "rendered",
    "say",
    "target_of",
]

#: The bot's health check (`/healthz`'s booleans and figures), shown by /mod status.
Health = Callable[[], Awaitable[dict[str, Any]]]

MOD = app_commands.Group(
    name="mod",
    description="Moderate image generation in this server",
    # Hidden from members without Manage Server; checked again when run (interaction_check).
    default_permissions=discord.Permissions(manage_guild=True),
    guild_only=True,
)
LIMITS = app_commands.Group(
    name="limits", description="Quotas, cooldown and in-flight caps", parent=MOD
)
TERMS = app_commands.Group(name="terms", description="Banned words and patterns", parent=MOD)
CHANNELS = app_commands.Group(
    name="channels", description="Channels where images may be made", parent=MOD
)


class NotModerator(service.NotModerator, app_commands.CheckFailure):
    """A member without Manage Server or the moderator role ran a /mod command (a CheckFailure,
    so discord.py stops there; a Refused, so the member reads the sentence)."""


def target_of(user: discord.Member | discord.User) -> Ticket:
    """What the moderator rule needs to know about the member a command is aimed at."""
    if isinstance(user, discord.Member):
        return Ticket(
            guild_id=user.guild.id,
            channel_id=0,
            user_id=user.id,
            role_ids=tuple(r.id for r in user.roles),
            manage_guild=user.guild_permissions.manage_guild,
        )
    return Ticket(guild_id=0, channel_id=0, user_id=user.id)


#: Discord's limit on a message's content.
MAX_CONTENT = 2000


def rendered(lines: Message | Sequence[Message], locale: str) -> str:
    """One message, or several as lines, as Discord text in `locale`, within Discord's limit:
    a long list (the bans, the banned terms) ends with the last whole line that fits."""
    messages = [lines] if isinstance(lines, Message) else list(lines)
    kept: list[str] = []
    size = -1  # the first line has no line break before it
    for line in messages:
        text = render(line, locale)
        if kept and size + 1 + len(text) > MAX_CONTENT:
            break
        kept.append(text)
        size += 1 + len(text)
    return "\n".join(kept)[:MAX_CONTENT]


async def say(interaction: discord.Interaction[Any], lines: Message | Sequence[Message]) -> None:
    """A moderator's (or member's) private answer in their own language, mentions disabled."""
    await tell(interaction, rendered(lines, member_locale(interaction)))


class ModBase(commands.Cog):
    """What every /mod command mixin reads from the cog."""

    bot: commands.Bot | commands.AutoShardedBot
    mods: ModerationService
    health: Health | None

    def _bot_id(self) -> int:
        return self.bot.user.id if self.bot.user else 0
