"""Community moderation rules for one server (guild) at a time: quotas, cooldowns, in-flight
caps, bans, banned terms, strikes, allowed channels and the audit log.

Pure and clock-driven: every function takes `now` and plain values, and returns either nothing
(allowed) or a `Refusal` whose `reason` is one sentence a member can read, as a catalogue
message (`bot.core.messages`) with a timestamp saying when things free up. One module per
reason to change:

- `policy`: a server's settings, who moderates, the rule names, allowed channels;
- `bounds`: the range of every number `/mod` takes;
- `quota`: windows, cooldown, in-flight caps, `/quota`'s answer, reservations;
- `bans` and `strikes`: bans, and the automatic ban after strikes;
- `normalise` and `terms`: folding prompts, and banned words and patterns;
- `audit`: audit entries and usage reports; `durations` and `wording`: how sentences say things;
- `languages`: each server's chosen public language, in memory.

The use cases (the gate every job passes, what moderators do) are `gate`, `auditlog` and
`service`; they depend on the ports and are imported from their modules (or `bot.core.gate`).
"""

from bot.core.moderation.audit import AuditEntry, AuditKind, UsageReport, daily_counts
from bot.core.moderation.bans import Ban, check_ban
from bot.core.moderation.durations import (
    DAY,
    HOUR,
    MAX_DURATION,
    describe_duration,
    parse_duration,
)
from bot.core.moderation.languages import ServerLanguages
from bot.core.moderation.normalise import fold
from bot.core.moderation.policy import (
    Limits,
    NotAllowed,
    Policy,
    Refusal,
    Rule,
    can_moderate,
    check_channel,
)
from bot.core.moderation.quota import (
    Charge,
    Outcome,
    QuotaStatus,
    Reservation,
    Settled,
    Usage,
    decide_quota,
    describe_quota,
    quota_status,
)
from bot.core.moderation.strikes import Strike, strike_ban
from bot.core.moderation.terms import (
    MAX_PATTERN_LENGTH,
    MAX_TERM_LENGTH,
    BadTerm,
    Hit,
    Term,
    TermKind,
    TermMatcher,
    check_term,
    check_terms,
)
from bot.core.moderation.wording import plural

__all__ = [
    "DAY",
    "HOUR",
    "MAX_DURATION",
    "MAX_PATTERN_LENGTH",
    "MAX_TERM_LENGTH",
    "AuditEntry",
    "AuditKind",
    "BadTerm",
    "Ban",
    "Charge",
    "Hit",
    "Limits",
    "NotAllowed",
    "Outcome",
    "Policy",
    "QuotaStatus",
    "Refusal",
    "Reservation",
    "Rule",
    "ServerLanguages",
    "Settled",
    "Strike",
    "Term",
    "TermKind",
    "TermMatcher",
    "Usage",
    "UsageReport",
    "can_moderate",
    "check_ban",
    "check_channel",
    "check_term",
    "check_terms",
    "daily_counts",
    "decide_quota",
    "describe_duration",
    "describe_quota",
    "fold",
    "parse_duration",
    "plural",
    "quota_status",
    "strike_ban",
]
