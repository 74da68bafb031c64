"""Bans from the bot: a member barred in one server, for a while or until lifted."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.core.messages import Message, Stamp, msg
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
        """What the banned member is told. An automatic ban's stored reason is the audit log's
        English, so the member reads the catalogue's sentence for it instead."""
        if not self.by:
            if self.until is None:
                return msg(
                    "You are banned from using this bot in this server after prompts the image "
                    "service refused."
                )
            return msg(
                "You are banned from using this bot in this server after prompts the image "
                "service refused; the ban ends {when}.",
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


def check_ban(ban: Ban | None, now: datetime) -> Refusal | None:
    """Refuse a member under an active ban."""
    if ban is not None and ban.active(now):
        return Refusal(Rule.BANNED, ban.sentence())
    return None
