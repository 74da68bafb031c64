"""Changes moderators make to a server's settings, each checked against its declared bounds
(`bounds`), and the audit log's description of what a change did."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import timedelta

from bot.core.jobs import Mode
from bot.core.messages import msg
from bot.core.moderation import bounds
from bot.core.moderation.durations import MAX_DURATION, describe_duration, parse_duration
from bot.core.moderation.policy import Limits, NotAllowed, Policy
from bot.core.moderation.wording import number

#: A change to a server's settings: the policy before → the policy after.
PolicyChange = Callable[[Policy], Policy]

#: The public languages a moderator may choose (`/mod language`): English and the catalogues'
#: locales, as Discord spells them; "" is Discord's server setting.
LANGUAGES: tuple[str, ...] = (
    "en-US",
    "ja",
    "zh-CN",
    "zh-TW",
    "ko",
    "es-ES",
    "pt-BR",
    "fr",
    "de",
    "ru",
)


def duration(option: str, text: str) -> timedelta:
    """A moderator's duration (`12h`), or NotAllowed naming the option and the form."""
    span = parse_duration(text) if len(text) <= bounds.DURATION_LENGTH else None
    if span is None:
        raise NotAllowed(
            f"bad {option} {text[:50]!r}",
            message=msg(
                "{option} must be like 30m, 12h, 7d or 2w (at most {days} days).",
                option=option,
                days=number(MAX_DURATION.days),
            ),
        )
    return span


def default_limits(per_day: int | None, per_hour: int | None) -> PolicyChange:
    """Everyone's quota (roles with their own limit keep theirs)."""
    bounds.PER_DAY.check(per_day)
    bounds.PER_HOUR.check(per_hour)
    new = Limits(per_day=per_day, per_hour=per_hour)
    return lambda p: dataclasses.replace(p, limits=new)


def role_limits(
    role_id: int, per_day: int | None, per_hour: int | None, *, remove: bool
) -> PolicyChange:
    """A role's own quota, or (`remove`) back to the default."""
    bounds.PER_DAY.check(per_day)
    bounds.PER_HOUR.check(per_hour)
    new = Limits(per_day=per_day, per_hour=per_hour)

    def change(p: Policy) -> Policy:
        roles = dict(p.role_limits)
        if remove:
            roles.pop(role_id, None)
        else:
            roles[role_id] = new
        return dataclasses.replace(p, role_limits=roles)

    return change


def server_cap(per_day: int | None) -> PolicyChange:
    """The images the whole server may make per rolling day (None: no cap)."""
    bounds.SERVER_PER_DAY.check(per_day)
    return lambda p: dataclasses.replace(p, server_per_day=per_day)


def cooldown(seconds: int) -> PolicyChange:
    """The wait between a member's images."""
    bounds.COOLDOWN_SECONDS.check(seconds)
    span = timedelta(seconds=seconds)
    return lambda p: dataclasses.replace(p, cooldown=span)


def in_flight(member: int | None, server: int | None) -> PolicyChange:
    """Caps on images in progress at once, per member and for the server."""
    bounds.MEMBER_IN_FLIGHT.check(member)
    bounds.SERVER_IN_FLIGHT.check(server)
    return lambda p: dataclasses.replace(p, member_in_flight=member, server_in_flight=server)


def strikes(limit: int, window_hours: int, ban: str) -> PolicyChange:
    """How many strikes within how many hours bring an automatic ban, and its length."""
    bounds.STRIKE_LIMIT.check(limit)
    bounds.STRIKE_WINDOW_HOURS.check(window_hours)
    span = duration("ban", ban)
    window = timedelta(hours=window_hours)
    return lambda p: dataclasses.replace(
        p, strike_limit=limit, strike_window=window, strike_ban=span
    )


def add_channel(channel_id: int) -> PolicyChange:
    """Allow images in one more channel."""
    return lambda p: dataclasses.replace(p, allowed_channels=p.allowed_channels | {channel_id})


def remove_channel(channel_id: int) -> PolicyChange:
    """Take a channel off the allowed list."""
    return lambda p: dataclasses.replace(p, allowed_channels=p.allowed_channels - {channel_id})


def log_channel(channel_id: int) -> PolicyChange:
    """Where the audit log is mirrored (0: nowhere)."""
    return lambda p: dataclasses.replace(p, log_channel_id=channel_id)


def moderator_role(role_id: int) -> PolicyChange:
    """The role that moderates besides Manage Server (0: none)."""
    return lambda p: dataclasses.replace(p, moderator_role_id=role_id)


def default_mode(mode: Mode) -> PolicyChange:
    """The mode jobs use when the member picks none."""
    return lambda p: dataclasses.replace(p, default_mode=mode)


def language(locale: str) -> PolicyChange:
    """The language of what the whole channel reads ("": Discord's server setting)."""
    if locale and locale not in LANGUAGES:
        raise NotAllowed(
            f"language {locale[:20]!r}",
            message=msg("Pick a language from the list."),
        )
    return lambda p: dataclasses.replace(p, language=locale)


def difference(before: Policy, after: Policy) -> str:
    """`per_day: 5 → 3; cooldown: none → 30 seconds` (what a settings change did)."""
    changes = []
    for f in dataclasses.fields(Policy):
        old, new = getattr(before, f.name), getattr(after, f.name)
        if old != new:
            changes.append(f"{f.name}: {_show(old)} → {_show(new)}")
    return "; ".join(changes) or "no change"


def _show(value: object) -> str:
    if isinstance(value, frozenset):
        return ", ".join(str(v) for v in sorted(value)) or "any"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v.describe().plain()}" for k, v in value.items()) or "none"
    if isinstance(value, timedelta):
        return describe_duration(value).plain() if value else "none"
    if isinstance(value, Limits):
        return value.describe().plain()
    if value == "":
        return "none"
    return str(value.value if isinstance(value, Mode) else value)
