"""Every sentence moderation produces, rendered in every locale at its worst case, within what
Discord accepts: message content, embed titles, field names and values, footers, button labels.

The catalogue checks (test_i18n_catalogues) prove each key exists in each locale with its
placeholders; this sweep builds the messages the way the code does — refusals for every rule,
bans of every kind, every bound, every banned-term error, /quota's answer, the log channel's
embed for every audit kind, the usage report, /mod status and the buttons — so a translation
that is fine alone but too long once its parameters are filled in is caught.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import discord
import pytest

from bot.core.jobs import Job, Mode, Route
from bot.core.messages import Message
from bot.core.moderation import (
    AuditEntry,
    AuditKind,
    BadTerm,
    Ban,
    Limits,
    NotAllowed,
    Policy,
    Refusal,
    TermKind,
    Usage,
    UsageReport,
    bounds,
    check_channel,
    check_term,
    decide_quota,
    describe_duration,
    describe_quota,
    quota_status,
)
from bot.core.moderation import settings as change
from bot.core.moderation.bans import automatic_reason
from bot.core.moderation.service import LogAction, ServerStatus
from bot.core.moderation.terms import Hit, Term, refusal_for
from bot.discord_ui.cogs.mod_common import rendered
from bot.discord_ui.i18n.catalog import LOCALES
from bot.discord_ui.i18n.render import render
from bot.discord_ui.mod_buttons import ModLogButton, ReportButton
from bot.discord_ui.mod_embeds import bans_text, entry_embed, report_embed, status_text

EVERY_LOCALE = ("en-US", *LOCALES)
NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
BIG = 2**63 - 1  # the longest snowflake: the longest mention
LONG = "ж" * 300  # member and moderator text at its longest (reasons, prompts)
MAX_CONTENT, MAX_TITLE, MAX_FIELD_NAME, MAX_FIELD_VALUE = 2000, 256, 256, 1024
MAX_DESCRIPTION, MAX_FOOTER, MAX_EMBED, MAX_LABEL = 4096, 2048, 6000, 80


def refusals() -> Iterator[Refusal]:
    """A refusal of every rule, at its largest numbers."""
    full = Usage(
        member_times=tuple(NOW - timedelta(seconds=i) for i in range(1000)),
        last_at=NOW,
        member_in_flight=1000,
        server_times=tuple(NOW - timedelta(minutes=i) for i in range(1000)),
        server_in_flight=100_000,
    )
    policies = [
        Policy(1, member_in_flight=1000),
        Policy(1, server_in_flight=100_000),
        Policy(1, cooldown=timedelta(days=1)),
        Policy(1, limits=Limits(per_hour=1000)),
        Policy(1, limits=Limits(per_day=1000)),
        Policy(1, server_per_day=1000),
        Policy(1, limits=Limits(per_day=1)),
    ]
    for policy in policies:
        busy = Usage(
            member_times=full.member_times[: (policy.limits.per_day or 1000)],
            last_at=NOW,
            member_in_flight=full.member_in_flight,
            server_times=full.server_times,
            server_in_flight=full.server_in_flight,
        )
        result = decide_quota(policy, (), busy, NOW)
        assert isinstance(result, Refusal), policy
        yield result
    channels = check_channel(Policy(1, allowed_channels=frozenset(range(BIG - 20, BIG))), [5])
    assert channels is not None
    yield channels
    yield from (r for r in [refusal_for(Hit(Term(TermKind.WORD, "x"), LONG))] if r)
    yield from (r for r in [refusal_for(Hit(Term(TermKind.PATTERN, "x"), "", True))] if r)


def bans() -> list[Ban]:
    until = NOW + timedelta(days=3650)
    return [
        Ban(1, BIG, LONG, NOW, until=until, by=BIG),
        Ban(1, BIG, LONG, NOW, by=BIG),
        Ban(1, BIG, "", NOW),
        Ban(1, BIG, "", NOW, until=until),
        Ban(1, BIG, automatic_reason(50, 8760), NOW, until=until),
    ]


def errors() -> Iterator[Message]:
    """Every sentence a moderator's bad input gets."""
    for bound in (v for v in vars(bounds).values() if isinstance(v, bounds.Bound)):
        with pytest.raises(NotAllowed) as err:
            bound.check(bound.high + 1)
        assert err.value.message is not None
        yield err.value.message
    for kind, text in [
        (TermKind.WORD, " "),
        (TermKind.WORD, "x" * 101),
        (TermKind.WORD, "\u200b"),
        (TermKind.PATTERN, "x" * 101),
        (TermKind.PATTERN, "("),
        (TermKind.PATTERN, "(a+)+"),
    ]:
        with pytest.raises(BadTerm) as bad:
            check_term(kind, text)
        yield bad.value.message
    builds: list[Callable[[], object]] = [
        lambda: change.strikes(3, 24, "soon"),
        lambda: change.language("xx"),
    ]
    for build in builds:
        with pytest.raises(NotAllowed) as err:
            build()
        assert err.value.message is not None
        yield err.value.message


def contents() -> Iterator[tuple[str, list[Message]]]:
    """Every message content moderation sends, as lines of messages."""
    for refusal in refusals():
        yield f"refusal {refusal.rule}", [refusal.reason]
    for ban in bans():
        yield "ban", [ban.sentence()]
    for message in errors():
        yield "error", [message]
    policy = Policy(1, limits=Limits(per_day=100_000, per_hour=100_000))
    usage = Usage(
        member_times=tuple(NOW - timedelta(seconds=i) for i in range(1000)),
        member_in_flight=1000,
        credits=100_000,
        made_times=tuple(NOW - timedelta(seconds=i) for i in range(1000)),
    )
    status = quota_status(policy, (), usage, NOW)
    cooldown = decide_quota(Policy(1, cooldown=timedelta(days=1)), (), Usage(last_at=NOW), NOW)
    assert isinstance(cooldown, Refusal)
    yield "/quota", list(describe_quota(status, cooldown, bans()[0]))
    yield "/mod bans", bans_text(bans() * 5)
    for span in (
        timedelta(seconds=59),
        timedelta(minutes=59),
        timedelta(hours=23),
        timedelta(days=3650),
    ):
        yield "duration", [describe_duration(span)]


def every_line(lines: list[Message], locale: str) -> str:
    return "\n".join(render(line, locale) for line in lines)


@pytest.mark.parametrize("locale", EVERY_LOCALE)
def test_every_moderation_sentence_fits_a_discord_message_in_every_locale(
    locale: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    too_long = []
    for what, lines in contents():
        text = every_line(lines, locale)
        assert "{" not in text.replace("{1,10}", ""), f"{what}: a placeholder is left: {text}"
        # Each sentence fits alone; a list is sent as the whole lines that fit (`rendered`).
        all_lines = text.split("\n")
        too_long += [f"{what}: {len(line)}" for line in all_lines if len(line) > MAX_CONTENT]
        sent = rendered(lines, locale).split("\n")
        assert sent == all_lines[: len(sent)], what
        if len(sent) < len(all_lines):
            assert len("\n".join(all_lines[: len(sent) + 1])) > MAX_CONTENT, what
    assert not too_long
    assert not caplog.records, "a translation's placeholders were refused at run time"


def _job() -> Job:
    return Job(
        id=BIG,
        route=Route(
            guild_id=BIG, channel_id=BIG, requester_id=BIG, reply_message_id=BIG, thread_id=BIG
        ),
        mode=Mode.NIJI_JOURNEY,
        prompt=LONG * 20,
        task_id="9" * 40,
        result_message_id=BIG,
    )


def _embed_ok(embed: discord.Embed) -> list[str]:
    problems = []
    if len(embed.title or "") > MAX_TITLE:
        problems.append(f"title {embed.title!r}")
    if len(embed.description or "") > MAX_DESCRIPTION:
        problems.append("description")
    if len(embed.footer.text or "") > MAX_FOOTER:
        problems.append("footer")
    for field in embed.fields:
        if len(field.name or "") > MAX_FIELD_NAME or not field.name:
            problems.append(f"field name {field.name!r}")
        if len(field.value or "") > MAX_FIELD_VALUE or not field.value:
            problems.append(f"field value of {field.name!r}")
    if len(embed) > MAX_EMBED:
        problems.append(f"embed {len(embed)}")
    return problems


@pytest.mark.parametrize("locale", EVERY_LOCALE)
def test_the_log_channel_report_and_status_fit_discords_embed_limits_in_every_locale(
    locale: str,
) -> None:
    problems = []
    refusal = next(refusals())
    for kind in AuditKind:
        entry = AuditEntry(
            guild_id=BIG,
            kind=kind,
            at=NOW,
            actor_id=BIG - 1,
            target_id=BIG,
            action="x" * 64,
            detail=LONG * 5,
            prompt=LONG * 20,
            mode="niji",
            job_id=BIG,
            channel_id=BIG,
            note=refusal.reason if kind is AuditKind.REFUSAL else None,
        )
        problems += _embed_ok(entry_embed(entry, _job(), locale))
        problems += _embed_ok(entry_embed(entry, None, locale))
    report = UsageReport(
        guild_id=BIG,
        since=NOW - timedelta(days=90),
        until=NOW,
        user_id=BIG,
        jobs=10**9,
        succeeded=10**9,
        failed=10**9,
        refunded=10**9,
        refusals=10**9,
        strikes=10**9,
        top=tuple((BIG - i, 10**9) for i in range(10)),
    )
    problems += _embed_ok(report_embed(report, locale))
    status = ServerStatus(
        policy=Policy(
            BIG,
            limits=Limits(per_day=100_000, per_hour=100_000),
            server_per_day=1_000_000,
            log_channel_id=BIG,
        ),
        in_progress=10**6,
        queued=10**6,
        failures=tuple((BIG, LONG) for _ in range(5)),
    )
    text = status_text(status, {"last_api_success": NOW.isoformat(), "database": False}, locale)
    if len(text) > MAX_CONTENT:
        problems.append(f"/mod status {len(text)}")
    assert not problems, problems


@pytest.mark.parametrize("locale", EVERY_LOCALE)
def test_moderation_buttons_are_labelled_in_the_locale_within_discords_limit(locale: str) -> None:
    labels = [ModLogButton(action, BIG, BIG, locale).item.label for action in LogAction]
    labels.append(ReportButton(BIG, locale).item.label)
    assert all(label and len(label) <= MAX_LABEL for label in labels), labels
    if locale != "en-US":
        english = [ModLogButton(action, 1, 1).item.label for action in LogAction]
        assert labels[:3] != english, f"{locale}: the buttons are not translated"
