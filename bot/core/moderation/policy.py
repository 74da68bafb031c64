"""One server's moderation settings (`Policy`), who moderates it, the rules' names and the
refusal a member reads, and the allowed-channels rule."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from bot.core.errors import Refused
from bot.core.jobs import Mode
from bot.core.messages import ChannelRefs, Message, msg
from bot.core.moderation.durations import DAY


@dataclass(frozen=True, slots=True)
class Limits:
    """A quota over rolling windows; None means no limit."""

    per_day: int | None = None
    per_hour: int | None = None

    def describe(self) -> Message:
        """`5 per day, 2 per hour` or `no limit`."""
        if self.per_day is not None and self.per_hour is not None:
            return msg(
                "{per_day} per day, {per_hour} per hour",
                per_day=self.per_day,
                per_hour=self.per_hour,
            )
        if self.per_day is not None:
            return msg("{per_day} per day", per_day=self.per_day)
        if self.per_hour is not None:
            return msg("{per_hour} per hour", per_hour=self.per_hour)
        return msg("no limit")


@dataclass(frozen=True, slots=True)
class Policy:
    """One server's moderation settings. The defaults are what an unconfigured server gets."""

    guild_id: int
    limits: Limits = Limits()  # everyone's quota, unless a role overrides it
    role_limits: Mapping[int, Limits] = field(default_factory=dict)
    server_per_day: int | None = None
    cooldown: timedelta = timedelta(0)
    member_in_flight: int | None = None
    server_in_flight: int | None = None
    strike_limit: int = 3  # 0 turns automatic bans off
    strike_window: timedelta = DAY
    strike_ban: timedelta = DAY
    allowed_channels: frozenset[int] = frozenset()  # empty: every channel
    default_mode: Mode = Mode.MID_JOURNEY
    log_channel_id: int = 0
    moderator_role_id: int = 0
    #: The language of what the whole channel reads (a Discord locale such as `ja`); empty:
    #: Discord's server setting (its preferred locale).
    language: str = ""

    def limits_for(self, role_ids: Iterable[int]) -> Limits:
        """The member's quota: the most generous of their roles' overrides, else the default.

        A role that lifts a window (None) wins over any number.
        """
        overrides = [self.role_limits[r] for r in role_ids if r in self.role_limits]
        if not overrides:
            return self.limits

        def most(values: list[int | None]) -> int | None:
            return None if any(v is None for v in values) else max(v or 0 for v in values)

        return Limits(
            per_day=most([o.per_day for o in overrides]),
            per_hour=most([o.per_hour for o in overrides]),
        )


def can_moderate(policy: Policy, *, manage_guild: bool, role_ids: Iterable[int]) -> bool:
    """Manage Server, or the server's configured moderator role."""
    return manage_guild or (
        policy.moderator_role_id != 0 and policy.moderator_role_id in set(role_ids)
    )


class Rule(enum.StrEnum):
    """Which rule refused (for the audit log and reports)."""

    BANNED = "banned"
    CHANNEL = "channel"
    TERM = "term"
    COOLDOWN = "cooldown"
    MEMBER_IN_FLIGHT = "member_in_flight"
    SERVER_IN_FLIGHT = "server_in_flight"
    HOUR = "hour"
    DAY = "day"
    SERVER_DAY = "server_day"


@dataclass(frozen=True, slots=True)
class Refusal:
    """A refusal: the rule, and the sentence the member sees."""

    rule: Rule
    reason: Message


class NotAllowed(Refused):
    """A moderator command's input or target is refused (a bad term, a number out of range, an
    unknown job, a moderator to ban …); `message` says why, for the moderator."""


def check_channel(policy: Policy, channel_ids: Iterable[int]) -> Refusal | None:
    """Refuse outside the allowed channels (a thread counts as its parent: pass both ids)."""
    if not policy.allowed_channels or set(channel_ids) & policy.allowed_channels:
        return None
    places = ChannelRefs(tuple(sorted(policy.allowed_channels)[:10]))
    return Refusal(
        Rule.CHANNEL,
        msg("Images can't be made in this channel; please use {channels}.", channels=places),
    )
