"""Spans of time as moderators type them (`30m`, `12h`, `7d`, `2w`) and as sentences say them."""

from __future__ import annotations

import re
from datetime import timedelta

from bot.core.messages import Message, plural_msg

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)

#: The longest span a duration may name (a ban's length): ten years.
MAX_DURATION = timedelta(days=3650)

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta | None:
    """`30m`, `12h`, `7d`, `2w` (or combinations like `1d12h`) → a timedelta; None if not one,
    or if it is not longer than zero and at most ten years."""
    text = text.strip().lower().replace(" ", "")
    if not text or len(text) > 40 or not re.fullmatch(r"(\d{1,5}[smhdw])+", text):
        return None
    seconds = sum(int(n) * _UNITS[u] for n, u in re.findall(r"(\d+)([smhdw])", text))
    span = timedelta(seconds=seconds)
    return span if timedelta(0) < span <= MAX_DURATION else None


def describe_duration(span: timedelta) -> Message:
    """`45 seconds`, `30 minutes`, `12 hours`, `3 days` (the largest whole unit)."""
    seconds = int(span.total_seconds())
    if seconds >= 86400 and seconds % 86400 == 0:
        return plural_msg("{count} day", "{count} days", seconds // 86400)
    if seconds >= 3600 and seconds % 3600 == 0:
        return plural_msg("{count} hour", "{count} hours", seconds // 3600)
    if seconds >= 60 and seconds % 60 == 0:
        return plural_msg("{count} minute", "{count} minutes", seconds // 60)
    return plural_msg("{count} second", "{count} seconds", seconds)
