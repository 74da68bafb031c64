"""What a finished job's buttons mean: the action each one starts, which ones mjcord offers,
which need the member's input first, and the prompts a /describe returns.
"""

from __future__ import annotations

import re

from bot.core.jobs import Button

# customId shapes (mj-api.md §2.3) → the action of the job a press makes.
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

_ZOOM_FLAG = re.compile(r"\s*--zoom\s+\S+")
_NUMBERED = re.compile(r"(?:^|\n)\s*(?:[1-9]\ufe0f?\u20e3|[1-9][.)])\s*")


def action_of(custom_id: str) -> str:
    """The action a button starts (UPSCALE, VARIATION, ZOOM …), or ACTION when unknown."""
    return next((name for prefix, name in _ACTIONS if custom_id.startswith(prefix)), "ACTION")


def offered(button: Button) -> bool:
    """True for the buttons mjcord shows under a result."""
    return not button.custom_id.startswith(_HIDDEN)


def needs_prompt(custom_id: str) -> bool:
    """True when the API will wait for a prompt (Custom Zoom): ask the member before pressing."""
    return custom_id.startswith("MJ::CustomZoom::")


def zoom_prompt(prompt: str, zoom: str) -> str:
    """The Custom Zoom prompt: `prompt` with its `--zoom` set to `zoom` (a number from 1 to 2).

    Raises ValueError with a member sentence when `zoom` is not such a number.
    """
    try:
        value = float(zoom.strip())
    except ValueError:
        value = 0.0
    if not 1.0 <= value <= 2.0:
        raise ValueError("The zoom must be a number from 1 to 2, such as 1.5.")
    base = _ZOOM_FLAG.sub("", prompt).strip()
    return f"{base} --zoom {value:g}".strip()


def describe_prompts(final_prompt: str) -> list[str]:
    """The (up to four) prompts of a /describe result, from `1️⃣ … 2️⃣ …` or `1. …` text."""
    parts = [p.strip() for p in _NUMBERED.split(final_prompt) if p.strip()]
    return parts[:4]
