"""`python -m bot.sandbox.discord --port N`: one emulated Discord world, on its own.

The first line of stdout is space-separated ``KEY=value`` pairs, flushed at once, that a bot (or
a test starting this as a subprocess) reads to connect::

    DISCORD_API_BASE_URL=http://127.0.0.1:N/api/v10 DISCORD_GATEWAY_URL=ws://127.0.0.1:N/gateway
    DISCORD_TOKEN=… GUILD_ID=… CHANNEL_ID=… DEV_GUILD_ID=… APPLICATION_ID=… SHARDS=1 GUILD_IDS=…

That format is a contract: keys may be added at the end, never renamed or removed. Everything
else goes to stderr. It serves until SIGTERM or SIGINT, then closes every connection and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import signal
import sys
from collections.abc import Sequence
from typing import Any

from bot.sandbox.discord.emulator import DiscordEmulator


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bot.sandbox.discord",
        description="Serve an emulated Discord (REST v10, gateway, CDN) on loopback.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=0, help="TCP port (0: any free port)")
    parser.add_argument(
        "--shards", type=int, default=1, help="shard count GET /gateway/bot recommends"
    )
    parser.add_argument(
        "--guilds", type=int, default=1, help="servers in the world, spread over the shards"
    )
    parser.add_argument(
        "--latency-ms", type=float, default=0.0, help="one-way network delay (REST and gateway)"
    )
    parser.add_argument(
        "--token", default=None, help="the bot token to accept (default: a fresh random one)"
    )
    parser.add_argument(
        "--rate-limits",
        choices=("on", "off"),
        default="on",
        help="Discord's REST rate limits (on, as Discord; off for load experiments)",
    )
    args = parser.parse_args(argv)
    if args.shards < 1 or args.guilds < 1:
        parser.error("--shards and --guilds must be at least 1")
    return args


def build(args: argparse.Namespace) -> DiscordEmulator:
    """The world the options describe: guilds spread round-robin over the shards."""
    options: dict[str, Any] = {"latency_ms": args.latency_ms, "shards": args.shards}
    if "rate_limits" in inspect.signature(DiscordEmulator).parameters:
        options["rate_limits"] = args.rate_limits == "on"  # the REST side's switch
    emu = DiscordEmulator(**options)
    if args.token:
        emu.token = args.token  # a fixed token lets a bot's .env stay the same across runs
    for index in range(1, args.guilds):
        emu.add_guild(f"server {index + 1}", shard=(index % args.shards, args.shards))
    return emu


def banner(emu: DiscordEmulator) -> str:
    """The first stdout line: what a bot needs, as KEY=value pairs."""
    pairs = {
        "DISCORD_API_BASE_URL": emu.api_base_url,
        "DISCORD_GATEWAY_URL": emu.gateway_url,
        "DISCORD_TOKEN": emu.token,
        "GUILD_ID": str(emu.guild_id),
        "CHANNEL_ID": str(emu.channel_id),
        "DEV_GUILD_ID": str(emu.guild_id),
        "APPLICATION_ID": str(emu.application_id),
        "SHARDS": str(emu.shards),
        "GUILD_IDS": ",".join(str(g) for g in emu.guild_ids),
    }
    return " ".join(f"{key}={value}" for key, value in pairs.items())


async def serve(args: argparse.Namespace) -> int:
    emu = build(args)
    await emu.start(args.host, args.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    sys.stdout.write(banner(emu) + "\n")
    sys.stdout.flush()
    print(
        f"Discord emulator serving on {emu.base_url}; stop with SIGTERM or Ctrl-C", file=sys.stderr
    )
    try:
        await stop.wait()
    finally:
        await emu.stop()
        print(
            f"stopped after {len(emu.requests)} REST requests and "
            f"{emu.gateway_connections} gateway connections",
            file=sys.stderr,
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(serve(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
