"""Time from INTERACTION_CREATE (sent by the emulator) to the defer callback (received by it),
over a burst of 200 /imagine commands each carrying a 1 MB attachment.

Baseline, in the same process and the same emulator: a bare discord.py bot whose /imagine only
defers. The ratio shows what mjcord's own work costs the 3-second window.

    python -m bench.interaction_latency [--burst 200] [--attachment-mb 1]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
from typing import Any

import discord
import yarl
from discord import app_commands
from discord.ext import commands

from bench.common import noise_png, percentile, start_app, summary
from bot.log import configure
from bot.sandbox.discord import DiscordEmulator
from bot.sandbox.mjproxy import MjProxySimulator


async def burst(
    emu: DiscordEmulator, size: int, attachment: bytes, *, keep: list[Any] | None = None
) -> list[float]:
    user = emu.add_user("bench")
    options = []
    for i in range(size):
        att = emu.add_attachment(f"ref{i}.png", attachment, "image/png")
        options.append({"prompt": f"bench {i}", "image1": att})
    inters = await asyncio.gather(*(emu.slash_command("imagine", o, user_id=user) for o in options))
    await emu.wait_for(lambda: all(i.acked_at for i in inters), timeout=120)
    if keep is not None:
        keep.extend(inters)
    return [(i.acked_at - i.dispatched_at) * 1000 for i in inters]


class BareBot(commands.Bot):
    async def setup_hook(self) -> None:
        guild = discord.Object(self._guild)

        @app_commands.command(name="imagine", description="defer only")
        async def imagine(
            interaction: discord.Interaction[Any],
            prompt: str,
            image1: discord.Attachment | None = None,
        ) -> None:
            await interaction.response.defer(thinking=True)

        self.tree.add_command(imagine, guild=guild)
        await self.tree.sync(guild=guild)


async def baseline(size: int, attachment: bytes) -> list[float]:
    emu = DiscordEmulator()
    await emu.start()
    discord.http.Route.BASE = emu.api_base_url
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(emu.gateway_url)
    bot = BareBot(command_prefix="!", intents=discord.Intents.default(), guild_ready_timeout=0.01)
    bot._guild = emu.guild_id  # type: ignore[attr-defined]
    await bot.login(emu.token)
    task = asyncio.create_task(bot.connect())
    await bot.wait_until_ready()
    try:
        return await burst(emu, size, attachment)
    finally:
        await bot.close()
        await task
        await emu.stop()


async def mjcord(size: int, attachment: bytes) -> tuple[list[float], int]:
    emu = DiscordEmulator()
    sim = MjProxySimulator(step_seconds=0.5)
    await emu.start()
    await sim.start()
    app = await start_app(emu, sim)
    try:
        inters: list[Any] = []
        latencies = await burst(emu, size, attachment, keep=inters)
        late = sum(1 for x in latencies if x > 3000)
        # Let every command finish (submitted, or refused by the default quota) before shutting
        # down; not part of the figure.
        await emu.wait_for(
            lambda: (
                len(sim.requests_to("/mj/submit/imagine"))
                + sum(1 for i in inters if i.ephemeral_messages)
                >= size
            ),
            timeout=300,
        )
        return latencies, late
    finally:
        await app.stop()
        await sim.stop()
        await emu.stop()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--attachment-mb", type=float, default=1.0)
    args = parser.parse_args()
    configure("ERROR")
    logging.getLogger("discord").setLevel(logging.ERROR)
    attachment = noise_png(int(args.attachment_mb * 1024 * 1024))
    print(f"burst of {args.burst} /imagine, attachment {len(attachment) / 1e6:.2f} MB each")
    # The baseline runs before and after mjcord, so warm-up favours neither.
    before = await baseline(args.burst, attachment)
    print(summary("baseline (bare discord.py, defer only), first run", before))
    ours, late = await mjcord(args.burst, attachment)
    print(summary("mjcord", ours))
    after = await baseline(args.burst, attachment)
    print(summary("baseline (bare discord.py, defer only), second run", after))
    base = before + after
    print(
        f"ratio mjcord/baseline: p50 {statistics.median(ours) / statistics.median(base):.2f}x, "
        f"p99 {percentile(ours, 99) / percentile(base, 99):.2f}x; "
        f"acknowledged after 3 s: {late} of {len(ours)}"
    )


if __name__ == "__main__":
    asyncio.run(main())
