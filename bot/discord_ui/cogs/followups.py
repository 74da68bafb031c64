"""Follow-up buttons and the prompts they ask for: U/V/🔄/zoom/pan presses, Custom Zoom and
remix input (Discord modals), and "Imagine n" under a /describe.

Component callbacks do not pass through the command tree's error handler, so each entry point
here sends its errors through `tell_error` itself.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import discord
from discord.ext import commands

from bot.core.errors import Refused
from bot.core.followups import zoom_prompt
from bot.core.services import ActionService, ImagineService
from bot.discord_ui.jobflow import show_follow_up, ticket_for
from bot.discord_ui.tree import tell_error
from bot.discord_ui.views import MjcordModal

log = logging.getLogger(__name__)

#: A modal's custom id says what its answer continues, so whichever process receives the answer
#: can act on it — also one started after the process that opened the modal died.
MODAL_ID = re.compile(r"mjm:(?P<what>zoom|continue):(?P<job>\d+):(?P<index>\d+)")


class PromptModal(MjcordModal):
    """Asks for a new prompt (empty keeps the job's own) and, for Custom Zoom, the zoom.

    It is built from nothing but the button, so it can be the press's immediate answer; the
    job's prompt is read from the ledger only once the member submits. The answer is handled by
    `FollowUpCog.on_interaction` from the custom id, not by this object (which dies with its
    process).
    """

    def __init__(self, *, title: str, what: str, job_id: int, index: int = 0) -> None:
        super().__init__(title=title, timeout=600, custom_id=f"mjm:{what}:{job_id}:{index}")
        self.add_item(
            discord.ui.TextInput(
                label="New prompt (optional)",  # Discord allows 45 characters here
                placeholder="Leave empty to keep the prompt as it is",
                custom_id="prompt",
                style=discord.TextStyle.paragraph,
                required=False,
                max_length=4000,
            )
        )
        if what == "zoom":
            self.add_item(
                discord.ui.TextInput(
                    label="Zoom out by (--zoom, from 1 to 2)",
                    custom_id="zoom",
                    default="1.5",
                    max_length=4,
                )
            )

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        """Nothing here: the cog's listener answers every modal of ours (see the class doc)."""


def _answers(components: Any) -> dict[str, str]:
    """The text inputs of a modal submit, by custom id (action rows or label components)."""
    found: dict[str, str] = {}
    for item in components or []:
        if isinstance(item, dict):
            if "custom_id" in item and "value" in item:
                found[str(item["custom_id"])] = str(item["value"] or "")
            found.update(_answers(item.get("components")))
            found.update(_answers([item["component"]] if "component" in item else []))
    return found


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
                modal = PromptModal(title="Custom zoom", what="zoom", job_id=job_id, index=index)
                await interaction.response.send_modal(modal)
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
            modal = PromptModal(title="Edit the prompt", what="continue", job_id=job_id)
            await interaction.response.send_modal(modal)
        except Exception as exc:
            await tell_error(interaction, exc)

    @commands.Cog.listener()
    async def on_interaction(self, interaction: discord.Interaction[Any]) -> None:
        """The answer to one of our modals, whichever process opened it: acknowledge, then
        continue the job it names."""
        if interaction.type is not discord.InteractionType.modal_submit:
            return
        data: dict[str, Any] = dict(interaction.data or {})
        matched = MODAL_ID.fullmatch(str(data.get("custom_id", "")))
        if matched is None:
            return
        values = _answers(data.get("components"))
        job_id, index = int(matched["job"]), int(matched["index"])
        text = values.get("prompt", "").strip()
        try:
            await interaction.response.defer()
            if matched["what"] == "zoom":
                await self._zoom(interaction, job_id, index, text, values.get("zoom", ""))
            else:
                await self._confirm(interaction, job_id, text)
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
        try:
            prompt = zoom_prompt(text or parent.final_prompt or parent.prompt, zoom)
        except ValueError as exc:
            raise Refused(f"zoom {zoom!r}", member_message=str(exc)) from None
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
