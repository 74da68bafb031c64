"""The bot through gateway faults mid-job: a drop, op 7, a zombie connection, op 9 (both kinds).

Discord documents each (https://discord.com/developers/docs/events/gateway, "Resuming" and
"Sending Heartbeats"); the emulator plays them against the real bot, and a job running at that
moment must still finish, once, in its thread, with the bot's cache right afterwards.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import discord
import pytest

from bot.app import Application
from bot.sandbox.discord import DiscordEmulator
from bot.sandbox.mjproxy import MjProxySimulator
from tests.e2e.conftest import EDIT_INTERVAL, make_settings
from tests.e2e.test_followups import next_finish, press
from tests.e2e.test_imagine import finish_posts, wait_finish

THREADS = "/channels/{channel_id}/messages/{message_id}/threads"


async def _drop(emu: DiscordEmulator) -> None:
    await emu.drop_gateway()


async def _reconnect(emu: DiscordEmulator) -> None:
    await emu.request_reconnect()


async def _zombie(emu: DiscordEmulator) -> None:
    emu.zombie_gateway()


async def _invalid_resumable(emu: DiscordEmulator) -> None:
    await emu.invalidate_session(resumable=True)


async def _invalid_fresh(emu: DiscordEmulator) -> None:
    await emu.invalidate_session(resumable=False)


# fault -> (how to cause it, whether the bot resumes its session rather than identifying again)
FAULTS: dict[str, tuple[Callable[[DiscordEmulator], Awaitable[None]], bool]] = {
    "drop": (_drop, True),
    "op7-reconnect": (_reconnect, True),
    "zombie": (_zombie, True),
    "op9-resumable": (_invalid_resumable, True),
    "op9-not-resumable": (_invalid_fresh, False),
}


# discord.py notices a zombie only after ``heartbeat_timeout`` (default 60 s) of silence; the
# zombie cases shorten it to 1 s. It must stay above the 5 s discord.py waits before a re-IDENTIFY
# (``Client.before_identify_hook``): the socket is not read meanwhile, so a shorter timeout closes
# every new connection before it identifies (seen here: the bot never came back after op 9 false).
QUICK_ZOMBIE = 1.0


@pytest.fixture
async def start_app(
    emu: DiscordEmulator, sim: MjProxySimulator, db_url: str
) -> AsyncIterator[Callable[[float], Awaitable[Application]]]:
    started: list[Application] = []

    async def start(heartbeat_timeout: float) -> Application:
        emu.heartbeat_interval_ms = 250
        emu.identify_interval = 5.0  # Discord's IDENTIFY limit (max_concurrency 1 per 5 s)
        application = Application(
            make_settings(emu, sim, db_url),
            guild_ready_timeout=0.01,
            web_host="127.0.0.1",
            min_edit_interval=EDIT_INTERVAL,
            heartbeat_timeout=heartbeat_timeout,
        )
        await application.start()
        started.append(application)
        return application

    yield start
    for application in started:
        await application.stop()


@pytest.mark.parametrize("fault", list(FAULTS))
async def test_a_gateway_fault_mid_job_leaves_one_finished_job_in_its_thread(
    fault: str,
    emu: DiscordEmulator,
    sim: MjProxySimulator,
    start_app: Callable[[float], Awaitable[Application]],
) -> None:
    cause, resumes = FAULTS[fault]
    app = await start_app(QUICK_ZOMBIE if fault == "zombie" else 60.0)
    assert app.bot is not None and app.tracker is not None
    sim.auto_advance = False
    alice = emu.add_user("alice")
    hold = emu.hold("POST", THREADS)
    await emu.slash_command("imagine", {"prompt": "a fox in the snow"}, user_id=alice)
    await asyncio.wait_for(hold.arrived.wait(), timeout=15)
    (session,) = [s for s in emu.sessions.values() if not s.closed]
    identifies = len(emu.identify_payloads)

    await cause(emu)
    hold.release()  # the thread (and its THREAD_CREATE) now appears during the fault
    await emu.wait_for(lambda: emu.threads() != [], timeout=10, what="thread created")
    thread_id = int(emu.threads()[0]["id"])
    await emu.wait_for(lambda: len(sim.tasks) == 1, timeout=15, what="job submitted")
    (task_id,) = sim.tasks
    sim.advance(task_id)
    sim.complete(task_id)
    final = await wait_finish(emu, thread_id, timeout=30)

    await emu.wait_gateway(timeout=20)
    if resumes:
        assert len(emu.identify_payloads) == identifies and session.resumes == 1
    else:
        assert session.closed and len(emu.identify_payloads) == identifies + 1
    assert emu.identify_refusals == 0  # the bot waits out Discord's IDENTIFY limit
    if fault == "zombie":
        # The zombie went quiet before the thread existed: its THREAD_CREATE came by replay.
        replayed = {s for _, seqs in emu.replayed for s in seqs}
        names = {f["t"] for f in session.buffer if f["s"] in replayed}
        assert "THREAD_CREATE" in names
    bot = app.bot
    await emu.wait_for(
        lambda: isinstance(bot.get_channel(thread_id), discord.Thread),
        timeout=10,
        what="the bot's cache knows the thread",
    )
    tracker = app.tracker
    await emu.wait_for(lambda: tracker.tracked == 0, timeout=15, what="job no longer tracked")
    assert len(finish_posts(emu, thread_id)) == 1
    assert len(sim.requests_to("/mj/submit/imagine")) == 1
    assert emu.threads() == [t for t in emu.threads() if int(t["id"]) == thread_id]

    # The bot keeps serving after the fault: U1 on the result makes one upscale in the thread.
    sim.auto_advance = True
    await press(emu, final, "U1", alice)
    await next_finish(emu, thread_id, 2)


async def test_a_press_during_a_zombie_connection_is_replayed_and_answered_in_time(
    emu: DiscordEmulator,
    sim: MjProxySimulator,
    start_app: Callable[[float], Awaitable[Application]],
) -> None:
    await start_app(QUICK_ZOMBIE)
    alice = emu.add_user("alice")
    await emu.slash_command("imagine", {"prompt": "a heron"}, user_id=alice)
    await emu.wait_for(lambda: emu.threads() != [], timeout=15, what="thread created")
    thread_id = int(emu.threads()[0]["id"])
    final = await wait_finish(emu, thread_id, timeout=30)

    emu.zombie_gateway()
    pressed = await press(emu, final, "U1", alice)  # Discord keeps it for the session
    await emu.wait_for(lambda: pressed.acked_at is not None, timeout=10, what="press answered")
    # Replayed after a 1 s heartbeat_timeout: inside the 3-second window (with discord.py's
    # default 60 s the member would see "This interaction failed").
    assert pressed.acked_at - pressed.dispatched_at < emu.interaction_deadline
    assert any(pressed.id == int(f["d"]["id"]) for f in _replayed_interactions(emu))
    await next_finish(emu, thread_id, 2)


def _replayed_interactions(emu: DiscordEmulator) -> list[dict[str, object]]:
    out = []
    for session in emu.sessions.values():
        replayed = {s for sid, seqs in emu.replayed if sid == session.session_id for s in seqs}
        out += [f for f in session.buffer if f["s"] in replayed and f["t"] == "INTERACTION_CREATE"]
    return out
