"""The range of every number a moderator can give `/mod`, declared once.

The command declarations read these (`app_commands.Range[int, B.low, B.high]`), so Discord's
client shows the same limits; the service checks them again at run time, because Discord's
declared limits are advice to the client and a crafted interaction can carry any number.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.core.messages import Message, msg
from bot.core.moderation.policy import NotAllowed
from bot.core.moderation.wording import number


@dataclass(frozen=True, slots=True)
class Bound:
    """The whole numbers an option accepts, from `low` to `high`."""

    option: str
    low: int
    high: int

    def sentence(self) -> Message:
        """`per_day must be a whole number from 0 to 100,000.`"""
        return msg(
            "{option} must be a whole number from {low} to {high}.",
            option=self.option,
            low=number(self.low),
            high=number(self.high),
        )

    def check(self, value: int | None) -> None:
        """Raise NotAllowed (the sentence) unless `value` is None or within the range."""
        if value is None:
            return
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or not self.low <= value <= self.high
        ):
            raise NotAllowed(f"{self.option}={value!r} out of range", message=self.sentence())


#: /mod grant
GRANT_IMAGES = Bound("images", 1, 1000)
#: Extra images one member may hold at once (the sum of grants).
CREDITS_HELD = Bound("images", 0, 100_000)
#: /mod limits default and /mod limits role
PER_DAY = Bound("per_day", 0, 100_000)
PER_HOUR = Bound("per_hour", 0, 100_000)
#: /mod limits server
SERVER_PER_DAY = Bound("per_day", 0, 1_000_000)
#: /mod limits cooldown: at most a day.
COOLDOWN_SECONDS = Bound("seconds", 0, 86_400)
#: /mod limits inflight
MEMBER_IN_FLIGHT = Bound("member", 1, 1000)
SERVER_IN_FLIGHT = Bound("server", 1, 100_000)
#: /mod strikes
STRIKE_LIMIT = Bound("limit", 0, 50)
STRIKE_WINDOW_HOURS = Bound("window_hours", 1, 8760)
#: /mod report: at most 90 days back.
REPORT_DAYS = Bound("days", 1, 90)

#: Text options' lengths (characters).
REASON_LENGTH = 300
TERM_LENGTH = 100
DURATION_LENGTH = 40
TEST_PROMPT_LENGTH = 6000
