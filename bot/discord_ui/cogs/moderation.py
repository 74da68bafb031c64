"""/quota for members and the /mod group for moderators. Thin: read options, call the
moderation service, render. Moderator answers are ephemeral; every change is in the audit log.

/mod is hidden from members without Manage Server (`default_permissions`) and checked again at
run time (`ModerationCog.interaction_check`, and in the service), where a configured moderator
role also qualifies: hiding is a client-side courtesy, and a crafted interaction must still be
refused. Every number's range is declared once, in `bot.core.moderation.bounds`; the
declarations below read it (so Discord's client shows it) and the service checks it again,
because discord.py does not enforce declared limits on what arrives.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.core.jobs import Mode
from bot.core.moderation import Limits, TermKind, describe_duration, service, stamp
from bot.core.moderation import bounds as b
from bot.core.moderation import settings as change
from bot.core.moderation.service import LogAction, ModerationService
from bot.core.ports import Ticket
from bot.discord_ui.jobflow import ticket_for
from bot.discord_ui.mod_buttons import MODERATION_COG, DiscordResults, ModLogButton, ReportButton
from bot.discord_ui.mod_chart import daily_chart
from bot.discord_ui.mod_embeds import bans_text, report_embed, status_text
from bot.discord_ui.render import NO_PINGS, clean
from bot.discord_ui.tree import tell, tell_error

log = logging.getLogger(__name__)

MODE_CHOICES = [
    app_commands.Choice(name="Midjourney", value=Mode.MID_JOURNEY.value),
    app_commands.Choice(name="Niji", value=Mode.NIJI_JOURNEY.value),
]

Health = Callable[[], Awaitable[dict[str, Any]]]


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


async def _say(interaction: discord.Interaction[Any], text: str) -> None:
    """A moderator's (or member's) private answer, mentions disabled."""
    await tell(interaction, text[:2000])


class QuotaCog(commands.Cog, name="Quota"):
    """/quota: what a member has made and has left."""

    def __init__(self, mods: ModerationService) -> None:
        self.mods = mods

    @app_commands.command(name="quota")
    @app_commands.guild_only()
    async def quota(self, interaction: discord.Interaction[Any]) -> None:
        """See how many images you made today and this hour, and what you have left here."""
        await _say(interaction, await self.mods.quota(ticket_for(interaction)))


class ModerationCog(commands.Cog, name=MODERATION_COG):
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
        self, bot: commands.Bot, mods: ModerationService, *, health: Health | None = None
    ) -> None:
        self.bot = bot
        self.mods = mods
        self.health = health

    async def cog_load(self) -> None:
        """Register the restart-proof moderation buttons (they find this cog by its name)."""
        self.bot.add_dynamic_items(ModLogButton, ReportButton)

    async def interaction_check(self, interaction: discord.Interaction[Any]) -> bool:  # type: ignore[override]
        """Every /mod command: Manage Server or the moderator role, checked at run time."""
        if interaction.guild_id and await self.mods.is_moderator(ticket_for(interaction)):
            return True
        log.info("user %s ran /mod without permission", interaction.user.id)
        raise NotModerator(f"user {interaction.user.id} is not a moderator")

    def _bot_id(self) -> int:
        return self.bot.user.id if self.bot.user else 0

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
        reason: app_commands.Range[str, 0, b.REASON_LENGTH] = "",
        duration: app_commands.Range[str, 1, b.DURATION_LENGTH] | None = None,
    ) -> None:
        """Ban a member from making images, for a while or until lifted."""
        ban = await self.mods.ban(
            ticket_for(interaction), target_of(member), reason, duration, bot_user_id=self._bot_id()
        )
        until = f"until {stamp(ban.until, 'f')}" if ban.until else "until you lift it"
        await _say(interaction, f"{member.mention} is banned from making images {until}.")

    @mod.command(name="unban")
    @app_commands.describe(member="Whose ban to lift")
    async def unban(self, interaction: discord.Interaction[Any], member: discord.Member) -> None:
        """Lift a member's ban."""
        if await self.mods.unban(ticket_for(interaction), member.id):
            await _say(interaction, f"{member.mention} may make images again.")
        else:
            await _say(interaction, f"{member.mention} was not banned.")

    @mod.command(name="bans")
    async def bans(self, interaction: discord.Interaction[Any]) -> None:
        """List the members banned from making images."""
        await _say(interaction, bans_text(await self.mods.bans(ticket_for(interaction))))

    # --- quota -----------------------------------------------------------------------------

    @mod.command(name="grant")
    @app_commands.describe(member="Who gets extra images", images="How many extra images")
    async def grant(
        self,
        interaction: discord.Interaction[Any],
        member: discord.Member,
        images: app_commands.Range[int, b.GRANT_IMAGES.low, b.GRANT_IMAGES.high],
    ) -> None:
        """Give a member extra images beyond their quota."""
        total = await self.mods.grant(ticket_for(interaction), member.id, images)
        await _say(interaction, f"{member.mention} now has {total} extra images.")

    @mod.command(name="reset")
    @app_commands.describe(member="Whose quota to reset")
    async def reset(self, interaction: discord.Interaction[Any], member: discord.Member) -> None:
        """Reset a member's quota: their images of the last day no longer count."""
        count = await self.mods.reset(ticket_for(interaction), member.id)
        await _say(interaction, f"{member.mention}'s quota is reset ({count} images forgiven).")

    @limits.command(name="default")
    @app_commands.describe(
        per_day="Images per member per rolling day; leave out for no daily limit",
        per_hour="Images per member per rolling hour; leave out for no hourly limit",
    )
    async def limits_default(
        self,
        interaction: discord.Interaction[Any],
        per_day: app_commands.Range[int, b.PER_DAY.low, b.PER_DAY.high] | None = None,
        per_hour: app_commands.Range[int, b.PER_HOUR.low, b.PER_HOUR.high] | None = None,
    ) -> None:
        """Set everyone's quota (roles with their own limit are not affected)."""
        await self.mods.change(
            ticket_for(interaction), "limits", change.default_limits(per_day, per_hour)
        )
        new = Limits(per_day=per_day, per_hour=per_hour)
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
        per_day: app_commands.Range[int, b.PER_DAY.low, b.PER_DAY.high] | None = None,
        per_hour: app_commands.Range[int, b.PER_HOUR.low, b.PER_HOUR.high] | None = None,
        remove: bool = False,
    ) -> None:
        """Give a role its own quota (the most generous of a member's roles applies)."""
        await self.mods.change(
            ticket_for(interaction),
            "role_limits",
            change.role_limits(role.id, per_day, per_hour, remove=remove),
        )
        if remove:
            await _say(interaction, f"{role.mention} now has the default quota.")
        else:
            new = Limits(per_day=per_day, per_hour=per_hour)
            await _say(interaction, f"{role.mention}'s quota is now {new.describe()}.")

    @limits.command(name="server")
    @app_commands.describe(
        per_day="Images for the whole server per rolling day; leave out for none"
    )
    async def limits_server(
        self,
        interaction: discord.Interaction[Any],
        per_day: app_commands.Range[int, b.SERVER_PER_DAY.low, b.SERVER_PER_DAY.high] | None = None,
    ) -> None:
        """Cap the images the whole server makes per day."""
        await self.mods.change(ticket_for(interaction), "server_cap", change.server_cap(per_day))
        text = f"{per_day} images per day" if per_day is not None else "no limit"
        await _say(interaction, f"The server's daily cap is now {text}.")

    @limits.command(name="cooldown")
    @app_commands.describe(seconds="Seconds a member waits between images; 0 for none")
    async def limits_cooldown(
        self,
        interaction: discord.Interaction[Any],
        seconds: app_commands.Range[int, b.COOLDOWN_SECONDS.low, b.COOLDOWN_SECONDS.high],
    ) -> None:
        """Set the wait between a member's images."""
        policy = await self.mods.change(
            ticket_for(interaction), "cooldown", change.cooldown(seconds)
        )
        span = policy.cooldown
        await _say(
            interaction, f"The cooldown is now {describe_duration(span) if span else 'off'}."
        )

    @limits.command(name="inflight")
    @app_commands.describe(
        member="Most images one member may have in progress; leave out for no cap",
        server="Most images the server may have in progress; leave out for no cap",
    )
    async def limits_inflight(
        self,
        interaction: discord.Interaction[Any],
        member: app_commands.Range[int, b.MEMBER_IN_FLIGHT.low, b.MEMBER_IN_FLIGHT.high]
        | None = None,
        server: app_commands.Range[int, b.SERVER_IN_FLIGHT.low, b.SERVER_IN_FLIGHT.high]
        | None = None,
    ) -> None:
        """Cap the images in progress at once, per member and for the server."""
        await self.mods.change(
            ticket_for(interaction), "in_flight", change.in_flight(member, server)
        )
        await _say(
            interaction,
            f"In progress at once: {member or 'any number'} per member, "
            f"{server or 'any number'} for the server.",
        )

    # --- terms -----------------------------------------------------------------------------

    @terms.command(name="add")
    @app_commands.describe(
        term="A word or phrase (whole words, any case, accents or look-alike letters), "
        "or a regular expression",
        pattern="Treat the term as a regular expression",
    )
    async def terms_add(
        self,
        interaction: discord.Interaction[Any],
        term: app_commands.Range[str, 1, b.TERM_LENGTH],
        pattern: bool = False,
    ) -> None:
        """Ban a word or pattern from prompts."""
        kind = TermKind.PATTERN if pattern else TermKind.WORD
        added = await self.mods.add_term(ticket_for(interaction), kind, term)
        await _say(interaction, f"Prompts with “{clean(added.text, 100)}” are now refused.")

    @terms.command(name="remove")
    @app_commands.describe(term="The word or pattern, as listed by /mod terms list")
    async def terms_remove(
        self,
        interaction: discord.Interaction[Any],
        term: app_commands.Range[str, 1, b.TERM_LENGTH],
    ) -> None:
        """Allow a banned word or pattern again."""
        if await self.mods.remove_term(ticket_for(interaction), term):
            await _say(interaction, f"“{clean(term, 100)}” is allowed again.")
        else:
            await _say(interaction, f"“{clean(term, 100)}” was not banned.")

    @terms.command(name="list")
    async def terms_list(self, interaction: discord.Interaction[Any]) -> None:
        """List the banned words and patterns."""
        terms = await self.mods.terms(ticket_for(interaction))
        if not terms:
            await _say(interaction, "No words or patterns are banned.")
            return
        lines = [f"• {t.kind.value}: `{clean(t.text, 100)}`" for t in terms[:60]]
        await _say(interaction, "Banned in prompts:\n" + "\n".join(lines))

    @terms.command(name="test")
    @app_commands.describe(prompt="A prompt to check against the banned terms")
    async def terms_test(
        self,
        interaction: discord.Interaction[Any],
        prompt: app_commands.Range[str, 1, b.TEST_PROMPT_LENGTH],
    ) -> None:
        """Check whether a prompt would be refused, and for which term."""
        hit = await self.mods.test_prompt(ticket_for(interaction), prompt)
        if hit is None:
            await _say(interaction, "That prompt passes the banned terms.")
        elif hit.timed_out:
            await _say(
                interaction, f"Refused: the pattern `{clean(hit.term.text, 100)}` ran out of time."
            )
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
        await self.mods.change(ticket_for(interaction), "channels", change.add_channel(channel.id))
        await _say(interaction, f"Images may be made in {channel.mention}.")

    @channels.command(name="remove")
    @app_commands.describe(channel="A channel to take off the list")
    async def channels_remove(
        self, interaction: discord.Interaction[Any], channel: discord.TextChannel
    ) -> None:
        """Take a channel off the allowed list (an empty list allows every channel)."""
        policy = await self.mods.change(
            ticket_for(interaction), "channels", change.remove_channel(channel.id)
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
        limit: app_commands.Range[int, b.STRIKE_LIMIT.low, b.STRIKE_LIMIT.high],
        window_hours: app_commands.Range[
            int, b.STRIKE_WINDOW_HOURS.low, b.STRIKE_WINDOW_HOURS.high
        ] = 24,
        ban: app_commands.Range[str, 1, b.DURATION_LENGTH] = "24h",
    ) -> None:
        """Set when prompts refused by the image service bring an automatic ban."""
        policy = await self.mods.change(
            ticket_for(interaction), "strikes", change.strikes(limit, window_hours, ban)
        )
        if limit == 0:
            await _say(interaction, "Strikes no longer bring an automatic ban.")
        else:
            await _say(
                interaction,
                f"{limit} strikes within {describe_duration(policy.strike_window)} bring a "
                f"{describe_duration(policy.strike_ban)} ban.",
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
        await self.mods.change(ticket_for(interaction), "log_channel", change.log_channel(cid))
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
        await self.mods.change(
            ticket_for(interaction), "moderator_role", change.moderator_role(rid)
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
        try:
            chosen = Mode(mode.value)
        except ValueError:
            # A crafted interaction can carry any string: discord.py does not check choices.
            names = ", ".join(c.value for c in MODE_CHOICES)
            await _say(interaction, f"mode must be one of {names}.")
            return
        await self.mods.change(ticket_for(interaction), "default_mode", change.default_mode(chosen))
        await _say(interaction, f"/imagine now uses {chosen.label} unless a member picks a mode.")

    # --- reports and status ----------------------------------------------------------------

    @mod.command(name="report")
    @app_commands.describe(
        member="Only this member's use; leave out for the whole server",
        days=f"How many days back (at most {b.REPORT_DAYS.high})",
    )
    async def report(
        self,
        interaction: discord.Interaction[Any],
        member: discord.Member | None = None,
        days: app_commands.Range[int, b.REPORT_DAYS.low, b.REPORT_DAYS.high] = 7,
    ) -> None:
        """Usage over a period: jobs, successes, failures, refusals, strikes, top members."""
        b.REPORT_DAYS.check(days)  # before deferring, so the sentence is the first answer
        await interaction.response.defer(ephemeral=True, thinking=True)
        report = await self.mods.report(ticket_for(interaction), days, member.id if member else 0)
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
        await interaction.response.defer(ephemeral=True, thinking=True)
        status = await self.mods.status(ticket_for(interaction))
        health = await self.health() if self.health is not None else None
        await interaction.followup.send(
            status_text(status, health)[:2000], ephemeral=True, allowed_mentions=NO_PINGS
        )

    # --- buttons ---------------------------------------------------------------------------

    async def on_log_button(
        self, interaction: discord.Interaction[Any], action: LogAction, job_id: int, user_id: int
    ) -> None:
        """Ban the requester, refund the job, or delete its result (moderators only)."""
        try:
            target = await self._member(interaction, user_id)
            sentence = await self.mods.log_action(
                ticket_for(interaction),
                action,
                job_id,
                target,
                DiscordResults(self.bot),
                bot_user_id=self._bot_id(),
            )
        except Exception as exc:
            await tell_error(interaction, exc)
            return
        await _say(interaction, sentence)

    async def _member(self, interaction: discord.Interaction[Any], user_id: int) -> Ticket:
        """The member a log entry names, with their roles and permissions when they are still
        in the server (GET /guilds/{id}/members/{user}; no privileged intent needed)."""
        guild = interaction.guild
        if guild is None or not 0 < user_id < 2**63:
            return Ticket(guild_id=interaction.guild_id or 0, channel_id=0, user_id=user_id)
        member = guild.get_member(user_id)
        if member is None:
            try:
                member = await guild.fetch_member(user_id)
            except discord.HTTPException:
                return Ticket(guild_id=guild.id, channel_id=0, user_id=user_id)
        return target_of(member)

    async def on_report(self, interaction: discord.Interaction[Any], job_id: int) -> None:
        """A member's 🚩 Report: recorded and sent to the log channel."""
        try:
            sentence = await self.mods.report_job(ticket_for(interaction), job_id)
        except Exception as exc:
            await tell_error(interaction, exc)
            return
        await _say(interaction, sentence)
