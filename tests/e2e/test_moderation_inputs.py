"""/mod with bad input, end to end: the real bot against the Discord emulator, with interactions
crafted the way a modified client or a replayed payload sends them (Discord's client would stop
most of these; discord.py does not check declared limits on what arrives).

Each row asserts the one ephemeral sentence the moderator reads, and that nothing changed: the
server's settings, bans, banned terms, the target's extra images, the audit log's moderator
actions and the image API's requests.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

import pytest

from bot.app import Application
from bot.core.moderation import AuditKind
from bot.core.moderation.bounds import CREDITS_HELD
from bot.sandbox.discord import DiscordEmulator
from bot.sandbox.discord.interactions import Interaction, build_command_interaction
from bot.sandbox.mjproxy import MjProxySimulator
from tests.e2e.test_moderation import MANAGE_GUILD, answer, button, imagine_ok, log_posts, mod

EPHEMERAL = 1 << 6


@dataclass(frozen=True)
class People:
    moderator: int
    other_moderator: int
    helper: int  # holds the configured moderator role, without Manage Server
    member: int
    bot: int


def names_range(option: str, low: int, high: int) -> re.Pattern[str]:
    """A sentence naming the option and its range (numbers with or without thousands
    separators, so the edge's generic check and the service's own both qualify)."""

    def num(n: int) -> str:
        return f"(?:{n}|{n:,})".replace(",", "[,]?")

    return re.compile(rf"`?{option}`? must be (?:a whole number )?from {num(low)} to {num(high)}")


DURATION = "must be like 30m, 12h, 7d or 2w (at most 3,650 days)."
MODERATOR_BAN = "is a moderator (Manage Server or the moderator role)"

# (what, sub-command, options with placeholders, what the sentence must contain or match)
ROWS: list[tuple[str, str, dict[str, Any], str | re.Pattern[str]]] = [
    ("ban the bot itself", "ban", {"member": "BOT"}, "I can't ban myself from the bot."),
    ("ban a Manage Server moderator", "ban", {"member": "OTHER_MOD"}, MODERATOR_BAN),
    ("ban a moderator-role member", "ban", {"member": "HELPER"}, MODERATOR_BAN),
    ("ban yourself", "ban", {"member": "MOD"}, MODERATOR_BAN),
    ("negative duration", "ban", {"member": "MEMBER", "duration": "-5d"}, DURATION),
    ("zero duration", "ban", {"member": "MEMBER", "duration": "0m"}, DURATION),
    ("duration past ten years", "ban", {"member": "MEMBER", "duration": "99999w"}, DURATION),
    ("duration in words", "ban", {"member": "MEMBER", "duration": "forever"}, DURATION),
    ("over-long reason", "ban", {"member": "MEMBER", "reason": "x" * 301}, "300"),
    (
        "grant −5 images",
        "grant",
        {"member": "MEMBER", "images": -5},
        names_range("images", 1, 1000),
    ),
    ("grant 0 images", "grant", {"member": "MEMBER", "images": 0}, names_range("images", 1, 1000)),
    (
        "grant a million images",
        "grant",
        {"member": "MEMBER", "images": 10**6},
        names_range("images", 1, 1000),
    ),
    (
        "grant past the most a member may hold",
        "grant",
        {"member": "RICH", "images": 1000},
        f"a member can hold at most {CREDITS_HELD.high:,}",
    ),
    (
        "quota of −5 a day",
        "limits default",
        {"per_day": -5},
        names_range("per_day", 0, 100_000),
    ),
    (
        "hourly quota past 2^63",
        "limits default",
        {"per_hour": 2**63},
        names_range("per_hour", 0, 100_000),
    ),
    (
        "a role's quota of −1",
        "limits role",
        {"role": "ROLE", "per_day": -1},
        names_range("per_day", 0, 100_000),
    ),
    (
        "a role's hourly quota too large",
        "limits role",
        {"role": "ROLE", "per_hour": 100_001},
        names_range("per_hour", 0, 100_000),
    ),
    (
        "server cap of ten million",
        "limits server",
        {"per_day": 10**7},
        names_range("per_day", 0, 1_000_000),
    ),
    (
        "negative cooldown",
        "limits cooldown",
        {"seconds": -1},
        names_range("seconds", 0, 86_400),
    ),
    (
        "cooldown that overflows a timedelta",
        "limits cooldown",
        {"seconds": 10**18},
        names_range("seconds", 0, 86_400),
    ),
    (
        "member in-flight cap of 0",
        "limits inflight",
        {"member": 0},
        names_range("member", 1, 1000),
    ),
    (
        "server in-flight cap of −3",
        "limits inflight",
        {"server": -3},
        names_range("server", 1, 100_000),
    ),
    ("51 strikes", "strikes", {"limit": 51}, names_range("limit", 0, 50)),
    ("−1 strikes", "strikes", {"limit": -1}, names_range("limit", 0, 50)),
    (
        "a strike window of 0 hours",
        "strikes",
        {"limit": 3, "window_hours": 0},
        names_range("window_hours", 1, 8760),
    ),
    (
        "a strike window of a billion hours",
        "strikes",
        {"limit": 3, "window_hours": 10**9},
        names_range("window_hours", 1, 8760),
    ),
    ("a strike ban in words", "strikes", {"limit": 3, "ban": "forever"}, DURATION),
    ("a report over 0 days", "report", {"days": 0}, names_range("days", 1, 90)),
    ("a report over 91 days", "report", {"days": 91}, names_range("days", 1, 90)),
    ("a report over −5 days", "report", {"days": -5}, names_range("days", 1, 90)),
    (
        "an invisible banned word",
        "terms add",
        {"term": "\u200b\u200d\u2060"},
        # The edge's check (blank) or the service's (nothing visible once folded).
        re.compile(r"at least one visible character|`term` can't be empty"),
    ),
    (
        "a banned word past 100 characters",
        "terms add",
        {"term": "x" * 101},
        re.compile(r"at most 100 characters|`term` is 101 characters long; the limit is 100"),
    ),
    (
        "a pattern that backtracks",
        "terms add",
        {"term": "(a+)+", "pattern": True},
        "That pattern could make the bot slow",
    ),
    ("a mode outside the choices", "mode", {"mode": "FOO"}, "`mode` must be one of"),
    (
        "a broken pattern",
        "terms add",
        {"term": "(", "pattern": True},
        "That is not a valid regular expression",
    ),
]


def fill(options: dict[str, Any], values: dict[str, int]) -> dict[str, Any]:
    return {k: values.get(v, v) if isinstance(v, str) else v for k, v in options.items()}


def _valid(name: str, value: Any) -> Any:
    """A value the emulator's builder accepts in place of a crafted one, of the same type."""
    if name == "mode":
        return "MID_JOURNEY"  # one of the declared choices
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return 1
    return "x" if isinstance(value, str) else value


async def crafted_mod(
    emu: DiscordEmulator, sub: str, options: dict[str, Any], *, user_id: int, ids: set[int]
) -> Interaction:
    """`/mod <sub>` with `options` as given, whatever their declared limits: a valid payload
    is built from the synced schema, then its values are replaced, and it is dispatched the
    way the emulator dispatches any interaction (registered, so the bot's answers reach it)."""
    valid = {k: v if isinstance(v, int) and v in ids else _valid(k, v) for k, v in options.items()}
    tree: dict[str, Any] = valid
    for part in reversed(sub.split()):
        tree = {part: tree}
    await emu.wait_gateway()
    payload = build_command_interaction(
        emu, "mod", tree, user_id=user_id, channel_id=emu.channel_id
    )
    leaf = payload["data"]["options"]
    while leaf and leaf[0]["type"] in (1, 2):
        leaf = leaf[0]["options"]
    for option in leaf:
        value = options[option["name"]]
        option["value"] = str(value) if option["type"] in (6, 7, 8, 9) else value
    record = Interaction.from_payload(emu, payload)
    emu.interactions[record.id] = record
    emu.interactions_by_token[record.token] = record
    record.dispatched_at = time.monotonic()
    await emu.dispatch("INTERACTION_CREATE", payload)
    return record


async def snapshot(
    app: Application, emu: DiscordEmulator, sim: MjProxySimulator, who: People
) -> Any:
    """Everything a /mod command could change."""
    repo = app.storage.moderation  # type: ignore[union-attr]
    now = app.tracker.clock.now()  # type: ignore[union-attr]
    audit = await repo.audit(emu.guild_id, limit=1000)
    credits = {u: (await repo.usage(emu.guild_id, u, now)).credits for u in (who.member,)}
    return (
        await repo.policy(emu.guild_id),
        await repo.bans(emu.guild_id, now),
        await repo.terms(emu.guild_id),
        credits,
        [e.id for e in audit if e.kind is AuditKind.MOD_ACTION],
        len(sim.requests),
    )


@pytest.fixture
async def people(emu: DiscordEmulator, app: Application) -> People:
    moderator = emu.add_user("mod", permissions=MANAGE_GUILD)
    helpers = emu.add_role("Helpers", 0)
    who = People(
        moderator=moderator,
        other_moderator=emu.add_user("mod2", permissions=MANAGE_GUILD),
        helper=emu.add_user("helper", roles=[helpers]),
        member=emu.add_user("member"),
        bot=emu.bot_user_id,
    )
    assert "may now moderate" in await mod(emu, moderator, "modrole", role=helpers)
    return who


async def test_every_bad_mod_input_gets_its_sentence_privately_and_changes_nothing(
    emu: DiscordEmulator, sim: MjProxySimulator, app: Application, people: People
) -> None:
    rich = emu.add_user("rich")
    repo = app.storage.moderation  # type: ignore[union-attr]
    await repo.grant(emu.guild_id, rich, CREDITS_HELD.high - 500)
    values = {
        "BOT": people.bot,
        "OTHER_MOD": people.other_moderator,
        "HELPER": people.helper,
        "MOD": people.moderator,
        "MEMBER": people.member,
        "RICH": rich,
        "ROLE": emu.add_role("Supporter", 0),
    }
    before = await snapshot(app, emu, sim, people)
    failures = []
    for what, sub, options, expected in ROWS:
        inter = await crafted_mod(
            emu, sub, fill(options, values), user_id=people.moderator, ids=set(values.values())
        )
        await emu.wait_for(lambda i=inter: bool(i.ephemeral_messages), timeout=10, what=what)
        messages = inter.ephemeral_messages
        sentence = str(messages[-1]["content"])
        ok = (
            expected.search(sentence) is not None
            if isinstance(expected, re.Pattern)
            else expected in sentence
        )
        if not ok or len(messages) != 1 or not messages[0]["flags"] & EPHEMERAL:
            failures.append((what, sentence, len(messages)))
        if "\n" in sentence or "went wrong" in sentence:
            failures.append((what, "not one sentence", sentence))
    assert failures == [], "\n".join(map(str, failures))
    assert await snapshot(app, emu, sim, people) == before
    # The bot is still up and answering.
    assert (
        await mod(emu, people.moderator, "bans") == "Nobody is banned from the bot in this server."
    )
    # Nothing reached a channel in public either.
    assert not [m for m in emu.messages(emu.channel_id) if m.get("interaction_metadata")]


async def test_the_log_channels_ban_button_refuses_a_moderator_and_bans_a_member(
    emu: DiscordEmulator, sim: MjProxySimulator, app: Application, people: People
) -> None:
    log = emu.add_channel("mod-log")
    await mod(emu, people.moderator, "logchannel", channel=log)
    await imagine_ok(emu, people.other_moderator, "a lighthouse")
    await emu.wait_for(lambda: bool(log_posts(emu, log, "Submission")), timeout=10)
    (entry,) = log_posts(emu, log, "Submission")
    before = await snapshot(app, emu, sim, people)
    pressed = await emu.press_button(
        int(entry["id"]), button(entry, "mjmod:ban:"), user_id=people.moderator
    )
    assert MODERATOR_BAN in await answer(emu, pressed)
    assert all(m["flags"] & EPHEMERAL for m in pressed.ephemeral_messages)
    assert await snapshot(app, emu, sim, people) == before
    # The same button under a member's submission bans them.
    await imagine_ok(emu, people.member, "a harbour")
    await emu.wait_for(lambda: len(log_posts(emu, log, "Submission")) == 2, timeout=10)
    entry = log_posts(emu, log, "Submission")[-1]
    pressed = await emu.press_button(
        int(entry["id"]), button(entry, "mjmod:ban:"), user_id=people.helper
    )
    assert "is banned from making images" in await answer(emu, pressed)
    repo = app.storage.moderation  # type: ignore[union-attr]
    now = app.tracker.clock.now()  # type: ignore[union-attr]
    (ban,) = await repo.bans(emu.guild_id, now)
    assert ban.user_id == people.member and ban.by == people.helper


async def test_quota_always_shows_what_the_member_made(
    emu: DiscordEmulator, sim: MjProxySimulator, app: Application, people: People
) -> None:
    inter = await emu.slash_command("quota", None, user_id=people.member)
    await emu.wait_for(lambda: bool(inter.ephemeral_messages), timeout=10)
    assert inter.ephemeral_messages[0]["content"] == (
        "You have made 0 images in the last 24 hours (0 in the last hour).\n"
        "You have no image limit in this server."
    )
    await imagine_ok(emu, people.member, "a lighthouse")
    await mod(emu, people.moderator, "limits default", per_day=5, per_hour=2)
    inter = await emu.slash_command("quota", None, user_id=people.member)
    await emu.wait_for(lambda: bool(inter.ephemeral_messages), timeout=10)
    lines = str(inter.ephemeral_messages[0]["content"]).split("\n")
    assert lines[0] == "You have made 1 image in the last 24 hours (1 in the last hour)."
    assert lines[1:3] == [
        "You have 4 images left today (of 5).",
        "You have 1 image left this hour (of 2).",
    ]
    assert re.fullmatch(r"Your next image frees up <t:\d+:R>\.", lines[3])
