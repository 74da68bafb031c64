"""The restart-proof buttons moderators and members press: the log channel's quick actions
(ban requester, refund, delete result) and 🚩 Report under a result.

Custom ids carry what a press needs (`mjmod:<action>:<job>:<user>`, `mjreport:<job>`), in the
one bounded custom-id grammar of `bot.core.followups`; the rest is read from the database when
pressed. A press finds
the moderation cog with `client.get_cog` (discord.py's registry of loaded cogs), so nothing is
stored on the bot.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Protocol, runtime_checkable

import discord
from discord.ext import commands

from bot.core.followups import MOD_LOG_TEMPLATE, REPORT_TEMPLATE
from bot.core.jobs import Job
from bot.core.messages import Message, msg
from bot.core.moderation import AuditEntry, AuditKind
from bot.core.moderation.service import Deletion, LogAction
from bot.discord_ui.i18n.render import render
from bot.discord_ui.i18n.where import DEFAULT_LOCALE, member_locale

log = logging.getLogger(__name__)

#: The moderation cog's name (`commands.Cog` is registered under it; see `get_cog`).
MODERATION_COG = "Moderation"


@runtime_checkable
class ModerationHandler(Protocol):
    """Whoever handles presses of the moderation buttons (the moderation cog)."""

    async def on_log_button(
        self, interaction: discord.Interaction[Any], action: LogAction, job_id: int, user_id: int
    ) -> None:
        """Ban the requester, refund, or delete the result of a log entry."""
        ...

    async def on_report(self, interaction: discord.Interaction[Any], job_id: int) -> None:
        """A member pressed 🚩 Report on a result."""
        ...


async def _handler(interaction: discord.Interaction[Any]) -> ModerationHandler | None:
    client = interaction.client
    bots = commands.Bot | commands.AutoShardedBot
    cog = client.get_cog(MODERATION_COG) if isinstance(client, bots) else None
    if isinstance(cog, ModerationHandler):
        return cog
    await interaction.response.send_message(
        render(msg("Moderation is not available right now."), member_locale(interaction)),
        ephemeral=True,
    )
    return None


_LABELS: dict[LogAction, tuple[Message, str]] = {
    LogAction.BAN: (msg("Ban requester"), "🔨"),
    LogAction.REFUND: (msg("Refund"), "↩️"),
    LogAction.DELETE: (msg("Delete result"), "🗑️"),
}
#: 🚩 Report's label.
REPORT = msg("Report")


class ModLogButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=MOD_LOG_TEMPLATE,
):
    """A quick action under a log-channel entry; only moderators may press it. Its label is in
    `locale` (the log channel's: the server's); a press rebuilt from its custom id needs none."""

    def __init__(
        self, action: LogAction, job_id: int, user_id: int, locale: str = DEFAULT_LOCALE
    ) -> None:
        label, emoji = _LABELS[action]
        super().__init__(
            discord.ui.Button(
                label=render(label, locale),
                emoji=emoji,
                style=discord.ButtonStyle.danger
                if action is LogAction.BAN
                else discord.ButtonStyle.secondary,
                custom_id=f"mjmod:{action.value}:{job_id}:{user_id}",
            )
        )
        self.action, self.job_id, self.user_id = action, job_id, user_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> ModLogButton:
        """Rebuild the button from its custom id (after a restart too)."""
        return cls(LogAction(match["action"]), int(match["job"]), int(match["user"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        """Hand the press to the moderation cog."""
        handler = await _handler(interaction)
        if handler is not None:
            await handler.on_log_button(interaction, self.action, self.job_id, self.user_id)


class ReportButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=REPORT_TEMPLATE):
    """🚩 Report under a result: any member may tell the moderators about it (labelled in
    `locale`, the server's: the whole channel sees it)."""

    def __init__(self, job_id: int, locale: str = DEFAULT_LOCALE) -> None:
        super().__init__(
            discord.ui.Button(
                label=render(REPORT, locale),
                emoji="🚩",
                style=discord.ButtonStyle.secondary,
                custom_id=f"mjreport:{job_id}",
            )
        )
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> ReportButton:
        """Rebuild the button from its custom id (after a restart too)."""
        return cls(int(match["job"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        """Hand the report to the moderation cog."""
        handler = await _handler(interaction)
        if handler is not None:
            await handler.on_report(interaction, self.job_id)


def entry_view(
    entry: AuditEntry, job: Job | None, locale: str = DEFAULT_LOCALE
) -> discord.ui.View | None:
    """Quick actions under a log entry: ban the requester, refund, delete the result."""
    user = entry.target_id
    if not user or entry.kind is AuditKind.MOD_ACTION:
        return None
    job_id = job.id if job else entry.job_id
    view = discord.ui.View(timeout=None)
    view.add_item(ModLogButton(LogAction.BAN, job_id, user, locale))
    if job_id:
        view.add_item(ModLogButton(LogAction.REFUND, job_id, user, locale))
        view.add_item(ModLogButton(LogAction.DELETE, job_id, user, locale))
    return view


class DiscordResults:
    """`ResultMessages` on Discord: deletes a posted result message."""

    def __init__(self, client: discord.Client) -> None:
        self.client = client

    async def delete(self, guild_id: int, channel_id: int, message_id: int) -> Deletion:
        """Delete one message; GONE when Discord says it no longer exists."""
        channel = self.client.get_partial_messageable(channel_id, guild_id=guild_id)
        try:
            await channel.get_partial_message(message_id).delete()
        except discord.NotFound:
            return Deletion.GONE
        except discord.HTTPException as exc:
            log.warning("could not delete message %s in %s: %s", message_id, channel_id, exc)
            return Deletion.FAILED
        return Deletion.DELETED
