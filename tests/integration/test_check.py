"""`python -m bot check` as an operator runs it: a real process against the simulator and the
Discord emulator, with a good key, a wrong key, and a port where nothing listens."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.sandbox.discord import DiscordEmulator
from bot.sandbox.mjproxy import MjProxySimulator


@pytest.fixture
async def services() -> AsyncIterator[tuple[DiscordEmulator, MjProxySimulator]]:
    emu, sim = DiscordEmulator(), MjProxySimulator(api_key="sk-right")
    await emu.start()
    await sim.start()
    yield emu, sim
    await sim.stop()
    await emu.stop()


async def run_check(env: dict[str, str], cwd: Path) -> tuple[int, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MJ_", "DISCORD_"))}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "check",
        cwd=cwd,
        env={**clean, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    return proc.returncode or 0, out.decode()


def env_for(emu: DiscordEmulator, api_url: str, key: str, tmp: Path) -> dict[str, str]:
    return {
        "DISCORD_TOKEN": emu.token,
        "DISCORD_API_BASE_URL": emu.api_base_url,
        "MJ_API_BASE_URL": api_url,
        "MJ_API_KEY": key,
        "DATABASE_URL": f"sqlite:///{tmp}/check.db",
    }


async def test_check_passes_against_the_simulator(services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    emu, sim = services
    code, out = await run_check(env_for(emu, sim.base_url, "sk-right", tmp_path), tmp_path)
    assert code == 0, out
    assert [line[:4] for line in out.splitlines() if line[:4] in ("ok  ", "FAIL")] == ["ok  "] * 4
    assert "sk-right" not in out and emu.token not in out


async def test_check_names_a_wrong_key(services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    emu, sim = services
    code, out = await run_check(env_for(emu, sim.base_url, "sk-wrong", tmp_path), tmp_path)
    assert code == 1
    line = next(x for x in out.splitlines() if x.startswith("FAIL image API"))
    assert "401" in line and "sk-wrong" not in out


async def test_check_says_when_nothing_listens(services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    emu, _ = services
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
        code, out = await run_check(env_for(emu, url, "sk-right", tmp_path), tmp_path)
    assert code == 1
    line = next(x for x in out.splitlines() if x.startswith("FAIL image API"))
    assert "connect" in line.lower()


async def test_check_names_a_rejected_discord_token(services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    emu, sim = services
    env = {**env_for(emu, sim.base_url, "sk-right", tmp_path), "DISCORD_TOKEN": "not-the-token"}
    code, out = await run_check(env, tmp_path)
    assert code == 1 and "FAIL Discord: the token was rejected" in out
    assert "not-the-token" not in out


async def test_bad_settings_stop_start_up_naming_every_key(tmp_path: Path) -> None:
    code, out = await run_check(
        {"MJ_API_BASE_URL": "not a url", "MJ_POLL_INTERVAL": "-1", "MJ_API_KEY": "sk-secret"},
        tmp_path,
    )
    assert code == 2
    for key in ("DISCORD_TOKEN is missing", "MJ_API_BASE_URL is not valid", "MJ_POLL_INTERVAL"):
        assert key in out
    assert "sk-secret" not in out
