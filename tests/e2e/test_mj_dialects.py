"""The bot against the servers' different dialects, end to end: the Java midjourney-proxy 2.x
(no buttons, U/V/🔄 through /submit/change) and the failure reasons members are shown."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.app import Application
from bot.sandbox.discord import DiscordEmulator
from bot.sandbox.mjproxy import MjProxySimulator
from tests.conftest import free_port
from tests.e2e.conftest import Running
from tests.e2e.test_callbacks import all_finish_posts
from tests.e2e.test_followups import grid, next_finish, press
from tests.e2e.test_followups import test_blend_makes_a_grid_from_the_images as blend_flow
from tests.e2e.test_followups import (
    test_describe_then_imagine_one_of_the_prompts as describe_flow,
)
from tests.e2e.test_imagine import _reply, wait_finish


def faces(message: dict[str, Any]) -> list[str]:
    """The Midjourney buttons under a post (the bot's own Report button left out)."""
    found = [
        c.get("label") or (c.get("emoji") or {}).get("name")
        for row in message.get("components") or []
        for c in row["components"]
    ]
    return [f for f in found if f != "Report"]


@pytest.mark.parametrize("profile", ["classic"], indirect=True)
async def test_the_java_proxy_gets_grid_buttons_that_work(
    emu: DiscordEmulator, sim: MjProxySimulator, app: Application
) -> None:
    alice = emu.add_user("alice")
    thread_id, result = await grid(emu, alice)
    assert faces(result) == ["U1", "U2", "U3", "U4", "🔄", "V1", "V2", "V3", "V4"]

    await press(emu, result, "U2", alice)
    upscale = await next_finish(emu, thread_id, 2)
    assert "upscale 2 is ready" in upscale["content"] and upscale["attachments"]
    assert faces(upscale) == []  # nothing follows an upscale on that server

    await press(emu, result, "🔄", alice)
    rerolled = await next_finish(emu, thread_id, 3)
    assert "reroll is ready" in rerolled["content"]

    changes = [r.json for r in sim.requests_to("/mj/submit/change")]
    assert [(c["action"], c["index"]) for c in changes] == [("UPSCALE", 2), ("REROLL", 1)]
    assert all(c["state"].startswith("mjcord:") for c in changes)
    assert len(sim.requests_to("/mj/submit/action")) == 1  # asked once, then remembered


@pytest.mark.parametrize("profile", ["classic"], indirect=True)
async def test_describe_works_on_the_java_proxy(
    emu: DiscordEmulator, sim: MjProxySimulator, app: Application
) -> None:
    await describe_flow(emu, sim, app)


@pytest.mark.parametrize("profile", ["classic"], indirect=True)
async def test_blend_works_on_the_java_proxy(
    emu: DiscordEmulator, sim: MjProxySimulator, app: Application
) -> None:
    await blend_flow(emu, sim, app, 2)
    (blended,) = [t for t in sim.tasks.values() if t.action == "BLEND"]
    assert blended.status == "SUCCESS"


async def test_a_rejected_flag_is_named_to_the_member(
    emu: DiscordEmulator, sim: MjProxySimulator, app: Application
) -> None:
    sim.faults.fail_reason = "[Invalid parameter] Unrecognized parameter(s): `--zzfail`"
    alice = emu.add_user("alice")
    await emu.slash_command("imagine", {"prompt": "a lighthouse --zzfail"}, user_id=alice)
    final = await wait_finish(emu, int((await _reply(emu))["id"]))
    assert "Midjourney does not recognise `--zzfail`" in final["content"]
    said = "The image service said: `[Invalid parameter] Unrecognized parameter(s): ˋ--zzfailˋ`"
    assert said in final["content"]


async def test_a_failure_reason_with_markup_is_shown_inert(
    emu: DiscordEmulator, sim: MjProxySimulator, app: Application
) -> None:
    sim.faults.fail_reason = "@everyone **boom** <@&123> ||x|| `y` " + "z" * 500
    alice = emu.add_user("alice")
    await emu.slash_command("imagine", {"prompt": "a lighthouse"}, user_id=alice)
    final = await wait_finish(emu, int((await _reply(emu))["id"]))
    line = next(x for x in final["content"].split("\n") if x.startswith("The image service said"))
    shown = line.removeprefix("The image service said: ")
    # One code span: nothing inside renders, no mention forms, and it is bounded.
    assert shown.startswith("`") and shown.endswith("`") and shown.count("`") == 2
    assert "@\u200beveryone" in shown and "<@\u200b&123>" in shown
    assert len(shown) <= 202 and shown.endswith("…`")
    assert not final.get("mention_everyone") and not final.get("mention_roles")


@pytest.mark.parametrize("profile", ["upstream", "classic"], indirect=True)
async def test_callbacks_at_least_once_still_give_one_post_per_job(
    emu: DiscordEmulator, sim: MjProxySimulator, bots: Running
) -> None:
    sim.faults.at_least_once_callbacks = True
    sim.rng.seed(3)
    port = free_port()
    await bots.start(
        PORT=str(port),
        PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
        WEBHOOK_SECRET="callback-secret-0123456789",
        MJ_POLL_INTERVAL="1",  # polling catches what a dropped callback never said
    )
    users = [emu.add_user(f"member{i}") for i in range(4)]
    for user in users:
        await emu.slash_command("imagine", {"prompt": f"a harbour {user}"}, user_id=user)
    await emu.wait_for(lambda: len(all_finish_posts(emu)) >= 4, timeout=40, what="4 posts")
    # Late and repeated callbacks keep coming for a moment; wait until they have all landed.
    await emu.wait_for(
        lambda: all(t.terminal for t in sim.tasks.values()) and len(sim.tasks) == 4,
        timeout=10,
    )
    await asyncio.sleep(sim.faults.callback_max_delay * 3)
    posts = all_finish_posts(emu)
    assert len(posts) == 4 and all(p["attachments"] for p in posts)
    bodies = [(c["body"]["id"], c["body"]["status"], c["body"]["progress"]) for c in sim.callbacks]
    assert len(bodies) > len(set(bodies)) or sim.dropped_callbacks  # the mode really bit
