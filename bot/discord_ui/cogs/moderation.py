"""/quota for members and the /mod group for moderators. Thin: parse options, call the
moderation service, render. Moderator answers are ephemeral; every change is in the audit log.

/mod is hidden from members without Manage Server (`default_permissions`) and checked again at
run time (`ModerationCog.interaction_check`), where a configured moderator role also qualifies:
hiding is a client-side courtesy, and a crafted interaction must still be refused.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.core.errors import Refused
from bot.core.gate import ModerationService
from bot.core.jobs import Mode
from bot.core.moderation import Limits, TermKind, describe_duration, parse_duration, stamp
from bot.core.ports import JobRepository, Ticket
from bot.discord_ui.mod_views import (
    HANDLER,
    ModLogButton,
    ReportButton,
    bans_text,
    daily_chart,
    report_embed,
)
from bot.discord_ui.options import MODE_CHOICES
from bot.discord_ui.render import NO_PINGS, clean, failure_text
from bot.discord_ui.tree import tell

log = logging.getLogger(__name__)

Health = Callable[[], Awaitable[dict[str, Any]]]


class NotModerator(Refused, app_commands.CheckFailure):
    """A member without Manage Server or the moderator role ran a /mod command."""

    member_message = "Only moderators (Manage Server, or the moderator role) can use /mod."


def _roles(interaction: discord.Interaction[Any]) -> tuple[int, ...]:
    user = interaction.user
    return tuple(r.id for r in user.roles) if isinstance(user, discord.Member) else ()


def _ticket(interaction: discord.Interaction[Any]) -> Ticket:
    return Ticket(
        guild_id=interaction.guild_id or 0,
        channel_id=interaction.channel_id or 0,
        user_id=interaction.user.id,
        role_ids=_roles(interaction),
    )


async def _say(interaction: discord.Interaction[Any], text: str) -> None:
    """A moderator's (or member's) private answer, mentions disabled."""
    await tell(interaction, text[:2000])


class QuotaCog(commands.Cog):
    """/quota: what a member has left."""

    def __init__(self, mods: ModerationService) -> None:
        self.mods = mods

    @app_commands.command(name="quota")
    @app_commands.guild_only()
    async def quota(self, interaction: discord.Interaction[Any]) -> None:
        """See how many images you have left here and when the next one frees up."""
        await _say(interaction, await self.mods.quota(_ticket(interaction)))


class ModerationCog(commands.Cog):
    """The /mod commands, the log channel's buttons and 🚩 Report."""

    mod = app_commands.Group(
        name="mod",
        description="Moderate image generation in this server",
        default_permissions=discord.Permissions(manage_guild=True),
        guild_only=True,
    )
    limits = app_commands.Group(
        name="limits", description="Quotas, cooldown and in-flight caps", parent=mod
    )
    terms = app_commands.Group(name="terms", description="Banned words and patterns", parent=mod)
    channels = app_commands.Group(
        name="channels", description="Channels where images may be made", parent=mod
    )

    def __init__(
        self,
        bot: commands.Bot,
        mods: ModerationService,
        jobs: JobRepository,
        *,
        health: Health | None = None,
    ) -> None:
        self.bot = bot
        self.mods = mods
        self.jobs = jobs
        self.health = health

    async def cog_load(self) -> None:
        """Register the restart-proof moderation buttons and this cog as their handler."""
        setattr(self.bot, HANDLER, self)
        self.bot.add_dynamic_items(ModLogButton, ReportButton)

    async def interaction_check(self, interaction: discord.Interaction[Any]) -> bool:  # type: ignore[override]
        """Every /mod command: Manage Server or the moderator role, checked at run time."""
        if await self._is_moderator(interaction):
            return True
        log.info("user %s ran /mod without permission", interaction.user.id)
        raise NotModerator(f"user {interaction.user.id} is not a moderator")

    async def _is_moderator(self, interaction: discord.Interaction[Any]) -> bool:
        if not interaction.guild_id:
            return False
        ticket = dataclasses.replace(
            _ticket(interaction), manage_guild=interaction.permissions.manage_guild
        )
        return await self.mods.is_moderator(ticket)

    # --- bans ------------------------------------------------------------------------------

    @mod.command(name="ban")
    @app_commands.describe(
        member="Who may no longer make images here",
        reason="Why (the member is told)",
        duration="How long, like 30m, 12h, 7d or 2w; leave out for a ban until lifted",
    )
    async def ban(
        self,
        interaction: discord.Interaction[Any],
        member: discord.Member,
        reason: app_commands.Range[str, 0, 300] = "",
        duration: str | None = None,
    ) -> None:
        """Ban a member from making images, for a while or until lifted."""
        span = None
        if duration:
            span = parse_duration(duration)
            if span is None:
                await _say(interaction, "Give the duration like 30m, 12h, 7d or 2w.")
                return
        ban = await self.mods.ban(
            interaction.guild_id or 0, interaction.user.id, member.id, reason, span
        )
        until = f"until {stamp(ban.until, 'f')}" if ban.until else "until you lift it"
        await _say(interaction, f"{member.mention} is banned from making images {until}.")

    @mod.command(name="unban")
    @app_commands.describe(member="Whose ban to lift")
    async def unban(self, interaction: discord.Interaction[Any], member: discord.Member) -> None:
        """Lift a member's ban."""
        if await self.mods.unban(interaction.guild_id or 0, interaction.user.id, member.id):
            await _say(interaction, f"{member.mention} may make images again.")
        else:
            await _say(interaction, f"{member.mention} was not banned.")

    @mod.command(name="bans")
    async def bans(self, interaction: discord.Interaction[Any]) -> None:
        """List the members banned from making images."""
        await _say(interaction, bans_text(await self.mods.bans(interaction.guild_id or 0)))

    # --- quota -----------------------------------------------------------------------------

    @mod.command(name="grant")
    @app_commands.describe(member="Who gets extra images", images="How many extra images")
    async def grant(
        self,
        interaction: discord.Interaction[Any],
        member: discord.Member,
        images: app_commands.Range[int, 1, 1000],
    ) -> None:
        """Give a member extra images beyond their quota."""
        total = await self.mods.grant(
            interaction.guild_id or 0, interaction.user.id, member.id, images
        )
        await _say(interaction, f"{member.mention} now has {total} extra images.")

    @mod.command(name="reset")
    @app_commands.describe(member="Whose quota to reset")
    async def reset(self, interaction: discord.Interaction[Any], member: discord.Member) -> None:
        """Reset a member's quota: their images of the last day no longer count."""
        count = await self.mods.reset(interaction.guild_id or 0, interaction.user.id, member.id)
        await _say(interaction, f"{member.mention}'s quota is reset ({count} images forgiven).")

    @limits.command(name="default")
    @app_commands.describe(
        per_day="Images per member per rolling day; leave out for no daily limit",
        per_hour="Images per member per rolling hour; leave out for no hourly limit",
    )
    async def limits_default(
        self,
        interaction: discord.Interaction[Any],
        per_day: app_commands.Range[int, 0, 100000] | None = None,
        per_hour: app_commands.Range[int, 0, 100000] | None = None,
    ) -> None:
        """Set everyone's quota (roles with their own limit are not affected)."""
        new = Limits(per_day=per_day, per_hour=per_hour)
        await self._change(interaction, "limits", lambda p: dataclasses.replace(p, limits=new))
        await _say(interaction, f"Everyone's quota is now {new.describe()}.")

    @limits.command(name="role")
    @app_commands.describe(
        role="The role whose members get this quota",
        per_day="Images per rolling day; leave out for no daily limit",
        per_hour="Images per rolling hour; leave out for no hourly limit",
        remove="Remove the role's own quota (its members get the default again)",
    )
    async def limits_role(
        self,
        interaction: discord.Interaction[Any],
        role: discord.Role,
        per_day: app_commands.Range[int, 0, 100000] | None = None,
        per_hour: app_commands.Range[int, 0, 100000] | None = None,
        remove: bool = False,
    ) -> None:
        """Give a role its own quota (the most generous of a member's roles applies)."""
        new = Limits(per_day=per_day, per_hour=per_hour)

        def change(p: Any) -> Any:
            roles = dict(p.role_limits)
            if remove:
                roles.pop(role.id, None)
            else:
                roles[role.id] = new
            return dataclasses.replace(p, role_limits=roles)

        await self._change(interaction, "role_limits", change)
        if remove:
            await _say(interaction, f"{role.mention} now has the default quota.")
        else:
            await _say(interaction, f"{role.mention}'s quota is now {new.describe()}.")

    @limits.command(name="server")
    @app_commands.describe(
        per_day="Images for the whole server per rolling day; leave out for none"
    )
    async def limits_server(
        self,
        interaction: discord.Interaction[Any],
        per_day: app_commands.Range[int, 0, 1000000] | None = None,
    ) -> None:
        """Cap the images the whole server makes per day."""
        await self._change(
            interaction, "server_cap", lambda p: dataclasses.replace(p, server_per_day=per_day)
        )
        text = f"{per_day} images per day" if per_day is not None else "no limit"
        await _say(interaction, f"The server's daily cap is now {text}.")

    @limits.command(name="cooldown")
    @app_commands.describe(seconds="Seconds a member waits between images; 0 for none")
    async def limits_cooldown(
        self, interaction: discord.Interaction[Any], seconds: app_commands.Range[int, 0, 86400]
    ) -> None:
        """Set the wait between a member's images."""
        span = timedelta(seconds=seconds)
        await self._change(interaction, "cooldown", lambda p: dataclasses.replace(p, cooldown=span))
        await _say(
            interaction, f"The cooldown is now {describe_duration(span) if seconds else 'off'}."
        )

    @limits.command(name="inflight")
    @app_commands.describe(
        member="Most images one member may have in progress; leave out for no cap",
        server="Most images the server may have in progress; leave out for no cap",
    )
    async def limits_inflight(
        self,
        interaction: discord.Interaction[Any],
        member: app_commands.Range[int, 1, 1000] | None = None,
        server: app_commands.Range[int, 1, 100000] | None = None,
    ) -> None:
        """Cap the images in progress at once, per member and for the server."""
        await self._change(
            interaction,
            "in_flight",
            lambda p: dataclasses.replace(p, member_in_flight=member, server_in_flight=server),
        )
        await _say(
            interaction,
            f"In progress at once: {member or 'any number'} per member, "
            f"{server or 'any number'} for the server.",
        )

    # --- terms -----------------------------------------------------------------------------

    @terms.command(name="add")
    @app_commands.describe(
        term="A word or phrase (whole words, any case or accents), or a regular expression",
        pattern="Treat the term as a regular expression",
    )
    async def terms_add(
        self,
        interaction: discord.Interaction[Any],
        term: app_commands.Range[str, 1, 100],
        pattern: bool = False,
    ) -> None:
        """Ban a word or pattern from prompts."""
        kind = TermKind.PATTERN if pattern else TermKind.WORD
        added = await self.mods.add_term(interaction.guild_id or 0, interaction.user.id, kind, term)
        await _say(interaction, f"Prompts with “{clean(added.text, 100)}” are now refused.")

    @terms.command(name="remove")
    @app_commands.describe(term="The word or pattern, as listed by /mod terms list")
    async def terms_remove(
        self, interaction: discord.Interaction[Any], term: app_commands.Range[str, 1, 100]
    ) -> None:
        """Allow a banned word or pattern again."""
        if await self.mods.remove_term(interaction.guild_id or 0, interaction.user.id, term):
            await _say(interaction, f"“{clean(term, 100)}” is allowed again.")
        else:
            await _say(interaction, f"“{clean(term, 100)}” was not banned.")

    @terms.command(name="list")
    async def terms_list(self, interaction: discord.Interaction[Any]) -> None:
        """List the banned words and patterns."""
        terms = await self.mods.terms(interaction.guild_id or 0)
        if not terms:
            await _say(interaction, "No words or patterns are banned.")
            return
        lines = [f"• {t.kind.value}: `{clean(t.text, 100)}`" for t in terms[:60]]
        await _say(interaction, "Banned in prompts:\n" + "\n".join(lines))

    @terms.command(name="test")
    @app_commands.describe(prompt="A prompt to check against the banned terms")
    async def terms_test(
        self, interaction: discord.Interaction[Any], prompt: app_commands.Range[str, 1, 4000]
    ) -> None:
        """Check whether a prompt would be refused, and for which term."""
        hit = await self.mods.test_prompt(interaction.guild_id or 0, prompt)
        if hit is None:
            await _say(interaction, "That prompt passes the banned terms.")
        else:
            await _say(
                interaction,
                f"Refused: “{clean(hit.matched, 100)}” matches the {hit.term.kind.value} "
                f"`{clean(hit.term.text, 100)}`.",
            )

    # --- channels --------------------------------------------------------------------------

    @channels.command(name="add")
    @app_commands.describe(channel="A channel where images may be made")
    async def channels_add(
        self, interaction: discord.Interaction[Any], channel: discord.TextChannel
    ) -> None:
        """Allow images in a channel (once any is added, only those channels)."""
        await self._change(
            interaction,
            "channels",
            lambda p: dataclasses.replace(p, allowed_channels=p.allowed_channels | {channel.id}),
        )
        await _say(interaction, f"Images may be made in {channel.mention}.")

    @channels.command(name="remove")
    @app_commands.describe(channel="A channel to take off the list")
    async def channels_remove(
        self, interaction: discord.Interaction[Any], channel: discord.TextChannel
    ) -> None:
        """Take a channel off the allowed list (an empty list allows every channel)."""
        policy = await self._change(
            interaction,
            "channels",
            lambda p: dataclasses.replace(p, allowed_channels=p.allowed_channels - {channel.id}),
        )
        rest = "every channel" if not policy.allowed_channels else "the other listed channels"
        await _say(interaction, f"{channel.mention} is off the list; images may be made in {rest}.")

    @channels.command(name="list")
    async def channels_list(self, interaction: discord.Interaction[Any]) -> None:
        """List the channels where images may be made."""
        policy = await self.mods.policy(interaction.guild_id or 0)
        if not policy.allowed_channels:
            await _say(interaction, "Images may be made in every channel.")
        else:
            places = ", ".join(f"<#{c}>" for c in sorted(policy.allowed_channels))
            await _say(interaction, f"Images may be made only in {places}.")

    # --- settings --------------------------------------------------------------------------

    @mod.command(name="strikes")
    @app_commands.describe(
        limit="Strikes that bring an automatic ban; 0 turns automatic bans off",
        window_hours="The strikes must fall within this many hours",
        ban="How long the automatic ban lasts, like 12h or 3d",
    )
    async def strikes(
        self,
        interaction: discord.Interaction[Any],
        limit: app_commands.Range[int, 0, 50],
        window_hours: app_commands.Range[int, 1, 8760] = 24,
        ban: str = "24h",
    ) -> None:
        """Set when prompts refused by the image service bring an automatic ban."""
        span = parse_duration(ban)
        if span is None:
            await _say(interaction, "Give the ban's length like 30m, 12h, 7d or 2w.")
            return
        window = timedelta(hours=window_hours)
        await self._change(
            interaction,
            "strikes",
            lambda p: dataclasses.replace(
                p, strike_limit=limit, strike_window=window, strike_ban=span
            ),
        )
        if limit == 0:
            await _say(interaction, "Strikes no longer bring an automatic ban.")
        else:
            await _say(
                interaction,
                f"{limit} strikes within {describe_duration(window)} bring a "
                f"{describe_duration(span)} ban.",
            )

    @mod.command(name="logchannel")
    @app_commands.describe(
        channel="Where to mirror submissions, refusals, strikes and actions; leave out to stop"
    )
    async def logchannel(
        self, interaction: discord.Interaction[Any], channel: discord.TextChannel | None = None
    ) -> None:
        """Set the moderators' log channel."""
        cid = channel.id if channel else 0
        await self._change(
            interaction, "log_channel", lambda p: dataclasses.replace(p, log_channel_id=cid)
        )
        await _say(
            interaction,
            f"The log channel is now {channel.mention}." if channel else "The log channel is off.",
        )

    @mod.command(name="modrole")
    @app_commands.describe(
        role="Members with this role may moderate; leave out for Manage Server only"
    )
    async def modrole(
        self, interaction: discord.Interaction[Any], role: discord.Role | None = None
    ) -> None:
        """Let a role moderate the bot, besides Manage Server."""
        rid = role.id if role else 0
        await self._change(
            interaction, "moderator_role", lambda p: dataclasses.replace(p, moderator_role_id=rid)
        )
        await _say(
            interaction,
            f"{role.mention} may now moderate the bot."
            if role
            else "Only Manage Server moderates now.",
        )

    @mod.command(name="mode")
    @app_commands.describe(mode="The mode /imagine uses when a member does not choose one")
    @app_commands.choices(mode=MODE_CHOICES)
    async def mode(
        self, interaction: discord.Interaction[Any], mode: app_commands.Choice[str]
    ) -> None:
        """Set the server's default mode for /imagine."""
        chosen = Mode(mode.value)
        await self._change(
            interaction, "default_mode", lambda p: dataclasses.replace(p, default_mode=chosen)
        )
        await _say(interaction, f"/imagine now uses {chosen.label} unless a member picks a mode.")

    async def _change(self, interaction: discord.Interaction[Any], action: str, change: Any) -> Any:
        return await self.mods.change(
            interaction.guild_id or 0, interaction.user.id, action, change
        )

    # --- reports and status ----------------------------------------------------------------

    @mod.command(name="report")
    @app_commands.describe(
        member="Only this member's use; leave out for the whole server",
        days="How many days back (at most 90)",
    )
    async def report(
        self,
        interaction: discord.Interaction[Any],
        member: discord.Member | None = None,
        days: app_commands.Range[int, 1, 90] = 7,
    ) -> None:
        """Usage over a period: jobs, successes, failures, refusals, strikes, top members."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        report = await self.mods.report(interaction.guild_id or 0, days, member.id if member else 0)
        embed = report_embed(report)
        png = await asyncio.to_thread(daily_chart, report.daily)
        embed.set_image(url="attachment://usage.png")
        await interaction.followup.send(
            embed=embed,
            file=discord.File(io.BytesIO(png), filename="usage.png"),
            ephemeral=True,
            allowed_mentions=NO_PINGS,
        )

    @mod.command(name="status")
    async def status(self, interaction: discord.Interaction[Any]) -> None:
        """API reachability, jobs in progress, and the latest failures."""
        guild_id = interaction.guild_id or 0
        lines = []
        if self.health is not None:
            health = await self.health()
            last = health.get("last_api_success")
            lines.append(
                f"Image API: last answered {last}." if last else "Image API: no answer yet."
            )
            lines.append(f"Database: {'reachable' if health.get('database') else 'NOT reachable'}.")
        unfinished = [j for j in await self.jobs.unfinished() if j.route.guild_id == guild_id]
        queued = sum(1 for j in unfinished if j.queue_position)
        lines.append(f"Jobs in progress here: {len(unfinished)} ({queued} waiting in the queue).")
        policy = await self.mods.policy(guild_id)
        lines.append(
            f"Quota: {policy.limits.describe()}; server cap: "
            f"{policy.server_per_day if policy.server_per_day is not None else 'none'}; "
            f"default mode: {policy.default_mode.label}; log channel: "
            f"{f'<#{policy.log_channel_id}>' if policy.log_channel_id else 'off'}."
        )
        failures = []
        for job_id in await self.mods.recent_failures(guild_id):
            job = await self.jobs.get(job_id)
            if job is not None:
                failures.append(f"• job {job.id}: {failure_text(job.fail_reason)}")
        lines.append(
            "Latest failures:\n" + "\n".join(failures) if failures else "No recent failures."
        )
        await _say(interaction, "\n".join(lines))

    # --- buttons ---------------------------------------------------------------------------

    async def on_log_button(
        self, interaction: discord.Interaction[Any], action: str, job_id: int, user_id: int
    ) -> None:
        """Ban the requester, refund the job, or delete its result (moderators only)."""
        guild_id = interaction.guild_id or 0
        if not await self._is_moderator(interaction):
            await _say(interaction, NotModerator.member_message)
            return
        actor = interaction.user.id
        if action == "ban":
            await self.mods.ban(
                guild_id, actor, user_id, f"from the log channel (job {job_id})", None
            )
            await _say(interaction, f"<@{user_id}> is banned from making images until you lift it.")
            return
        job = await self.jobs.get(job_id)
        if job is None or job.route.guild_id != guild_id:
            await _say(interaction, "That job is not in this server's records.")
            return
        if action == "refund":
            if await self.mods.refund(guild_id, actor, job):
                await _say(interaction, f"Job {job_id} is refunded to <@{user_id}>.")
            else:
                await _say(interaction, f"Job {job_id} was already refunded (or never charged).")
            return
        if not job.result_message_id:
            await _say(interaction, f"Job {job_id} has no posted result to delete.")
            return
        # Acknowledge first: the delete can wait on a rate limit for longer than Discord's 3 s.
        await interaction.response.defer(ephemeral=True)
        channel = self.bot.get_partial_messageable(job.route.post_channel_id, guild_id=guild_id)
        try:
            await channel.get_partial_message(job.result_message_id).delete()
        except discord.NotFound:
            await _say(interaction, f"Job {job_id}'s result was already deleted.")
            return
        except discord.HTTPException as exc:
            log.warning("job %s: could not delete the result: %s", job_id, exc)
            await _say(interaction, "I couldn't delete that result (check my permissions there).")
            return
        await self.mods.record_action(
            guild_id,
            actor,
            "delete_result",
            f"job {job_id}'s result deleted",
            target_id=user_id,
            job_id=job_id,
        )
        await _say(interaction, f"Job {job_id}'s result is deleted.")

    async def on_report(self, interaction: discord.Interaction[Any], job_id: int) -> None:
        """A member's 🚩 Report: recorded and sent to the log channel."""
        guild_id = interaction.guild_id or 0
        job = await self.jobs.get(job_id)
        if job is None or job.route.guild_id != guild_id:
            await _say(interaction, "That image is not in this server's records.")
            return
        await self.mods.report_job(guild_id, interaction.user.id, job, interaction.channel_id or 0)
        policy = await self.mods.policy(guild_id)
        if policy.log_channel_id:
            await _say(interaction, "Thank you: the moderators have been told about this image.")
        else:
            await _say(interaction, "Thank you: your report is recorded for the moderators.")
