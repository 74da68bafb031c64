"""What one complete /imagine job costs: Discord REST calls and image-API calls, from the
command to the finish post, in each API profile.

    python -m bench.job_cost
"""

from __future__ import annotations

import asyncio
import collections

from bench.common import start_app
from bot.log import configure
from bot.sandbox.discord import DiscordEmulator
from bot.sandbox.mjproxy import MjProxySimulator


async def one_job(profile: str) -> None:
    emu = DiscordEmulator()
    sim = MjProxySimulator(profile=profile, step_seconds=0.5)  # type: ignore[arg-type]
    await emu.start()
    await sim.start()
    extra = {"MJ_AUTH_STYLE": "bearer" if profile == "aggregator" else "mj-api-secret"}
    app = await start_app(emu, sim, MJ_POLL_INTERVAL="1", **extra)
    try:
        before_discord, before_api = len(emu.requests), len(sim.requests)
        user = emu.add_user("bench")
        await emu.slash_command("imagine", {"prompt": "one job"}, user_id=user)

        def posted() -> bool:
            return any(
                "-# job " in (m.get("content") or "") and m.get("attachments")
                for t in emu.threads()
                for m in emu.messages(int(t["id"]))
            )

        await emu.wait_for(posted, timeout=60)
        discord_calls = emu.requests[before_discord:]
        api_calls = sim.requests[before_api:]
        by_route = collections.Counter(f"{r.method} {r.route}" for r in discord_calls)
        by_path = collections.Counter(f"{r.method} {r.path}" for r in api_calls)
        print(f"[{profile}] Discord REST calls for one job: {len(discord_calls)}")
        for route, n in by_route.most_common():
            print(f"    {n:3d}  {route}")
        print(
            f"[{profile}] image API calls for one job: {len(api_calls)} (poll every 1 s, "
            f"job ≈ {9 * 0.5:.1f} s)"
        )
        for path, n in by_path.most_common():
            print(f"    {n:3d}  {path}")
    finally:
        await app.stop()
        await sim.stop()
        await emu.stop()


async def main() -> None:
    configure("ERROR")
    for profile in ("aggregator", "upstream"):
        await one_job(profile)


if __name__ == "__main__":
    asyncio.run(main())
