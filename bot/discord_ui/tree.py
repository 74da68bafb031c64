"""The command tree with the one error policy for every slash command and button.

Each expected error (`MjcordError`) reaches the member as its one sentence, ephemeral; anything
else is logged with a short reference that the member also sees.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

import discord
from discord import app_commands

from bot.core.errors import ApiError, Misconfigured, MjcordError
from bot.discord_ui.render import NO_PINGS

log = logging.getLogger(__name__)

#: Set in `interaction.extras` once the deferred reply has become the job's public message.
REPLIED = "mjcord_replied"


class MjcordTree(app_commands.CommandTree[Any]):
    """CommandTree whose `on_error` turns every failure into one clear, private sentence."""

    async def on_error(
        self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError
    ) -> None:
        """Map the error to a member sentence; log the detail."""
        original = error.original if isinstance(error, app_commands.CommandInvokeError) else error
        await tell_error(interaction, original)


def member_sentence(error: BaseException, *, where: str = "") -> str:
    """The sentence a member sees for `error`, logging the detail once."""
    if isinstance(error, Misconfigured):
        log.error("image API rejected the operator's key%s: %s", where, error.detail)
        return error.member_message
    if isinstance(error, ApiError):
        # The client and the service have logged the detail already; this links the interaction.
        log.debug("image API error%s: %s: %s", where, type(error).__name__, error.detail)
        return error.member_message
    if isinstance(error, MjcordError):
        log.info("refused%s: %s", where, error.detail or error.member_message)
        return error.member_message
    if isinstance(error, app_commands.CheckFailure):
        return "You can't use this command here."
    ref = secrets.token_hex(3)
    log.error("unexpected error%s (ref %s)", where, ref, exc_info=error)
    return f"Something went wrong on my side (ref {ref}). Please try again in a minute."


async def tell_error(interaction: discord.Interaction[Any], error: BaseException) -> None:
    """Tell the member privately what went wrong, whatever state the interaction is in."""
    command = interaction.command.qualified_name if interaction.command else "component"
    sentence = member_sentence(error, where=f" in /{command} (interaction {interaction.id})")
    await tell(interaction, sentence)


async def tell(interaction: discord.Interaction[Any], sentence: str) -> None:
    """An ephemeral message to the member who ran the interaction.

    After a public "thinking" defer, Discord makes the first followup replace the loading message
    *publicly*; so when no public reply was made yet, the loading message is deleted first and
    the sentence is sent as a new, ephemeral followup.
    """
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
