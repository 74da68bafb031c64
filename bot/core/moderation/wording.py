"""How moderation talks about amounts in the English of its records (the audit log's details,
an automatic ban's stored reason); what members and moderators read are catalogue messages."""

from __future__ import annotations


def plural(count: int, word: str) -> str:
    """`1 image`, `5 images` (English records only)."""
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def number(value: int) -> str:
    """`100,000`: thousands separated, as a sentence shows a large number."""
    return f"{value:,}"
