"""The gateway: sessions that outlive connections, RESUME with replay, op 7/9, zombies, shards.

What Discord documents and this module models (https://discord.com/developers/docs/events/gateway,
"Connections", "Resuming", "Sharding"; close codes from /docs/topics/opcodes-and-status-codes):

* A **session** starts at IDENTIFY (READY carries ``session_id`` and ``resume_gateway_url``) and
  outlives its websocket: when a connection drops with any close code but 1000/1001, "the
  session will remain active and timeout after a few minutes". Every dispatch gets the session's
  next sequence number and is kept in a per-session replay buffer, whether or not a connection
  is attached to carry it.
* **RESUME** (op 6, ``{token, session_id, seq}``) on a new connection replays "the missed events
  in order, finishing with a Resumed event"; an unknown, closed or timed-out session gets
  INVALID_SESSION ``d: false``; a sequence number ahead of the session closes with 4007.
* **op 7 RECONNECT** asks the client to reconnect and resume; **op 9 INVALID_SESSION** with
  ``d: true`` lets it resume, ``d: false`` makes it identify again.
* A **zombie** connection: the server goes quiet (heartbeat ACKs withheld, dispatches held in
  the buffer). Discord tells clients to reconnect and resume when an ACK is missing; discord.py
  2.7.1 closes with 4000 once nothing at all arrived for ``heartbeat_timeout`` seconds
  (``KeepAliveHandler.run`` checks ``_last_recv``; ``DiscordWebSocket.poll_event`` receives with
  that timeout), then resumes.
* **Sharding**: IDENTIFY's ``shard: [i, n]`` routes each guild's events to the session with
  ``(guild_id >> 22) % n == i``; events without a guild go to shard 0 only; ``i >= n`` closes
  with 4010, and a session that would hold more than ``emu.max_guilds_per_shard`` guilds with
  4011. Sessions need not be distinct: every session whose ``[i, n]`` matches gets the event.
* ``emu.latency_ms`` delays every frame the emulator sends by that much (one way), in order.

Frames are plain JSON text (discord.py decompresses only binary frames, so ``compress`` in the
query is ignored).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

if TYPE_CHECKING:
    from bot.sandbox.discord.emulator import DiscordEmulator

log = logging.getLogger(__name__)

OP_DISPATCH, OP_HEARTBEAT, OP_IDENTIFY, OP_RESUME, OP_RECONNECT = 0, 1, 2, 6, 7
OP_REQUEST_MEMBERS, OP_INVALID_SESSION, OP_HELLO, OP_HEARTBEAT_ACK = 8, 9, 10, 11
HEARTBEAT_INTERVAL_MS = 41250
# Close codes (Discord: "Gateway Close Event Codes").
CLOSE_UNKNOWN_ERROR, CLOSE_UNKNOWN_OPCODE, CLOSE_DECODE_ERROR = 4000, 4001, 4002
CLOSE_NOT_AUTHENTICATED, CLOSE_AUTH_FAILED, CLOSE_ALREADY_AUTHENTICATED = 4003, 4004, 4005
CLOSE_INVALID_SEQ, CLOSE_RATE_LIMITED = 4007, 4008
CLOSE_INVALID_SHARD, CLOSE_SHARDING_REQUIRED, CLOSE_DISALLOWED_INTENTS = 4010, 4011, 4014
# GUILD_MEMBERS, GUILD_PRESENCES, MESSAGE_CONTENT: an app must enable them in its settings.
PRESENCES_INTENT = 1 << 8
PRIVILEGED_INTENTS = (1 << 1) | PRESENCES_INTENT | (1 << 15)
# Discord: payloads an app sends "must not exceed 4096 bytes" (else 4002), and at most 120
# events per connection every 60 seconds (else the connection is closed; 4008).
MAX_PAYLOAD_BYTES, SEND_LIMIT, SEND_WINDOW = 4096, 120, 60.0
# Opcodes an app may send: heartbeat, identify, presence, voice state, resume, request members,
# request soundboard sounds. Only heartbeat, identify and resume before a session exists.
_CLIENT_OPS = frozenset({1, 2, 3, 4, 6, 8, 31})
_BEFORE_SESSION_OPS = frozenset({1, 2, 6})
# Closing with these ends the session (Discord: "Initiating a Disconnect").
SESSION_ENDING_CLOSES = (1000, 1001)


# Discord's "List of Intents": the events each intent bit subscribes to. Events not listed
# (READY, RESUMED, INTERACTION_CREATE, GUILD_MEMBERS_CHUNK, …) are always sent.
_GUILD_INTENTS: dict[int, tuple[str, ...]] = {
    1 << 0: (
        "GUILD_CREATE",
        "GUILD_UPDATE",
        "GUILD_DELETE",
        "GUILD_ROLE_CREATE",
        "GUILD_ROLE_UPDATE",
        "GUILD_ROLE_DELETE",
        "CHANNEL_CREATE",
        "CHANNEL_UPDATE",
        "CHANNEL_DELETE",
        "CHANNEL_PINS_UPDATE",
        "THREAD_CREATE",
        "THREAD_UPDATE",
        "THREAD_DELETE",
        "THREAD_LIST_SYNC",
        "THREAD_MEMBER_UPDATE",
    ),
    1 << 1: ("GUILD_MEMBER_ADD", "GUILD_MEMBER_UPDATE", "GUILD_MEMBER_REMOVE"),
    1 << 9: ("MESSAGE_CREATE", "MESSAGE_UPDATE", "MESSAGE_DELETE", "MESSAGE_DELETE_BULK"),
    1 << 10: (
        "MESSAGE_REACTION_ADD",
        "MESSAGE_REACTION_REMOVE",
        "MESSAGE_REACTION_REMOVE_ALL",
        "MESSAGE_REACTION_REMOVE_EMOJI",
    ),
    1 << 11: ("TYPING_START",),
}
# Without a guild the same message events need the DIRECT_MESSAGE_* intents instead.
_DM_INTENT = {1 << 9: 1 << 12, 1 << 10: 1 << 13, 1 << 11: 1 << 14}
EVENT_INTENT: dict[str, int] = {e: bit for bit, events in _GUILD_INTENTS.items() for e in events}


def required_intent(event: str, guild_id: int | None) -> int | None:
    """The intent bit a session needs to receive this event (None: sent regardless)."""
    bit = EVENT_INTENT.get(event)
    if bit is not None and guild_id is None:
        return _DM_INTENT.get(bit, bit)
    return bit


def shard_for(guild_id: int, num_shards: int) -> int:
    """Discord's sharding formula: which shard of ``num_shards`` carries a guild's events."""
    return (guild_id >> 22) % num_shards


@dataclass
class Session:
    """One gateway session: its shard, sequence numbers and the frames a RESUME may replay."""

    session_id: str
    shard: tuple[int, int]
    identify: dict[str, Any]
    replay_limit: int
    seq: int = 0
    buffer: deque[dict[str, Any]] = field(default_factory=deque)
    connection: Connection | None = None
    closed: bool = False  # ended by a 1000/1001 close or INVALID_SESSION false: not resumable
    disconnected_at: float | None = None
    resumes: int = 0

    def serves(self, guild_id: int | None) -> bool:
        """Whether events of this guild (None: no guild, e.g. DMs) belong on this session."""
        index, count = self.shard
        if guild_id is None:
            return index == 0
        return shard_for(guild_id, count) == index

    @property
    def intents(self) -> int:
        return int(self.identify.get("intents") or 0)

    def subscribed(self, event: str, guild_id: int | None) -> bool:
        """Whether IDENTIFY's ``intents`` ask for this event (Discord sends nothing else)."""
        bit = required_intent(event, guild_id)
        return bit is None or bool(self.intents & bit)

    def expired(self, timeout: float) -> bool:
        if self.closed:
            return True
        return (
            self.disconnected_at is not None and time.monotonic() - self.disconnected_at > timeout
        )

    def push(self, event: str, data: dict[str, Any]) -> dict[str, Any]:
        """Number a dispatch, keep it for replay and send it if a healthy connection carries us."""
        self.seq += 1
        frame = {"op": OP_DISPATCH, "t": event, "s": self.seq, "d": data}
        self.buffer.append(frame)
        while len(self.buffer) > self.replay_limit:
            self.buffer.popleft()
        if self.connection is not None and not self.connection.zombie:
            self.connection.send(frame)
        return frame

    def missed_since(self, seq: int) -> list[dict[str, Any]] | None:
        """The buffered frames after ``seq``, or None when the buffer no longer reaches back."""
        if seq == self.seq:
            return []
        if not self.buffer or self.buffer[0]["s"] > seq + 1:
            return None
        return [f for f in self.buffer if f["s"] > seq]


class Connection:
    """One websocket. Sends through an outbox so ``latency_ms`` delays frames without reordering."""

    def __init__(self, emu: DiscordEmulator, ws: web.WebSocketResponse, path: str) -> None:
        self.emu = emu
        self.ws = ws
        self.path = path  # /gateway or /resume-gateway: which URL the client used
        self.session: Session | None = None
        self.zombie = False
        self.ready = False  # READY or RESUMED sent: the connection carries live events
        self.received: list[dict[str, Any]] = []
        self.sent: list[dict[str, Any]] = []
        self.close_code: int | None = None  # who closed first decides: our code, else theirs
        self._server_close: int | None = None
        self._recent: deque[float] = deque()  # when the client's last frames arrived
        self._outbox: asyncio.Queue[tuple[float, dict[str, Any]]] = asyncio.Queue()
        self._pump: asyncio.Task[None] | None = None

    @property
    def open(self) -> bool:
        return not self.ws.closed

    def send(self, frame: dict[str, Any]) -> None:
        """Queue a frame; it leaves ``emu.latency_ms`` from now, after every earlier frame."""
        due = time.monotonic() + self.emu.latency_ms / 1000.0
        self._outbox.put_nowait((due, frame))

    async def _drain(self) -> None:
        while True:
            due, frame = await self._outbox.get()
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if self.ws.closed:
                continue
            try:
                await self.ws.send_str(json.dumps(frame))
            except ConnectionError:
                continue
            self.sent.append(frame)

    async def close(self, code: int, message: bytes = b"") -> None:
        if self._server_close is None:
            self._server_close = code
        await self.ws.close(code=code, message=message)

    async def run(self) -> None:
        self._pump = asyncio.create_task(self._drain())
        try:
            interval = self.emu.heartbeat_interval_ms
            self.send({"op": OP_HELLO, "d": {"heartbeat_interval": interval}, "s": None, "t": None})
            async for msg in self.ws:
                if msg.type is not WSMsgType.TEXT:
                    if msg.type is WSMsgType.ERROR:
                        log.debug("gateway websocket error: %s", self.ws.exception())
                    continue
                if len(msg.data.encode()) > MAX_PAYLOAD_BYTES:
                    await self.close(CLOSE_DECODE_ERROR, b"Error while decoding payload.")
                    break
                if self._over_send_limit():
                    await self.close(CLOSE_RATE_LIMITED, b"Rate limited.")
                    break
                try:
                    frame = json.loads(msg.data)
                except ValueError:
                    await self.close(CLOSE_DECODE_ERROR, b"Error while decoding payload.")
                    break
                self.received.append(frame)
                await self._handle(frame)
        finally:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
            # aiohttp reports the code of the peer's answering close frame after our own close.
            own = self._server_close
            self.close_code = own if own is not None else self.ws.close_code
            self._detach()

    def _over_send_limit(self) -> bool:
        now = time.monotonic()
        self._recent.append(now)
        while self._recent and now - self._recent[0] > SEND_WINDOW:
            self._recent.popleft()
        return len(self._recent) > SEND_LIMIT

    def _detach(self) -> None:
        session = self.session
        if session is None or session.connection is not self:
            return
        session.connection = None
        session.disconnected_at = time.monotonic()
        if self.close_code in SESSION_ENDING_CLOSES:
            session.closed = True  # closed with 1000/1001: Discord ends the session

    async def _handle(self, frame: dict[str, Any]) -> None:
        op = frame.get("op")
        data = frame.get("d")
        if op not in _CLIENT_OPS:
            await self.close(CLOSE_UNKNOWN_OPCODE, b"Unknown opcode.")
            return
        if self.session is None and op not in _BEFORE_SESSION_OPS:
            await self.close(CLOSE_NOT_AUTHENTICATED, b"Not authenticated.")
            return
        if op == OP_HEARTBEAT:
            if not self.zombie:
                self.send({"op": OP_HEARTBEAT_ACK})
        elif op == OP_IDENTIFY:
            await self._identify(data)
        elif op == OP_RESUME:
            await self._resume(data)
        elif op == OP_REQUEST_MEMBERS:
            self._members_chunk(data or {})
        # presence, voice state and soundboard requests: accepted, nothing to do

    async def _identify(self, data: Any) -> None:
        emu = self.emu
        if not isinstance(data, dict) or data.get("token") != emu.token:
            await self.close(CLOSE_AUTH_FAILED, b"Authentication failed.")
            return
        if self.session is not None:
            await self.close(CLOSE_ALREADY_AUTHENTICATED, b"Already authenticated.")
            return
        emu.identify_payloads.append(data)
        asked = int(data.get("intents") or 0)
        if asked & PRIVILEGED_INTENTS & ~emu.privileged_intents:
            await self.close(CLOSE_DISALLOWED_INTENTS, b"Disallowed intent(s).")
            return
        raw = data.get("shard") or [0, 1]
        index, count = int(raw[0]), int(raw[1])
        if count < 1 or not 0 <= index < count:
            await self.close(CLOSE_INVALID_SHARD, b"Invalid shard.")
            return
        if not emu.identify_allowed(index):
            # Discord: over the max_concurrency IDENTIFYs per 5 s, "the Gateway will respond
            # with an Invalid Session (opcode 9)".
            emu.identify_refusals += 1
            self.send({"op": OP_INVALID_SESSION, "d": False, "s": None, "t": None})
            return
        session = Session(
            session_id=secrets.token_hex(16),
            shard=(index, count),
            identify=data,
            replay_limit=emu.replay_limit,
        )
        guilds = [g for g in emu.guild_ids if session.serves(g)]
        if len(guilds) > emu.max_guilds_per_shard:
            await self.close(CLOSE_SHARDING_REQUIRED, b"Sharding required.")
            return
        emu.sessions[session.session_id] = session
        self.session = session
        session.connection = self
        session.push("READY", emu.ready_payload(session, guilds))
        self.ready = True
        for guild_id in guilds:
            session.push("GUILD_CREATE", emu.guild_create_payload(guild_id, session=session))

    async def _resume(self, data: Any) -> None:
        emu = self.emu
        emu.resume_attempts += 1
        if not isinstance(data, dict) or data.get("token") != emu.token:
            await self.close(CLOSE_AUTH_FAILED, b"Authentication failed.")
            return
        if self.session is not None:
            await self.close(CLOSE_ALREADY_AUTHENTICATED, b"Already authenticated.")
            return
        emu.resume_payloads.append(data)
        session = emu.sessions.get(str(data.get("session_id")))
        if session is None or session.expired(emu.session_timeout):
            if session is not None:
                session.closed = True  # timed out: gone for good
            self.send({"op": OP_INVALID_SESSION, "d": False, "s": None, "t": None})
            return
        seq = int(data.get("seq") or 0)
        if seq > session.seq:
            session.closed = True
            await self.close(CLOSE_INVALID_SEQ, b"Invalid seq.")
            return
        missed = session.missed_since(seq)
        if missed is None:
            session.closed = True
            self.send({"op": OP_INVALID_SESSION, "d": False, "s": None, "t": None})
            return
        previous = session.connection
        if previous is not None and previous is not self:
            previous.session = None  # a newer connection took the session over
            await previous.close(CLOSE_UNKNOWN_ERROR)
        self.session = session
        session.connection = self
        session.disconnected_at = None
        session.resumes += 1
        for frame in missed:
            self.send(frame)
        emu.replayed.append((session.session_id, [f["s"] for f in missed]))
        session.push("RESUMED", {"_trace": ['["mjcord-emulator-resume"]']})
        self.ready = True

    def _members_chunk(self, data: dict[str, Any]) -> None:
        assert self.session is not None
        guild_id = int(data.get("guild_id") or self.emu.guild_id)
        chunk = {
            "guild_id": str(guild_id),
            "members": self.emu.guild_member_payloads(guild_id),
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [],
        }
        if data.get("nonce") is not None:
            chunk["nonce"] = data["nonce"]
        self.session.push("GUILD_MEMBERS_CHUNK", chunk)


async def gateway_handler(emu: DiscordEmulator, request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(max_msg_size=0)
    await ws.prepare(request)
    connection = Connection(emu, ws, request.path.rstrip("/"))
    emu.connections.append(connection)
    emu.gateway_connections += 1
    emu.open_sockets.add(ws)
    try:
        await connection.run()
    finally:
        emu.open_sockets.discard(ws)
    return ws
