"""The real bot, in-process, against the Discord emulator and the image API simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.app import Application
from bot.sandbox.discord import DiscordEmulator
from bot.sandbox.mjproxy import MjProxySimulator
from bot.settings import Settings, load_settings
from tests.conftest import free_port


def bot_env(emu: DiscordEmulator, sim: MjProxySimulator, db: str, **extra: str) -> dict[str, str]:
    """The environment a bot process needs to run against the two local stand-ins."""
    return {
        "DISCORD_TOKEN": emu.token,
        "DISCORD_API_BASE_URL": emu.api_base_url,
        "DISCORD_GATEWAY_URL": emu.gateway_url,
        "DEV_GUILD_ID": str(emu.guild_id),
        "MJ_API_BASE_URL": sim.base_url,
        "MJ_API_KEY": "sk-test",
        "MJ_AUTH_STYLE": "bearer" if sim.profile == "aggregator" else "mj-api-secret",
        "DATABASE_URL": db,
        "PORT": str(free_port()),
        "MJ_POLL_INTERVAL": "0.1",
        # The emulator's one server arrives right after READY: no need for discord.py's 2 s.
        "GUILD_READY_TIMEOUT": "0.1",
        "LOG_LEVEL": "DEBUG",
        **extra,
    }


def make_settings(emu: DiscordEmulator, sim: MjProxySimulator, db: str, **extra: str) -> Settings:
    return load_settings(bot_env(emu, sim, db, **extra), env_file=None)


@pytest.fixture
async def emu(spec_validator: Any) -> AsyncIterator[DiscordEmulator]:
    emulator = DiscordEmulator(spec_validator)
    await emulator.start()
    yield emulator
    await emulator.stop()
    assert emulator.unhandled == [], (
        f"the bot called routes the emulator lacks: {emulator.unhandled}"
    )
    assert emulator.violations == [], "\n".join(emulator.violations)


@pytest.fixture(params=["aggregator"])
def profile(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def sim(profile: str) -> AsyncIterator[MjProxySimulator]:
    key = "sk-test"
    simulator = MjProxySimulator(profile=profile, api_key=key, step_seconds=0.05)  # type: ignore[arg-type]
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/mjcord.db"


#: Seconds between two status edits of one job in these tests. A job of the default simulator
#: (about 0.5 s) then gets one progress edit: with more, its thread's five calls per five
#: seconds (Discord's per-channel budget, see bot/discord_ui/budget.py) are used up and the
#: final "Done" edit waits about 4.5 s for room, in every test and at every shutdown.
EDIT_INTERVAL = 1.0


class Running:
    """Starts and stops Applications, so a test can restart the bot on the same database."""

    def __init__(self, emu: DiscordEmulator, sim: MjProxySimulator, db: str) -> None:
        self.emu, self.sim, self.db = emu, sim, db
        self.apps: list[Application] = []

    async def start(self, *, min_edit_interval: float = EDIT_INTERVAL, **extra: str) -> Application:
        app = Application(
            make_settings(self.emu, self.sim, self.db, **extra),
            guild_ready_timeout=0.01,
            web_host="127.0.0.1",
            min_edit_interval=min_edit_interval,
        )
        await app.start()
        self.apps.append(app)
        return app

    async def stop_all(self) -> None:
        for app in self.apps:
            await app.stop()


@pytest.fixture
async def bots(emu: DiscordEmulator, sim: MjProxySimulator, db_url: str) -> AsyncIterator[Running]:
    running = Running(emu, sim, db_url)
    yield running
    await running.stop_all()


@pytest.fixture
async def app(bots: Running) -> Application:
    return await bots.start()
