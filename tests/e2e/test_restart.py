"""Nothing lost, nothing twice: restarts, SIGKILL between the API's result and the post, and the
per-job time limit."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.sandbox.discord import DiscordEmulator
from bot.sandbox.mjproxy import MjProxySimulator
from tests.e2e.conftest import Running, bot_env
from tests.e2e.test_imagine import _reply, finish_posts, wait_finish

ROOT = Path(__file__).resolve().parents[2]


def is_finish_post(body: Any) -> bool:
    return isinstance(body, dict) and str(body.get("nonce", "")).startswith("mjcord-")


async def test_a_bot_stopped_mid_job_posts_the_result_once_after_restart(
    emu: DiscordEmulator, sim: MjProxySimulator, bots: Running
) -> None:
    sim.step_seconds = 0.3
    first = await bots.start()
    alice = emu.add_user("alice")
    await emu.slash_command("imagine", {"prompt": "a lighthouse"}, user_id=alice)
    reply = await _reply(emu)
    thread_id = int(reply["id"])
    await emu.wait_for(lambda: len(emu.messages(thread_id)) >= 1, timeout=10)
    await first.stop()
    task_id = next(iter(sim.tasks))
    sim.complete(task_id)

    await bots.start()
    await wait_finish(emu, thread_id)
    await asyncio.sleep(1.0)  # time for a second post, if there were going to be one
    assert len(finish_posts(emu, thread_id)) == 1
    assert finish_posts(emu, thread_id)[0]["attachments"]


@pytest.mark.parametrize("reached_discord", [True, False], ids=["post-arrived", "post-lost"])
async def test_sigkill_between_success_and_post_posts_exactly_once(
    emu: DiscordEmulator,
    sim: MjProxySimulator,
    bots: Running,
    db_url: str,
    tmp_path: Path,
    reached_discord: bool,
) -> None:
    """The bot runs as a subprocess; its finish post is parked in flight, the bot is killed with
    SIGKILL, and the post is then either carried out (it reached Discord before the kill) or
    dropped. A new bot on the same database must leave exactly one finish post either way."""
    hold = emu.hold("POST", "/channels/{channel_id}/messages", when=is_finish_post)
    log_path = tmp_path / "bot.log"
    env = {**os.environ, **bot_env(emu, sim, db_url)}
    with log_path.open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", cwd=ROOT, env=env, stdout=log, stderr=log
        )
    try:
        await emu.wait_for(lambda: bool(emu.guild_commands), timeout=30, what="the bot synced")
        alice = emu.add_user("alice")
        await emu.slash_command("imagine", {"prompt": "a lighthouse"}, user_id=alice)
        await asyncio.wait_for(hold.arrived.wait(), timeout=30)
    except BaseException:
        print(log_path.read_text(errors="replace"))
        raise
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGKILL)
        await proc.wait()
    hold.release(apply=reached_discord)
    reply = await _reply(emu)
    thread_id = int(reply["id"])

    await bots.start()
    await wait_finish(emu, thread_id)
    await asyncio.sleep(1.0)
    posts = finish_posts(emu, thread_id)
    assert len(posts) == 1, [p["content"] for p in posts]


async def test_a_job_past_the_time_limit_is_failed_with_a_message(
    emu: DiscordEmulator, sim: MjProxySimulator, bots: Running
) -> None:
    sim.faults.never_finish = True
    await bots.start(MJ_TASK_TIMEOUT="0.05")  # 3 seconds
    alice = emu.add_user("alice")
    await emu.slash_command("imagine", {"prompt": "a lighthouse"}, user_id=alice)
    reply = await _reply(emu)
    final = await wait_finish(emu, int(reply["id"]), timeout=15)
    assert "did not finish this job within 3 seconds" in final["content"]
    assert f"<@{alice}>" in final["content"]


async def test_past_the_token_s_life_a_restart_posts_a_fresh_reply_and_carries_on(
    spec_validator: Any, tmp_path: Path
) -> None:
    """The bot dies while turning the loading message into the reply, and comes back after
    the interaction token expired: the reply is a fresh public message, its thread and the
    outcome follow, once."""
    from tests.e2e.crashkit import World, wait

    async with World(tmp_path, spec_validator) as world:
        emu = world.emu
        first = await world.spawn()
        await wait(lambda: bool(emu.guild_commands), 60, "the bot synced")
        hold = emu.hold("PATCH", "/webhooks/{webhook_id}/{webhook_token}/messages/@original")
        await emu.slash_command("imagine", {"prompt": "a late lighthouse"}, user_id=world.alice)
        await asyncio.wait_for(hold.arrived.wait(), 30)
        await first.kill()
        hold.release(apply=False)
        emu.token_ttl = 0.0  # Discord no longer accepts the token
        (job,) = await world.jobs()
        assert job.ack is not None  # recorded with the token at acknowledgement
        # The bot judges the token by its own clock; make it old for the restarted process.
        await world.age_token(job.id)
        await world.spawn()
        try:
            await wait(lambda: bool(world.finish_posts(job.id)), 60, "the outcome")
        except TimeoutError:
            raise AssertionError(world.log()[-5000:]) from None
        await world.quiet(1.0)
        (job,) = await world.jobs()
        replies = [m for m in emu.messages(emu.channel_id) if "a late lighthouse" in m["content"]]
        fresh = [m for m in replies if m["type"] == 0 and not m.get("interaction_metadata")]
        assert len(fresh) == 1 and int(fresh[0]["id"]) == job.route.reply_message_id
        assert job.route.thread_id == job.route.reply_message_id and job.ack is None
        ((channel_id, _),) = world.finish_posts(job.id)
        assert channel_id == job.route.thread_id
