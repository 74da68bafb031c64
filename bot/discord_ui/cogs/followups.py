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

from bot.core.errors import Refused
from bot.core.followups import describe_prompts, needs_prompt, zoom_prompt
from bot.core.jobs import Job, JobStatus, Route
from bot.core.services import ActionService, ImagineService
from bot.discord_ui.jobflow import show_follow_up, ticket_for
from bot.discord_ui.tree import tell_error

log = logging.getLogger(__name__)

PromptHandler = Callable[[discord.Interaction[Any], str], Awaitable[None]]


class PromptModal(discord.ui.Modal):
    """Asks the member for a prompt (pre-filled), then hands it on."""

    def __init__(self, *, title: str, default: str, on_done: PromptHandler) -> None:
        super().__init__(title=title, timeout=600)
        self.prompt: discord.ui.TextInput[PromptModal] = discord.ui.TextInput(
            label="Prompt",
            custom_id="prompt",
            style=discord.TextStyle.paragraph,
            default=default[:4000],
            max_length=4000,
        )
        self.add_item(self.prompt)
        self._on_done = on_done

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        """Pass the prompt on."""
        await self._on_done(interaction, self.prompt.value)

    async def on_error(  # type: ignore[override]  # discord.py's Modal narrows BaseView's hook
        self, interaction: discord.Interaction[Any], error: Exception, /
    ) -> None:
        """Tell the member; log the detail."""
        await tell_error(interaction, error)


class FollowUpCog(commands.Cog):
    """Handles every press of a result's buttons; registered as the bot's button handler."""

    def __init__(self, actions: ActionService, imagine: ImagineService) -> None:
        self.actions = actions
        self.imagine = imagine

    async def on_job_button(
        self, interaction: discord.Interaction[Any], job_id: int, index: int
    ) -> None:
        """A press of button `index` under job `job_id`'s result."""
        try:
            parent = await self.actions.ledger.repo.get(job_id)
            if parent is not None and parent.action == "DESCRIBE":
                await interaction.response.defer()
                await self._imagine_described(interaction, parent, index)
                return
            if (
                parent is not None
                and 0 <= index < len(parent.buttons)
                and needs_prompt(parent.buttons[index].custom_id)
            ):
                # A modal can only be the first answer to an interaction: ask before pressing.
                await self.actions.parent_button(job_id, index, ticket_for(interaction))
                modal = PromptModal(
                    title="Custom zoom",
                    default=zoom_prompt(parent.final_prompt or parent.prompt),
                    on_done=lambda i, text: self._press(i, job_id, index, text),
                )
                await interaction.response.send_modal(modal)
                return
            await interaction.response.defer()
            await self._press(interaction, job_id, index, None)
        except Exception as exc:
            await tell_error(interaction, exc)

    async def on_continue(self, interaction: discord.Interaction[Any], job_id: int) -> None:
        """ "Edit prompt and continue" on a job waiting in MODAL: ask for the prompt."""
        try:
            job = await self.actions.ledger.repo.get(job_id)
            if job is None or job.status is not JobStatus.MODAL:
                raise Refused(
                    f"job {job_id} not waiting",
                    member_message="This job is not waiting for input any more.",
                )
            default = job.final_prompt or job.prompt
            if needs_prompt(job.custom_id):
                default = zoom_prompt(default)
            modal = PromptModal(
                title="Edit the prompt",
                default=default,
                on_done=lambda i, text: self._confirm(i, job_id, text),
            )
            await interaction.response.send_modal(modal)
        except Exception as exc:
            await tell_error(interaction, exc)

    async def _press(
        self, interaction: discord.Interaction[Any], job_id: int, index: int, prompt: str | None
    ) -> None:
        if not interaction.response.is_done():
            await interaction.response.defer()
        job = await self.actions.press(job_id, index, ticket_for(interaction), prompt=prompt)
        await show_follow_up(interaction.client, job, self.actions)

    async def _confirm(
        self, interaction: discord.Interaction[Any], job_id: int, prompt: str
    ) -> None:
        await interaction.response.defer()
        await self.actions.confirm(job_id, prompt, ticket_for(interaction, prompt))
        if interaction.message is not None:
            try:  # the continue button has done its work
                await interaction.message.edit(view=None)
            except discord.HTTPException as exc:
                log.info("job %s: could not remove the continue button: %s", job_id, exc)

    async def _imagine_described(
        self, interaction: discord.Interaction[Any], parent: Job, index: int
    ) -> None:
        prompts = describe_prompts(parent.final_prompt)
        ticket = ticket_for(interaction)
        if not 0 <= index < len(prompts):
            raise Refused(
                f"describe {parent.id} has no prompt {index}",
                member_message="This button is no longer available.",
            )
        if ticket.user_id != parent.route.requester_id and not ticket.is_moderator:
            raise Refused(
                f"user {ticket.user_id} pressed describe {parent.id}",
                member_message="Only the member who asked for these prompts can use them.",
            )
        await self.imagine.admit(ticket_for(interaction, prompts[index]))
        route = Route(
            guild_id=parent.route.guild_id,
            channel_id=parent.route.channel_id,
            requester_id=ticket.user_id,
            reply_message_id=parent.route.reply_message_id,
            thread_id=parent.route.thread_id,
        )
        job = await self.imagine.submit(route, parent.mode, prompts[index])
        await show_follow_up(interaction.client, job, self.imagine)
