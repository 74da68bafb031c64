"""What moderators read: audit entries and usage reports as embeds, the bans list, the status
answer, and links into Discord, each in the locale it is given (the log channel's: the
server's; a moderator's own answer: theirs)."""

from __future__ import annotations

import discord

from bot.core.jobs import Job, Mode
from bot.core.messages import Message, Stamp, UserRef, msg, plural_msg
from bot.core.moderation import AuditEntry, AuditKind, Ban, UsageReport
from bot.core.moderation.service import ServerStatus
from bot.discord_ui.i18n.render import render
from bot.discord_ui.i18n.where import DEFAULT_LOCALE
from bot.discord_ui.render import clean, failure_text

_TITLES = {
    AuditKind.SUBMISSION: (msg("🎨 Submission"), discord.Colour.blurple()),
    AuditKind.REFUSAL: (msg("⛔ Refused"), discord.Colour.orange()),
    AuditKind.STRIKE: (msg("⚠️ Strike"), discord.Colour.red()),
    AuditKind.AUTO_BAN: (msg("🔨 Automatic ban"), discord.Colour.dark_red()),
    AuditKind.MOD_ACTION: (msg("🛠️ Moderator action"), discord.Colour.light_grey()),
    AuditKind.REPORT: (msg("🚩 Report"), discord.Colour.gold()),
}


def thread_parent(client: discord.Client, channel_id: int) -> int:
    """The channel a thread belongs to (0 when `channel_id` is not a known thread)."""
    channel = client.get_channel(channel_id)
    return channel.parent_id or 0 if isinstance(channel, discord.Thread) else 0


def jump_url(guild_id: int, channel_id: int, message_id: int = 0) -> str:
    """A link that opens a channel (or a message in it) in Discord."""
    base = f"https://discord.com/channels/{guild_id}/{channel_id}"
    return f"{base}/{message_id}" if message_id else base


def entry_embed(
    entry: AuditEntry, job: Job | None = None, locale: str = DEFAULT_LOCALE
) -> discord.Embed:
    """One audit entry for the log channel: prompt, mode, requester, task id, jump link.

    The moderator action's name (`ban`, `limits` …) and a stored detail are records and stay
    as written; a refusal's sentence is shown in `locale` while the entry is fresh."""

    def say(message: Message) -> str:
        return render(message, locale)

    title_key, colour = _TITLES[entry.kind]
    title = say(title_key)
    if entry.kind is AuditKind.MOD_ACTION:
        title = f"{title}: {entry.action}"
    embed = discord.Embed(title=title, colour=colour, timestamp=entry.at)
    prompt = entry.prompt or (job.prompt if job else "")
    if prompt:
        embed.description = clean(prompt, 1000)
    if entry.actor_id and entry.actor_id != entry.target_id:
        who = msg("Reported by") if entry.kind is AuditKind.REPORT else msg("By")
        embed.add_field(name=say(who), value=f"<@{entry.actor_id}>")
    if entry.target_id:
        name = msg("Member") if entry.kind is AuditKind.MOD_ACTION else msg("Requester")
        embed.add_field(name=say(name), value=f"<@{entry.target_id}>")
    mode = entry.mode or (job.mode.value if job else "")
    if mode:
        known = {m.value: m.label for m in Mode}
        embed.add_field(name=say(msg("Mode")), value=known.get(mode, mode))
    if job is not None:
        embed.add_field(name=say(msg("Task ID")), value=f"`{job.task_id}`" if job.task_id else "—")
        embed.add_field(name=say(msg("Job")), value=str(job.id))
    elif entry.job_id:
        embed.add_field(name=say(msg("Job")), value=str(entry.job_id))
    if entry.kind is AuditKind.REFUSAL:
        embed.add_field(name=say(msg("Rule")), value=entry.action or "—")
    detail = say(entry.note) if entry.note is not None else entry.detail
    if detail:
        embed.add_field(name=say(msg("Detail")), value=clean(detail, 1000), inline=False)
    link = _link(entry, job)
    if link:
        opened = say(msg("[Open in Discord]({link})", link=link))
        embed.add_field(name=say(msg("Jump")), value=opened, inline=False)
    return embed


def channel_link(channel_id: int) -> str:
    """A channel's mention (Discord shows it as a link to the channel)."""
    return f"<#{channel_id}>"


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


def bans_text(bans: list[Ban]) -> list[Message]:
    """The `/mod bans` list, one line per ban."""
    if not bans:
        return [msg("Nobody is banned from the bot in this server.")]
    return [_ban_line(ban) for ban in bans[:25]]


def _ban_line(ban: Ban) -> Message:
    who = UserRef(ban.user_id)
    reason = f" — {clean(ban.reason, 200)}" if ban.reason else ""
    if ban.until is not None and ban.by:
        return msg(
            "• {member} until {when}, by {moderator}{reason}",
            member=who,
            when=Stamp(ban.until, "f"),
            moderator=UserRef(ban.by),
            reason=reason,
        )
    if ban.until is not None:
        return msg(
            "• {member} until {when}, automatically{reason}",
            member=who,
            when=Stamp(ban.until, "f"),
            reason=reason,
        )
    if ban.by:
        return msg(
            "• {member} until lifted, by {moderator}{reason}",
            member=who,
            moderator=UserRef(ban.by),
            reason=reason,
        )
    return msg("• {member} until lifted, automatically{reason}", member=who, reason=reason)


def report_embed(report: UsageReport, locale: str = DEFAULT_LOCALE) -> discord.Embed:
    """A usage report: jobs, successes, failures, refusals, strikes, top members; the chart's
    caption is here (its image carries only numbers and dates, which need no translation)."""

    def say(message: Message) -> str:
        return render(message, locale)

    since, until = Stamp(report.since, "d"), Stamp(report.until, "d")
    days = len(report.daily)
    if report.user_id:
        description = plural_msg(
            "The last {count} day for {member} ({since} – {until}).",
            "The last {count} days for {member} ({since} – {until}).",
            days,
            member=UserRef(report.user_id),
            since=since,
            until=until,
        )
    else:
        description = plural_msg(
            "The last {count} day ({since} – {until}).",
            "The last {count} days ({since} – {until}).",
            days,
            since=since,
            until=until,
        )
    embed = discord.Embed(
        title=say(msg("Usage report")),
        description=say(description),
        colour=discord.Colour.blurple(),
    )
    embed.add_field(name=say(msg("Jobs")), value=str(report.jobs))
    embed.add_field(name=say(msg("Succeeded")), value=str(report.succeeded))
    embed.add_field(
        name=say(msg("Failed")),
        value=say(
            msg("{failed} ({refunded} refunded)", failed=report.failed, refunded=report.refunded)
        ),
    )
    embed.add_field(name=say(msg("Refusals")), value=str(report.refusals))
    embed.add_field(name=say(msg("Strikes")), value=str(report.strikes))
    if report.top and not report.user_id:
        embed.add_field(
            name=say(msg("Top members")),
            value="\n".join(f"<@{user}> — {count}" for user, count in report.top),
            inline=False,
        )
    embed.set_footer(text=say(msg("The chart: jobs per day (UTC).")))
    return embed


def status_text(
    status: ServerStatus, health: dict[str, object] | None, locale: str = DEFAULT_LOCALE
) -> str:
    """The `/mod status` answer: the API and database, jobs here, settings, latest failures."""

    def say(message: Message) -> str:
        return render(message, locale)

    lines = []
    if health is not None:
        last = health.get("last_api_success")
        lines.append(
            say(msg("Image API: last answered {when}.", when=str(last)))
            if last
            else say(msg("Image API: no answer yet."))
        )
        lines.append(
            say(msg("Database: reachable."))
            if health.get("database")
            else say(msg("Database: NOT reachable."))
        )
    lines.append(
        say(
            msg(
                "Jobs in progress here: {running} ({queued} waiting in the queue).",
                running=status.in_progress,
                queued=status.queued,
            )
        )
    )
    policy = status.policy
    none = msg("none")
    log_channel = channel_link(policy.log_channel_id) if policy.log_channel_id else msg("off")
    lines.append(
        say(
            msg(
                "Quota: {quota}; server cap: {cap}; default mode: {mode}; log channel: {channel}.",
                quota=policy.limits.describe(),
                cap=policy.server_per_day if policy.server_per_day is not None else none,
                mode=policy.default_mode.label,
                channel=log_channel,
            )
        )
    )
    failures = [
        say(
            msg(
                "• job {job}: {reason}",
                job=job_id,
                reason=" — ".join(failure_text(reason, locale).split("\n")),
            )
        )
        for job_id, reason in status.failures
    ]
    lines.append(
        say(msg("Latest failures:")) + "\n" + "\n".join(failures)
        if failures
        else say(msg("No recent failures."))
    )
    return "\n".join(lines)
