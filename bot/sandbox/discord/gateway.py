"""The gateway websocket: HELLO, heartbeats, IDENTIFY → READY + GUILD_CREATE, RESUME, dispatch.

Frames are plain JSON text (discord.py decompresses only binary frames, so ``compress`` in the
query is ignored). RESUME is always refused with INVALID_SESSION ``false``: the emulator keeps
no replay buffer, and discord.py then re-IDENTIFies — the same path Discord forces when a
session expired.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

if TYPE_CHECKING:
    from bot.sandbox.discord.emulator import DiscordEmulator

log = logging.getLogger(__name__)

OP_DISPATCH, OP_HEARTBEAT, OP_IDENTIFY, OP_RESUME = 0, 1, 2, 6
OP_REQUEST_MEMBERS, OP_INVALID_SESSION, OP_HELLO, OP_HEARTBEAT_ACK = 8, 9, 10, 11
HEARTBEAT_INTERVAL_MS = 41250


class GatewaySession:
    """One websocket connection; becomes the emulator's live session after IDENTIFY."""

    def __init__(self, emu: DiscordEmulator, ws: web.WebSocketResponse) -> None:
        self.emu = emu
        self.ws = ws
        self.seq = 0
        self.session_id: str | None = None
        self.identified = asyncio.Event()
        self._send_lock = asyncio.Lock()
        self.received: list[dict[str, Any]] = []

    async def send(self, payload: dict[str, Any]) -> None:
        if self.ws.closed:
            return
        await self.ws.send_str(json.dumps(payload))

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        # The lock keeps sequence numbers in wire order when REST handlers dispatch concurrently.
        async with self._send_lock:
            if self.ws.closed:
                return
            self.seq += 1
            await self.send({"op": OP_DISPATCH, "t": event, "s": self.seq, "d": data})
            self.emu.events.append((event, data))

    async def run(self) -> None:
        await self.send(
            {
                "op": OP_HELLO,
                "d": {"heartbeat_interval": HEARTBEAT_INTERVAL_MS},
                "s": None,
                "t": None,
            }
        )
        async for msg in self.ws:
            if msg.type is not WSMsgType.TEXT:
                if msg.type is WSMsgType.ERROR:
                    log.debug("gateway websocket error: %s", self.ws.exception())
                continue
            try:
                frame = json.loads(msg.data)
            except ValueError:
                await self.ws.close(code=4002, message=b"Error while decoding payload.")
                break
            self.received.append(frame)
            await self._handle(frame)

    async def _handle(self, frame: dict[str, Any]) -> None:
        op = frame.get("op")
        data = frame.get("d")
        if op == OP_HEARTBEAT:
            await self.send({"op": OP_HEARTBEAT_ACK})
        elif op == OP_IDENTIFY:
            if not isinstance(data, dict) or data.get("token") != self.emu.token:
                await self.ws.close(code=4004, message=b"Authentication failed.")
                return
            if self.session_id is not None:
                await self.ws.close(code=4005, message=b"Already authenticated.")
                return
            await self._identify(data)
        elif op == OP_RESUME:
            self.emu.resume_attempts += 1
            await self.send({"op": OP_INVALID_SESSION, "d": False, "s": None, "t": None})
        elif op == OP_REQUEST_MEMBERS:
            await self._members_chunk(data or {})
        elif op in (3, 4):  # presence / voice state updates: accepted, nothing to do
            return
        else:
            log.warning("gateway: unknown opcode %r", op)

    async def _identify(self, data: dict[str, Any]) -> None:
        self.session_id = secrets.token_hex(16)
        self.emu.identify_payloads.append(data)
        self.emu.attach_session(self)
        emu = self.emu
        ready = {
            "v": 10,
            "user": {
                **(emu.user_payload(emu.bot_user_id) or {}),
                "verified": True,
                "mfa_enabled": False,
            },
            "guilds": [{"id": str(emu.guild_id), "unavailable": True}],
            "session_id": self.session_id,
            "session_type": "normal",
            "resume_gateway_url": emu.gateway_url,
            "shard": [0, 1],
            "application": {"id": str(emu.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "user_settings": {},
            "auth": {},
            "_trace": ['["mjcord-emulator"]'],
        }
        await self.dispatch("READY", ready)
        await self.dispatch("GUILD_CREATE", emu.guild_create_payload())
        self.identified.set()

    async def _members_chunk(self, data: dict[str, Any]) -> None:
        members = [self.emu.member_payload(uid) for uid in self.emu.members]
        chunk = {
            "guild_id": str(self.emu.guild_id),
            "members": [m for m in members if m is not None],
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [],
        }
        if data.get("nonce") is not None:
            chunk["nonce"] = data["nonce"]
        await self.dispatch("GUILD_MEMBERS_CHUNK", chunk)


async def gateway_handler(emu: DiscordEmulator, request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(max_msg_size=0)
    await ws.prepare(request)
    session = GatewaySession(emu, ws)
    emu.gateway_connections += 1
    emu.open_sockets.add(ws)
    try:
        await session.run()
    finally:
        emu.open_sockets.discard(ws)
        emu.detach_session(session)
    return ws
