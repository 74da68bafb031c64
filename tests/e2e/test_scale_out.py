"""Several bot processes: on SQLite a second process is refused at start with what to set."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from bot.adapters.storage import StorageError
from bot.adapters.storage.engine import create_engine, database_url
from bot.adapters.storage.leadership import claim_sqlite_file
from bot.app import Application
from bot.sandbox.discord import DiscordEmulator
from bot.sandbox.mjproxy import MjProxySimulator
from tests.e2e.conftest import Running, bot_env, make_settings

ROOT = Path(__file__).resolve().parents[2]


async def test_a_second_process_on_one_sqlite_file_is_refused_with_what_to_set(
    emu: DiscordEmulator, sim: MjProxySimulator, bots: Running, db_url: str
) -> None:
    await bots.start()
    second = Application(make_settings(emu, sim, db_url), guild_ready_timeout=0.01)
    try:
        with pytest.raises(StorageError) as refused:
            await second.start()
    finally:
        await second.stop()
    assert "DATABASE_URL=postgresql://" in str(refused.value)
    assert "another mjcord process" in str(refused.value)


async def test_python_m_bot_on_a_claimed_sqlite_file_exits_with_one_sentence(
    emu: DiscordEmulator, sim: MjProxySimulator, tmp_path: Path
) -> None:
    db = f"sqlite:///{tmp_path}/mjcord.db"
    held = claim_sqlite_file(create_engine(database_url(db)))  # another process, as it were
    try:
        env = {**os.environ, **bot_env(emu, sim, db), "LOG_LEVEL": "ERROR"}
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    finally:
        if held is not None:
            held.close()
    assert proc.returncode == 2, (out, err)
    text = err.decode()
    assert "mjcord cannot start: another mjcord process is already using the SQLite" in text
    assert "Traceback" not in text
