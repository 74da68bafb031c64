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
import contextlib
import io
import logging
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.core.jobs import Mode
from bot.core.messages import Code, Stamp, UserRef, msg, plural_msg
from bot.core.moderation import TermKind, describe_duration
from bot.core.moderation import bounds as b
from bot.core.moderation import settings as change
from bot.core.moderation.service import LogAction, ModerationService
from bot.core.ports import Ticket
from bot.discord_ui.cogs.mod_common import (
    CHANNELS,
    LIMITS,
    MOD,
    MODE_CHOICES,
    TERMS,
    Health,
    NotModerator,
    say,
    target_of,
)
from bot.discord_ui.cogs.mod_language import LanguageCommands
from bot.discord_ui.cogs.mod_settings import SettingsCommands
from bot.discord_ui.i18n.where import member_locale
from bot.discord_ui.jobflow import ticket_for
from bot.discord_ui.mod_buttons import MODERATION_COG, DiscordResults, ModLogButton, ReportButton
from bot.discord_ui.mod_chart import daily_chart
from bot.discord_ui.mod_embeds import bans_text, report_embed, status_text
from bot.discord_ui.render import NO_PINGS, clean
from bot.discord_ui.tree import tell_error

log = logging.getLogger(__name__)

#: Seconds between re-reads of every server's chosen language (see `ModerationCog`).
LANGUAGE_REFRESH = 60.0

__all__ = ["ModerationCog", "NotModerator", "QuotaCog"]


class QuotaCog(commands.Cog, name="Quota"):
    """/quota: what a member has made and has left."""

    def __init__(self, mods: ModerationService) -> None:
        self.mods = mods

    @app_commands.command(name="quota")
    @app_commands.guild_only()
    async def quota(self, interaction: discord.Interaction[Any]) -> None:
        """See how many images you have left here and when the next one frees up."""
        await say(interaction, await self.mods.quota(ticket_for(interaction)))


class ModerationCog(SettingsCommands, LanguageCommands, commands.Cog, name=MODERATION_COG):
    """The /mod commands, the log channel's buttons and 🚩 Report."""

    mod = MOD
    limits = LIMITS
    terms = TERMS
    channels = CHANNELS

    def __init__(
        self,
        bot: commands.Bot | commands.AutoShardedBot,
        mods: ModerationService,
        *,
        health: Health | None = None,
        language_refresh: float = LANGUAGE_REFRESH,
    ) -> None:
        self.bot = bot
        self.mods = mods
        self.health = health
        self.language_refresh = language_refresh
        self._refreshing: asyncio.Task[None] | None = None

    async def cog_load(self) -> None:
        """Register the restart-proof moderation buttons (they find this cog by its name), and
        read every server's chosen public language before anything is posted (and every
        `language_refresh` seconds after, for changes made in another process)."""
        self.bot.add_dynamic_items(ModLogButton, ReportButton)
        await self.mods.load_languages()
        self._refreshing = asyncio.create_task(self._refresh_languages())

    async def cog_unload(self) -> None:
        """Stop re-reading the languages."""
        if self._refreshing is not None:
            self._refreshing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refreshing

    async def _refresh_languages(self) -> None:
        while True:
            await asyncio.sleep(self.language_refresh)
            try:
                await self.mods.load_languages()
            except Exception as exc:  # the database is away: keep what is held, try again
                log.warning("could not re-read the servers' languages: %r", exc)

    async def interaction_check(self, interaction: discord.Interaction[Any]) -> bool:  # type: ignore[override]
        """Every /mod command: Manage Server or the moderator role, checked at run time."""
        if interaction.guild_id and await self.mods.is_moderator(ticket_for(interaction)):
            return True
        log.info("user %s ran /mod without permission", interaction.user.id)
        raise NotModerator(f"user {interaction.user.id} is not a moderator")

    # --- bans ------------------------------------------------------------------------------

    @MOD.command(name="ban")
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
        if ban.until:
            await say(
                interaction,
                msg(
                    "{member} is banned from making images until {when}.",
                    member=UserRef(member.id),
                    when=Stamp(ban.until, "f"),
                ),
            )
        else:
            await say(
                interaction,
                msg(
                    "{member} is banned from making images until you lift it.",
                    member=UserRef(member.id),
                ),
            )

    @MOD.command(name="unban")
    @app_commands.describe(member="Whose ban to lift")
    async def unban(self, interaction: discord.Interaction[Any], member: discord.Member) -> None:
        """Lift a member's ban."""
        who = UserRef(member.id)
        if await self.mods.unban(ticket_for(interaction), member.id):
            await say(interaction, msg("{member} may make images again.", member=who))
        else:
            await say(interaction, msg("{member} was not banned.", member=who))

    @MOD.command(name="bans")
    async def bans(self, interaction: discord.Interaction[Any]) -> None:
        """List the members banned from making images."""
        await say(interaction, bans_text(await self.mods.bans(ticket_for(interaction))))

    # --- quota -----------------------------------------------------------------------------

    @MOD.command(name="grant")
    @app_commands.describe(member="Who gets extra images", images="How many extra images")
    async def grant(
        self,
        interaction: discord.Interaction[Any],
        member: discord.Member,
        images: app_commands.Range[int, b.GRANT_IMAGES.low, b.GRANT_IMAGES.high],
    ) -> None:
        """Give a member extra images beyond their quota."""
        total = await self.mods.grant(ticket_for(interaction), member.id, images)
        await say(
            interaction,
            plural_msg(
                "{member} now has {count} extra image.",
                "{member} now has {count} extra images.",
                total,
                member=UserRef(member.id),
            ),
        )

    @MOD.command(name="reset")
    @app_commands.describe(member="Whose quota to reset")
    async def reset(self, interaction: discord.Interaction[Any], member: discord.Member) -> None:
        """Reset a member's quota: their images of the last day no longer count."""
        count = await self.mods.reset(ticket_for(interaction), member.id)
        await say(
            interaction,
            plural_msg(
                "{member}'s quota is reset ({count} image forgiven).",
                "{member}'s quota is reset ({count} images forgiven).",
                count,
                member=UserRef(member.id),
            ),
        )

    # --- terms -----------------------------------------------------------------------------

    @TERMS.command(name="add")
    @app_commands.describe(
        term="A word or phrase (whole words, any case or accents), or a regular expression",
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
        await say(
            interaction, msg("Prompts with {term} are now refused.", term=Code(added.text[:100]))
        )

    @TERMS.command(name="remove")
    @app_commands.describe(term="The word or pattern, as listed by /mod terms list")
    async def terms_remove(
        self,
        interaction: discord.Interaction[Any],
        term: app_commands.Range[str, 1, b.TERM_LENGTH],
    ) -> None:
        """Allow a banned word or pattern again."""
        shown = Code(term[:100])
        if await self.mods.remove_term(ticket_for(interaction), term):
            await say(interaction, msg("{term} is allowed again.", term=shown))
        else:
            await say(interaction, msg("{term} was not banned.", term=shown))

    @TERMS.command(name="list")
    async def terms_list(self, interaction: discord.Interaction[Any]) -> None:
        """List the banned words and patterns."""
        terms = await self.mods.terms(ticket_for(interaction))
        if not terms:
            await say(interaction, msg("No words or patterns are banned."))
            return
        lines = [
            msg("• word: {term}", term=Code(t.text[:100]))
            if t.kind is TermKind.WORD
            else msg("• pattern: {term}", term=Code(t.text[:100]))
            for t in terms[:60]
        ]
        await say(interaction, [msg("Banned in prompts:"), *lines])

    @TERMS.command(name="test")
    @app_commands.describe(prompt="A prompt to check against the banned terms")
    async def terms_test(
        self,
        interaction: discord.Interaction[Any],
        prompt: app_commands.Range[str, 1, b.TEST_PROMPT_LENGTH],
    ) -> None:
        """Check whether a prompt would be refused, and for which term."""
        hit = await self.mods.test_prompt(ticket_for(interaction), prompt)
        if hit is None:
            await say(interaction, msg("That prompt passes the banned terms."))
        elif hit.timed_out:
            await say(
                interaction,
                msg(
                    "Refused: the pattern {pattern} ran out of time.",
                    pattern=Code(hit.term.text[:100]),
                ),
            )
        elif hit.term.kind is TermKind.WORD:
            await say(
                interaction,
                msg(
                    "Refused: “{matched}” matches the word {term}.",
                    matched=clean(hit.matched, 100),
                    term=Code(hit.term.text[:100]),
                ),
            )
        else:
            await say(
                interaction,
                msg(
                    "Refused: “{matched}” matches the pattern {term}.",
                    matched=clean(hit.matched, 100),
                    term=Code(hit.term.text[:100]),
                ),
            )

    # --- settings --------------------------------------------------------------------------

    @MOD.command(name="strikes")
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
            await say(interaction, msg("Strikes no longer bring an automatic ban."))
        else:
            await say(
                interaction,
                plural_msg(
                    "{count} strike within {window} brings a {length} ban.",
                    "{count} strikes within {window} bring a {length} ban.",
                    limit,
                    window=describe_duration(policy.strike_window),
                    length=describe_duration(policy.strike_ban),
                ),
            )

    @MOD.command(name="logchannel")
    @app_commands.describe(
        channel="Where to mirror submissions, refusals, strikes and actions; leave out to stop"
    )
    async def logchannel(
        self, interaction: discord.Interaction[Any], channel: discord.TextChannel | None = None
    ) -> None:
        """Set the moderators' log channel."""
        cid = channel.id if channel else 0
        await self.mods.change(ticket_for(interaction), "log_channel", change.log_channel(cid))
        await say(
            interaction,
            msg("The log channel is now {channel}.", channel=channel.mention)
            if channel
            else msg("The log channel is off."),
        )

    @MOD.command(name="modrole")
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
        await say(
            interaction,
            msg("{role} may now moderate the bot.", role=role.mention)
            if role
            else msg("Only Manage Server moderates now."),
        )

    @MOD.command(name="mode")
    @app_commands.describe(mode="The mode /imagine uses when a member does not choose one")
    @app_commands.choices(mode=MODE_CHOICES)
    async def mode(
        self, interaction: discord.Interaction[Any], mode: app_commands.Choice[str]
    ) -> None:
        """Set the server's default mode for /imagine."""
        # discord.py's Choice transformer has refused a value outside the choices already.
        chosen = Mode(mode.value)
        await self.mods.change(ticket_for(interaction), "default_mode", change.default_mode(chosen))
        await say(
            interaction,
            msg("/imagine now uses {mode} unless a member picks a mode.", mode=chosen.label),
        )

    # --- reports and status ----------------------------------------------------------------

    @MOD.command(name="report")
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
        embed = report_embed(report, member_locale(interaction))
        png = await asyncio.to_thread(daily_chart, report.daily)
        embed.set_image(url="attachment://usage.png")
        await interaction.followup.send(
            embed=embed,
            file=discord.File(io.BytesIO(png), filename="usage.png"),
            ephemeral=True,
            allowed_mentions=NO_PINGS,
        )

    @MOD.command(name="status")
    async def status(self, interaction: discord.Interaction[Any]) -> None:
        """API reachability, jobs in progress, and the latest failures."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        status = await self.mods.status(ticket_for(interaction))
        health = await self.health() if self.health is not None else None
        await interaction.followup.send(
            status_text(status, health, member_locale(interaction))[:2000],
            ephemeral=True,
            allowed_mentions=NO_PINGS,
        )

    # --- buttons ---------------------------------------------------------------------------

    async def on_log_button(
        self, interaction: discord.Interaction[Any], action: LogAction, job_id: int, user_id: int
    ) -> None:
        """Ban the requester, refund the job, or delete its result (moderators only).

        Acknowledged first (privately): looking the member up and deleting a result are calls
        to Discord, which must not hold up the acknowledgement.
        """
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            ticket = ticket_for(interaction)
            await self.mods.require_moderator(ticket)
            target = await self._member(interaction, user_id)
            sentence = await self.mods.log_action(
                ticket,
                action,
                job_id,
                target,
                DiscordResults(self.bot),
                bot_user_id=self._bot_id(),
            )
        except Exception as exc:
            await tell_error(interaction, exc)
            return
        await say(interaction, sentence)

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
        await say(interaction, sentence)
