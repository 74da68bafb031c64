"""The moderation store's contract, and the gate on top of it, on SQLite and PostgreSQL alike
(same fixtures as test_storage.py: PostgreSQL failing to answer is a skip locally, a failure
under CI=true)."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

import pytest

from bot.adapters.storage import Storage
from bot.core.errors import Refused
from bot.core.gate import ModerationGate, ModerationService, NotAllowed
from bot.core.jobs import Job, JobStatus, Mode, PostState, Route
from bot.core.moderation import (
    AuditEntry,
    AuditKind,
    Ban,
    Charge,
    Limits,
    Outcome,
    Policy,
    Refusal,
    Reservation,
    Rule,
    Strike,
    Term,
    TermKind,
    Usage,
    decide_quota,
)
from bot.core.moderation import settings as change
from bot.core.moderation.service import Deletion
from bot.core.ports import ModerationRepository, Ticket
from bot.discord_ui.i18n.render import render
from tests.integration import test_storage as base
from tests.integration.test_storage import BIG_ID, Target
from tests.unit.fakes import FakeClock

# The same backends as the job ledger's contract suite.
target = base.target
storage = base.storage

G, U, V = BIG_ID, BIG_ID + 10, BIG_ID + 11
CHANNEL = BIG_ID + 20


#: A moderator's ticket (Manage Server) in the test server.
MOD = Ticket(G, CHANNEL, 7, manage_guild=True)


async def strike_count(repo: ModerationRepository, clock: FakeClock) -> int:
    """The server's strikes over the last day, as the usage report counts them."""
    now = clock.now()
    return (await repo.report(G, now - timedelta(days=1), now + timedelta(days=1))).strikes


def quota(policy: Policy, clock: FakeClock):  # type: ignore[no-untyped-def]
    return lambda usage: decide_quota(policy, (), usage, clock.now())


def reservation(job_id: int, clock: FakeClock, user: int = U) -> Reservation:
    return Reservation(G, user, CHANNEL, job_id, clock.now())


async def test_a_server_without_settings_gets_the_defaults(storage: Storage) -> None:
    assert await storage.moderation.policy(G) == Policy(G)


async def test_settings_and_role_limits_round_trip(storage: Storage) -> None:
    policy = Policy(
        G,
        limits=Limits(per_day=5, per_hour=2),
        role_limits={BIG_ID + 1: Limits(per_day=20), BIG_ID + 2: Limits(per_hour=None)},
        server_per_day=100,
        cooldown=timedelta(seconds=30),
        member_in_flight=2,
        server_in_flight=10,
        strike_limit=4,
        strike_window=timedelta(hours=6),
        strike_ban=timedelta(days=3),
        allowed_channels=frozenset({CHANNEL, CHANNEL + 1}),
        default_mode=Mode.NIJI_JOURNEY,
        log_channel_id=CHANNEL + 2,
        moderator_role_id=BIG_ID + 3,
        language="zh-TW",
    )
    await storage.moderation.save_policy(policy)
    assert await storage.moderation.policy(G) == policy
    fewer = dataclasses.replace(policy, role_limits={}, allowed_channels=frozenset())
    await storage.moderation.save_policy(fewer)
    assert await storage.moderation.policy(G) == fewer
    assert await storage.moderation.policy(G + 1) == Policy(G + 1)


async def test_the_chosen_languages_are_read_back_for_every_server_that_has_one(
    storage: Storage,
) -> None:
    repo = storage.moderation
    assert await repo.languages() == {}
    await repo.save_policy(Policy(G, language="ja"))
    await repo.save_policy(Policy(G + 1, language="pt-BR"))
    await repo.save_policy(Policy(G + 2))  # follows Discord's setting: not listed
    assert await repo.languages() == {G: "ja", G + 1: "pt-BR"}
    gate = ModerationGate(repo, FakeClock())
    await gate.load_languages()
    assert gate.languages.chosen(G) == "ja" and gate.languages.chosen(G + 2) == ""
    # Another process clears one: this one's next re-read (every minute) follows.
    elsewhere = ModerationService(ModerationGate(repo, FakeClock()), storage.jobs)
    await elsewhere.change(MOD, "language", change.language(""))
    assert gate.languages.chosen(G) == "ja"
    await gate.load_languages()
    assert gate.languages.chosen(G) == "" and await repo.languages() == {G + 1: "pt-BR"}
    mods = ModerationService(gate, storage.jobs)
    await mods.change(MOD, "language", change.language("ko"))  # its own change: at once
    assert gate.languages.chosen(G) == "ko"
    with pytest.raises(NotAllowed):
        change.language("xx-YY")


async def test_bans_expire_are_replaced_and_lifted(storage: Storage) -> None:
    clock = FakeClock()
    repo = storage.moderation
    short = Ban(G, U, "spam", clock.now(), until=clock.now() + timedelta(hours=1), by=7)
    await repo.add_ban(short)
    assert await repo.active_ban(G, U, clock.now()) == short
    assert await repo.active_ban(G, V, clock.now()) is None
    clock.advance(hours=1)
    assert await repo.active_ban(G, U, clock.now()) is None
    forever = Ban(G, U, "again", clock.now(), by=7)
    await repo.add_ban(forever)
    await repo.add_ban(Ban(G, V, "", clock.now()))
    assert [b.user_id for b in await repo.bans(G, clock.now())] == [V, U]
    assert await repo.lift_ban(G, U, clock.now())
    assert not await repo.lift_ban(G, U, clock.now())
    assert await repo.active_ban(G, U, clock.now()) is None


async def test_terms_are_added_once_listed_in_order_and_removed(storage: Storage) -> None:
    clock = FakeClock()
    repo = storage.moderation
    gore, pattern = Term(TermKind.WORD, "gore"), Term(TermKind.PATTERN, r"n[a@]ked")
    assert await repo.add_term(G, gore, 7, clock.now())
    assert not await repo.add_term(G, gore, 7, clock.now())
    assert await repo.add_term(G, pattern, 7, clock.now())
    assert await repo.terms(G) == [gore, pattern]
    assert await repo.terms(G + 1) == []
    assert await repo.remove_term(G, "gore")
    assert not await repo.remove_term(G, "gore")
    assert await repo.terms(G) == [pattern]


async def test_reserve_decides_on_the_usage_and_records_the_unit_once(storage: Storage) -> None:
    clock = FakeClock()
    repo = storage.moderation
    policy = Policy(G, limits=Limits(per_day=2))
    assert await repo.reserve(reservation(1, clock), quota(policy, clock)) is Charge.QUOTA
    # The same job again: its unit is not taken twice.
    assert await repo.reserve(reservation(1, clock), quota(policy, clock)) is Charge.QUOTA
    clock.advance(minutes=1)
    assert await repo.reserve(reservation(2, clock), quota(policy, clock)) is Charge.QUOTA
    refusal = await repo.reserve(reservation(3, clock), quota(policy, clock))
    assert isinstance(refusal, Refusal) and refusal.rule is Rule.DAY
    usage = await repo.usage(G, U, clock.now())
    assert len(usage.member_times) == 2 and usage.member_in_flight == 2
    assert usage.last_at == clock.now()
    assert (await repo.usage(G, V, clock.now())).member_times == ()


@pytest.mark.parametrize("contenders", [2, 8])
async def test_commands_at_the_same_instant_cannot_both_take_the_last_unit(
    target: Target, contenders: int
) -> None:
    """Two (or eight) bot processes sharing one database, each with its own connection pool,
    reserve for one member at once: exactly the remaining units are granted."""
    clock = FakeClock()
    stores = [await target.open() for _ in range(2)]
    try:
        policy = Policy(G, limits=Limits(per_day=3))
        await stores[0].moderation.save_policy(policy)
        assert await stores[0].moderation.reserve(reservation(1, clock), quota(policy, clock))
        assert await stores[0].moderation.reserve(reservation(2, clock), quota(policy, clock))
        results = await asyncio.gather(
            *(
                stores[i % 2].moderation.reserve(reservation(100 + i, clock), quota(policy, clock))
                for i in range(contenders)
            )
        )
        assert sum(r is Charge.QUOTA for r in results) == 1
        assert all(isinstance(r, Refusal) for r in results if r is not Charge.QUOTA)
        usage = await stores[1].moderation.usage(G, U, clock.now())
        assert len(usage.member_times) == 3
    finally:
        for s in stores:
            await s.close()


async def test_the_first_reservation_of_a_new_server_from_two_processes(target: Target) -> None:
    clock = FakeClock()
    stores = [await target.open() for _ in range(2)]
    try:
        policy = Policy(G, server_per_day=1)
        results = await asyncio.gather(
            *(
                s.moderation.reserve(reservation(i + 1, clock, U + i), quota(policy, clock))
                for i, s in enumerate(stores)
            )
        )
        assert sorted(isinstance(r, Refusal) for r in results) == [False, True]
    finally:
        for s in stores:
            await s.close()


def no_ban(times: object) -> None:
    return None


async def test_settle_refunds_a_failure_once_and_keeps_a_success(storage: Storage) -> None:
    clock = FakeClock()
    repo = storage.moderation
    policy = Policy(G, limits=Limits(per_day=5))
    for job_id in (1, 2):
        await repo.reserve(reservation(job_id, clock), quota(policy, clock))
    failed = await repo.settle(
        1, Outcome.FAILED, clock.now(), refund=True, strike=None, auto_ban=no_ban
    )
    assert failed is not None and failed.refunded and (failed.guild_id, failed.user_id) == (G, U)
    again = await repo.settle(
        1, Outcome.FAILED, clock.now(), refund=True, strike=None, auto_ban=no_ban
    )
    assert again is None
    ok = await repo.settle(
        2, Outcome.SUCCEEDED, clock.now(), refund=False, strike=None, auto_ban=no_ban
    )
    assert ok is not None and not ok.refunded
    usage = await repo.usage(G, U, clock.now())
    assert len(usage.member_times) == 1 and usage.member_in_flight == 0
    assert (
        await repo.settle(
            99, Outcome.FAILED, clock.now(), refund=True, strike=None, auto_ban=no_ban
        )
        is None
    )


async def test_concurrent_settles_of_one_job_refund_and_strike_once(target: Target) -> None:
    clock = FakeClock()
    stores = [await target.open() for _ in range(2)]
    try:
        repo = stores[0].moderation
        await repo.reserve(reservation(1, clock), quota(Policy(G), clock))
        strike = Strike(G, U, clock.now(), "banned prompt", 1)
        results = await asyncio.gather(
            *(
                s.moderation.settle(
                    1, Outcome.FAILED, clock.now(), refund=True, strike=strike, auto_ban=no_ban
                )
                for s in stores * 2
            )
        )
        assert sum(r is not None for r in results) == 1
        assert await strike_count(repo, clock) == 1
    finally:
        for s in stores:
            await s.close()


async def test_credits_pay_beyond_the_quota_and_come_back_on_refund(storage: Storage) -> None:
    clock = FakeClock()
    repo = storage.moderation
    policy = Policy(G, limits=Limits(per_day=1))
    assert await repo.grant(G, U, 2) == 2
    assert await repo.reserve(reservation(1, clock), quota(policy, clock)) is Charge.QUOTA
    assert await repo.reserve(reservation(2, clock), quota(policy, clock)) is Charge.BONUS
    assert (await repo.usage(G, U, clock.now())).credits == 1
    await repo.settle(2, Outcome.FAILED, clock.now(), refund=True, strike=None, auto_ban=no_ban)
    assert (await repo.usage(G, U, clock.now())).credits == 2


async def test_reset_and_a_moderator_refund_free_units(storage: Storage) -> None:
    clock = FakeClock()
    repo = storage.moderation
    policy = Policy(G, limits=Limits(per_day=2))
    for job_id in (1, 2):
        await repo.reserve(reservation(job_id, clock), quota(policy, clock))
    assert isinstance(await repo.reserve(reservation(3, clock), quota(policy, clock)), Refusal)
    assert await repo.refund(2)
    assert not await repo.refund(2)
    assert not await repo.refund(404)
    assert await repo.reserve(reservation(3, clock), quota(policy, clock)) is Charge.QUOTA
    assert await repo.reset(G, U, clock.now()) == 2
    assert (await repo.usage(G, U, clock.now())).member_times == ()
    # The server cap still counts reset units; refunded ones count for nothing.
    assert len((await repo.usage(G, U, clock.now())).server_times) == 2


async def test_strikes_bring_one_automatic_ban(storage: Storage) -> None:
    clock = FakeClock()
    repo = storage.moderation
    until = clock.now() + timedelta(days=1)

    def after_two(times: object) -> Ban | None:
        assert isinstance(times, list)
        return Ban(G, U, "2 strikes", clock.now(), until=until) if len(times) >= 2 else None

    for job_id in (1, 2):
        await repo.reserve(reservation(job_id, clock), quota(Policy(G), clock))
    first = await repo.settle(
        1,
        Outcome.FAILED,
        clock.now(),
        refund=True,
        strike=Strike(G, U, clock.now(), "banned", 1),
        auto_ban=after_two,
    )
    assert first is not None and first.strike and first.ban is None
    second = await repo.settle(
        2,
        Outcome.FAILED,
        clock.now(),
        refund=True,
        strike=Strike(G, U, clock.now(), "banned", 2),
        auto_ban=after_two,
    )
    assert second is not None and second.ban is not None
    ban = await repo.active_ban(G, U, clock.now())
    assert ban is not None and ban.until == until and ban.by == 0


async def test_the_audit_log_and_the_usage_report(storage: Storage) -> None:
    clock = FakeClock()
    repo = storage.moderation
    entry = await repo.record(
        AuditEntry(
            G,
            AuditKind.REFUSAL,
            clock.now(),
            actor_id=U,
            target_id=U,
            action="day",
            detail="You have used …",
            prompt="a cat",
            channel_id=CHANNEL,
        )
    )
    assert entry.id > 0
    for job_id, user in ((1, U), (2, U), (3, V)):
        await repo.reserve(reservation(job_id, clock, user), quota(Policy(G), clock))
    await repo.settle(1, Outcome.SUCCEEDED, clock.now(), refund=False, strike=None, auto_ban=no_ban)
    await repo.settle(
        2,
        Outcome.FAILED,
        clock.now(),
        refund=True,
        strike=Strike(G, U, clock.now(), "banned", 2),
        auto_ban=no_ban,
    )
    assert [e.id for e in await repo.audit(G)] == [entry.id]
    assert (await repo.audit(G))[0] == entry
    report = await repo.report(G, clock.now() - timedelta(days=7), clock.now())
    assert (report.jobs, report.succeeded, report.failed, report.refunded) == (3, 1, 1, 1)
    assert (report.refusals, report.strikes) == (1, 1)
    assert report.top == ((U, 2), (V, 1))
    assert len(report.daily) == 8 and report.daily[-1][1] == 3
    mine = await repo.report(G, clock.now() - timedelta(days=1), clock.now(), user_id=V)
    assert (mine.jobs, mine.refusals, mine.strikes) == (1, 0, 0)
    assert await repo.recent_failures(G) == [2]


# --- the gate on the real store ------------------------------------------------------------


def job(job_id: int, status: JobStatus, reason: str = "", user: int = U) -> Job:
    return Job(
        id=job_id,
        route=Route(guild_id=G, channel_id=CHANNEL, requester_id=user),
        mode=Mode.MID_JOURNEY,
        prompt="a lighthouse",
        task_id=f"t{job_id}",
        status=status,
        fail_reason=reason,
        post_state=PostState.POSTED,
    )


class Seen:
    def __init__(self) -> None:
        self.entries: list[AuditEntry] = []

    async def recorded(self, entry: AuditEntry) -> None:
        self.entries.append(entry)


async def test_the_gate_reserves_refunds_strikes_and_bans(storage: Storage) -> None:
    clock = FakeClock()
    seen = Seen()
    gate = ModerationGate(storage.moderation, clock, observer=seen)
    mods = ModerationService(gate, storage.jobs)
    await mods.change(
        MOD,
        "limits",
        lambda p: dataclasses.replace(
            p, limits=Limits(per_day=2), strike_limit=2, strike_ban=timedelta(hours=12)
        ),
    )
    ticket = Ticket(G, CHANNEL, U, prompt="a lighthouse")
    await gate.admit(ticket)  # a check only
    assert (await storage.moderation.usage(G, U, clock.now())).member_times == ()
    await gate.admit(dataclasses.replace(ticket, job_id=1))
    await gate.admit(dataclasses.replace(ticket, job_id=2))
    with pytest.raises(Refused, match="2 images for today"):
        await gate.admit(ticket)
    # Code 24 arrives as a failed job naming banned content: refunded, and a strike.
    await gate.settle(job(1, JobStatus.FAILED, "code 24: 可能包含敏感词 (bannedWord: gore)"))
    await gate.settle(job(1, JobStatus.FAILED, "code 24: 可能包含敏感词 (bannedWord: gore)"))
    assert await strike_count(storage.moderation, clock) == 1
    await gate.admit(dataclasses.replace(ticket, job_id=3))
    await gate.settle(job(3, JobStatus.FAILED, "[Banned prompt detected] Sorry!"))
    with pytest.raises(Refused, match="banned from using this bot") as err:
        await gate.admit(ticket)
    assert err.value.message is not None and "<t:" in render(err.value.message, "en-US")
    kinds = [e.kind for e in seen.entries]
    assert kinds.count(AuditKind.SUBMISSION) == 3 and kinds.count(AuditKind.STRIKE) == 2
    assert AuditKind.AUTO_BAN in kinds and kinds.count(AuditKind.REFUSAL) == 2
    assert kinds[0] is AuditKind.MOD_ACTION and "2 per day" in seen.entries[0].detail
    clock.advance(hours=12)
    await gate.admit(ticket)


async def test_the_gate_refuses_banned_terms_and_other_channels_first(storage: Storage) -> None:
    clock = FakeClock()
    gate = ModerationGate(storage.moderation, clock, parent_of=lambda c: CHANNEL if c == 5 else 0)
    mods = ModerationService(gate, storage.jobs)
    await mods.add_term(MOD, TermKind.WORD, "Gore")
    with pytest.raises(Refused, match="“gore”"):
        await gate.admit(Ticket(G, CHANNEL, U, prompt="so much GORE"))
    await mods.change(MOD, "channels", change.add_channel(CHANNEL))
    with pytest.raises(Refused, match="can't be made in this channel"):
        await gate.admit(Ticket(G, CHANNEL + 1, U, prompt="a cat"))
    await gate.admit(Ticket(G, 5, U, prompt="a cat"))  # a thread of the allowed channel
    assert await mods.remove_term(MOD, "GORE")
    await gate.admit(Ticket(G, CHANNEL, U, prompt="so much gore"))
    audit = await storage.moderation.audit(G)
    assert [e.action for e in audit][:3] == ["term_remove", "channel", "channels"]


async def test_settling_a_job_that_was_never_reserved_does_nothing(storage: Storage) -> None:
    gate = ModerationGate(storage.moderation, FakeClock())
    await gate.settle(job(1, JobStatus.FAILED, "banned"))
    assert await strike_count(storage.moderation, FakeClock()) == 0
    assert Usage() == await storage.moderation.usage(G, U, FakeClock().now())


async def test_images_made_count_every_unit_not_refunded_whatever_paid_for_it(
    storage: Storage,
) -> None:
    clock = FakeClock()
    repo = storage.moderation
    policy = Policy(G, limits=Limits(per_day=1))
    await repo.grant(G, U, 1)
    assert await repo.reserve(reservation(1, clock), quota(policy, clock)) is Charge.QUOTA
    assert await repo.reserve(reservation(2, clock), quota(policy, clock)) is Charge.BONUS
    await repo.grant(G, U, 1)
    assert await repo.reserve(reservation(3, clock), quota(policy, clock)) is Charge.BONUS
    assert await repo.refund(3)
    usage = await repo.usage(G, U, clock.now())
    assert len(usage.member_times) == 1 and len(usage.made_times) == 2
    await repo.reset(G, U, clock.now())
    usage = await repo.usage(G, U, clock.now())
    assert usage.member_times == () and len(usage.made_times) == 2


async def test_moderator_actions_refuse_bad_targets_and_numbers_and_change_nothing(
    storage: Storage,
) -> None:
    clock = FakeClock()
    gate = ModerationGate(storage.moderation, clock)
    mods = ModerationService(gate, storage.jobs)
    helpers = BIG_ID + 30
    await mods.change(MOD, "moderator_role", change.moderator_role(helpers))
    before = await storage.moderation.policy(G)
    member = Ticket(G, CHANNEL, U)
    cases = [
        (mods.ban(MOD, Ticket(G, 0, 99), "", None, bot_user_id=99), "I can't ban myself"),
        (mods.ban(MOD, Ticket(G, 0, V, manage_guild=True), "", None, bot_user_id=1), "moderator"),
        (mods.ban(MOD, Ticket(G, 0, V, role_ids=(helpers,)), "", None, bot_user_id=1), "moderator"),
        (mods.ban(MOD, Ticket(G, 0, V), "", "-5d", bot_user_id=1), "duration must be like 30m"),
        (mods.ban(MOD, Ticket(G, 0, V), "", "99999w", bot_user_id=1), "at most 3,650 days"),
        (mods.ban(member, Ticket(G, 0, V), "", None, bot_user_id=1), "Only moderators"),
        (mods.grant(MOD, V, -5), "images must be a whole number from 1 to 1,000."),
        (mods.grant(MOD, V, 10**12), "images must be a whole number from 1 to 1,000."),
        (mods.report(MOD, 0), "days must be a whole number from 1 to 90."),
        (mods.refund(MOD, 2**70), "not in this server's records"),
    ]
    for call, sentence in cases:
        with pytest.raises(NotAllowed) as err:
            await call
        assert sentence in err.value.member_message
    changes = [
        (
            lambda: change.default_limits(-5, None),
            "per_day must be a whole number from 0 to 100,000.",
        ),
        (lambda: change.default_limits(None, 10**9), "per_hour must be a whole number from 0"),
        (lambda: change.server_cap(-1), "per_day must be a whole number from 0 to 1,000,000."),
        (lambda: change.cooldown(10**20), "seconds must be a whole number from 0 to 86,400."),
        (lambda: change.in_flight(0, None), "member must be a whole number from 1 to 1,000."),
        (lambda: change.strikes(51, 24, "1d"), "limit must be a whole number from 0 to 50."),
        (lambda: change.strikes(3, 0, "1d"), "window_hours must be a whole number from 1"),
        (lambda: change.strikes(3, 24, "soon"), "ban must be like 30m, 12h, 7d or 2w"),
    ]
    for build, sentence in changes:
        with pytest.raises(NotAllowed) as err:
            build()
        assert sentence in err.value.member_message
    assert await storage.moderation.bans(G, clock.now()) == []
    assert await storage.moderation.policy(G) == before
    assert (await storage.moderation.usage(G, V, clock.now())).credits == 0


class Results:
    """Result messages that are all there to delete."""

    def __init__(self) -> None:
        self.deleted: list[int] = []

    async def delete(self, guild_id: int, channel_id: int, message_id: int) -> Deletion:
        self.deleted.append(message_id)
        return Deletion.DELETED


@pytest.mark.parametrize(
    ("post_state", "message_id", "answer"),
    [
        (PostState.NONE, 0, "Job {job} has no posted result to delete."),
        # The outcome is known and on its way: the moderator may already see it.
        (PostState.INTENT, 0, "Job {job}'s result is still being posted."),
        (PostState.POSTED, 555, "Job {job}'s result is deleted."),
    ],
)
async def test_deleting_a_result_says_where_the_result_stands(
    storage: Storage, post_state: PostState, message_id: int, answer: str
) -> None:
    mods = ModerationService(ModerationGate(storage.moderation, FakeClock()), storage.jobs)
    made = await storage.jobs.add(
        dataclasses.replace(
            job(0, JobStatus.SUCCEEDED), post_state=post_state, result_message_id=message_id
        )
    )
    results = Results()
    said = render(await mods.delete_result(MOD, made.id, results), "en-US")
    assert said.startswith(answer.format(job=made.id))
    assert results.deleted == ([message_id] if message_id else [])
