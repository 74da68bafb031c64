"""Three processes, as an operator would run them: both stand-ins on their own, then the bot."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import aiohttp

from tests.conftest import free_port
from tests.integration.test_discord_standalone import standalone


async def test_the_bot_runs_against_both_stand_ins_started_on_their_own(tmp_path: Path) -> None:
    async with standalone("--port", str(free_port())) as (discord_proc, env):
        sim = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.sandbox.mjproxy",
            "--api-key",
            "sk-standalone",
            "--step-seconds",
            "0.1",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        bot: asyncio.subprocess.Process | None = None
        try:
            assert sim.stdout is not None
            sim_url = (await asyncio.wait_for(sim.stdout.readline(), timeout=30)).decode().strip()
            health_port = free_port()
            bot_env = {
                **os.environ,
                "DISCORD_TOKEN": env["DISCORD_TOKEN"],
                "DISCORD_API_BASE_URL": env["DISCORD_API_BASE_URL"],
                "DISCORD_GATEWAY_URL": env["DISCORD_GATEWAY_URL"],
                "DEV_GUILD_ID": env["DEV_GUILD_ID"],
                "MJ_API_BASE_URL": sim_url,
                "MJ_API_KEY": "sk-standalone",
                "DATABASE_URL": f"sqlite:///{tmp_path}/bot.db",
                "PORT": str(health_port),
            }
            log = tmp_path / "bot.log"
            with log.open("wb") as sink:  # a file, not a pipe: a chatty bot never blocks on it
                bot = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "bot",
                    env=bot_env,
                    cwd=tmp_path,
                    stdout=sink,
                    stderr=sink,
                )
            async with aiohttp.ClientSession() as http:
                health = await _healthy(http, health_port, bot, log)
                assert health["gateway"] is True
                # What the bot did, seen through the emulator's own REST API: /imagine synced.
                url = (
                    f"{env['DISCORD_API_BASE_URL']}/applications/{env['APPLICATION_ID']}"
                    f"/guilds/{env['GUILD_ID']}/commands"
                )
                headers = {"Authorization": f"Bot {env['DISCORD_TOKEN']}"}
                async with http.get(url, headers=headers) as resp:
                    assert resp.status == 200
                    names = {c["name"] for c in await resp.json()}
                assert "imagine" in names
        finally:
            for proc in (bot, sim):
                if proc is not None and proc.returncode is None:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        await asyncio.wait_for(proc.wait(), timeout=15)
                    except TimeoutError:
                        proc.kill()
                        await proc.wait()
        discord_proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(discord_proc.wait(), timeout=15) == 0


async def _healthy(
    http: aiohttp.ClientSession, port: int, bot: asyncio.subprocess.Process, log: Path
) -> dict[str, object]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if bot.returncode is not None:
            raise AssertionError((await asyncio.to_thread(log.read_text))[-2000:])
        try:
            async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                body: dict[str, object] = await resp.json()
                if resp.status == 200:
                    return body
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)
    raise AssertionError("the bot never became healthy")
