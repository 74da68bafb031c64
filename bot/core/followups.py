"""What a finished job's buttons mean: the action each one starts, which ones mjcord offers,
which need the member's input first, and the prompts a /describe returns.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from bot.core.errors import Refused
from bot.core.jobs import Button
from bot.core.messages import Message, msg

# customId shapes (docs/mj-api.md §2.3) → the action of the job a press makes.
_ACTIONS: tuple[tuple[str, str], ...] = (
    ("MJ::JOB::upsample::", "UPSCALE"),
    ("MJ::JOB::upsample_", "UPSCALE_HD"),
    ("MJ::JOB::variation::", "VARIATION"),
    ("MJ::JOB::high_variation::", "HIGH_VARIATION"),
    ("MJ::JOB::low_variation::", "LOW_VARIATION"),
    ("MJ::JOB::reroll::", "REROLL"),
    ("MJ::JOB::pan_", "PAN"),
    ("MJ::Outpaint::", "ZOOM"),
    ("MJ::CustomZoom::", "CUSTOM_ZOOM"),
)

# Buttons a chat bot cannot serve: Vary (Region) needs a drawn mask, ❤️ only bookmarks on
# Discord (and aggregators refuse it), PicReader/Picread belong to Discord's own describe flow,
# animate makes videos.
_HIDDEN = (
    "MJ::Inpaint::",
    "MJ::BOOKMARK::",
    "MJ::Job::PicReader",
    "MJ::Picread",
    "MJ::JOB::animate",
)

#: Families whose button Midjourney labels with words (see `ButtonKind.worded`).
_WORDED = frozenset({"high_variation", "low_variation", "Outpaint", "CustomZoom"})
_ZOOM_FLAG = re.compile(r"\s*--zoom\s+\S+")
_NUMBERED = re.compile(r"(?:^|\n)\s*(?:[1-9]\ufe0f?\u20e3|[1-9][.)])\s*")


@dataclass(frozen=True, slots=True)
class ButtonKind:
    """What one of the API's buttons is, read once from its customId.

    `family` is Midjourney's own word (`upsample`, `variation`, `pan_left`, `Outpaint` …),
    `number` the image it applies to ("" when none), `action` the job a press makes.
    The renderer lays out and labels buttons from this; the views and services ask it whether
    a button is offered and whether it needs the member's input — nobody re-splits customIds.
    """

    custom_id: str
    family: str
    number: str
    action: str

    @property
    def offered(self) -> bool:
        """True for the buttons mjcord shows under a result."""
        return not self.custom_id.startswith(_HIDDEN)

    @property
    def needs_prompt(self) -> bool:
        """True when the API will wait for a prompt (Custom Zoom): ask before pressing."""
        return self.action == "CUSTOM_ZOOM"

    @property
    def starts_row(self) -> bool:
        """V1–V4 begin the grid's second row, as on Midjourney."""
        return self.family == "variation"

    @property
    def label(self) -> Message:
        """The press in words: "Upscale 2", "Vary (Strong)", "Zoom out 2x", "Pan left" …"""
        match self.family:
            case "upsample":
                # TRANSLATORS: a button's label, at most 80 characters.
                return msg("Upscale {number}", number=self.number)
            case "variation":
                # TRANSLATORS: a button's label, at most 80 characters.
                return msg("Variation {number}", number=self.number)
            case "reroll":
                # TRANSLATORS: a button's label, at most 80 characters.
                return msg("Reroll")
            case "high_variation":
                # TRANSLATORS: a button's label, at most 80 characters.
                return msg("Vary (Strong)")
            case "low_variation":
                # TRANSLATORS: a button's label, at most 80 characters.
                return msg("Vary (Subtle)")
            case "Outpaint" if self.number == "75":
                # TRANSLATORS: a button's label, at most 80 characters.
                return msg("Zoom out 1.5x")
            case "Outpaint":
                # TRANSLATORS: a button's label, at most 80 characters.
                return msg("Zoom out 2x")
            case "CustomZoom":
                # TRANSLATORS: a button's label, at most 80 characters.
                return msg("Custom zoom")
            case "pan_left":
                # TRANSLATORS: a button's label, at most 80 characters.
                return msg("Pan left")
            case "pan_right":
                # TRANSLATORS: a button's label, at most 80 characters.
                return msg("Pan right")
            case "pan_up":
                # TRANSLATORS: a button's label, at most 80 characters.
                return msg("Pan up")
            case "pan_down":
                # TRANSLATORS: a button's label, at most 80 characters.
                return msg("Pan down")
        if self.family.startswith("upsample_") and "creative" in self.family:
            # TRANSLATORS: a button's label, at most 80 characters.
            return msg("Upscale (Creative)")
        if self.family.startswith("upsample_"):
            # TRANSLATORS: a button's label, at most 80 characters.
            return msg("Upscale (Subtle)")
        # TRANSLATORS: a button's label, at most 80 characters.
        return msg("Follow-up")

    @property
    def worded(self) -> bool:
        """True when Midjourney's own label for this button is words (Vary (Strong), Zoom Out
        2x …), which members read in their language; U1, V1, 🔄 and arrows are not."""
        return self.family in _WORDED or self.family.startswith("upsample_")


def button_kind(custom_id: str) -> ButtonKind:
    """Read a customId: `MJ::JOB::<family>::<n>::<hash>` or `MJ::<family>::<n>::…`."""
    parts = custom_id.split("::")
    if len(parts) > 2 and parts[1] == "JOB":
        family, number = parts[2], parts[3] if len(parts) > 3 else ""
    else:
        family = parts[1] if len(parts) > 1 else ""
        number = parts[2] if len(parts) > 2 else ""
    action = next((name for prefix, name in _ACTIONS if custom_id.startswith(prefix)), "ACTION")
    return ButtonKind(custom_id=custom_id, family=family, number=number, action=action)


def action_of(custom_id: str) -> str:
    """The action a button starts (UPSCALE, VARIATION, ZOOM …), or ACTION when unknown."""
    return button_kind(custom_id).action


def offered(button: Button) -> bool:
    """True for the buttons mjcord shows under a result."""
    return button_kind(button.custom_id).offered


def needs_prompt(custom_id: str) -> bool:
    """True when the API will wait for a prompt (Custom Zoom): ask the member before pressing."""
    return button_kind(custom_id).needs_prompt


def zoom_prompt(prompt: str, zoom: str) -> str:
    """The Custom Zoom prompt: `prompt` with its `--zoom` set to `zoom` (a number from 1 to 2).

    Raises `Refused` (the member's sentence says what a zoom is) when `zoom` is not such a
    number.
    """
    try:
        value = float(zoom.strip())
    except ValueError:
        value = 0.0
    if not 1.0 <= value <= 2.0:
        raise Refused(
            f"zoom {zoom!r}", message=msg("The zoom must be a number from 1 to 2, such as 1.5.")
        )
    base = _ZOOM_FLAG.sub("", prompt).strip()
    return f"{base} --zoom {value:g}".strip()


def describe_prompts(final_prompt: str) -> list[str]:
    """The (up to four) prompts of a /describe result, from `1️⃣ … 2️⃣ …` or `1. …` text."""
    parts = [p.strip() for p in _NUMBERED.split(final_prompt) if p.strip()]
    return parts[:4]


# --- mjcord's own custom ids -------------------------------------------------------------------
# One strict grammar for every custom id mjcord puts on a Discord component. Numbers are
# bounded: a job id is a positive 63-bit integer (the jobs table's BIGINT), a button index is
# below 25 (Discord allows 5 rows of 5), and Discord ids (snowflakes) are 63-bit as well.
# The regexes are what discord.py's DynamicItem templates match (fullmatch), and they bound the
# numbers exactly: an id outside the ranges matches no template.

MAX_ID = 2**63 - 1
MAX_INDEX = 24


def _at_most(limit: int) -> str:
    """A regex matching exactly the decimal numbers 1 … `limit` (no sign, no leading zero).

    Shorter numbers are free; numbers as long as `limit` must not exceed it digit by digit.
    So the custom id's grammar itself is bounded: an id outside it matches no template, and
    discord.py never builds an item for it.
    """
    digits = str(limit)
    options = [f"[1-9][0-9]{{0,{len(digits) - 2}}}"] if len(digits) > 1 else []
    for i, digit in enumerate(digits):
        low = 1 if i == 0 else 0
        if int(digit) > low:
            rest = len(digits) - i - 1
            options.append(f"{digits[:i]}[{low}-{int(digit) - 1}][0-9]{{{rest}}}")
    options.append(digits)
    return "(?:" + "|".join(options) + ")"


_ID = _at_most(MAX_ID)
_INDEX = f"(?:0|{_at_most(MAX_INDEX)})"

JOB_BUTTON_TEMPLATE = rf"mj:(?P<job>{_ID}):(?P<index>{_INDEX})(?::(?P<kind>[zd]))?"
CONTINUE_TEMPLATE = rf"mjin:(?P<job>{_ID})"
# A log-channel entry need not come from a job: its buttons carry job 0 then.
MOD_LOG_TEMPLATE = rf"mjmod:(?P<action>ban|refund|delete):(?P<job>0|{_ID}):(?P<user>{_ID})"
REPORT_TEMPLATE = rf"mjreport:(?P<job>{_ID})"

#: Every custom id family mjcord answers; anything else is answered by the fallback.
TEMPLATES = tuple(
    re.compile(t)
    for t in (JOB_BUTTON_TEMPLATE, CONTINUE_TEMPLATE, MOD_LOG_TEMPLATE, REPORT_TEMPLATE)
)


class PressKind(enum.StrEnum):
    """What a press of one of mjcord's job buttons does before anything is read.

    Its value is the letter in the custom id (`mj:<job>:<index>[:<kind>]`), so a press can be
    answered (a modal, or an acknowledgement) before the ledger is read.
    """

    PLAIN = ""  # a follow-up action (U/V/🔄/zoom/pan)
    ZOOM = "z"  # Custom Zoom: ask for the zoom and prompt first
    DESCRIBE = "d"  # "Imagine n" under a /describe

    @classmethod
    def for_button(cls, button: Button) -> PressKind:
        """The press kind of one of the API's buttons."""
        return cls.ZOOM if button_kind(button.custom_id).needs_prompt else cls.PLAIN


def job_button_id(job_id: int, index: int, kind: PressKind = PressKind.PLAIN) -> str:
    """The custom id of button `index` under job `job_id`."""
    return f"mj:{job_id}:{index}" + (f":{kind.value}" if kind.value else "")


def recognised(custom_id: str) -> bool:
    """True when one of mjcord's templates matches the whole custom id."""
    return any(t.fullmatch(custom_id) for t in TEMPLATES)
