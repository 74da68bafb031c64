"""How moderation talks about time and amounts in the sentences members and moderators read."""

from __future__ import annotations

from datetime import datetime


def stamp(at: datetime, style: str = "R") -> str:
    """A Discord timestamp: each member's client shows it in their own time (`R`: relative)."""
    return f"<t:{int(at.timestamp())}:{style}>"


def plural(count: int, word: str) -> str:
    """`1 image`, `5 images`."""
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def number(value: int) -> str:
    """`100,000`: thousands separated, as a sentence shows a large number."""
    return f"{value:,}"
