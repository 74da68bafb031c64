"""Bans from the bot: a member barred in one server, for a while or until lifted."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.core.moderation.policy import Refusal, Rule
from bot.core.moderation.wording import stamp


@dataclass(frozen=True, slots=True)
class Ban:
    """A member banned from the bot in one server; `by` is 0 for an automatic ban."""

    guild_id: int
    user_id: int
    reason: str
    at: datetime
    until: datetime | None = None  # None: until lifted
    by: int = 0

    def active(self, now: datetime) -> bool:
        """True while the ban holds."""
        return self.until is None or now < self.until

    def sentence(self) -> str:
        """What the banned member is told."""
        reason = f" ({self.reason})" if self.reason else ""
        if self.until is None:
            return f"You are banned from using this bot in this server{reason}."
        return (
            f"You are banned from using this bot in this server{reason}; "
            f"the ban ends {stamp(self.until)}."
        )


def check_ban(ban: Ban | None, now: datetime) -> Refusal | None:
    """Refuse a member under an active ban."""
    if ban is not None and ban.active(now):
        return Refusal(Rule.BANNED, ban.sentence())
    return None
