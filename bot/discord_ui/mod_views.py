"""What moderators see: audit entries and usage reports as embeds, the daily-jobs chart, and the
restart-proof buttons of the log channel (ban requester, refund, delete result) and of results
(🚩 Report). Custom ids carry what a press needs (`mjmod:<action>:<job>:<user>`,
`mjreport:<job>`); the rest is read from the database when pressed.
"""

from __future__ import annotations

import io
import re
from datetime import date
from typing import Any, Protocol

import discord
from PIL import Image, ImageDraw

from bot.core.followups import MOD_LOG_TEMPLATE, REPORT_TEMPLATE
from bot.core.jobs import Job, Mode
from bot.core.moderation import AuditEntry, AuditKind, Ban, UsageReport, stamp
from bot.discord_ui.render import clean

#: The attribute of the bot that holds the moderation handler (set by the moderation cog).
HANDLER = "moderation_handler"

_TITLES = {
    AuditKind.SUBMISSION: ("🎨 Submission", discord.Colour.blurple()),
    AuditKind.REFUSAL: ("⛔ Refused", discord.Colour.orange()),
    AuditKind.STRIKE: ("⚠️ Strike", discord.Colour.red()),
    AuditKind.AUTO_BAN: ("🔨 Automatic ban", discord.Colour.dark_red()),
    AuditKind.MOD_ACTION: ("🛠️ Moderator action", discord.Colour.light_grey()),
    AuditKind.REPORT: ("🚩 Report", discord.Colour.gold()),
}


def thread_parent(client: discord.Client, channel_id: int) -> int:
    """The channel a thread belongs to (0 when `channel_id` is not a known thread)."""
    channel = client.get_channel(channel_id)
    return channel.parent_id or 0 if isinstance(channel, discord.Thread) else 0


def jump_url(guild_id: int, channel_id: int, message_id: int = 0) -> str:
    """A link that opens a channel (or a message in it) in Discord."""
    base = f"https://discord.com/channels/{guild_id}/{channel_id}"
    return f"{base}/{message_id}" if message_id else base


def entry_embed(entry: AuditEntry, job: Job | None = None) -> discord.Embed:
    """One audit entry for the log channel: prompt, mode, requester, task id, jump link."""
    title, colour = _TITLES[entry.kind]
    if entry.kind is AuditKind.MOD_ACTION:
        title = f"{title}: {entry.action}"
    embed = discord.Embed(title=title, colour=colour, timestamp=entry.at)
    prompt = entry.prompt or (job.prompt if job else "")
    if prompt:
        embed.description = clean(prompt, 1000)
    if entry.actor_id and entry.actor_id != entry.target_id:
        who = "Reported by" if entry.kind is AuditKind.REPORT else "By"
        embed.add_field(name=who, value=f"<@{entry.actor_id}>")
    if entry.target_id:
        name = "Member" if entry.kind is AuditKind.MOD_ACTION else "Requester"
        embed.add_field(name=name, value=f"<@{entry.target_id}>")
    mode = entry.mode or (job.mode.value if job else "")
    if mode:
        known = {m.value: m.label for m in Mode}
        embed.add_field(name="Mode", value=known.get(mode, mode))
    if job is not None:
        embed.add_field(name="Task ID", value=f"`{job.task_id}`" if job.task_id else "—")
        embed.add_field(name="Job", value=str(job.id))
    elif entry.job_id:
        embed.add_field(name="Job", value=str(entry.job_id))
    if entry.kind is AuditKind.REFUSAL:
        embed.add_field(name="Rule", value=entry.action or "—")
    if entry.detail:
        embed.add_field(name="Detail", value=clean(entry.detail, 1000), inline=False)
    link = _link(entry, job)
    if link:
        embed.add_field(name="Jump", value=f"[Open in Discord]({link})", inline=False)
    return embed


def _link(entry: AuditEntry, job: Job | None) -> str:
    if job is not None:
        route = job.route
        if entry.kind is AuditKind.REPORT and job.result_message_id:
            return jump_url(route.guild_id, route.post_channel_id, job.result_message_id)
        if route.reply_message_id:
            return jump_url(route.guild_id, route.channel_id, route.reply_message_id)
        return jump_url(route.guild_id, route.channel_id)
    if entry.channel_id:
        return jump_url(entry.guild_id, entry.channel_id)
    return ""


def entry_view(entry: AuditEntry, job: Job | None) -> discord.ui.View | None:
    """Quick actions under a log entry: ban the requester, refund, delete the result."""
    user = entry.target_id
    if not user or entry.kind is AuditKind.MOD_ACTION:
        return None
    job_id = job.id if job else entry.job_id
    view = discord.ui.View(timeout=None)
    view.add_item(ModLogButton("ban", job_id, user))
    if job_id:
        view.add_item(ModLogButton("refund", job_id, user))
        view.add_item(ModLogButton("delete", job_id, user))
    return view


def bans_text(bans: list[Ban]) -> str:
    """The `/mod bans` list."""
    if not bans:
        return "Nobody is banned from the bot in this server."
    lines = []
    for ban in bans[:25]:
        until = f"until {stamp(ban.until, 'f')}" if ban.until else "until lifted"
        by = f"by <@{ban.by}>" if ban.by else "automatically"
        reason = f" — {clean(ban.reason, 200)}" if ban.reason else ""
        lines.append(f"• <@{ban.user_id}> {until}, {by}{reason}")
    return "\n".join(lines)


def report_embed(report: UsageReport) -> discord.Embed:
    """A usage report: jobs, successes, failures, refusals, strikes, top members."""
    who = f" for <@{report.user_id}>" if report.user_id else ""
    days = len(report.daily)
    embed = discord.Embed(
        title="Usage report",
        description=f"The last {days} days{who} ({stamp(report.since, 'd')} – "
        f"{stamp(report.until, 'd')}).",
        colour=discord.Colour.blurple(),
    )
    embed.add_field(name="Jobs", value=str(report.jobs))
    embed.add_field(name="Succeeded", value=str(report.succeeded))
    embed.add_field(name="Failed", value=f"{report.failed} ({report.refunded} refunded)")
    embed.add_field(name="Refusals", value=str(report.refusals))
    embed.add_field(name="Strikes", value=str(report.strikes))
    if report.top and not report.user_id:
        embed.add_field(
            name="Top members",
            value="\n".join(f"<@{user}> — {count}" for user, count in report.top),
            inline=False,
        )
    return embed


def daily_chart(
    daily: tuple[tuple[date, int], ...], *, width: int = 640, height: int = 260
) -> bytes:
    """A bar chart of jobs per day as PNG bytes (Pillow only; run it in a thread)."""
    image = Image.new("RGB", (width, height), (47, 49, 54))
    draw = ImageDraw.Draw(image)
    left, right, top, bottom = 40, 10, 20, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max((count for _, count in daily), default=0) or 1
    draw.line(
        [(left, top), (left, top + plot_h), (left + plot_w, top + plot_h)], fill=(180, 180, 180)
    )
    draw.text((4, top - 6), str(peak), fill=(220, 220, 220))
    draw.text((4, top + plot_h - 6), "0", fill=(220, 220, 220))
    n = max(1, len(daily))
    slot = plot_w / n
    for i, (day, count) in enumerate(daily):
        x0 = left + i * slot + slot * 0.15
        x1 = left + (i + 1) * slot - slot * 0.15
        y0 = top + plot_h - plot_h * count / peak
        if count:
            draw.rectangle([x0, y0, max(x0 + 1, x1), top + plot_h - 1], fill=(88, 101, 242))
        if n <= 14 or i % max(1, n // 10) == 0 or i == n - 1:
            draw.text((x0, top + plot_h + 6), day.strftime("%m-%d"), fill=(200, 200, 200))
    draw.text((left + 4, 2), "Jobs per day (UTC)", fill=(230, 230, 230))
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


# --- buttons -----------------------------------------------------------------------------------


class ModerationHandler(Protocol):
    """Whoever handles presses of the moderation buttons (the moderation cog)."""

    async def on_log_button(
        self, interaction: discord.Interaction[Any], action: str, job_id: int, user_id: int
    ) -> None:
        """Ban the requester, refund, or delete the result of a log entry."""
        ...

    async def on_report(self, interaction: discord.Interaction[Any], job_id: int) -> None:
        """A member pressed 🚩 Report on a result."""
        ...


async def _unavailable(interaction: discord.Interaction[Any]) -> None:
    await interaction.response.send_message(
        "Moderation is not available right now.", ephemeral=True
    )


_LABELS = {
    "ban": ("Ban requester", "🔨"),
    "refund": ("Refund", "↩️"),
    "delete": ("Delete result", "🗑️"),
}


class ModLogButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=MOD_LOG_TEMPLATE,
):
    """A quick action under a log-channel entry; only moderators may press it."""

    def __init__(self, action: str, job_id: int, user_id: int) -> None:
        label, emoji = _LABELS[action]
        super().__init__(
            discord.ui.Button(
                label=label,
                emoji=emoji,
                style=discord.ButtonStyle.danger
                if action == "ban"
                else discord.ButtonStyle.secondary,
                custom_id=f"mjmod:{action}:{job_id}:{user_id}",
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
        return cls(match["action"], int(match["job"]), int(match["user"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        """Hand the press to the moderation handler."""
        handler: ModerationHandler | None = getattr(interaction.client, HANDLER, None)
        if handler is None:
            await _unavailable(interaction)
            return
        await handler.on_log_button(interaction, self.action, self.job_id, self.user_id)


class ReportButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=REPORT_TEMPLATE):
    """🚩 Report under a result: any member may tell the moderators about it."""

    def __init__(self, job_id: int) -> None:
        super().__init__(
            discord.ui.Button(
                label="Report",
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
        """Hand the report to the moderation handler."""
        handler: ModerationHandler | None = getattr(interaction.client, HANDLER, None)
        if handler is None:
            await _unavailable(interaction)
            return
        await handler.on_report(interaction, self.job_id)
