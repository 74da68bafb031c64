"""Bans from the bot: a member barred in one server, for a while or until lifted."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from bot.core.messages import Message, Stamp, msg, plural_msg
from bot.core.moderation.policy import Refusal, Rule


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

    def sentence(self) -> Message:
        """What the banned member is told (an automatic ban's reason in their language)."""
        strikes = automatic_reason_parts(self.reason) if not self.by else None
        if strikes is not None and self.until is not None:
            count, hours = strikes
            return plural_msg(
                "You are banned from using this bot in this server ({count} prompt refused by "
                "the image service within {window}); the ban ends {when}.",
                "You are banned from using this bot in this server ({count} prompts refused by "
                "the image service within {window}); the ban ends {when}.",
                count,
                window=plural_msg("{count} hour", "{count} hours", hours),
                when=Stamp(self.until),
            )
        if self.until is None:
            if self.reason:
                return msg(
                    "You are banned from using this bot in this server ({reason}).",
                    reason=self.reason,
                )
            return msg("You are banned from using this bot in this server.")
        if self.reason:
            return msg(
                "You are banned from using this bot in this server ({reason}); "
                "the ban ends {when}.",
                reason=self.reason,
                when=Stamp(self.until),
            )
        return msg(
            "You are banned from using this bot in this server; the ban ends {when}.",
            when=Stamp(self.until),
        )


#: An automatic ban's stored reason (English, for moderators and the audit log); the member's
#: sentence is rebuilt from its numbers in their language.
_AUTOMATIC = re.compile(r"(\d+) prompts refused by the image service within (\d+) hours?")


def automatic_reason(count: int, hours: int) -> str:
    """The stored reason of an automatic ban after `count` strikes within `hours` hours."""
    return f"{count} prompts refused by the image service within {hours} hour{'s' * (hours != 1)}"


def automatic_reason_parts(reason: str) -> tuple[int, int] | None:
    """`(count, hours)` of an automatic ban's stored reason, or None for any other reason."""
    found = _AUTOMATIC.fullmatch(reason)
    return (int(found[1]), int(found[2])) if found else None


def check_ban(ban: Ban | None, now: datetime) -> Refusal | None:
    """Refuse a member under an active ban."""
    if ban is not None and ban.active(now):
        return Refusal(Rule.BANNED, ban.sentence())
    return None
