"""Bot defects the faithful Discord emulator exposed, each shown end to end.

1. The upload limit was taken from the member's `interaction.filesize_limit` (their Nitro):
   a Nitro member's command made the bot upload more than the server allows (413 40005).
2. A repeated finish post whose first copy was deleted (Discord: 404 10008 for the nonce) was
   read as a lost channel, and the outcome was posted again in the parent channel.
3. A thread that archived itself while the job ran refused every status edit (50083).
4. A locked thread (160005) made every finish attempt fail, so the outcome never appeared.
5. With only the README's invite permissions the whole flow must still work.
6. Status edits of one job ran concurrently: one held back by a 429 (discord.py sleeps, then
   resends it) landed after the final "Done" edit, so the status message showed "Queued".
"""

from __future__ import annotations

import asyncio
import re

from bot.app import Application
from bot.sandbox.discord import DiscordEmulator, threads
from bot.sandbox.discord.limits import MIB
from bot.sandbox.discord.rest import delete_message
from bot.sandbox.mjproxy import MjProxySimulator
from tests.e2e.conftest import Running
from tests.e2e.test_followups import next_finish, press
from tests.e2e.test_imagine import _reply, finish_posts, thread_of, wait_finish

LOCKED_NOTE = "The thread for this job is locked"


async def test_a_nitro_members_limit_does_not_raise_the_bots_upload_limit(
    emu: DiscordEmulator, sim: MjProxySimulator, app: Application
) -> None:
    sim.image_px = 2048  # a noisy 2048 px PNG is ~12.6 MB: over the server's 10 MiB
    sim.faults.noisy_images = True
    alice = emu.add_user("alice")
    emu.limits.member_upload_limits[alice] = 500 * MIB  # Nitro
    await emu.slash_command("imagine", {"prompt": "static"}, user_id=alice)
    reply = await _reply(emu)
    final = await wait_finish(emu, int(reply["id"]), timeout=60)
    (attachment,) = final["attachments"]
    assert attachment["filename"].endswith(".jpg")
    assert attachment["size"] <= emu.limits.upload_limit == 10 * MIB
    assert [r.status for r in emu.requests if r.status == 413] == []


async def test_a_repeat_post_of_a_deleted_outcome_is_not_posted_again(
    emu: DiscordEmulator, sim: MjProxySimulator, app: Application
) -> None:
    alice = emu.add_user("alice")
    await emu.slash_command("imagine", {"prompt": "a lighthouse"}, user_id=alice)
    reply = await _reply(emu)
    thread_id = int(reply["id"])
    final = await wait_finish(emu, thread_id)
    match = re.search(r"-# job (\d+)", final["content"])
    assert match is not None and app.storage is not None and app.presenter is not None
    job = await app.storage.jobs.get(int(match.group(1)))
    assert job is not None
    # A moderator deletes the post; the bot then tries the post again (as after a crash
    # between posting and recording it), with the same nonce, inside Discord's window.
    await delete_message(emu, emu.stored[int(final["id"])])
    assert await app.presenter.post_finish(job) == 0
    assert finish_posts(emu, thread_id) == [] and finish_posts(emu, emu.channel_id) == []
    assert any(r.status == 404 and r.response.get("code") == 10008 for r in emu.requests)


async def test_a_thread_that_archived_itself_is_reopened_and_gets_its_outcome(
    emu: DiscordEmulator, sim: MjProxySimulator, app: Application
) -> None:
    # Discord archives after auto_archive_duration idle minutes; here 1.5 s, well inside a job
    # of about 5 s, and long enough for a reopened thread to take the edit that follows.
    emu.limits.thread_archive_after = 1.5
    sim.step_seconds = 1.0
    alice = emu.add_user("alice")
    await emu.slash_command("imagine", {"prompt": "a lighthouse"}, user_id=alice)
    reply = await _reply(emu)
    thread_id = int(reply["id"])
    final = await wait_finish(emu, thread_id, timeout=30)
    assert final["attachments"]
    archived_edits = [
        r for r in emu.requests if r.status == 400 and (r.response or {}).get("code") == 50083
    ]
    assert archived_edits, "the thread never archived during the job: the test proves nothing"
    reopened = [
        r for r in emu.requests if r.method == "PATCH" and r.route == "/channels/{channel_id}"
    ]
    assert reopened and all(r.status == 200 for r in reopened)
    status_id = int(emu.messages(thread_id)[0]["id"])

    def status_done() -> bool:
        status = emu.message(status_id)
        return status is not None and "Done" in status["content"]

    await emu.wait_for(status_done, timeout=10, what="the status message shows the end")


async def test_a_locked_thread_gets_its_outcome_in_the_channel_with_the_reason(
    emu: DiscordEmulator, sim: MjProxySimulator, app: Application
) -> None:
    sim.step_seconds = 0.3
    alice = emu.add_user("alice")
    await emu.slash_command("imagine", {"prompt": "a lighthouse"}, user_id=alice)
    reply = await _reply(emu)
    thread_id = int(reply["id"])
    await emu.wait_for(lambda: thread_of(emu, thread_id) is not None, timeout=10)
    await emu.wait_for(lambda: bool(emu.messages(thread_id)), timeout=10, what="status message")
    await threads.set_state(emu, thread_id, locked=True)  # a moderator locks it
    final = await wait_finish(emu, emu.channel_id, timeout=30)
    assert final["content"].startswith(LOCKED_NOTE) and f"<@{alice}>" in final["content"]
    assert final["attachments"]
    assert finish_posts(emu, thread_id) == []
    assert len(finish_posts(emu, emu.channel_id)) == 1


async def test_the_whole_flow_works_with_only_the_invite_permissions(
    emu: DiscordEmulator, sim: MjProxySimulator, bots: Running
) -> None:
    # @everyone grants nothing here: the bot has exactly its role, the README's invite set.
    emu.roles[emu.guild_id]["permissions"] = "0"
    await bots.start()
    alice = emu.add_user("alice")
    await emu.slash_command("imagine", {"prompt": "a lighthouse"}, user_id=alice)
    reply = await _reply(emu)
    thread_id = int(reply["id"])
    result = await wait_finish(emu, thread_id)
    assert result["attachments"]
    await press(emu, result, "U2", alice)
    upscale = await next_finish(emu, thread_id, 2)
    assert "upscale 2 is ready" in upscale["content"] and upscale["attachments"]
    assert emu.limits.invalid[403] == 0 and emu.limits.invalid[401] == 0


async def test_a_status_edit_held_by_a_429_does_not_land_after_the_final_one(
    emu: DiscordEmulator, sim: MjProxySimulator, app: Application
) -> None:
    sim.step_seconds = 0.2
    alice = emu.add_user("alice")
    await emu.slash_command("imagine", {"prompt": "a lighthouse"}, user_id=alice)
    reply = await _reply(emu)
    thread_id = int(reply["id"])
    await emu.wait_for(lambda: bool(emu.messages(thread_id)), timeout=10, what="status message")
    status_id = int(emu.messages(thread_id)[0]["id"])

    def edited() -> bool:  # discord.py has learnt the thread's edit bucket (several at once)
        return any(
            r.method == "PATCH" and r.status == 200 and f"/{thread_id}/" in r.path
            for r in emu.requests
        )

    await emu.wait_for(edited, timeout=10, what="a first status edit")
    # The next status edit is rate limited: discord.py sleeps 5 s, then sends it again.
    emu.fail_next("PATCH", "/channels/{channel_id}/messages/{message_id}", 429, retry_after=5.0)
    await wait_finish(emu, thread_id, timeout=30)

    def shows_done() -> bool:
        status = emu.message(status_id)
        return status is not None and "Done" in status["content"]

    await emu.wait_for(shows_done, timeout=15, what="the status message shows the end")
    retried = [r for r in emu.requests if r.status == 429]
    assert retried, "the fault never fired"
    await asyncio.sleep(5.5)  # longer than the held edit's retry_after
    assert shows_done(), "a stale edit landed after the final one"
