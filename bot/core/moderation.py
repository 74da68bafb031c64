"""Community moderation rules: quotas, cooldowns, in-flight caps, bans, banned terms, strikes and
allowed channels, for one server (guild) at a time.

Pure and clock-driven: every function takes `now` and plain values, and returns either nothing
(allowed) or a `Refusal` whose `reason` is one sentence a member can read, with Discord
timestamps (`<t:…:R>`) saying when things free up. Storage and Discord live elsewhere; the
atomic part (two commands at the same instant competing for the last unit) is the repository's
`reserve`, which runs `decide_quota` inside one database transaction.
"""

from __future__ import annotations

import enum
import importlib
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from bot.core.jobs import Mode

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)

#: A prompt is scanned up to this many characters (/imagine takes at most 4,000).
MAX_SCAN = 4000
#: Longest banned pattern accepted, and the most backtracking steps its worst case may take.
MAX_PATTERN_LENGTH = 100
PATTERN_BUDGET = 2 * 10**8
MAX_TERM_LENGTH = 100


def stamp(at: datetime, style: str = "R") -> str:
    """A Discord timestamp: each member's client shows it in their own time (`R`: relative)."""
    return f"<t:{int(at.timestamp())}:{style}>"


def plural(count: int, word: str) -> str:
    """`1 image`, `5 images`."""
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


# --- settings ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Limits:
    """A quota over rolling windows; None means no limit."""

    per_day: int | None = None
    per_hour: int | None = None

    def describe(self) -> str:
        """`5 per day, 2 per hour` or `no limit`."""
        parts = [
            f"{n} per {unit}"
            for n, unit in ((self.per_day, "day"), (self.per_hour, "hour"))
            if n is not None
        ]
        return ", ".join(parts) or "no limit"


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


# --- decisions ---------------------------------------------------------------------------------


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
    reason: str


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
    `server_times`: every unit not refunded in the server, last 24 h (for the server cap).
    """

    member_times: tuple[datetime, ...] = ()
    last_at: datetime | None = None  # the member's latest command, refunded or not
    member_in_flight: int = 0
    server_times: tuple[datetime, ...] = ()
    server_in_flight: int = 0
    credits: int = 0


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


def check_channel(policy: Policy, channel_ids: Iterable[int]) -> Refusal | None:
    """Refuse outside the allowed channels (a thread counts as its parent: pass both ids)."""
    if not policy.allowed_channels or set(channel_ids) & policy.allowed_channels:
        return None
    places = ", ".join(f"<#{c}>" for c in sorted(policy.allowed_channels)[:10])
    return Refusal(Rule.CHANNEL, f"Images can't be made in this channel; please use {places}.")


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
            f"You already have {plural(usage.member_in_flight, 'image')} in progress; "
            "please wait for one to finish.",
        )
    if policy.server_in_flight is not None and usage.server_in_flight >= policy.server_in_flight:
        return Refusal(
            Rule.SERVER_IN_FLIGHT,
            f"This server already has {plural(usage.server_in_flight, 'image')} in progress; "
            "please try again in a minute.",
        )
    if policy.cooldown and usage.last_at is not None and now < usage.last_at + policy.cooldown:
        return Refusal(
            Rule.COOLDOWN,
            f"Please wait a little between images; you can start the next one "
            f"{stamp(usage.last_at + policy.cooldown)}.",
        )
    charge = Charge.QUOTA
    limits = policy.limits_for(role_ids)
    for rule, limit, span, period in (
        (Rule.HOUR, limits.per_hour, HOUR, "this hour"),
        (Rule.DAY, limits.per_day, DAY, "today"),
    ):
        frees = _window(usage.member_times, limit, span, now)
        if frees is not None:
            if usage.credits > 0:
                charge = Charge.BONUS
                continue
            return Refusal(
                rule,
                f"You have used your {plural(limit or 0, 'image')} for {period}; "
                f"the next one frees up {stamp(frees)}.",
            )
    frees = _window(usage.server_times, policy.server_per_day, DAY, now)
    if frees is not None:
        return Refusal(
            Rule.SERVER_DAY,
            f"This server has used its {plural(policy.server_per_day or 0, 'image')} for today; "
            f"the next one frees up {stamp(frees)}.",
        )
    return charge


@dataclass(frozen=True, slots=True)
class QuotaStatus:
    """What `/quota` tells a member."""

    limits: Limits
    used_hour: int
    used_day: int
    frees_at: datetime | None  # when the next unit frees up, if any is in use
    credits: int
    in_flight: int


def quota_status(
    policy: Policy, role_ids: Iterable[int], usage: Usage, now: datetime
) -> QuotaStatus:
    """The member's use of their quota, and when the next unit frees up."""
    hour = [t for t in usage.member_times if t > now - HOUR]
    day = [t for t in usage.member_times if t > now - DAY]
    limits = policy.limits_for(role_ids)
    frees: list[datetime] = []
    if limits.per_hour is not None and hour:
        frees.append(min(hour) + HOUR)
    if limits.per_day is not None and day:
        frees.append(min(day) + DAY)
    return QuotaStatus(
        limits=limits,
        used_hour=len(hour),
        used_day=len(day),
        frees_at=min(frees) if frees else None,
        credits=usage.credits,
        in_flight=usage.member_in_flight,
    )


def describe_quota(status: QuotaStatus, refusal: Refusal | None) -> str:
    """The `/quota` answer, in a few short lines."""
    lines: list[str] = []
    for limit, used, period in (
        (status.limits.per_day, status.used_day, "today"),
        (status.limits.per_hour, status.used_hour, "this hour"),
    ):
        if limit is not None:
            left = max(0, limit - used)
            lines.append(f"You have {plural(left, 'image')} left {period} (of {limit}).")
    if not lines:
        lines.append("You have no image limit in this server.")
    if status.credits:
        lines.append(f"Extra images granted by moderators: {status.credits}.")
    if status.in_flight:
        lines.append(f"In progress now: {plural(status.in_flight, 'image')}.")
    if status.frees_at is not None:
        lines.append(f"Your next image frees up {stamp(status.frees_at)}.")
    if refusal is not None and refusal.rule not in (Rule.HOUR, Rule.DAY):
        lines.append(refusal.reason)
    return "\n".join(lines)


# --- strikes -----------------------------------------------------------------------------------


def strike_ban(
    policy: Policy, guild_id: int, user_id: int, strike_times: Sequence[datetime], now: datetime
) -> Ban | None:
    """The automatic temporary ban due after `strike_limit` strikes within `strike_window`."""
    if policy.strike_limit <= 0:
        return None
    recent = [t for t in strike_times if t > now - policy.strike_window]
    if len(recent) < policy.strike_limit:
        return None
    hours = policy.strike_window.total_seconds() / 3600
    return Ban(
        guild_id=guild_id,
        user_id=user_id,
        reason=f"{len(recent)} prompts refused by the image service within "
        f"{hours:g} hour{'s' if hours != 1 else ''}",
        at=now,
        until=now + policy.strike_ban,
    )


# --- banned terms ------------------------------------------------------------------------------


class TermKind(enum.StrEnum):
    """A whole word (or phrase), or a regular expression matched on whole words."""

    WORD = "word"
    PATTERN = "pattern"


@dataclass(frozen=True, slots=True)
class Term:
    """One banned term of a server."""

    kind: TermKind
    text: str


class BadTerm(ValueError):
    """A term moderators may not add; the message says why, for the moderator."""


def fold(text: str) -> str:
    """Text as the matcher compares it: accents removed, case folded, compatibility forms
    unified (`Ｇｏｒｅ`, `GÖRE` and `gore` all become `gore`)."""
    decomposed = unicodedata.normalize("NFKD", text[:MAX_SCAN])
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return unicodedata.normalize("NFKC", bare.casefold())


def _strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return unicodedata.normalize(
        "NFC", "".join(c for c in decomposed if not unicodedata.combining(c))
    )


_parser: Any = importlib.import_module("re._parser")
_constants: Any = importlib.import_module("re._constants")


@dataclass
class _Cost:
    """What a parsed pattern may cost: open-ended repeats, and bounded repeat sizes multiplied."""

    unbounded: int = 0
    bounded: int = 1


def _pattern_risks(nodes: Any, inside_repeat: bool, cost: _Cost) -> str | None:
    """Why the parsed pattern may backtrack catastrophically, or None; adds up its cost."""
    for op, arg in nodes:
        name = str(op)
        why = None
        if name in ("GROUPREF", "GROUPREF_EXISTS"):
            return "back-references are not allowed"
        if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            _low, high, sub = arg
            repeats = high == _constants.MAXREPEAT or high > 1
            if repeats and inside_repeat:
                return "a repeat inside a repeat (like (a+)+) is not allowed"
            if high == _constants.MAXREPEAT:
                cost.unbounded += 1
            elif high > 1:
                cost.bounded *= high + 1
            why = _pattern_risks(sub, inside_repeat or repeats, cost)
        elif name == "BRANCH":
            if inside_repeat:
                return "alternatives inside a repeat (like (a|ab)*) are not allowed"
            for branch in arg[1]:
                why = why or _pattern_risks(branch, inside_repeat, cost)
        elif name == "SUBPATTERN":
            why = _pattern_risks(arg[-1], inside_repeat, cost)
        elif name in ("ASSERT", "ASSERT_NOT", "ATOMIC_GROUP"):
            why = _pattern_risks(arg if name == "ATOMIC_GROUP" else arg[-1], inside_repeat, cost)
        if why:
            return why
    return None


def check_term(kind: TermKind, text: str) -> Term:
    """The term as stored, or BadTerm saying why it is refused.

    Words are stored folded. Patterns are guarded against catastrophic backtracking: at most
    100 characters, no back-references, no repeat or alternation inside a repeat, and an
    estimated worst case (repeat sizes, open-ended repeats × the longest prompt scanned) within
    `PATTERN_BUDGET` steps, which keeps each match well under a second.
    """
    text = text.strip()
    if not text:
        raise BadTerm("A banned term can't be empty.")
    if kind is TermKind.WORD:
        if len(text) > MAX_TERM_LENGTH:
            raise BadTerm(f"A banned word can be at most {MAX_TERM_LENGTH} characters.")
        return Term(kind, " ".join(fold(text).split()))
    if len(text) > MAX_PATTERN_LENGTH:
        raise BadTerm(f"A banned pattern can be at most {MAX_PATTERN_LENGTH} characters.")
    pattern = _strip_accents(text)
    try:
        parsed = _parser.parse(pattern, re.IGNORECASE)
    except re.error as exc:
        raise BadTerm(f"That is not a valid regular expression: {exc}.") from None
    cost = _Cost()
    why = _pattern_risks(parsed, False, cost)
    # Worst-case backtracking steps: each open-ended repeat can try every split of the prompt,
    # bounded ones their sizes, at every start position.
    if why is None and cost.bounded * MAX_SCAN ** (cost.unbounded + 1) > PATTERN_BUDGET:
        why = (
            "use at most one open-ended repeat (*, +) and keep {n,m} repeats small "
            "(like k{1,10} instead of k+)"
        )
    if why is not None:
        raise BadTerm(f"That pattern could make the bot slow: {why}.")
    return Term(kind, pattern)


@dataclass(frozen=True, slots=True)
class Hit:
    """A banned term found in a prompt, and the text it matched."""

    term: Term
    matched: str


class TermMatcher:
    """All of a server's banned terms, compiled once; `find` returns the first hit.

    Matching is case- and accent-insensitive and on whole words: `gore` matches `GÖRE!` and
    `gore-fest` but not `gorgeous` or `Gregory`. Terms that no longer pass `check_term` (the
    rules got stricter) are skipped.
    """

    def __init__(self, terms: Iterable[Term]) -> None:
        self.terms = tuple(terms)
        words = sorted(
            {t.text for t in self.terms if t.kind is TermKind.WORD and t.text},
            key=len,
            reverse=True,
        )
        self._words = (
            re.compile(
                r"(?<!\w)(?:"
                + "|".join(r"\s+".join(map(re.escape, w.split())) for w in words)
                + r")(?!\w)"
            )
            if words
            else None
        )
        self._by_word = {w: Term(TermKind.WORD, w) for w in words}
        self._patterns: list[tuple[Term, re.Pattern[str]]] = []
        for term in self.terms:
            if term.kind is not TermKind.PATTERN:
                continue
            try:
                checked = check_term(term.kind, term.text)
            except BadTerm:
                continue
            self._patterns.append(
                (term, re.compile(r"(?<!\w)(?:" + checked.text + r")(?!\w)", re.IGNORECASE))
            )

    def find(self, prompt: str) -> Hit | None:
        """The first banned term in the prompt, or None."""
        folded = fold(prompt)
        if self._words is not None:
            match = self._words.search(folded)
            if match:
                key = " ".join(match.group(0).split())
                return Hit(self._by_word.get(key, Term(TermKind.WORD, key)), match.group(0))
        if self._patterns:
            accentless = _strip_accents(prompt[:MAX_SCAN])
            for term, rx in self._patterns:
                match = rx.search(accentless) or rx.search(folded)
                if match:
                    return Hit(term, match.group(0))
        return None


def check_terms(matcher: TermMatcher, prompt: str) -> Refusal | None:
    """Refuse a prompt containing a banned term; the member is told which words."""
    hit = matcher.find(prompt)
    if hit is None:
        return None
    shown = hit.matched.strip()[:40]
    return Refusal(
        Rule.TERM,
        f"Your prompt contains “{shown}”, which this server does not allow; please rephrase it.",
    )


# --- the audit log and reports -----------------------------------------------------------------


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


def parse_duration(text: str) -> timedelta | None:
    """`30m`, `12h`, `7d`, `2w` (or combinations like `1d12h`) → a timedelta; None if not one."""
    text = text.strip().lower().replace(" ", "")
    if not text or not re.fullmatch(r"(\d{1,5}[smhdw])+", text):
        return None
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    seconds = sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([smhdw])", text))
    return timedelta(seconds=seconds) if 0 < seconds <= 10 * 365 * 86400 else None


def describe_duration(span: timedelta) -> str:
    """`45 seconds`, `30 minutes`, `12 hours`, `3 days`."""
    seconds = int(span.total_seconds())
    for size, word in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size and seconds % size == 0:
            return plural(seconds // size, word)
    return plural(seconds, "second")


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


@dataclass(frozen=True, slots=True)
class Strike:
    """A prompt the image service refused as banned content."""

    guild_id: int
    user_id: int
    at: datetime
    reason: str = ""
    job_id: int = 0
