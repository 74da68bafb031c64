"""The Discord emulator in a process of its own, for benchmarks that time its arrivals.

    python -m bench.discord_host [--rate-limits on|off]

In the benchmark's own process the emulator shares an event loop with the simulator (which
renders result images) and the benchmark itself, so a busy moment there bunches the arrival
times it records. Here nothing else runs on its loop: a request is timestamped as it arrives.

Protocol (one JSON object per line): the first stdout line is the world (`token`,
`api_base_url`, `gateway_url`, `guild_id`); then each stdin line is a command and gets one
stdout line back:

* `{"op": "seed", "channels": N, "messages": [[channel index, content], …]}` → `{"channels":
  [ids], "user": id, "messages": [ids]}`: channels, one member, the bot's status messages;
* `{"op": "calls", "since": n}` → `{"total": T, "calls": [[at, method, path, content, status], …]}`:
  the REST calls from the n-th on (`at` is `time.monotonic()`, the same clock in every process
  of the machine; `content` is the JSON body's `content`, or ""; `status` the HTTP status
  answered, 0 while unanswered);
* `{"op": "synced"}` → `{"synced": bool}`: whether the bot has registered its commands.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from bot.sandbox.discord import DiscordEmulator
from bot.sandbox.discord.messages import compose_message
from bot.sandbox.discord.rest import store_message


def content_of(body: Any) -> str:
    """A REST body's `content` field, or ""."""
    content = body.get("content") if isinstance(body, dict) else None
    return content if isinstance(content, str) else ""


async def seed(emu: DiscordEmulator, command: dict[str, Any]) -> dict[str, Any]:
    channels = [emu.add_channel(f"bench-{i}") for i in range(int(command["channels"]))]
    user = emu.add_user("member")
    ids = []
    for n, (index, content) in enumerate(command["messages"]):
        status = compose_message(
            emu, {"content": content}, [], channel_id=channels[index], author_id=emu.bot_user_id
        )
        await store_message(emu, status, dispatch=False)
        ids.append(int(status["id"]))
        if n % 500 == 499:
            await asyncio.sleep(0)
    return {"channels": channels, "user": user, "messages": ids}


def calls(emu: DiscordEmulator, since: int) -> dict[str, Any]:
    out = [[r.at, r.method, r.path, content_of(r.json), r.status] for r in emu.requests[since:]]
    return {"total": len(emu.requests), "calls": out}


async def serve(rate_limits: bool) -> None:
    emu = DiscordEmulator(rate_limits=rate_limits)
    await emu.start()
    out = sys.stdout
    world = {
        "token": emu.token,
        "api_base_url": emu.api_base_url,
        "gateway_url": emu.gateway_url,
        "guild_id": emu.guild_id,
    }
    out.write(json.dumps(world) + "\n")
    out.flush()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=64 * 1024 * 1024)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        while line := await reader.readline():
            command = json.loads(line)
            op = command["op"]
            if op == "seed":
                answer = await seed(emu, command)
            elif op == "calls":
                answer = calls(emu, int(command["since"]))
            elif op == "synced":
                answer = {"synced": bool(emu.guild_commands)}
            else:
                answer = {"error": f"unknown op {op!r}"}
            out.write(json.dumps(answer) + "\n")
            out.flush()
    finally:
        await emu.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate-limits", choices=("on", "off"), default="on")
    args = parser.parse_args()
    asyncio.run(serve(args.rate_limits == "on"))


if __name__ == "__main__":
    main()
