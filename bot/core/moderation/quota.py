"""Quotas over rolling windows, cooldown and in-flight caps: whether one more image may be
reserved now, how it is paid, and what `/quota` tells a member.

Pure and clock-driven. The atomic part (two commands at the same instant competing for the last
unit) is the repository's `reserve`, which runs `decide_quota` inside one database transaction.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.core.messages import Message, Stamp, msg, plural_msg
from bot.core.moderation.bans import Ban
from bot.core.moderation.durations import DAY, HOUR
from bot.core.moderation.policy import Limits, Policy, Refusal, Rule


class Charge(enum.StrEnum):
    """How a reserved unit is paid for, and what became of it."""

    QUOTA = "quota"  # counts against the member's windows
    BONUS = "bonus"  # paid from credits a moderator granted
    RESET = "reset"  # was QUOTA; a moderator reset the member's quota
    REFUNDED = "refunded"  # the job failed: it counts for nothing


@dataclass(frozen=True, slots=True)
class Usage:
    """What the rules need to know about a member's and the server's recent use.

    `member_times`: when each of the member's units charged to QUOTA was reserved, last 24 h.
    `made_times`: every unit of the member's not refunded (quota, extra or reset), last 24 h.
    `server_times`: every unit not refunded in the server, last 24 h (for the server cap).
    """

    member_times: tuple[datetime, ...] = ()
    last_at: datetime | None = None  # the member's latest command, refunded or not
    member_in_flight: int = 0
    server_times: tuple[datetime, ...] = ()
    server_in_flight: int = 0
    credits: int = 0
    made_times: tuple[datetime, ...] = ()


def _window(
    times: Sequence[datetime], limit: int | None, span: timedelta, now: datetime
) -> datetime | None:
    """When the window frees a unit, if `limit` units are used within `span` before now."""
    if limit is None:
        return None
    used = sorted(t for t in times if t > now - span)
    if len(used) < limit:
        return None
    # The oldest unit that must leave the window before one more fits.
    return used[len(used) - limit] + span if limit > 0 else now + span


def decide_quota(
    policy: Policy, role_ids: Iterable[int], usage: Usage, now: datetime
) -> Refusal | Charge:
    """Whether one more unit may be reserved now, and how it is paid.

    The order: in-flight caps, cooldown, the member's hourly then daily window (credits a
    moderator granted pay when a window is full), then the server's daily cap.
    """
    if policy.member_in_flight is not None and usage.member_in_flight >= policy.member_in_flight:
        return Refusal(
            Rule.MEMBER_IN_FLIGHT,
            plural_msg(
                "You already have {count} image in progress; please wait for it to finish.",
                "You already have {count} images in progress; please wait for one to finish.",
                usage.member_in_flight,
            ),
        )
    if policy.server_in_flight is not None and usage.server_in_flight >= policy.server_in_flight:
        return Refusal(
            Rule.SERVER_IN_FLIGHT,
            plural_msg(
                "This server already has {count} image in progress; please try again in a minute.",
                "This server already has {count} images in progress; please try again in a minute.",
                usage.server_in_flight,
            ),
        )
    if policy.cooldown and usage.last_at is not None and now < usage.last_at + policy.cooldown:
        return Refusal(
            Rule.COOLDOWN,
            msg(
                "Please wait a little between images; you can start the next one {when}.",
                when=Stamp(usage.last_at + policy.cooldown),
            ),
        )
    charge = Charge.QUOTA
    limits = policy.limits_for(role_ids)
    for rule, limit, span in ((Rule.HOUR, limits.per_hour, HOUR), (Rule.DAY, limits.per_day, DAY)):
        frees = _window(usage.member_times, limit, span, now)
        if frees is not None:
            if usage.credits > 0:
                charge = Charge.BONUS
                continue
            return Refusal(rule, _window_full(rule, limit or 0, frees))
    frees = _window(usage.server_times, policy.server_per_day, DAY, now)
    if frees is not None:
        return Refusal(
            Rule.SERVER_DAY,
            plural_msg(
                "This server has used its {count} image for today; the next one frees up {when}.",
                "This server has used its {count} images for today; the next one frees up {when}.",
                policy.server_per_day or 0,
                when=Stamp(frees),
            ),
        )
    return charge


def _window_full(rule: Rule, limit: int, frees: datetime) -> Message:
    """The refusal of a member whose hourly or daily window is full."""
    if rule is Rule.HOUR:
        return plural_msg(
            "You have used your {count} image for this hour; the next one frees up {when}.",
            "You have used your {count} images for this hour; the next one frees up {when}.",
            limit,
            when=Stamp(frees),
        )
    return plural_msg(
        "You have used your {count} image for today; the next one frees up {when}.",
        "You have used your {count} images for today; the next one frees up {when}.",
        limit,
        when=Stamp(frees),
    )


@dataclass(frozen=True, slots=True)
class QuotaStatus:
    """What `/quota` tells a member."""

    limits: Limits
    used_hour: int  # units counted against the windows
    used_day: int
    frees_at: datetime | None  # when the next counted unit frees up, where a limit applies
    credits: int
    in_flight: int
    made_hour: int = 0  # images made (not refunded), whatever paid for them
    made_day: int = 0


def quota_status(
    policy: Policy, role_ids: Iterable[int], usage: Usage, now: datetime
) -> QuotaStatus:
    """The member's use of their quota, and when the next unit frees up.

    While a window is full (and no extra images pay), the next image frees up once every full
    window has room again; otherwise it is when the oldest counted image leaves a limited window.
    """
    hour = [t for t in usage.member_times if t > now - HOUR]
    day = [t for t in usage.member_times if t > now - DAY]
    limits = policy.limits_for(role_ids)
    windows = ((limits.per_hour, HOUR, hour), (limits.per_day, DAY, day))
    full = [
        opens
        for limit, span, _ in windows
        if (opens := _window(usage.member_times, limit, span, now)) is not None
    ]
    leaving = [min(used) + span for limit, span, used in windows if limit is not None and used]
    # Granted extra images pay while a window is full, so only without them is the member held.
    frees_at = max(full) if full and not usage.credits else min(leaving) if leaving else None
    return QuotaStatus(
        limits=limits,
        used_hour=len(hour),
        used_day=len(day),
        frees_at=frees_at,
        credits=usage.credits,
        in_flight=usage.member_in_flight,
        made_hour=sum(1 for t in usage.made_times if t > now - HOUR),
        made_day=sum(1 for t in usage.made_times if t > now - DAY),
    )


def describe_quota(
    status: QuotaStatus, refusal: Refusal | None, ban: Ban | None = None
) -> tuple[Message, ...]:
    """The `/quota` answer, a few short lines: always what the member has made in the last
    day and hour; where limits apply, what is left and when the next image frees up."""
    lines: list[Message] = []
    if ban is not None:
        lines.append(ban.sentence())
    # The windows roll (a unit counts for 24 hours from its use), so the sentence says so.
    lines.append(
        plural_msg(
            "You have made {count} image in the last 24 hours ({hour} in the last hour).",
            "You have made {count} images in the last 24 hours ({hour} in the last hour).",
            status.made_day,
            hour=status.made_hour,
        )
    )
    if status.limits.per_day is not None:
        lines.append(
            plural_msg(
                "You have {count} image left today (of {limit}).",
                "You have {count} images left today (of {limit}).",
                max(0, status.limits.per_day - status.used_day),
                limit=status.limits.per_day,
            )
        )
    if status.limits.per_hour is not None:
        lines.append(
            plural_msg(
                "You have {count} image left this hour (of {limit}).",
                "You have {count} images left this hour (of {limit}).",
                max(0, status.limits.per_hour - status.used_hour),
                limit=status.limits.per_hour,
            )
        )
    if status.limits.per_day is None and status.limits.per_hour is None:
        lines.append(msg("You have no image limit in this server."))
    if status.credits:
        lines.append(msg("Extra images granted by moderators: {credits}.", credits=status.credits))
    if status.in_flight:
        lines.append(
            plural_msg(
                "In progress now: {count} image.",
                "In progress now: {count} images.",
                status.in_flight,
            )
        )
    if status.frees_at is not None:
        lines.append(msg("Your next image frees up {when}.", when=Stamp(status.frees_at)))
    if refusal is not None and refusal.rule not in (Rule.HOUR, Rule.DAY):
        lines.append(refusal.reason)
    return tuple(lines)


# --- what the repository reserves and settles --------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reservation:
    """One unit to reserve for a job that has just been recorded."""

    guild_id: int
    user_id: int
    channel_id: int
    job_id: int
    at: datetime


class Outcome(enum.StrEnum):
    """A reserved job's end."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Settled:
    """What settling a job did: refunded it, recorded a strike, banned the member."""

    guild_id: int
    user_id: int
    job_id: int
    outcome: Outcome
    refunded: bool = False
    strike: bool = False
    ban: Ban | None = None
