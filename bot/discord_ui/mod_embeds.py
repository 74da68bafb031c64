"""What moderators read: audit entries and usage reports as embeds, the bans list, the status
answer, and links into Discord."""

from __future__ import annotations

import discord

from bot.core.jobs import Job, Mode
from bot.core.moderation import AuditEntry, AuditKind, Ban, UsageReport, stamp
from bot.core.moderation.service import ServerStatus
from bot.discord_ui.render import clean, failure_text

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


def status_text(status: ServerStatus, health: dict[str, object] | None) -> str:
    """The `/mod status` answer: the API and database, jobs here, settings, latest failures."""
    lines = []
    if health is not None:
        last = health.get("last_api_success")
        lines.append(f"Image API: last answered {last}." if last else "Image API: no answer yet.")
        lines.append(f"Database: {'reachable' if health.get('database') else 'NOT reachable'}.")
    lines.append(
        f"Jobs in progress here: {status.in_progress} ({status.queued} waiting in the queue)."
    )
    policy = status.policy
    lines.append(
        f"Quota: {policy.limits.describe()}; server cap: "
        f"{policy.server_per_day if policy.server_per_day is not None else 'none'}; "
        f"default mode: {policy.default_mode.label}; log channel: "
        f"{f'<#{policy.log_channel_id}>' if policy.log_channel_id else 'off'}."
    )
    failures = [
        f"• job {job_id}: " + " — ".join(failure_text(reason).split("\n"))
        for job_id, reason in status.failures
    ]
    lines.append("Latest failures:\n" + "\n".join(failures) if failures else "No recent failures.")
    return "\n".join(lines)
