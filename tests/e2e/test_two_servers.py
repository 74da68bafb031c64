"""The bot in two servers of one world: each server's /imagine runs, in its own channel's thread."""

from __future__ import annotations

from bot.sandbox.discord import DiscordEmulator
from bot.sandbox.mjproxy import MjProxySimulator
from tests.e2e.conftest import Running
from tests.e2e.test_imagine import wait_finish


async def test_jobs_in_two_servers_each_finish_in_their_own_thread(
    emu: DiscordEmulator, sim: MjProxySimulator, bots: Running
) -> None:
    other = emu.add_guild("second server")
    await bots.start(DEV_GUILD_ID="")  # commands synced globally: they reach every server
    alice = emu.add_user("alice")
    emu.join_guild(alice, other)
    places = {emu.guild_id: emu.channel_id, other: emu.general_channels[other]}
    for guild_id, channel_id in places.items():
        await emu.slash_command(
            "imagine", {"prompt": f"a fox in {guild_id}"}, user_id=alice, channel_id=channel_id
        )
    await emu.wait_for(lambda: len(emu.threads()) == 2, timeout=20, what="two threads")
    for guild_id, channel_id in places.items():
        (thread,) = [t for t in emu.threads() if t["parent_id"] == str(channel_id)]
        assert thread["guild_id"] == str(guild_id)
        final = await wait_finish(emu, int(thread["id"]), timeout=30)
        assert final["attachments"]
    prompts = sorted(r.json["prompt"] for r in sim.requests_to("/mj/submit/imagine"))
    assert prompts == sorted(f"a fox in {g}" for g in places)
