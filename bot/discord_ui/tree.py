"""The command tree with the one error policy for every slash command and button.

Each expected error (`MjcordError`) reaches the member as its one sentence, ephemeral; anything
else is logged with a short reference that the member also sees.
"""

from __future__ import annotations

import logging
import secrets
from typing import TYPE_CHECKING

import discord
from discord import app_commands

from bot.core.errors import ApiError, Misconfigured, MjcordError
from bot.core.messages import Message, msg
from bot.discord_ui.i18n.render import render
from bot.discord_ui.i18n.where import member_locale
from bot.discord_ui.render import NO_PINGS
from bot.discord_ui.validation import InvalidInput, check_command

if TYPE_CHECKING:
    from bot.discord_ui.client import MjcordBot

log = logging.getLogger(__name__)

#: Set in `interaction.extras` once the deferred reply has become the job's public message.
REPLIED = "mjcord_replied"

#: The one sentence for an interaction from a DM (or a group DM): no server, no moderation.
SERVER_ONLY = msg("mjcord works only in servers: run this in a server channel where I am present.")

#: Where every command may run: servers only, installed to a server only. Discord hides the
#: commands elsewhere (`contexts` [0], `integration_types` [0] in the synced payload; see
#: Discord's "Application Commands" docs, "Interaction Contexts"); `interaction_check` refuses
#: a DM interaction that arrives anyway (a crafted or replayed payload).
GUILD_ONLY = app_commands.AppCommandContext(guild=True, dm_channel=False, private_channel=False)
GUILD_INSTALL = app_commands.AppInstallationType(guild=True, user=False)


class MjcordTree(app_commands.CommandTree["MjcordBot"]):
    """CommandTree whose checks refuse bad input first, and whose `on_error` turns every
    failure into one clear, private sentence."""

    def __init__(self, client: MjcordBot) -> None:
        super().__init__(client, allowed_contexts=GUILD_ONLY, allowed_installs=GUILD_INSTALL)

    async def interaction_check(self, interaction: discord.Interaction[MjcordBot], /) -> bool:
        """Before any command runs: servers only, and every option within its declaration.

        Raises (never returns False): discord.py drops a False silently, leaving the member
        with "This interaction failed"; an `AppCommandError` reaches `on_error` instead.
        """
        if interaction.type is not discord.InteractionType.application_command:
            return True  # autocomplete: nothing to refuse with a message
        if interaction.guild_id is None:
            raise InvalidInput(SERVER_ONLY)
        check_command(interaction)
        return True

    async def on_error(
        self, interaction: discord.Interaction[MjcordBot], error: app_commands.AppCommandError
    ) -> None:
        """Map the error to a member sentence; log the detail."""
        original = error.original if isinstance(error, app_commands.CommandInvokeError) else error
        await tell_error(interaction, original)


def said(error: MjcordError, locale: str = "en-US") -> str:
    """An error's member sentence in `locale` (its catalogue key), else its English."""
    return render(error.message, locale) if error.message is not None else error.member_message


def member_sentence(error: BaseException, *, where: str = "", locale: str = "en-US") -> str:
    """The sentence a member sees for `error`, in their `locale`, logging the detail once."""
    if isinstance(error, Misconfigured):
        log.error("image API rejected the operator's key%s: %s", where, error.detail)
        return said(error, locale)
    if isinstance(error, ApiError):
        # The client and the service have logged the detail already; this links the interaction.
        log.debug("image API error%s: %s: %s", where, type(error).__name__, error.detail)
        return said(error, locale)
    if isinstance(error, MjcordError):
        log.info("refused%s: %s", where, error.detail or error.member_message)
        return said(error, locale)
    library = _library_sentence(error)
    if library is not None:
        log.info("refused%s: %s: %s", where, type(error).__name__, error)
        return render(library, locale)
    ref = secrets.token_hex(3)
    log.error("unexpected error%s (ref %s)", where, ref, exc_info=error)
    return render(
        msg("Something went wrong on my side (ref {ref}). Please try again in a minute.", ref=ref),
        locale,
    )


def _library_sentence(error: BaseException) -> Message | None:
    """Sentences for discord.py's own errors: input, permissions, things that are gone."""
    if isinstance(error, InvalidInput):
        return error.message
    if isinstance(error, app_commands.NoPrivateMessage):
        return SERVER_ONLY
    if isinstance(error, app_commands.TransformerError):
        # The error names no option (only its type and value); the value is the member's text
        # and is not echoed.
        return msg("An option has a value I can't use; please pick it again.")
    if isinstance(error, app_commands.MissingPermissions | app_commands.MissingAnyRole):
        return msg("You don't have the permission this command needs here.")
    if isinstance(error, app_commands.BotMissingPermissions):
        missing = ", ".join(p.replace("_", " ") for p in error.missing_permissions)
        # TRANSLATORS: {permission} is Discord's permission name in English ("attach files").
        return msg(
            "I need the {permission} permission here; please ask a moderator.", permission=missing
        )
    if isinstance(error, app_commands.CommandOnCooldown):
        seconds = f"{error.retry_after:.0f}"
        return msg("Please wait {seconds} s before using this again.", seconds=seconds)
    if isinstance(error, app_commands.CommandNotFound | app_commands.CommandSignatureMismatch):
        return msg("This command has changed or is no longer available; please try it again.")
    if isinstance(error, app_commands.CheckFailure):
        return msg("You can't use this command here.")
    if isinstance(error, discord.NotFound):
        return msg("That message, channel or member is gone, so I could not finish this.")
    if isinstance(error, discord.Forbidden):
        return msg(
            "Discord did not let me do that here (a missing permission); please ask a moderator."
        )
    return None


async def tell_error(interaction: discord.Interaction[MjcordBot], error: BaseException) -> None:
    """Tell the member privately what went wrong, whatever state the interaction is in."""
    command = interaction.command.qualified_name if interaction.command else "component"
    sentence = member_sentence(
        error,
        where=f" in /{command} (interaction {interaction.id})",
        locale=member_locale(interaction),  # only this member sees it: their client's language
    )
    await tell(interaction, sentence)


async def tell(interaction: discord.Interaction[MjcordBot], sentence: str | Message) -> None:
    """An ephemeral message to the member who ran the interaction (a `Message` is rendered in
    their client's language: only they see it).

    After a public "thinking" defer, Discord makes the first followup replace the loading message
    *publicly*; so when no public reply was made yet, the loading message is deleted first and
    the sentence is sent as a new, ephemeral followup.
    """
    if isinstance(sentence, Message):
        sentence = render(sentence, member_locale(interaction))
    try:
        if not interaction.response.is_done():
            await interaction.response.send_message(
                sentence, ephemeral=True, allowed_mentions=NO_PINGS
            )
            return
        if (
            interaction.response.type is discord.InteractionResponseType.deferred_channel_message
            and not interaction.extras.get(REPLIED)
        ):
            try:
                await interaction.delete_original_response()
            except discord.HTTPException as exc:
                log.warning("could not remove the loading message: %s", exc)
        await interaction.followup.send(sentence, ephemeral=True, allowed_mentions=NO_PINGS)
    except Exception as exc:  # Discord errors, or a connection closing during shutdown
        log.warning("could not tell the member (interaction %s): %r", interaction.id, exc)
