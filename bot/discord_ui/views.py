"""Restart-proof follow-up buttons. A custom id carries only the job id and the button's index
(`mj:<job>:<index>`, well within Discord's 100 characters) and, for buttons that must open a
modal or start an /imagine, a one-letter kind, so the press can be answered before anything is
read; the rest is read from the ledger afterwards, so buttons keep working after a restart.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any, Protocol

import discord

from bot.core.followups import describe_prompts, needs_prompt
from bot.core.jobs import Job
from bot.discord_ui.mod_views import ReportButton
from bot.discord_ui.render import button_face, button_rows


class ButtonHandler(Protocol):
    """Whoever handles a press (the follow-up cog), registered on the bot."""

    async def on_job_button(
        self, interaction: discord.Interaction[Any], job_id: int, index: int, kind: str
    ) -> None:
        """Handle a press of button `index` on job `job_id`'s result (`kind`: see JobButton)."""
        ...

    async def on_continue(self, interaction: discord.Interaction[Any], job_id: int) -> None:
        """Handle "continue" on a job that waits for the member's input."""
        ...


def _handler(interaction: discord.Interaction[Any]) -> ButtonHandler | None:
    return getattr(interaction.client, "button_handler", None)


async def _unavailable(interaction: discord.Interaction[Any]) -> None:
    await interaction.response.send_message(
        "These buttons are not available right now.", ephemeral=True
    )


class JobButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"mj:(?P<job>\d+):(?P<index>\d+)(?::(?P<kind>[zd]))?",
):
    """One of the API's follow-up buttons on a finished job.

    `kind` is "" for a plain press, "z" for Custom Zoom (asks for input first) and "d" for
    "Imagine n" under a /describe.
    """

    def __init__(
        self,
        job_id: int,
        index: int,
        *,
        kind: str = "",
        label: str | None = None,
        emoji: str | None = None,
        row: int | None = None,
    ) -> None:
        super().__init__(
            discord.ui.Button(
                label=label,
                emoji=emoji,
                style=discord.ButtonStyle.secondary,
                custom_id=f"mj:{job_id}:{index}" + (f":{kind}" if kind else ""),
                row=row,
            )
        )
        self.job_id = job_id
        self.index = index
        self.kind = kind

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> JobButton:
        """Rebuild the button from its custom id (after a restart too)."""
        return cls(int(match["job"]), int(match["index"]), kind=match["kind"] or "")

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        """Hand the press to the registered handler."""
        handler = _handler(interaction)
        if handler is None:
            await _unavailable(interaction)
            return
        await handler.on_job_button(interaction, self.job_id, self.index, self.kind)


class ContinueButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"mjin:(?P<job>\d+)"):
    """ "Continue": gives a job that waits in MODAL (remix, custom zoom) the member's prompt."""

    def __init__(self, job_id: int) -> None:
        super().__init__(
            discord.ui.Button(
                label="Edit prompt and continue",
                emoji="✏️",
                style=discord.ButtonStyle.primary,
                custom_id=f"mjin:{job_id}",
            )
        )
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> ContinueButton:
        """Rebuild the button from its custom id (after a restart too)."""
        return cls(int(match["job"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        """Hand the press to the registered handler."""
        handler = _handler(interaction)
        if handler is None:
            await _unavailable(interaction)
            return
        await handler.on_continue(interaction, self.job_id)


def continue_view(job: Job) -> discord.ui.View:
    """The button under a job that waits for the member's input."""
    view = discord.ui.View(timeout=None)
    view.add_item(ContinueButton(job.id))
    return view


def result_view(job: Job) -> discord.ui.View:
    """The buttons under a finished job's image, laid out like Midjourney's; under a /describe,
    one "Imagine n" button per prompt."""
    view = discord.ui.View(timeout=None)
    if job.action == "DESCRIBE":
        for index, _ in enumerate(describe_prompts(job.final_prompt)):
            view.add_item(
                JobButton(job.id, index, kind="d", label=f"Imagine {index + 1}", emoji="🎨")
            )
        return view
    for row_number, row in enumerate(button_rows(job.buttons)):
        for index, button in row:
            label, emoji = button_face(button)
            kind = "z" if needs_prompt(button.custom_id) else ""
            view.add_item(
                JobButton(job.id, index, kind=kind, label=label, emoji=emoji, row=row_number)
            )
    with contextlib.suppress(ValueError):  # every row full: no room for 🚩 Report
        view.add_item(ReportButton(job.id))  # the first row with room
    return view
