"""/mod limits and /mod channels: each reads its options, hands a checked change to the
service, and answers."""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands

from bot.core.messages import ChannelRefs, msg, plural_msg
from bot.core.moderation import Limits, describe_duration
from bot.core.moderation import bounds as b
from bot.core.moderation import settings as change
from bot.discord_ui.cogs.mod_common import CHANNELS, LIMITS, ModBase, say
from bot.discord_ui.jobflow import ticket_for


class SettingsCommands(ModBase):
    """The commands that set quotas, caps and the allowed channels."""

    @LIMITS.command(name="default")
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
        await say(interaction, msg("Everyone's quota is now {quota}.", quota=new.describe()))

    @LIMITS.command(name="role")
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
            await say(interaction, msg("{role} now has the default quota.", role=role.mention))
        else:
            new = Limits(per_day=per_day, per_hour=per_hour)
            await say(
                interaction,
                msg("{role}'s quota is now {quota}.", role=role.mention, quota=new.describe()),
            )

    @LIMITS.command(name="server")
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
        if per_day is None:
            await say(interaction, msg("The server's daily cap is now off."))
        else:
            await say(
                interaction,
                plural_msg(
                    "The server's daily cap is now {count} image per day.",
                    "The server's daily cap is now {count} images per day.",
                    per_day,
                ),
            )

    @LIMITS.command(name="cooldown")
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
        if span:
            await say(interaction, msg("The cooldown is now {span}.", span=describe_duration(span)))
        else:
            await say(interaction, msg("The cooldown is now off."))

    @LIMITS.command(name="inflight")
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
        anything = msg("any number")
        await say(
            interaction,
            msg(
                "In progress at once: {member} per member, {server} for the server.",
                member=member or anything,
                server=server or anything,
            ),
        )

    # --- channels --------------------------------------------------------------------------

    @CHANNELS.command(name="add")
    @app_commands.describe(channel="A channel where images may be made")
    async def channels_add(
        self, interaction: discord.Interaction[Any], channel: discord.TextChannel
    ) -> None:
        """Allow images in a channel (once any is added, only those channels)."""
        await self.mods.change(ticket_for(interaction), "channels", change.add_channel(channel.id))
        await say(interaction, msg("Images may be made in {channel}.", channel=channel.mention))

    @CHANNELS.command(name="remove")
    @app_commands.describe(channel="A channel to take off the list")
    async def channels_remove(
        self, interaction: discord.Interaction[Any], channel: discord.TextChannel
    ) -> None:
        """Take a channel off the allowed list (an empty list allows every channel)."""
        policy = await self.mods.change(
            ticket_for(interaction), "channels", change.remove_channel(channel.id)
        )
        if policy.allowed_channels:
            sentence = msg(
                "{channel} is off the list; images may be made in the other listed channels.",
                channel=channel.mention,
            )
        else:
            sentence = msg(
                "{channel} is off the list; images may be made in every channel.",
                channel=channel.mention,
            )
        await say(interaction, sentence)

    @CHANNELS.command(name="list")
    async def channels_list(self, interaction: discord.Interaction[Any]) -> None:
        """List the channels where images may be made."""
        policy = await self.mods.policy(interaction.guild_id or 0)
        if not policy.allowed_channels:
            await say(interaction, msg("Images may be made in every channel."))
        else:
            places = ChannelRefs(tuple(sorted(policy.allowed_channels)))
            await say(interaction, msg("Images may be made only in {channels}.", channels=places))
