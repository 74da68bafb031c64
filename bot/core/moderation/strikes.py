"""Strikes: prompts the image service refused as banned content, and the automatic temporary
ban after too many of them within a window."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.core.moderation.bans import Ban, automatic_reason
from bot.core.moderation.policy import Policy


@dataclass(frozen=True, slots=True)
class Strike:
    """A prompt the image service refused as banned content."""

    guild_id: int
    user_id: int
    at: datetime
    reason: str = ""
    job_id: int = 0


def strike_ban(
    policy: Policy, guild_id: int, user_id: int, strike_times: Sequence[datetime], now: datetime
) -> Ban | None:
    """The automatic temporary ban due after `strike_limit` strikes within `strike_window`."""
    if policy.strike_limit <= 0:
        return None
    recent = [t for t in strike_times if t > now - policy.strike_window]
    if len(recent) < policy.strike_limit:
        return None
    # /mod strikes takes whole hours (at least one).
    hours = max(1, round(policy.strike_window.total_seconds() / 3600))
    return Ban(
        guild_id=guild_id,
        user_id=user_id,
        reason=automatic_reason(len(recent), hours),
        at=now,
        until=now + policy.strike_ban,
    )
