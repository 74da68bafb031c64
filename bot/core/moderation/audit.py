"""The audit log's entries and the usage reports built from it."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from bot.core.messages import Message


class AuditKind(enum.StrEnum):
    """What an audit entry records."""

    SUBMISSION = "submission"
    REFUSAL = "refusal"
    STRIKE = "strike"
    AUTO_BAN = "auto_ban"
    MOD_ACTION = "mod_action"
    REPORT = "report"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One line of a server's audit log.

    `actor_id` did it (the member who submitted or reported, the moderator who acted; 0 for
    the bot itself); `target_id` is the member it concerns.
    """

    guild_id: int
    kind: AuditKind
    at: datetime
    actor_id: int = 0
    target_id: int = 0
    action: str = ""  # submission: the job's action; mod_action: ban, unban, limits …
    detail: str = ""
    prompt: str = ""
    mode: str = ""
    job_id: int = 0
    channel_id: int = 0
    id: int = 0
    #: The detail as a catalogue message (a refusal's sentence), for the live log channel to
    #: show in the server's language; not stored (`detail` is its English record).
    note: Message | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class UsageReport:
    """A server's (or one member's) use over a period."""

    guild_id: int
    since: datetime
    until: datetime
    user_id: int = 0  # 0: the whole server
    jobs: int = 0
    succeeded: int = 0
    failed: int = 0
    refunded: int = 0
    refusals: int = 0
    strikes: int = 0
    top: tuple[tuple[int, int], ...] = ()  # (user id, jobs), most first
    daily: tuple[tuple[date, int], ...] = ()  # every day of the period, oldest first


def daily_counts(
    times: Iterable[datetime], since: datetime, until: datetime
) -> tuple[tuple[date, int], ...]:
    """Jobs per UTC day over the period, including the days with none."""
    counts: dict[date, int] = {}
    for t in times:
        counts[t.date()] = counts.get(t.date(), 0) + 1
    day, last = since.date(), until.date()
    out: list[tuple[date, int]] = []
    while day <= last:
        out.append((day, counts.get(day, 0)))
        day += timedelta(days=1)
    return tuple(out)
