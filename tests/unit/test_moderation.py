"""The moderation rules with a fake clock: windows and their edges, role overrides, credits,
cooldown, in-flight caps, bans and their expiry, channels, strikes → auto-ban."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.messages import Message
from bot.core.moderation import (
    Ban,
    Charge,
    Limits,
    NotAllowed,
    Policy,
    Refusal,
    Rule,
    Usage,
    bounds,
    can_moderate,
    check_ban,
    check_channel,
    daily_counts,
    decide_quota,
    describe_duration,
    describe_quota,
    parse_duration,
    quota_status,
    strike_ban,
)
from bot.discord_ui.i18n.render import render
from tests.unit.fakes import FakeClock

G, U = 10, 20
SUPPORTER, ARTIST = 30, 31


def said(message: Message) -> str:
    """A core message as an English-speaking member reads it."""
    return render(message, "en-US")


def quota_text(lines: tuple[Message, ...]) -> str:
    """The /quota answer as an English-speaking member reads it."""
    return "\n".join(map(said, lines))


def stamp(at: object, style: str = "R") -> str:
    """A Discord timestamp as the rendered sentence carries it."""
    assert hasattr(at, "timestamp")
    return f"<t:{int(at.timestamp())}:{style}>"


def times(clock: FakeClock, *minutes_ago: float) -> tuple:  # type: ignore[type-arg]
    return tuple(clock.now() - timedelta(minutes=m) for m in minutes_ago)


def refused(result: Refusal | Charge, rule: Rule) -> Refusal:
    assert isinstance(result, Refusal), f"expected a {rule} refusal, got {result}"
    assert result.rule is rule
    return result


def test_five_per_day_refuses_the_sixth_and_says_when_the_first_frees_up() -> None:
    clock = FakeClock()
    policy = Policy(G, limits=Limits(per_day=5))
    used = times(clock, 600, 500, 400, 300, 200)
    assert decide_quota(policy, (), Usage(member_times=used[:4]), clock.now()) is Charge.QUOTA
    refusal = refused(decide_quota(policy, (), Usage(member_times=used), clock.now()), Rule.DAY)
    frees = used[0] + timedelta(days=1)
    assert said(refusal.reason) == (
        "You have used your 5 images for today; "
        f"the next one frees up <t:{int(frees.timestamp())}:R>."
    )


def test_the_rolling_window_frees_a_unit_exactly_a_day_after_it_was_used() -> None:
    clock = FakeClock()
    policy = Policy(G, limits=Limits(per_day=1))
    usage = Usage(member_times=(clock.now(),))
    clock.advance(hours=23, minutes=59, seconds=59)
    refused(decide_quota(policy, (), usage, clock.now()), Rule.DAY)
    clock.advance(seconds=1)
    assert decide_quota(policy, (), usage, clock.now()) is Charge.QUOTA


def test_the_hourly_window_is_checked_before_the_daily_one() -> None:
    clock = FakeClock()
    policy = Policy(G, limits=Limits(per_day=10, per_hour=2))
    usage = Usage(member_times=times(clock, 50, 10))
    refusal = refused(decide_quota(policy, (), usage, clock.now()), Rule.HOUR)
    assert "2 images for this hour" in said(refusal.reason)
    clock.advance(minutes=10)
    assert decide_quota(policy, (), usage, clock.now()) is Charge.QUOTA


def test_a_role_override_replaces_the_default_and_the_most_generous_role_wins() -> None:
    clock = FakeClock()
    policy = Policy(
        G,
        limits=Limits(per_day=5),
        role_limits={SUPPORTER: Limits(per_day=20), ARTIST: Limits(per_day=8, per_hour=3)},
    )
    assert policy.limits_for(()) == Limits(per_day=5)
    assert policy.limits_for((SUPPORTER,)) == Limits(per_day=20)
    # SUPPORTER lifts the hourly window (None); the day is the larger of 20 and 8.
    assert policy.limits_for((ARTIST, SUPPORTER)) == Limits(per_day=20, per_hour=None)
    usage = Usage(member_times=times(clock, *range(10, 60, 5)))  # ten in the last hour
    refused(decide_quota(policy, (), usage, clock.now()), Rule.DAY)
    assert decide_quota(policy, (SUPPORTER,), usage, clock.now()) is Charge.QUOTA
    refused(decide_quota(policy, (ARTIST,), usage, clock.now()), Rule.HOUR)


def test_granted_credits_pay_once_the_windows_are_full() -> None:
    clock = FakeClock()
    policy = Policy(G, limits=Limits(per_day=1))
    full = Usage(member_times=times(clock, 5), credits=2)
    assert decide_quota(policy, (), full, clock.now()) is Charge.BONUS
    refused(decide_quota(policy, (), Usage(member_times=times(clock, 5)), clock.now()), Rule.DAY)


def test_the_server_cap_counts_everyone() -> None:
    clock = FakeClock()
    policy = Policy(G, server_per_day=3)
    usage = Usage(server_times=times(clock, 30, 20, 10))
    refusal = refused(decide_quota(policy, (), usage, clock.now()), Rule.SERVER_DAY)
    assert "This server has used its 3 images for today" in said(refusal.reason)


def test_cooldown_counts_from_the_last_command() -> None:
    clock = FakeClock()
    policy = Policy(G, cooldown=timedelta(seconds=30))
    usage = Usage(last_at=clock.now())
    clock.advance(seconds=29)
    refusal = refused(decide_quota(policy, (), usage, clock.now()), Rule.COOLDOWN)
    assert stamp(usage.last_at + timedelta(seconds=30)) in said(refusal.reason)  # type: ignore[operator]
    clock.advance(seconds=1)
    assert decide_quota(policy, (), usage, clock.now()) is Charge.QUOTA


def test_in_flight_caps_for_the_member_and_the_server() -> None:
    clock = FakeClock()
    policy = Policy(G, member_in_flight=2, server_in_flight=5)
    assert decide_quota(policy, (), Usage(member_in_flight=1), clock.now()) is Charge.QUOTA
    r = refused(
        decide_quota(policy, (), Usage(member_in_flight=2), clock.now()), Rule.MEMBER_IN_FLIGHT
    )
    assert "2 images in progress" in said(r.reason)
    refused(decide_quota(policy, (), Usage(server_in_flight=5), clock.now()), Rule.SERVER_IN_FLIGHT)


def test_no_limits_by_default() -> None:
    clock = FakeClock()
    busy = Usage(member_times=times(clock, *range(100)), member_in_flight=50, server_in_flight=99)
    assert decide_quota(Policy(G), (), busy, clock.now()) is Charge.QUOTA


def test_a_ban_holds_until_it_expires_and_says_so() -> None:
    clock = FakeClock()
    ban = Ban(G, U, "spam", clock.now(), until=clock.now() + timedelta(hours=2), by=1)
    refusal = check_ban(ban, clock.now())
    assert refusal is not None and refusal.rule is Rule.BANNED
    assert "(spam)" in said(refusal.reason) and stamp(ban.until) in said(refusal.reason)  # type: ignore[arg-type]
    clock.advance(hours=2)
    assert check_ban(ban, clock.now()) is None
    forever = Ban(G, U, "", clock.now())
    assert check_ban(forever, clock.now() + timedelta(days=3650)) is not None
    assert check_ban(None, clock.now()) is None


def test_allowed_channels_accept_a_thread_of_an_allowed_channel() -> None:
    policy = Policy(G, allowed_channels=frozenset({100, 200}))
    assert check_channel(Policy(G), [5]) is None
    assert check_channel(policy, [200]) is None
    assert check_channel(policy, [999, 100]) is None  # a thread (999) whose parent is 100
    refusal = check_channel(policy, [999, 0])
    assert refusal is not None and "<#100>, <#200>" in said(refusal.reason)


def test_strikes_within_the_window_bring_a_temporary_ban() -> None:
    clock = FakeClock()
    policy = Policy(
        G, strike_limit=3, strike_window=timedelta(hours=24), strike_ban=timedelta(days=2)
    )
    old = clock.now() - timedelta(hours=25)
    two = [clock.now() - timedelta(hours=3), clock.now()]
    assert strike_ban(policy, G, U, [old, *two], clock.now()) is None
    ban = strike_ban(policy, G, U, [clock.now() - timedelta(hours=5), *two], clock.now())
    assert ban is not None and ban.by == 0
    assert ban.until == clock.now() + timedelta(days=2)
    assert "3 prompts refused" in ban.reason
    assert strike_ban(Policy(G, strike_limit=0), G, U, two * 5, clock.now()) is None


def test_quota_status_tells_what_is_left_and_when_it_frees_up() -> None:
    clock = FakeClock()
    policy = Policy(G, limits=Limits(per_day=5, per_hour=2))
    usage = Usage(member_times=times(clock, 300, 30), credits=1, member_in_flight=1)
    status = quota_status(policy, (), usage, clock.now())
    assert (status.used_day, status.used_hour) == (2, 1)
    assert status.frees_at == clock.now() + timedelta(minutes=30)
    text = quota_text(describe_quota(status, None))
    assert "3 images left today (of 5)" in text and "1 image left this hour (of 2)" in text
    assert "Extra images granted by moderators: 1" in text
    assert re.search(r"frees up <t:\d+:R>", text)
    assert "no image limit" in quota_text(
        describe_quota(quota_status(Policy(G), (), Usage(), clock.now()), None)
    )


def test_a_moderator_is_manage_server_or_the_configured_role() -> None:
    policy = Policy(G, moderator_role_id=77)
    assert can_moderate(policy, manage_guild=True, role_ids=())
    assert can_moderate(policy, manage_guild=False, role_ids=(77,))
    assert not can_moderate(policy, manage_guild=False, role_ids=(78,))
    assert not can_moderate(Policy(G), manage_guild=False, role_ids=(0,))


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30m", 1800), ("12h", 43200), ("7d", 604800), ("1d12h", 129600), ("2w", 1209600)],
)
def test_durations(text: str, seconds: int) -> None:
    span = parse_duration(text)
    assert span == timedelta(seconds=seconds)
    assert parse_duration(said(describe_duration(span)).replace(" ", "")[:0] or text) == span


@pytest.mark.parametrize("text", ["", "soon", "12", "-1h", "0m", "99999w"])
def test_bad_durations(text: str) -> None:
    assert parse_duration(text) is None


def test_describe_duration() -> None:
    assert said(describe_duration(timedelta(hours=12))) == "12 hours"
    assert said(describe_duration(timedelta(days=1))) == "1 day"
    assert said(describe_duration(timedelta(seconds=90))) == "90 seconds"


def test_daily_counts_cover_every_day_of_the_period() -> None:
    clock = FakeClock()
    now = clock.now()
    counts = daily_counts([now, now, now - timedelta(days=2)], now - timedelta(days=3), now)
    assert [c for _, c in counts] == [0, 1, 0, 2]


def test_quota_always_says_what_the_member_made_even_without_limits_or_when_banned() -> None:
    clock = FakeClock()
    made = times(clock, 300, 30, 10)
    usage = Usage(member_times=made[:1], made_times=made)
    text = quota_text(describe_quota(quota_status(Policy(G), (), usage, clock.now()), None))
    assert text.split("\n") == [
        "You have made 3 images in the last 24 hours (2 in the last hour).",
        "You have no image limit in this server.",
    ]
    ban = Ban(G, U, "spam", clock.now(), by=SUPPORTER)  # a moderator's ban, with their reason
    banned = quota_text(describe_quota(quota_status(Policy(G), (), usage, clock.now()), None, ban))
    assert banned.startswith("You are banned from using this bot in this server (spam).\n")
    assert "You have made 3 images" in banned


# --- the declared bounds of /mod numbers ---------------------------------------------------------

ALL_BOUNDS = [v for v in vars(bounds).values() if isinstance(v, bounds.Bound)]


@given(bound=st.sampled_from(ALL_BOUNDS), value=st.integers(min_value=-(2**70), max_value=2**70))
def test_a_bound_refuses_exactly_the_numbers_outside_its_range_with_one_sentence(
    bound: bounds.Bound, value: int
) -> None:
    if bound.low <= value <= bound.high:
        bound.check(value)
        return
    with pytest.raises(NotAllowed) as err:
        bound.check(value)
    sentence = err.value.member_message
    assert sentence.startswith(f"{bound.option} must be a whole number from ")
    assert sentence.endswith(f"{bound.high:,}.") and sentence.count(".") == 1


@pytest.mark.parametrize("value", [True, False, 1.5, "3"])
def test_a_bound_refuses_what_is_not_a_whole_number(value: object) -> None:
    with pytest.raises(NotAllowed):
        bounds.GRANT_IMAGES.check(value)  # type: ignore[arg-type]


def test_while_the_day_is_full_the_next_image_frees_up_with_the_day_not_the_hour() -> None:
    clock = FakeClock()
    policy = Policy(G, limits=Limits(per_day=5, per_hour=2))
    usage = Usage(member_times=times(clock, 20 * 60, 19 * 60, 18 * 60, 17 * 60, 30))
    status = quota_status(policy, (), usage, clock.now())
    # The hour has room (1 of 2) but the day is full until the oldest image is 24 hours old.
    assert status.frees_at == clock.now() + timedelta(hours=4)
    refusal = decide_quota(policy, (), usage, clock.now())
    assert isinstance(refusal, Refusal) and stamp(status.frees_at) in said(refusal.reason)
