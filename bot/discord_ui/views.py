"""Restart-proof follow-up buttons, the base of every modal, and the one error path of both.

A custom id carries only the job id and the button's index (`mj:<job>:<index>`, well within
Discord's 100 characters) and, for buttons that must open a modal or start an /imagine, a
one-letter press kind, so the press can be answered before anything is read; the rest is read
from the ledger afterwards, so buttons keep working after a restart. The grammar (bounded
numbers) is `bot.core.followups`'; a custom id outside it is answered by the bot's fallback.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol, cast, runtime_checkable

import discord

from bot.core.followups import (
    CONTINUE_TEMPLATE,
    JOB_BUTTON_TEMPLATE,
    PressKind,
    describe_prompts,
    job_button_id,
)
from bot.core.jobs import Job
from bot.core.messages import msg
from bot.discord_ui.i18n.render import render
from bot.discord_ui.i18n.where import DEFAULT_LOCALE
from bot.discord_ui.mod_views import ReportButton
from bot.discord_ui.render import button_face, button_rows
from bot.discord_ui.tree import SERVER_ONLY, tell, tell_error
from bot.discord_ui.validation import check_fields

if TYPE_CHECKING:
    from bot.discord_ui.client import MjcordBot

#: Set in `interaction.extras` by whoever takes charge of answering a component or modal;
#: the bot's fallback answers only interactions nobody claimed.
CLAIMED = "mjcord_claimed"

#: The cog that handles presses (discord.py names a cog after its class by default).
BUTTON_HANDLER_COG = "FollowUpCog"

GONE = msg("This button is no longer available.")


@runtime_checkable
class ButtonHandler(Protocol):
    """Whoever handles a press (the follow-up cog)."""

    async def on_job_button(
        self, interaction: discord.Interaction[MjcordBot], job_id: int, index: int, kind: str
    ) -> None:
        """Handle a press of button `index` on job `job_id`'s result (`kind`: a PressKind)."""
        ...

    async def on_continue(self, interaction: discord.Interaction[MjcordBot], job_id: int) -> None:
        """Handle "continue" on a job that waits for the member's input."""
        ...


def claim(interaction: discord.Interaction[Any]) -> None:
    """Mark the interaction as being answered here (so the bot's fallback stays out)."""
    interaction.extras[CLAIMED] = True


async def guarded(
    interaction: discord.Interaction[Any],
    work: Callable[[ButtonHandler], Awaitable[None]],
) -> None:
    """The one path of every button press: servers only, a handler, errors told privately, and
    a sentence if the handler left the press unanswered."""
    claim(interaction)
    try:
        if interaction.guild_id is None:
            await tell(interaction, SERVER_ONLY)
            return
        handler = cast("MjcordBot", interaction.client).get_cog(BUTTON_HANDLER_COG)
        if not isinstance(handler, ButtonHandler):
            await tell(interaction, msg("These buttons are not available right now."))
            return
        await work(handler)
    except Exception as exc:
        await tell_error(interaction, exc)
    if not interaction.response.is_done():
        await tell(interaction, GONE)


# discord.py types the hooks below (callback, from_custom_id, interaction_check) with a
# method-level `Interaction[ClientT]`, so an override cannot narrow it; `guarded` is where the
# interaction becomes `Interaction[MjcordBot]` (this bot is the only client these run on).


class JobButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=JOB_BUTTON_TEMPLATE):
    """One of the API's follow-up buttons on a finished job (or "Imagine n" under /describe)."""

    def __init__(
        self,
        job_id: int,
        index: int,
        *,
        kind: PressKind = PressKind.PLAIN,
        label: str | None = None,
        emoji: str | None = None,
        row: int | None = None,
    ) -> None:
        super().__init__(
            discord.ui.Button(
                label=label,
                emoji=emoji,
                style=discord.ButtonStyle.secondary,
                custom_id=job_button_id(job_id, index, kind),
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
        """Rebuild the button from its custom id (after a restart too). The template bounds
        both numbers, so this never raises."""
        return cls(int(match["job"]), int(match["index"]), kind=PressKind(match["kind"] or ""))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        """Hand the press to the follow-up cog."""

        async def press(handler: ButtonHandler) -> None:
            await handler.on_job_button(interaction, self.job_id, self.index, self.kind)

        await guarded(interaction, press)


class ContinueButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=CONTINUE_TEMPLATE):
    """ "Continue": gives a job that waits in MODAL (remix, custom zoom) the member's prompt."""

    def __init__(self, job_id: int, *, label: str = "Edit prompt and continue") -> None:
        super().__init__(
            discord.ui.Button(
                label=label,
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
        """Rebuild the button from its custom id (after a restart too); never raises."""
        return cls(int(match["job"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        """Hand the press to the follow-up cog."""

        async def press(handler: ButtonHandler) -> None:
            await handler.on_continue(interaction, self.job_id)

        await guarded(interaction, press)


class MjcordModal(discord.ui.Modal):
    """The base of every modal: claims the submit, checks each field against its declared
    limits before `on_submit`, and tells the member privately about any error."""

    async def interaction_check(self, interaction: discord.Interaction[Any], /) -> bool:
        """Claim, then refuse (with a sentence) DMs and fields outside their limits."""
        claim(interaction)
        if interaction.guild_id is None:
            await tell(interaction, SERVER_ONLY)
            return False
        check_fields([c for c in self.children if isinstance(c, discord.ui.TextInput)])
        return True

    async def on_error(  # type: ignore[override]  # discord.py's Modal narrows BaseView's hook
        self, interaction: discord.Interaction[Any], error: Exception, /
    ) -> None:
        """Tell the member; log the detail."""
        await tell_error(interaction, error)


def continue_view(job: Job, locale: str = DEFAULT_LOCALE) -> discord.ui.View:
    """The button under a job that waits for the member's input (its label in the server's
    `locale`: everyone in the channel sees it)."""
    view = discord.ui.View(timeout=None)
    # TRANSLATORS: a button's label, at most 80 characters.
    label = render(msg("Edit prompt and continue"), locale)
    view.add_item(ContinueButton(job.id, label=label))
    return view


def result_view(job: Job, locale: str = DEFAULT_LOCALE) -> discord.ui.View:
    """The buttons under a finished job's image, laid out like Midjourney's; under a /describe,
    one "Imagine n" button per prompt. Labels in words are in the server's `locale`."""
    view = discord.ui.View(timeout=None)
    if job.action == "DESCRIBE":
        for index, _ in enumerate(describe_prompts(job.final_prompt)):
            # TRANSLATORS: a button's label, at most 80 characters.
            imagine = render(msg("Imagine {number}", number=index + 1), locale)
            view.add_item(
                JobButton(job.id, index, kind=PressKind.DESCRIBE, label=imagine, emoji="🎨")
            )
        return view
    for row_number, row in enumerate(button_rows(job.buttons)):
        for index, button in row:
            label, emoji = button_face(button, locale)
            kind = PressKind.for_button(button)
            view.add_item(
                JobButton(job.id, index, kind=kind, label=label, emoji=emoji, row=row_number)
            )
    report = ReportButton(job.id)
    # TRANSLATORS: a button's label, at most 80 characters.
    report.item.label = render(msg("Report"), locale)
    with contextlib.suppress(ValueError):  # every row full: no room for 🚩 Report
        view.add_item(report)  # the first row with room
    return view
