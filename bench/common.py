"""Shared set-up for benchmarks: the emulator, the simulator and the real bot, in one process."""

from __future__ import annotations

import io
import os
import statistics
import tempfile
from typing import Any

from PIL import Image

from bot.app import Application
from bot.sandbox.discord import DiscordEmulator
from bot.sandbox.mjproxy import MjProxySimulator
from bot.settings import load_settings
from tests.conftest import free_port


def noise_png(target_bytes: int) -> bytes:
    """A PNG of about `target_bytes` (random pixels barely compress)."""
    side = int((target_bytes / 3) ** 0.5)
    image = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=1)
    return out.getvalue()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary(name: str, values: list[float], unit: str = "ms") -> str:
    return (
        f"{name}: n={len(values)} p50={statistics.median(values):.1f}{unit} "
        f"p99={percentile(values, 99):.1f}{unit} max={max(values):.1f}{unit}"
    )


async def start_app(emu: DiscordEmulator, sim: MjProxySimulator, **extra: str) -> Application:
    workdir = tempfile.mkdtemp(prefix="mjcord-bench-")
    env: dict[str, Any] = {
        "DISCORD_TOKEN": emu.token,
        "DISCORD_API_BASE_URL": emu.api_base_url,
        "DISCORD_GATEWAY_URL": emu.gateway_url,
        "DEV_GUILD_ID": str(emu.guild_id),
        "MJ_API_BASE_URL": sim.base_url,
        "MJ_API_KEY": "sk-test",
        "DATABASE_URL": f"sqlite:///{workdir}/bench.db",
        "PORT": str(free_port()),
        "MJ_POLL_INTERVAL": "0.5",
        "LOG_LEVEL": "WARNING",
        **extra,
    }
    app = Application(
        load_settings(env, env_file=None), guild_ready_timeout=0.01, web_host="127.0.0.1"
    )
    await app.start()
    return app
