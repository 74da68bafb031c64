"""The emulator's gateway against the real discord.py client: RESUME, op 7, op 9, zombies, shards.

Each behaviour is checked against Discord's gateway documentation
(https://discord.com/developers/docs/events/gateway — "Resuming", "Sending Heartbeats",
"Sharding") and against how discord.py 2.7.1 reacts (``DiscordWebSocket.received_message`` and
``poll_event`` in discord/gateway.py, ``Client.connect`` and ``AutoShardedClient`` in
discord/client.py and discord/shard.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands
from hypothesis import given
from hypothesis import strategies as st

from bot.sandbox.discord import DiscordEmulator, OpenApiValidator
from bot.sandbox.discord.gateway import Connection, Session, shard_for
from tests.integration.discord_helpers import running_bot, spec_state, sync_on_setup


@pytest.fixture
async def make_emu(
    spec_validator: OpenApiValidator | None,
) -> AsyncIterator[Callable[..., Awaitable[DiscordEmulator]]]:
    started: list[DiscordEmulator] = []

    async def factory(**kwargs: Any) -> DiscordEmulator:
        emulator = DiscordEmulator(spec_validator, **kwargs)
        await emulator.start()
        started.append(emulator)
        return emulator

    yield factory
    for emulator in started:
        await emulator.stop()
        assert spec_state(emulator) == {"unhandled": [], "violations": []}


class QuickBot(commands.Bot):
    """discord.py waits 5 s before every re-IDENTIFY; the documented hook skips it in tests."""

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        return None


class QuickShardedBot(commands.AutoShardedBot):
    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        return None


class Probe:
    """A bot with /probe (answers with the guild it ran in) that counts RESUMED events."""

    def __init__(self, *, sharded: bool = False, heartbeat_timeout: float = 60.0) -> None:
        cls = QuickShardedBot if sharded else QuickBot
        self.bot: commands.Bot = cls(
            command_prefix="!",
            intents=discord.Intents.default(),
            guild_ready_timeout=0.01,
            heartbeat_timeout=heartbeat_timeout,
        )
        self.resumed: list[int | None] = []
        self.answered: list[int | None] = []

        @app_commands.command(name="probe", description="Answer with the guild id")
        async def probe(interaction: discord.Interaction) -> None:
            self.answered.append(interaction.guild_id)
            await interaction.response.send_message(f"pong {interaction.guild_id}")

        self.bot.tree.add_command(probe)
        sync_on_setup(self.bot)

        async def on_resumed() -> None:
            self.resumed.append(None)

        async def on_shard_resumed(shard_id: int) -> None:
            self.resumed.append(shard_id)

        if sharded:  # AutoShardedClient dispatches on_shard_resumed(shard_id) as well
            self.bot.add_listener(on_shard_resumed, "on_shard_resumed")
        else:
            self.bot.add_listener(on_resumed, "on_resumed")


def only_session(emu: DiscordEmulator) -> Session:
    (session,) = [s for s in emu.sessions.values() if not s.closed]
    return session


def acked(inter: Any) -> Callable[[], bool]:
    return lambda: inter.acked_at is not None


def sent_events(conn: Connection) -> list[str]:
    return [f["t"] for f in conn.sent if f.get("op") == 0]


# -- RESUME --------------------------------------------------------------------------------------


async def test_drop_then_resume_replays_missed_events_in_order_then_resumed(
    make_emu: Callable[..., Awaitable[DiscordEmulator]], monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = await make_emu()
    probe = Probe()
    async with running_bot(emu, probe.bot, monkeypatch) as run:
        session = only_session(emu)
        ready = session.buffer[0]
        assert ready["t"] == "READY"
        # Discord: READY carries the URL to resume on; discord.py keeps it as ws.gateway.
        assert ready["d"]["resume_gateway_url"] == emu.resume_gateway_url
        assert ready["d"]["resume_gateway_url"] != emu.gateway_url
        seen = session.seq
        await emu.drop_gateway()
        # Published while no connection carries the session (nothing awaited: the client
        # cannot have resumed yet).
        missed = [emu.add_channel(f"missed-{i}") for i in range(3)]
        await run.wait(lambda: probe.resumed == [None], what="RESUMED reached discord.py")
        assert all(run.bot.get_channel(cid) is not None for cid in missed)
        assert emu.resume_payloads[-1]["session_id"] == session.session_id
        assert emu.resume_payloads[-1]["seq"] == seen
        assert emu.replayed == [(session.session_id, [seen + 1, seen + 2, seen + 3])]
        resumed_on = emu.connections[-1]
        assert resumed_on.path == "/resume-gateway"  # Discord: resume on resume_gateway_url
        assert sent_events(resumed_on) == ["CHANNEL_CREATE"] * 3 + ["RESUMED"]
        assert [f["s"] for f in resumed_on.sent if f.get("op") == 0] == [
            seen + 1,
            seen + 2,
            seen + 3,
            seen + 4,
        ]
        assert len(emu.identify_payloads) == 1  # resumed, not identified again
        alice = emu.add_user("alice")
        inter = await emu.slash_command("probe", user_id=alice)
        await run.wait(lambda: inter.acked_at is not None, what="answered after RESUME")


async def test_resume_of_a_timed_out_session_is_refused_and_the_client_identifies(
    make_emu: Callable[..., Awaitable[DiscordEmulator]], monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = await make_emu(session_timeout=0.0)
    probe = Probe()
    async with running_bot(emu, probe.bot, monkeypatch) as run:
        first = only_session(emu)
        await emu.drop_gateway()
        await run.wait(
            lambda: len(emu.identify_payloads) == 2 and emu.gateway_connected,
            what="IDENTIFY after INVALID_SESSION false",
        )
        # Discord: "It's possible your app won't reconnect in time to Resume, in which case it
        # will receive an Invalid Session (opcode 9) event" with d false.
        refused = emu.connections[1]
        assert [f for f in refused.sent if f.get("op") == 9] == [
            {"op": 9, "d": False, "s": None, "t": None}
        ]
        assert probe.resumed == []
        assert only_session(emu).session_id != first.session_id


async def test_op7_reconnect_makes_the_client_resume_on_the_resume_url(
    make_emu: Callable[..., Awaitable[DiscordEmulator]], monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = await make_emu()
    probe = Probe()
    async with running_bot(emu, probe.bot, monkeypatch) as run:
        session = only_session(emu)
        old = session.connection
        assert old is not None
        await emu.request_reconnect()
        added = emu.add_channel("during-op7")
        await run.wait(lambda: probe.resumed == [None], what="RESUMED after op 7")
        # discord.py closes with 4000 (not 1000/1001, which would end the session) and resumes.
        assert old.close_code == 4000
        assert emu.connections[-1].path == "/resume-gateway"
        assert run.bot.get_channel(added) is not None
        assert len(emu.identify_payloads) == 1


async def test_zombie_connection_is_closed_by_the_client_and_resumed(
    make_emu: Callable[..., Awaitable[DiscordEmulator]], monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = await make_emu(heartbeat_interval_ms=200)
    # discord.py gives up on a silent gateway after heartbeat_timeout (documented Client option).
    probe = Probe(heartbeat_timeout=1.0)
    async with running_bot(emu, probe.bot, monkeypatch) as run:
        session = only_session(emu)
        zombie = session.connection
        assert zombie is not None
        emu.zombie_gateway()
        quiet_from = len(zombie.sent)
        beats_before = sum(1 for f in zombie.received if f.get("op") == 1)
        added = emu.add_channel("while-zombie")
        assert run.bot.get_channel(added) is None
        started = time.monotonic()
        await run.wait(lambda: probe.resumed == [None], timeout=10, what="RESUMED after zombie")
        assert time.monotonic() - started >= 0.9  # only after heartbeat_timeout of silence
        assert sum(1 for f in zombie.received if f.get("op") == 1) > beats_before
        assert zombie.sent[quiet_from:] == []  # no ACK, no event on the zombie
        assert zombie.close_code not in (1000, 1001)  # Discord: any other code, then resume
        assert run.bot.get_channel(added) is not None
        assert emu.connections[-1].path == "/resume-gateway"
        assert len(emu.identify_payloads) == 1


# -- INVALID_SESSION -----------------------------------------------------------------------------


async def test_invalid_session_resumable_true_resumes(
    make_emu: Callable[..., Awaitable[DiscordEmulator]], monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = await make_emu()
    probe = Probe()
    async with running_bot(emu, probe.bot, monkeypatch) as run:
        session = only_session(emu)
        await emu.invalidate_session(resumable=True)
        added = emu.add_channel("kept")
        await run.wait(lambda: probe.resumed == [None], what="RESUMED after op 9 true")
        assert session.resumes == 1 and not session.closed
        assert run.bot.get_channel(added) is not None
        assert len(emu.identify_payloads) == 1


async def test_invalid_session_false_identifies_a_new_session_and_loses_the_gap(
    make_emu: Callable[..., Awaitable[DiscordEmulator]], monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = await make_emu()
    probe = Probe()
    async with running_bot(emu, probe.bot, monkeypatch) as run:
        first = only_session(emu)
        await emu.invalidate_session(resumable=False)
        events_before = len(emu.events)
        emu.add_channel("in-the-gap")  # no session serves the guild now: nobody receives it
        assert len(emu.events) == events_before
        await run.wait(
            lambda: len(emu.identify_payloads) == 2 and emu.gateway_connected,
            what="a fresh IDENTIFY after op 9 false",
        )
        assert first.closed
        second = only_session(emu)
        assert second.session_id != first.session_id
        assert probe.resumed == []
        # Discord: after op 9 false, connect again to the URL from Get Gateway, not the resume URL.
        assert emu.connections[-1].path == "/gateway"
        alice = emu.add_user("alice")
        inter = await emu.slash_command("probe", user_id=alice)
        await run.wait(lambda: inter.acked_at is not None, what="answered on the new session")


# -- RESUME edge cases on a raw websocket --------------------------------------------------------


async def _raw(emu: DiscordEmulator, path: str = "/gateway") -> tuple[Any, Any]:
    http = aiohttp.ClientSession()
    ws = await http.ws_connect(f"ws://127.0.0.1:{emu.port}{path}?v=10&encoding=json")
    hello = await ws.receive_json(timeout=5)
    assert hello["op"] == 10
    return http, ws


async def _identify(ws: Any, emu: DiscordEmulator, shard: list[int] | None = None) -> None:
    data: dict[str, Any] = {"token": emu.token, "properties": {}, "intents": 1}
    if shard is not None:
        data["shard"] = shard
    await ws.send_json({"op": 2, "d": data})


async def _until_dispatch(ws: Any, event: str) -> dict[str, Any]:
    while True:
        frame: dict[str, Any] = await ws.receive_json(timeout=5)
        if frame.get("t") == event:
            return frame


async def test_raw_resume_edges(make_emu: Callable[..., Awaitable[DiscordEmulator]]) -> None:
    emu = await make_emu(replay_limit=3)
    http, ws = await _raw(emu)
    try:
        await _identify(ws, emu)
        ready = await _until_dispatch(ws, "READY")
        sid = ready["d"]["session_id"]
        await ws.close(code=4000)  # any code but 1000/1001 keeps the session
        await emu.wait_for(lambda: emu.sessions[sid].connection is None, what="detached")

        cases = [
            ({"session_id": "nope", "seq": 1}, ("op9", False)),
            ({"session_id": sid, "seq": 99}, ("close", 4007)),  # ahead of the session
        ]
        for resume, expected in cases:
            _, ws2 = http, await http.ws_connect(f"ws://127.0.0.1:{emu.port}/resume-gateway")
            await ws2.receive_json(timeout=5)
            await ws2.send_json({"op": 6, "d": {"token": emu.token, **resume}})
            msg = await ws2.receive(timeout=5)
            if expected[0] == "op9":
                assert json.loads(msg.data) == {"op": 9, "d": expected[1], "s": None, "t": None}
            else:
                assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == expected[1]
            await ws2.close()
        # 4007 ended that session; a fresh one whose buffer overflowed cannot replay from 1.
        http2, ws3 = await _raw(emu)
        await _identify(ws3, emu)
        sid2 = (await _until_dispatch(ws3, "READY"))["d"]["session_id"]
        await ws3.close(code=4000)
        await emu.wait_for(lambda: emu.sessions[sid2].connection is None, what="detached")
        for i in range(5):
            emu.add_channel(f"overflow-{i}")  # seq 2 (GUILD_CREATE) .. 7; buffer keeps 5..7
        ws4 = await http2.ws_connect(f"ws://127.0.0.1:{emu.port}/resume-gateway")
        await ws4.receive_json(timeout=5)
        await ws4.send_json({"op": 6, "d": {"token": emu.token, "session_id": sid2, "seq": 2}})
        assert (await ws4.receive_json(timeout=5))["op"] == 9
        await ws4.close()
        await http2.close()
    finally:
        await ws.close()
        await http.close()


@pytest.mark.parametrize(("code", "ends"), [(1000, True), (1001, True), (4000, False)])
async def test_closing_with_1000_or_1001_ends_the_session(
    code: int, ends: bool, make_emu: Callable[..., Awaitable[DiscordEmulator]]
) -> None:
    # Discord: "When you close the connection to the gateway with close code 1000 or 1001,
    # your session will be invalidated"; any other code keeps it resumable. (discord.py 2.7.1's
    # Client.close() asks for 1000, but with poll_event waiting aiohttp puts poll_event's 4000
    # on the wire first — seen here as close code 4000.)
    emu = await make_emu()
    http, ws = await _raw(emu)
    try:
        await _identify(ws, emu)
        sid = (await _until_dispatch(ws, "READY"))["d"]["session_id"]
        await ws.close(code=code)
        await emu.wait_for(lambda: emu.sessions[sid].connection is None, what="detached")
        assert emu.sessions[sid].closed is ends
        assert emu.connections[0].close_code == code
    finally:
        await http.close()


async def test_raw_identify_shard_checks(
    make_emu: Callable[..., Awaitable[DiscordEmulator]],
) -> None:
    emu = await make_emu(max_guilds_per_shard=1)
    emu.add_guild("second")
    cases = [([2, 2], 4010), ([0, 0], 4010), ([0, 1], 4011)]
    for shard, code in cases:
        http, ws = await _raw(emu)
        try:
            await _identify(ws, emu, shard)
            msg = await ws.receive(timeout=5)
            assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == code, shard
        finally:
            await ws.close()
            await http.close()


async def test_sharding_required_stops_a_plain_client(
    make_emu: Callable[..., Awaitable[DiscordEmulator]], monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = await make_emu(max_guilds_per_shard=1)
    emu.add_guild("second")
    probe = Probe()
    with pytest.raises(discord.ConnectionClosed) as closed:
        async with running_bot(emu, probe.bot, monkeypatch) as run:
            await run.wait(lambda: False, timeout=5)  # pragma: no cover
    # discord.py treats 4011 as fatal (DiscordWebSocket._can_handle_close).
    assert closed.value.code == 4011


# -- shards --------------------------------------------------------------------------------------


@given(
    guild_ids=st.lists(st.integers(min_value=1 << 22, max_value=(1 << 63) - 1), max_size=20),
    count=st.integers(min_value=1, max_value=16),
)
def test_every_guild_event_lands_on_exactly_one_shard(guild_ids: list[int], count: int) -> None:
    sessions = [Session(f"s{i}", (i, count), {}, 10) for i in range(count)]
    for guild_id in guild_ids:
        owners = [s.shard[0] for s in sessions if s.serves(guild_id)]
        assert owners == [(guild_id >> 22) % count] == [shard_for(guild_id, count)]
    # Discord: events without a guild_id go to shard 0 only.
    assert [s.shard[0] for s in sessions if s.serves(None)] == [0]


@pytest.mark.parametrize("count", [2, 3])
async def test_auto_sharded_bot_gets_each_guilds_events_on_its_shard(
    count: int,
    make_emu: Callable[..., Awaitable[DiscordEmulator]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    emu = await make_emu(shards=count)
    guilds = {shard_for(emu.guild_id, count): emu.guild_id}
    for index in range(count):
        if index not in guilds:
            guilds[index] = emu.add_guild(f"server {index}", shard=(index, count))
    assert sorted(shard_for(g, count) for g in guilds.values()) == list(range(count))
    probe = Probe(sharded=True)
    async with running_bot(emu, probe.bot, monkeypatch) as run:
        # AutoShardedClient asks GET /gateway/bot for the shard count and the gateway URL.
        assert any(r.method == "GET" and r.route == "/gateway/bot" for r in emu.requests)
        assert sorted(tuple(p["shard"]) for p in emu.identify_payloads) == [
            (i, count) for i in range(count)
        ]
        by_shard = {s.shard[0]: s for s in emu.sessions.values()}
        for index, session in by_shard.items():
            ready = session.buffer[0]["d"]
            assert ready["shard"] == [index, count]
            assert [g["id"] for g in ready["guilds"]] == [str(guilds[index])]
            created = [f["d"]["id"] for f in session.buffer if f["t"] == "GUILD_CREATE"]
            assert created == [str(guilds[index])]
        assert sorted(g.id for g in run.bot.guilds) == sorted(guilds.values())
        assert {g.id: g.shard_id for g in run.bot.guilds} == {g: i for i, g in guilds.items()}

        alice = emu.add_user("alice")
        for index, guild_id in guilds.items():
            if guild_id != emu.guild_id:
                emu.join_guild(alice, guild_id)
            channel = emu.general_channels[guild_id]
            inter = await emu.slash_command("probe", user_id=alice, channel_id=channel)
            await run.wait(acked(inter), what=f"answered on shard {index}")
        assert sorted(probe.answered) == sorted(guilds.values())
        for index, session in by_shard.items():
            for frame in session.buffer:
                if frame["t"] in ("INTERACTION_CREATE", "MESSAGE_CREATE", "GUILD_MEMBER_ADD"):
                    assert frame["d"]["guild_id"] == str(guilds[index]), (index, frame["t"])
            assert any(f["t"] == "INTERACTION_CREATE" for f in session.buffer)

        # One shard drops: only it resumes, and the others keep their connection.
        others = {i: s.connection for i, s in by_shard.items() if i != count - 1}
        await emu.drop_gateway(shard=count - 1)
        added = emu.add_channel("after-drop", guild_id=guilds[count - 1])
        await run.wait(lambda: probe.resumed == [count - 1], what="that shard resumed")
        assert run.bot.get_channel(added) is not None
        assert {i: s.connection for i, s in by_shard.items() if i != count - 1} == others


# -- latency -------------------------------------------------------------------------------------


async def test_gateway_latency_delays_dispatches_and_counts_against_the_window(
    make_emu: Callable[..., Awaitable[DiscordEmulator]], monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = await make_emu(interaction_deadline=1.5)
    probe = Probe()
    alice = emu.add_user("alice")
    async with running_bot(emu, probe.bot, monkeypatch) as run:
        received: list[float] = []

        async def on_socket_event_type(event: str) -> None:
            if event == "INTERACTION_CREATE":
                received.append(time.monotonic())

        run.bot.add_listener(on_socket_event_type)
        emu.latency_ms = 200
        inter = await emu.slash_command("probe", user_id=alice)
        await run.wait(lambda: inter.acked_at is not None, what="answered in time")
        assert received[0] - inter.dispatched_at >= 0.2
        assert inter.acked_at - inter.dispatched_at >= 0.2  # type: ignore[operator]

        # The bot answers at once, but the event reaches it after the window closed: 10062.
        emu.latency_ms = 1600
        late = await emu.slash_command("probe", user_id=alice)
        await run.wait(lambda: len(received) == 2, what="late event delivered")

        def late_callbacks() -> list[Any]:
            return [
                r
                for r in emu.requests
                if r.path.startswith(f"/interactions/{late.id}/") and r.status != 0
            ]

        await run.wait(lambda: late_callbacks() != [], what="late callback attempted")
        assert received[1] - late.dispatched_at >= 1.6
        assert [(r.status, r.response["code"]) for r in late_callbacks()] == [(404, 10062)]
        assert late.acked_at is None


# -- intents and protocol checks ----------------------------------------------------------------


@pytest.mark.parametrize("members", [False, True])
async def test_identify_intents_decide_which_events_arrive(
    members: bool,
    make_emu: Callable[..., Awaitable[DiscordEmulator]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    emu = await make_emu(privileged_intents=1 << 1)  # GUILD_MEMBERS enabled for the app
    intents = discord.Intents.default()
    intents.members = members
    bot = QuickBot(command_prefix="!", intents=intents, guild_ready_timeout=0.01)
    async with running_bot(emu, bot, monkeypatch) as run:
        alice = emu.add_user("alice")
        channel = emu.add_channel("always")  # GUILDS: in discord.py's default intents
        await run.wait(lambda: run.bot.get_channel(channel) is not None, what="CHANNEL_CREATE")
        session = only_session(emu)
        # Discord: "If you do not specify an intent when identifying, you will not receive
        # any of the Gateway events associated with that intent" (GUILD_MEMBER_ADD: members).
        got = [f["t"] for f in session.buffer]
        assert ("GUILD_MEMBER_ADD" in got) is members
        guild = run.bot.get_guild(emu.guild_id)
        assert guild is not None
        if members:
            await run.wait(lambda: guild.get_member(alice) is not None, what="member cached")


async def test_a_privileged_intent_not_enabled_closes_4014(
    make_emu: Callable[..., Awaitable[DiscordEmulator]], monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = await make_emu()  # no privileged intent enabled for the app
    bot = QuickBot(command_prefix="!", intents=discord.Intents.all(), guild_ready_timeout=0.01)
    with pytest.raises(discord.PrivilegedIntentsRequired):
        async with running_bot(emu, bot, monkeypatch) as run:
            await run.wait(lambda: False, timeout=5)  # pragma: no cover
    assert emu.connections[0].close_code == 4014


async def test_server_heartbeat_request_is_answered_at_once(
    make_emu: Callable[..., Awaitable[DiscordEmulator]], monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = await make_emu()  # 41.25 s interval: a prompt beat can only be the answer to op 1
    probe = Probe()
    async with running_bot(emu, probe.bot, monkeypatch) as run:
        conn = only_session(emu).connection
        assert conn is not None
        beats = sum(1 for f in conn.received if f.get("op") == 1)
        emu.request_heartbeat()
        await run.wait(
            lambda: sum(1 for f in conn.received if f.get("op") == 1) == beats + 1,
            timeout=5,
            what="heartbeat sent on request",
        )


async def test_raw_protocol_violations_close_with_discords_codes(
    make_emu: Callable[..., Awaitable[DiscordEmulator]],
) -> None:
    emu = await make_emu()
    oversized = {"op": 1, "d": None, "pad": "x" * 4100}
    cases: list[tuple[str, list[dict[str, Any]], int]] = [
        ("unknown opcode", [{"op": 42, "d": None}], 4001),
        ("presence before IDENTIFY", [{"op": 3, "d": {"status": "online"}}], 4003),
        ("payload over 4096 bytes", [oversized], 4002),
        ("121 frames in a minute", [{"op": 1, "d": None}] * 121, 4008),
    ]
    for label, frames, code in cases:
        http, ws = await _raw(emu)
        try:
            for frame in frames:
                await ws.send_json(frame)
            while True:
                msg = await ws.receive(timeout=5)
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
            assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == code, label
        finally:
            await ws.close()
            await http.close()


@given(
    pushed=st.integers(min_value=0, max_value=40),
    limit=st.integers(min_value=1, max_value=20),
    data=st.data(),
)
def test_resume_replays_exactly_what_the_client_missed(
    pushed: int, limit: int, data: st.DataObject
) -> None:
    session = Session("s", (0, 1), {}, limit)
    for i in range(pushed):
        session.push("EVENT", {"i": i})
    seen = data.draw(st.integers(min_value=0, max_value=pushed), label="client seq")
    missed = session.missed_since(seen)
    oldest_kept = pushed - min(pushed, limit) + 1  # the buffer keeps the last `limit` frames
    if seen == pushed or seen + 1 >= oldest_kept:
        assert missed is not None
        assert [f["s"] for f in missed] == list(range(seen + 1, pushed + 1))
    else:
        assert missed is None  # too far back: Discord answers INVALID_SESSION false


async def test_resume_takes_the_session_over_from_a_connection_still_open(
    make_emu: Callable[..., Awaitable[DiscordEmulator]],
) -> None:
    emu = await make_emu()
    http, old = await _raw(emu)
    try:
        await _identify(old, emu)
        ready = await _until_dispatch(old, "READY")
        await _until_dispatch(old, "GUILD_CREATE")
        new = await http.ws_connect(f"ws://127.0.0.1:{emu.port}/resume-gateway")
        await new.receive_json(timeout=5)
        resume = {"token": emu.token, "session_id": ready["d"]["session_id"], "seq": 2}
        await new.send_json({"op": 6, "d": resume})
        assert (await _until_dispatch(new, "RESUMED"))["s"] == 3
        closed = await old.receive(timeout=5)
        assert closed.type == aiohttp.WSMsgType.CLOSE and closed.data == 4000
        added = emu.add_channel("after-takeover")
        created = await _until_dispatch(new, "CHANNEL_CREATE")
        assert created["d"]["id"] == str(added) and created["s"] == 4
        await new.close()
    finally:
        await old.close()
        await http.close()


@pytest.mark.parametrize("presences", [False, True])
async def test_guild_create_lists_members_only_with_the_presences_intent(
    presences: bool,
    make_emu: Callable[..., Awaitable[DiscordEmulator]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    emu = await make_emu(privileged_intents=1 << 8)
    alice = emu.add_user("alice")
    intents = discord.Intents.default()
    intents.presences = presences
    bot = QuickBot(command_prefix="!", intents=intents, guild_ready_timeout=0.01)
    async with running_bot(emu, bot, monkeypatch):
        (created,) = [f["d"] for f in only_session(emu).buffer if f["t"] == "GUILD_CREATE"]
        listed = {int(m["user"]["id"]) for m in created["members"]}
        # Discord: without GUILD_PRESENCES the members "will only contain your bot and users
        # in voice channels"; member_count still counts everyone.
        assert listed == (
            {emu.bot_user_id, emu.owner_user_id, alice} if presences else {emu.bot_user_id}
        )
        assert created["member_count"] == 3


async def test_identify_faster_than_max_concurrency_allows_is_refused_with_op9(
    make_emu: Callable[..., Awaitable[DiscordEmulator]],
) -> None:
    emu = await make_emu(identify_interval=5.0)
    http, first = await _raw(emu)
    try:
        await _identify(first, emu)
        await _until_dispatch(first, "READY")
        second = await http.ws_connect(f"ws://127.0.0.1:{emu.port}/gateway")
        await second.receive_json(timeout=5)
        await _identify(second, emu)
        # Discord: IDENTIFYs over max_concurrency per 5 s get Invalid Session (opcode 9).
        assert await second.receive_json(timeout=5) == {"op": 9, "d": False, "s": None, "t": None}
        assert emu.identify_refusals == 1
        assert len([s for s in emu.sessions.values() if not s.closed]) == 1
        await second.close()
    finally:
        await first.close()
        await http.close()
