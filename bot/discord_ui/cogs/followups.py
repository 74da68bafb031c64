"""Follow-up buttons and the prompts they ask for: U/V/🔄/zoom/pan presses, Custom Zoom and
remix input (Discord modals), and "Imagine n" under a /describe.

Component callbacks do not pass through the command tree's error handler, so each entry point
here sends its errors through `tell_error` itself.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import discord
from discord.ext import commands

from bot.core.followups import zoom_prompt
from bot.core.messages import Message, msg
from bot.core.services import ActionService, ImagineService
from bot.discord_ui.i18n.render import render
from bot.discord_ui.i18n.where import DEFAULT_LOCALE, member_locale
from bot.discord_ui.jobflow import show_follow_up, ticket_for
from bot.discord_ui.tree import tell_error
from bot.discord_ui.views import MjcordModal

log = logging.getLogger(__name__)

#: (interaction, prompt or "", zoom or "") → continue the job.
PromptHandler = Callable[[discord.Interaction[Any], str, str], Awaitable[None]]


class PromptModal(MjcordModal):
    """Asks for a new prompt (empty keeps the job's own) and, for Custom Zoom, the zoom.

    It is built from nothing but the button, so it can be the press's immediate answer; the
    job's prompt is read from the ledger only once the member submits.
    """

    def __init__(
        self, *, title: Message, zoom: bool, on_done: PromptHandler, locale: str = DEFAULT_LOCALE
    ) -> None:
        # Only the member who pressed sees the form: their client's language. Discord allows
        # 45 characters in a title or label, 100 in a placeholder (the catalogue test checks).
        super().__init__(title=render(title, locale), timeout=600)
        # TRANSLATORS: a form field's label, at most 45 characters.
        label = render(msg("New prompt (optional)"), locale)
        # TRANSLATORS: a form field's placeholder, at most 100 characters.
        placeholder = render(msg("Leave empty to keep the prompt as it is"), locale)
        self.prompt: discord.ui.TextInput[PromptModal] = discord.ui.TextInput(
            label=label,
            placeholder=placeholder,
            custom_id="prompt",
            style=discord.TextStyle.paragraph,
            required=False,
            max_length=4000,
        )
        self.add_item(self.prompt)
        self.zoom: discord.ui.TextInput[PromptModal] | None = None
        if zoom:
            # TRANSLATORS: a form field's label, at most 45 characters.
            zoom_label = render(msg("Zoom out by (--zoom, from 1 to 2)"), locale)
            self.zoom = discord.ui.TextInput(
                label=zoom_label,
                custom_id="zoom",
                default="1.5",
                max_length=4,
            )
            self.add_item(self.zoom)
        self._on_done = on_done

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        """Acknowledge, then pass the answers on."""
        await interaction.response.defer()
        await self._on_done(
            interaction, self.prompt.value.strip(), self.zoom.value if self.zoom else ""
        )

    async def on_error(  # type: ignore[override]  # discord.py's Modal narrows BaseView's hook
        self, interaction: discord.Interaction[Any], error: Exception, /
    ) -> None:
        """Tell the member; log the detail."""
        await tell_error(interaction, error)


class FollowUpCog(commands.Cog):
    """Handles every press of a result's buttons; registered as the bot's button handler.

    Each press is answered first — with a modal when the button needs input, else a silent
    acknowledgement — and only then is anything read or sent.
    """

    def __init__(self, actions: ActionService, imagine: ImagineService) -> None:
        self.actions = actions
        self.imagine = imagine

    async def on_job_button(
        self, interaction: discord.Interaction[Any], job_id: int, index: int, kind: str
    ) -> None:
        """A press of button `index` under job `job_id`'s result."""
        try:
            if kind == "z":
                await interaction.response.send_modal(
                    PromptModal(
                        # TRANSLATORS: a form's title, at most 45 characters.
                        title=msg("Custom zoom"),
                        zoom=True,
                        locale=member_locale(interaction),
                        on_done=lambda i, text, zoom: self._zoom(i, job_id, index, text, zoom),
                    )
                )
                return
            await interaction.response.defer()
            if kind == "d":
                await self._imagine_described(interaction, job_id, index)
            else:
                await self._press(interaction, job_id, index, None)
        except Exception as exc:
            await tell_error(interaction, exc)

    async def on_continue(self, interaction: discord.Interaction[Any], job_id: int) -> None:
        """ "Edit prompt and continue" on a job waiting in MODAL: ask for the prompt."""
        try:
            await interaction.response.send_modal(
                PromptModal(
                    # TRANSLATORS: a form's title, at most 45 characters.
                    title=msg("Edit the prompt"),
                    zoom=False,
                    locale=member_locale(interaction),
                    on_done=lambda i, text, _: self._confirm(i, job_id, text),
                )
            )
        except Exception as exc:
            await tell_error(interaction, exc)

    async def _press(
        self, interaction: discord.Interaction[Any], job_id: int, index: int, prompt: str | None
    ) -> None:
        job = await self.actions.press(job_id, index, ticket_for(interaction), prompt=prompt)
        await show_follow_up(interaction.client, job, self.actions)

    async def _zoom(
        self, interaction: discord.Interaction[Any], job_id: int, index: int, text: str, zoom: str
    ) -> None:
        parent = await self.actions.parent_button(job_id, index, ticket_for(interaction))
        prompt = zoom_prompt(text or parent.final_prompt or parent.prompt, zoom)
        await self._press(interaction, job_id, index, prompt)

    async def _confirm(self, interaction: discord.Interaction[Any], job_id: int, text: str) -> None:
        await self.actions.confirm(job_id, text, ticket_for(interaction, text))
        if interaction.message is not None:
            try:  # the continue button has done its work
                await interaction.message.edit(view=None)
            except discord.HTTPException as exc:
                log.info("job %s: could not remove the continue button: %s", job_id, exc)

    async def _imagine_described(
        self, interaction: discord.Interaction[Any], job_id: int, index: int
    ) -> None:
        job = await self.imagine.imagine_described(job_id, index, ticket_for(interaction))
        await show_follow_up(interaction.client, job, self.imagine)
