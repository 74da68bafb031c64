"""Community moderation end to end: the real bot against the Discord emulator and the
Midjourney-proxy simulator. Outcomes are read from transcripts, the database and the requests the
simulator saw."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.app import Application
from bot.core.moderation import AuditKind
from bot.core.ports import ModerationRepository
from bot.sandbox.discord import DiscordEmulator
from bot.sandbox.mjproxy import MjProxySimulator
from tests.e2e.conftest import Running
from tests.e2e.test_imagine import wait_finish

MANAGE_GUILD = 1 << 5


async def run(
    emu: DiscordEmulator,
    command: str,
    options: dict[str, Any] | None,
    user: int,
    *,
    channel_id: int | None = None,
) -> str:
    """Run a slash command and return the one private sentence it got."""
    inter = await emu.slash_command(command, options, user_id=user, channel_id=channel_id)
    await emu.wait_for(lambda: bool(inter.ephemeral_messages), timeout=10, what=f"/{command}")
    return str(inter.ephemeral_messages[-1]["content"])


async def mod(emu: DiscordEmulator, moderator: int, sub: str, **options: Any) -> str:
    """`/mod <sub> [<subsub>] …` as the moderator; `sub` may be "terms add"."""
    parts = sub.split()
    tree: dict[str, Any] = options
    for part in reversed(parts):
        tree = {part: tree}
    return await run(emu, "mod", tree, moderator)


async def imagine_ok(emu: DiscordEmulator, user: int, prompt: str, **extra: Any) -> dict[str, Any]:
    """An /imagine that is accepted: returns its finish post."""
    before = {m["id"] for m in emu.messages(emu.channel_id)}
    inter = await emu.slash_command("imagine", {"prompt": prompt, **extra}, user_id=user)

    def replied() -> bool:
        return any(
            m["id"] not in before and m.get("interaction_metadata") and not m["flags"] & 128
            for m in emu.messages(emu.channel_id)
        ) or bool(inter.ephemeral_messages)

    await emu.wait_for(replied, timeout=10)
    assert not inter.ephemeral_messages, inter.ephemeral_messages
    reply = next(
        m
        for m in emu.messages(emu.channel_id)
        if m["id"] not in before and m.get("interaction_metadata")
    )
    return await wait_finish(emu, int(reply["id"]))


async def recorded(app: Application, final: dict[str, Any], timeout: float = 10) -> None:
    """Until the finish post's job has it recorded in the ledger. The post is visible a moment
    before (the record follows its answer): a button pressed, or a restart, in that moment
    races the record, and a loaded machine makes the moment long."""
    assert app.storage is not None
    job_id = int(re.search(r"-# job (\d+) ·", final["content"])[1])  # type: ignore[index]
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        job = await app.storage.jobs.get(job_id)
        if job is not None and job.result_message_id == int(final["id"]):
            return
        assert asyncio.get_running_loop().time() < deadline, f"job {job_id}'s post unrecorded"
        await asyncio.sleep(0.02)


async def imagine_refused(emu: DiscordEmulator, user: int, prompt: str) -> str:
    inter = await emu.slash_command("imagine", {"prompt": prompt}, user_id=user)
    await emu.wait_for(lambda: bool(inter.ephemeral_messages), timeout=10)
    (message,) = inter.ephemeral_messages
    return str(message["content"])


async def answer(emu: DiscordEmulator, inter: Any) -> str:
    """The private sentence an interaction got (after a "thinking" acknowledgement too)."""

    def said() -> list[str]:
        return [str(m["content"]) for m in inter.ephemeral_messages if m["content"]]

    await emu.wait_for(lambda: bool(said()), timeout=10, what="a private answer")
    (sentence,) = said()
    return sentence


def custom_ids(message: dict[str, Any]) -> list[str]:
    return [c["custom_id"] for row in message.get("components", []) for c in row["components"]]


def button(message: dict[str, Any], prefix: str) -> str:
    return next(cid for cid in custom_ids(message) if cid.startswith(prefix))


def log_posts(emu: DiscordEmulator, channel: int, title: str) -> list[dict[str, Any]]:
    return [
        m for m in emu.messages(channel) if m.get("embeds") and title in m["embeds"][0]["title"]
    ]


def fields(message: dict[str, Any]) -> dict[str, str]:
    return {f["name"]: f["value"] for f in message["embeds"][0].get("fields", [])}


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10) -> None:
    for _ in range(int(timeout / 0.05)):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise TimeoutError("condition not met")


async def refunded(repo: ModerationRepository, guild_id: int, user_id: int) -> bool:
    report = await repo.report(guild_id, datetime(2000, 1, 1, tzinfo=UTC), datetime.now(UTC))
    return report.refunded > 0


# --- permissions -------------------------------------------------------------------------------

MOD_COMMANDS: list[dict[str, Any]] = [
    {"bans": {}},
    {"ban": {"member": "TARGET", "reason": "spam"}},
    {"unban": {"member": "TARGET"}},
    {"grant": {"member": "TARGET", "images": 3}},
    {"reset": {"member": "TARGET"}},
    {"limits": {"default": {"per_day": 5}}},
    {"limits": {"role": {"role": "ROLE", "per_day": 20}}},
    {"limits": {"server": {"per_day": 100}}},
    {"limits": {"cooldown": {"seconds": 0}}},
    {"limits": {"inflight": {"member": 3}}},
    {"terms": {"add": {"term": "gore"}}},
    {"terms": {"list": {}}},
    {"terms": {"test": {"prompt": "some gore"}}},
    {"terms": {"remove": {"term": "gore"}}},
    {"channels": {"add": {"channel": "CHANNEL"}}},
    {"channels": {"list": {}}},
    {"channels": {"remove": {"channel": "CHANNEL"}}},
    {"strikes": {"limit": 3}},
    {"logchannel": {}},
    {"modrole": {}},
    {"mode": {"mode": "NIJI_JOURNEY"}},
    {"status": {}},
    {"report": {}},
]


def fill(options: Any, values: dict[str, int]) -> Any:
    if isinstance(options, dict):
        return {k: fill(v, values) for k, v in options.items()}
    return values.get(options, options) if isinstance(options, str) else options


async def test_mod_is_hidden_from_members_and_refused_when_crafted_but_moderators_run_it_all(
    emu: DiscordEmulator, sim: MjProxySimulator, app: Application
) -> None:
    moderator = emu.add_user("mod", permissions=MANAGE_GUILD)
    member = emu.add_user("member")
    supporter = emu.add_role("Supporter", 0)
    values = {"TARGET": member, "ROLE": supporter, "CHANNEL": emu.channel_id}
    synced, _ = emu.command("mod")
    assert synced["default_member_permissions"] == str(MANAGE_GUILD)
    for options in MOD_COMMANDS:
        # The client hides /mod from this member; the interaction is crafted anyway.
        answer = await run(emu, "mod", fill(options, values), member)
        assert answer == "Only moderators (Manage Server, or the moderator role) can use /mod.", (
            options
        )
    assert await app.storage.moderation.audit(emu.guild_id) == []  # type: ignore[union-attr]
    for options in MOD_COMMANDS:
        answer = await run(emu, "mod", fill(options, values), moderator)
        assert "Only moderators" not in answer and "went wrong" not in answer, (options, answer)
    audit = await app.storage.moderation.audit(emu.guild_id, limit=100)  # type: ignore[union-attr]
    actions = {e.action for e in audit if e.kind is AuditKind.MOD_ACTION}
    assert {"ban", "unban", "grant", "reset", "limits", "role_limits", "server_cap"} <= actions
    assert {"term_add", "term_remove", "channels", "strikes", "default_mode"} <= actions
    assert all(e.actor_id == moderator for e in audit)


async def test_a_moderator_role_qualifies_without_manage_server(
    emu: DiscordEmulator, sim: MjProxySimulator, app: Application
) -> None:
    owner = emu.add_user("owner", permissions=MANAGE_GUILD)
    helpers = emu.add_role("Helpers", 0)
    helper = emu.add_user("helper", roles=[helpers])
    assert "Only moderators" in await mod(emu, helper, "bans")
    assert "may now moderate" in await mod(emu, owner, "modrole", role=helpers)
    assert "Nobody is banned" in await mod(emu, helper, "bans")


# --- quota -------------------------------------------------------------------------------------


async def test_quota_runs_out_is_refunded_after_a_failure_and_shows_in_quota_and_the_report(
    emu: DiscordEmulator, sim: MjProxySimulator, app: Application
) -> None:
    moderator = emu.add_user("mod", permissions=MANAGE_GUILD)
    alice = emu.add_user("alice")
    supporter = emu.add_role("Supporter", 0)
    fan = emu.add_user("fan", roles=[supporter])
    assert await mod(emu, moderator, "limits default", per_day=2) == (
        "Everyone's quota is now 2 per day."
    )
    await mod(emu, moderator, "limits role", role=supporter, per_day=3)
    # A job the image service fails is refunded.
    sim.faults.fail_reason = "Internal server error"
    failed = await imagine_ok(emu, alice, "a lighthouse")
    assert "internal error" in failed["content"]
    repo = app.storage.moderation  # type: ignore[union-attr]
    await eventually(lambda: refunded(repo, emu.guild_id, alice))
    quota = await run(emu, "quota", None, alice)
    assert "You have 2 images left today (of 2)." in quota
    sim.faults.fail_reason = None
    await imagine_ok(emu, alice, "a lighthouse")
    await imagine_ok(emu, alice, "a harbour")
    refusal = await imagine_refused(emu, alice, "one more")
    assert refusal.startswith("You have used your 2 images for today; the next one frees up <t:")
    assert "You have 0 images left today (of 2)." in await run(emu, "quota", None, alice)
    assert len(sim.requests_to("/mj/submit/imagine")) == 3
    # The role's own quota: 3 for a Supporter.
    assert "3 images left today (of 3)" in await run(emu, "quota", None, fan)
    inter = await emu.slash_command("mod", {"report": {}}, user_id=moderator)
    await emu.wait_for(lambda: any(m.get("embeds") for m in inter.ephemeral_messages), timeout=10)
    (message,) = inter.ephemeral_messages
    embed = message["embeds"][0]
    values = {f["name"]: f["value"] for f in embed["fields"]}
    assert values["Jobs"] == "3" and values["Succeeded"] == "2" and values["Refusals"] == "1"
    assert values["Failed"] == "1 (1 refunded)" and f"<@{alice}> — 3" in values["Top members"]
    (chart,) = message["attachments"]
    assert chart["filename"] == "usage.png"
    assert (emu.cdn_bytes(chart["url"]) or b"").startswith(b"\x89PNG")


async def test_two_commands_at_the_same_instant_cannot_both_take_the_last_image(
    emu: DiscordEmulator, sim: MjProxySimulator, app: Application
) -> None:
    moderator = emu.add_user("mod", permissions=MANAGE_GUILD)
    alice = emu.add_user("alice")
    await mod(emu, moderator, "limits default", per_day=1)
    first, second = await asyncio.gather(
        emu.slash_command("imagine", {"prompt": "a fox"}, user_id=alice),
        emu.slash_command("imagine", {"prompt": "a wolf"}, user_id=alice),
    )

    def settled() -> bool:
        replies = [
            m
            for m in emu.messages(emu.channel_id)
            if m.get("interaction_metadata") and not m["flags"] & 128
        ]
        return len(replies) + len(first.ephemeral_messages + second.ephemeral_messages) == 2

    await emu.wait_for(settled, timeout=10)
    refusals = [m["content"] for m in first.ephemeral_messages + second.ephemeral_messages]
    assert len(refusals) == 1 and "used your 1 image for today" in refusals[0]
    assert len(sim.requests_to("/mj/submit/imagine")) == 1
    usage = await app.storage.moderation.usage(emu.guild_id, alice, app.tracker.clock.now())  # type: ignore[union-attr]
    assert len(usage.member_times) == 1


# --- terms, strikes, bans ----------------------------------------------------------------------


async def test_a_banned_term_is_refused_before_any_api_request(
    emu: DiscordEmulator, sim: MjProxySimulator, app: Application
) -> None:
    moderator = emu.add_user("mod", permissions=MANAGE_GUILD)
    alice = emu.add_user("alice")
    assert "now refused" in await mod(emu, moderator, "terms add", term="gore")
    refusal = await imagine_refused(emu, alice, "a GÖRE-soaked battlefield")
    assert refusal == (
        "Your prompt contains “gore”, which this server does not allow; please rephrase it."
    )
    assert sim.requests_to("/mj/submit/imagine") == []
    assert "matches the word `gore`" in await mod(emu, moderator, "terms test", prompt="Gore!")
    assert "passes" in await mod(emu, moderator, "terms test", prompt="gorgeous")
    slow = await mod(emu, moderator, "terms add", term="(a+)+", pattern=True)
    assert slow.startswith("That pattern could make the bot slow")


async def test_code_24_and_banned_failures_are_strikes_that_bring_an_automatic_ban(
    emu: DiscordEmulator, sim: MjProxySimulator, app: Application
) -> None:
    moderator = emu.add_user("mod", permissions=MANAGE_GUILD)
    alice = emu.add_user("alice")
    assert "2 strikes within 1 day bring a 12 hours ban" in await mod(
        emu, moderator, "strikes", limit=2, ban="12h"
    )
    sim.faults.banned_words = {"lighthouse"}
    refusal = await imagine_refused(emu, alice, "a lighthouse")  # code 24 at submit
    assert "refused this prompt" in refusal
    sim.faults.banned_words = set()
    sim.faults.fail_reason = "[Banned prompt detected] Sorry! Our AI moderators feel your prompt"
    failed = await imagine_ok(emu, alice, "a harbour")  # the task fails as banned content
    assert "content rules" in failed["content"]
    repo = app.storage.moderation  # type: ignore[union-attr]
    now = app.tracker.clock.now()  # type: ignore[union-attr]

    async def banned() -> bool:
        return await repo.active_ban(emu.guild_id, alice, now) is not None

    for _ in range(100):
        if await banned():
            break
        await asyncio.sleep(0.05)
    ban = await repo.active_ban(emu.guild_id, alice, now)
    assert ban is not None and ban.by == 0 and ban.until is not None
    strikes = await repo.report(emu.guild_id, ban.at.replace(year=2000), ban.at + timedelta(days=1))
    assert strikes.strikes == 2
    sim.faults.fail_reason = None
    refusal = await imagine_refused(emu, alice, "a cat")
    assert refusal.startswith("You are banned from using this bot in this server (2 prompts")
    assert "the ban ends <t:" in refusal
    # Both strikes were refunded: banned content is never charged.
    usage = await repo.usage(emu.guild_id, alice, now)
    assert usage.member_times == ()


async def test_a_ban_and_the_default_mode_survive_a_restart_and_an_unban_lifts_it(
    emu: DiscordEmulator, sim: MjProxySimulator, bots: Running
) -> None:
    await bots.start()
    moderator = emu.add_user("mod", permissions=MANAGE_GUILD)
    alice = emu.add_user("alice")
    answer = await mod(emu, moderator, "ban", member=alice, reason="spam", duration="7d")
    assert answer.startswith(f"<@{alice}> is banned from making images until <t:")
    await mod(emu, moderator, "mode", mode="NIJI_JOURNEY")
    await bots.stop_all()
    bots.apps.clear()
    await bots.start()
    refusal = await imagine_refused(emu, alice, "a cat")
    assert "You are banned from using this bot in this server (spam)" in refusal
    assert f"<@{alice}>" in await mod(emu, moderator, "bans")
    assert "may make images again" in await mod(emu, moderator, "unban", member=alice)
    await imagine_ok(emu, alice, "a cat")
    (submit,) = sim.requests_to("/mj/submit/imagine")
    assert submit.json["botType"] == "NIJI_JOURNEY"


async def test_only_allowed_channels_take_images(
    emu: DiscordEmulator, sim: MjProxySimulator, app: Application
) -> None:
    moderator = emu.add_user("mod", permissions=MANAGE_GUILD)
    alice = emu.add_user("alice")
    art = emu.add_channel("art")
    await mod(emu, moderator, "channels add", channel=art)
    inter = await emu.slash_command("imagine", {"prompt": "a cat"}, user_id=alice)
    await emu.wait_for(lambda: bool(inter.ephemeral_messages), timeout=10)
    assert f"please use <#{art}>" in inter.ephemeral_messages[0]["content"]
    assert sim.requests_to("/mj/submit/imagine") == []


# --- the log channel and reports ---------------------------------------------------------------


async def test_the_log_channel_mirrors_submissions_and_its_buttons_work_after_a_restart(
    emu: DiscordEmulator, sim: MjProxySimulator, bots: Running
) -> None:
    first = await bots.start()
    moderator = emu.add_user("mod", permissions=MANAGE_GUILD)
    alice = emu.add_user("alice")
    log = emu.add_channel("mod-log")
    assert f"<#{log}>" in await mod(emu, moderator, "logchannel", channel=log)
    final = await imagine_ok(emu, alice, "@everyone a lighthouse", mode="NIJI_JOURNEY")
    await recorded(first, final)  # the restart below is not meant to race the record
    await emu.wait_for(lambda: bool(log_posts(emu, log, "Submission")), timeout=10)
    (entry,) = log_posts(emu, log, "Submission")
    info = fields(entry)
    task_id = next(iter(sim.tasks))
    assert entry["embeds"][0]["description"].endswith("a lighthouse")
    assert entry["mention_everyone"] is False and entry["mentions"] == []
    assert info["Requester"] == f"<@{alice}>" and info["Mode"] == "Niji"
    assert info["Task ID"] == f"`{task_id}`"
    assert f"https://discord.com/channels/{emu.guild_id}/{emu.channel_id}/" in info["Jump"]
    # The moderator's own change is in the log too.
    assert log_posts(emu, log, "Moderator action: log_channel")
    # Buttons keep working after a restart.
    await bots.stop_all()
    bots.apps.clear()
    app = await bots.start()
    repo = app.storage.moderation  # type: ignore[union-attr]
    refund = button(entry, "mjmod:refund:")
    denied = await emu.press_button(int(entry["id"]), refund, user_id=alice)
    assert "Only moderators" in await answer(emu, denied)
    pressed = await emu.press_button(int(entry["id"]), refund, user_id=moderator)
    assert "is refunded" in await answer(emu, pressed)
    job_id = int(refund.split(":")[2])
    report = await repo.report(emu.guild_id, final_time(app, -1), final_time(app, 1))
    assert report.refunded == 1
    deleted = await emu.press_button(
        int(entry["id"]), button(entry, "mjmod:delete:"), user_id=moderator
    )
    assert "is deleted" in await answer(emu, deleted)
    assert emu.message(int(final["id"])) is None
    banned = await emu.press_button(
        int(entry["id"]), button(entry, "mjmod:ban:"), user_id=moderator
    )
    assert "is banned from making images" in await answer(emu, banned)
    assert await repo.active_ban(emu.guild_id, alice, final_time(app, 0)) is not None
    # A refusal is mirrored too.
    await imagine_refused(emu, alice, "a cat")
    await emu.wait_for(lambda: bool(log_posts(emu, log, "Refused")), timeout=10)
    actions = [e.action for e in await repo.audit(emu.guild_id, limit=50)]
    assert {"refund", "delete_result", "ban"} <= set(actions)
    assert job_id > 0


def final_time(app: Application, days: int) -> Any:
    from datetime import timedelta

    return app.tracker.clock.now() + timedelta(days=days)  # type: ignore[union-attr]


async def test_report_on_a_result_goes_to_the_log_channel(
    emu: DiscordEmulator, sim: MjProxySimulator, app: Application
) -> None:
    moderator = emu.add_user("mod", permissions=MANAGE_GUILD)
    alice = emu.add_user("alice")
    bob = emu.add_user("bob")
    log = emu.add_channel("mod-log")
    await mod(emu, moderator, "logchannel", channel=log)
    final = await imagine_ok(emu, alice, "a lighthouse")
    await recorded(app, final)  # the report links the recorded result
    report = button(final, "mjreport:")
    assert len(final["components"]) == 2  # 🚩 Report shares the V1–V4 row
    inter = await emu.press_button(int(final["id"]), report, user_id=bob)
    await emu.wait_for(lambda: bool(inter.ephemeral_messages), timeout=10)
    assert "moderators have been told" in inter.ephemeral_messages[0]["content"]
    await emu.wait_for(lambda: bool(log_posts(emu, log, "Report")), timeout=10)
    (entry,) = log_posts(emu, log, "Report")
    info = fields(entry)
    assert info["Reported by"] == f"<@{bob}>" and info["Requester"] == f"<@{alice}>"
    assert f"/{final['id']})" in info["Jump"]
    assert any(cid.startswith("mjmod:ban:") for cid in custom_ids(entry))
    audit = await app.storage.moderation.audit(emu.guild_id)  # type: ignore[union-attr]
    assert AuditKind.REPORT in {e.kind for e in audit}


async def test_status_shows_jobs_in_progress_settings_and_the_latest_failures_in_plain_words(
    emu: DiscordEmulator, sim: MjProxySimulator, app: Application
) -> None:
    moderator = emu.add_user("mod", permissions=MANAGE_GUILD)
    alice = emu.add_user("alice")
    await mod(emu, moderator, "limits default", per_day=5)
    sim.faults.fail_reason = "Internal server error"
    await imagine_ok(emu, alice, "a lighthouse")
    sim.faults.fail_reason = None
    repo = app.storage.moderation  # type: ignore[union-attr]
    await eventually(lambda: refunded(repo, emu.guild_id, alice))
    inter = await emu.slash_command("mod", {"status": {}}, user_id=moderator)

    def answered() -> bool:
        return any(m["content"] for m in inter.ephemeral_messages)

    await emu.wait_for(answered, timeout=10)
    (message,) = [m for m in inter.ephemeral_messages if m["content"]]
    lines = message["content"].split("\n")
    assert "Jobs in progress here: 0 (0 waiting in the queue)." in lines
    assert any(line.startswith("Quota: 5 per day; server cap: none;") for line in lines)
    (failure,) = [line for line in lines if line.startswith("• job ")]
    assert "internal error" in failure and lines[lines.index(failure) - 1] == "Latest failures:"
