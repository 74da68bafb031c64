"""Crafted answers to real modals, a modal outliving a restart, guild-only commands, and the
sync-only-when-changed policy — the parts of the crafted catalogue that need a real job or
several bot starts."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import pytest

from bot import app as app_module
from bot.sandbox.discord import DiscordEmulator
from bot.sandbox.mjproxy import MjProxySimulator
from tests.e2e.conftest import Running, bot_env, make_settings
from tests.e2e.test_followups import grid, next_finish, press

ROOT = Path(__file__).resolve().parents[2]
ZOOM = "`Zoom out by (--zoom, from 1 to 2)`"
PROMPT = "`New prompt (optional)`"

MODAL_ROWS = [
    (
        "zoom-over-max-length",
        {"zoom": "12345"},
        rf"^{re.escape(ZOOM)} is 5 characters long; the limit is 4\.$",
    ),
    ("zoom-empty", {"zoom": ""}, rf"^{re.escape(ZOOM)} can't be empty\.$"),
    ("zoom-blank", {"zoom": "   "}, rf"^{re.escape(ZOOM)} can't be empty\.$"),
    ("zoom-zero-width", {"zoom": "\u200b"}, rf"^{re.escape(ZOOM)} can't be empty\.$"),
    (
        "zoom-not-a-number",
        {"zoom": "abc"},
        r"^The zoom must be a number from 1 to 2, such as 1\.5\.$",
    ),
    (
        "zoom-out-of-range",
        {"zoom": "9"},
        r"^The zoom must be a number from 1 to 2, such as 1\.5\.$",
    ),
    ("zoom-nan", {"zoom": "nan"}, r"^The zoom must be a number from 1 to 2"),
    (
        "prompt-over-max-length",
        {"prompt": "a" * 4001, "zoom": "1.5"},
        rf"^{re.escape(PROMPT)} is 4001 characters long; the limit is 4000\.$",
    ),
]


def _action_submits(sim: MjProxySimulator) -> int:
    return len(sim.requests_to("/mj/submit/action")) + len(sim.requests_to("/mj/submit/modal"))


@pytest.mark.parametrize("profile", ["upstream"], indirect=True)
async def test_crafted_answers_to_a_live_custom_zoom_modal(
    emu: DiscordEmulator, sim: MjProxySimulator, bots: Running
) -> None:
    await bots.start()
    alice = emu.add_user("alice")
    thread_id, result = await grid(emu, alice)
    await press(emu, result, "U1", alice)
    upscale = await next_finish(emu, thread_id, 2)
    submits = _action_submits(sim)
    for name, values, sentence in MODAL_ROWS:
        opened = await press(emu, upscale, "Custom Zoom", alice)
        await emu.wait_for(lambda o=opened: o.modal is not None, timeout=10, what=name)
        answer = await emu.submit_modal(opened, values, user_id=alice)
        await emu.wait_for(lambda a=answer: bool(a.ephemeral_messages), timeout=10, what=name)
        assert answer.acked_at is not None and answer.acked_at - answer.dispatched_at < 3.0
        (said,) = answer.ephemeral_messages
        assert re.search(sentence, said["content"]), f"{name}: {said['content']!r}"
        assert said["flags"] & 64
        assert _action_submits(sim) == submits, f"{name}: something was submitted"
    # …and the same modal, answered properly, still works.
    opened = await press(emu, upscale, "Custom Zoom", alice)
    await emu.wait_for(lambda: opened.modal is not None, timeout=10)
    await emu.submit_modal(opened, {"prompt": "a cat on a roof", "zoom": "1.8"}, user_id=alice)
    zoomed = await next_finish(emu, thread_id, 3)
    assert "custom zoom is ready" in zoomed["content"]


@pytest.mark.parametrize("profile", ["upstream"], indirect=True)
async def test_a_modal_opened_before_a_restart_is_answered(
    emu: DiscordEmulator, sim: MjProxySimulator, bots: Running
) -> None:
    first = await bots.start()
    alice = emu.add_user("alice")
    thread_id, result = await grid(emu, alice)
    await press(emu, result, "U1", alice)
    upscale = await next_finish(emu, thread_id, 2)
    opened = await press(emu, upscale, "Custom Zoom", alice)
    await emu.wait_for(lambda: opened.modal is not None, timeout=10)
    await first.stop()
    await bots.start()
    submits = _action_submits(sim)

    answer = await emu.submit_modal(opened, {"prompt": "a cat", "zoom": "1.5"}, user_id=alice)
    await emu.wait_for(lambda: bool(answer.ephemeral_messages), timeout=10)
    (said,) = answer.ephemeral_messages
    assert said["content"].startswith("This form has expired") and said["flags"] & 64
    assert answer.acked_at is not None and answer.acked_at - answer.dispatched_at < 3.0
    assert _action_submits(sim) == submits
    # The buttons themselves survive the restart: pressing again opens a fresh modal.
    again = await press(emu, upscale, "Custom Zoom", alice)
    await emu.wait_for(lambda: again.modal is not None, timeout=10)


def _command_puts(emu: DiscordEmulator) -> int:
    return sum(1 for r in emu.requests if r.method == "PUT" and r.route.endswith("/commands"))


async def test_commands_are_guild_only_and_synced_only_when_they_change(
    emu: DiscordEmulator, sim: MjProxySimulator, bots: Running, db_url: str
) -> None:
    first = await bots.start()
    assert _command_puts(emu) == 1
    assert emu.guild_commands and all(
        cmd["contexts"] == [0] and cmd["integration_types"] == [0] for cmd in emu.guild_commands
    ), [(c["name"], c.get("contexts"), c.get("integration_types")) for c in emu.guild_commands]
    await first.stop()

    second = await bots.start()  # same database, same commands: no sync
    assert _command_puts(emu) == 1
    await second.stop()

    # `python -m bot sync` syncs whatever the record says …
    await app_module.sync(make_settings(emu, sim, db_url))
    assert _command_puts(emu) == 2
    # … and `--guild` picks the server.
    other = make_settings(emu, sim, db_url).model_copy(update={"dev_guild_id": emu.guild_id})
    await app_module.sync(other)
    assert _command_puts(emu) == 3

    # A changed tree (another scope's record) syncs at start-up again.
    third = await bots.start(DEV_GUILD_ID="")
    assert _command_puts(emu) == 4
    assert third.bot is not None
    await third.stop()


async def test_python_m_bot_sync_beside_a_running_bot(
    emu: DiscordEmulator, sim: MjProxySimulator, bots: Running, db_url: str, tmp_path: Path
) -> None:
    """The operator's command, as a process, while the bot runs on the same database: it syncs
    (to the server given with --guild) and exits 0 without opening a gateway session."""
    await bots.start()
    puts, seen = _command_puts(emu), len(emu.requests)
    env = {**os.environ, **bot_env(emu, sim, db_url)}
    env.pop("DEV_GUILD_ID")  # --guild decides
    log = tmp_path / "sync.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "sync",
            "--guild",
            str(emu.guild_id),
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=out,
        )
        code = await asyncio.wait_for(proc.wait(), timeout=60)
    assert code == 0, log.read_text(errors="replace")
    assert _command_puts(emu) == puts + 1
    assert any(r.method == "PUT" and "/guilds/" in r.route for r in emu.requests[-5:]), (
        "the sync did not go to the guild"
    )
    # Logging in is enough to sync: the process never asked where the gateway is.
    assert not [r for r in emu.requests[seen:] if r.route.startswith("/gateway")]
    assert emu.gateway_connected
