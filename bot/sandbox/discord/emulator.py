"""DiscordEmulator: a loopback Discord (REST v10, gateway, CDN) for the real discord.py client.

One world: a primary guild (``guild_id``) with a ``#general`` text channel, the bot as a member
with a managed role, more guilds on demand (``add_guild``), and helpers to act as members (slash
commands, button presses, modal submits). State lives here; the REST routes are in ``rest.py``
and ``interactions.py``, the request pipeline (recording, OpenAPI validation, fault injection, the
404 catch-all) in ``pipeline.py`` and the websocket sessions in ``gateway.py``. See
``/work/shared/docs/discord-emulation.md`` for the design.

Options shared by the REST and gateway sides:

* ``latency_ms`` — one-way network delay in milliseconds. The gateway sends every frame that
  long after the event happened (so an INTERACTION_CREATE reaches the bot ``latency_ms`` into its
  3-second window); the REST pipeline applies the same figure to requests and responses. Tests
  may change it at any time (``emu.latency_ms = 150``).
* ``shards`` — the shard count ``GET /gateway/bot`` recommends (what ``AutoShardedClient`` uses).

Gateway fault switches (each takes ``shard=`` to pick one shard, default all connections):
``drop_gateway`` (network drop, resumable), ``request_reconnect`` (op 7), ``zombie_gateway``
(ACKs and events withheld until the client reconnects), ``invalidate_session(resumable=...)``
(op 9). Events published while a session has no healthy connection are kept and replayed on
RESUME.
"""

from __future__ import annotations

import asyncio
import copy
import secrets
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit

from aiohttp import web

from bot.sandbox.discord import interactions, models, pipeline, rest
from bot.sandbox.discord.errors import DiscordHTTPError, rate_limited
from bot.sandbox.discord.gateway import (
    HEARTBEAT_INTERVAL_MS,
    PRESENCES_INTENT,
    Connection,
    Session,
    gateway_handler,
)
from bot.sandbox.discord.interactions import Interaction
from bot.sandbox.discord.limits import MAX_REQUEST_BYTES, Limits
from bot.sandbox.discord.messages import make_attachment, public_view
from bot.sandbox.discord.models import PERMISSIONS
from bot.sandbox.discord.openapi import OpenApiValidator
from bot.sandbox.discord.threads import active_threads

_STATE_KEY = web.AppKey("emulator", object)


class DiscordEmulator:
    """A faithful-enough Discord on 127.0.0.1 for tests and the offline demo."""

    def __init__(
        self,
        validator: OpenApiValidator | None = None,
        *,
        interaction_deadline: float = 3.0,
        token_ttl: float = 900.0,
        rate_limits: bool = True,
        rest_delay: float = 0.0,
        boost_tier: int = 0,
        latency_ms: float = 0.0,
        shards: int = 1,
        heartbeat_interval_ms: int = HEARTBEAT_INTERVAL_MS,
        session_timeout: float = 180.0,
        replay_limit: int = 1000,
        max_guilds_per_shard: int = 2500,
        privileged_intents: int = 0,
        identify_interval: float = 0.0,
    ) -> None:
        self.validator = validator
        # Rate limits, upload limits, REST round trips, thread caps: see limits.py. A REST round
        # trip is also at least twice the one-way `latency_ms` (see pipeline.py).
        self.limits = Limits(rate_limits=rate_limits, rest_delay=rest_delay, boost_tier=boost_tier)
        self.latency_ms = latency_ms
        self.shards = shards
        self.heartbeat_interval_ms = heartbeat_interval_ms
        # Discord keeps a dropped session resumable "a few minutes" and publishes no buffer size.
        self.session_timeout = session_timeout
        self.replay_limit = replay_limit
        self.max_guilds_per_shard = max_guilds_per_shard  # Discord: 2,500 per shard
        # The privileged intents enabled for the app (Developer Portal); others close with 4014.
        self.privileged_intents = privileged_intents
        # Discord lets max_concurrency (1 here) IDENTIFYs through per 5 s and answers the rest
        # with op 9. Off (0) by default: test clients skip discord.py's 5 s wait on purpose.
        self.identify_interval = identify_interval
        self.identify_refusals = 0
        self._last_identify: dict[int, float] = {}
        self.interaction_deadline = interaction_deadline
        self.token_ttl = token_ttl
        self.snowflakes = models.Snowflakes()
        self.created_at = models.iso_now()

        self.application_id = self.snowflakes.next()
        self.bot_user_id = self.application_id  # Discord: the bot user id equals the app id
        self.owner_user_id = self.snowflakes.next()
        self.token = f"{secrets.token_urlsafe(18)}.{secrets.token_urlsafe(4)}.emulated"

        self.users: dict[int, dict[str, Any]] = {}
        # guild id -> user id -> {"roles": [...], "joined_at"}; ``members`` is the primary guild's.
        self.guild_members: dict[int, dict[int, dict[str, Any]]] = {}
        self.guild_ids: list[int] = []
        self.guild_names: dict[int, str] = {}
        # Languages: a server's "preferred locale" (GUILD_CREATE, each interaction's
        # guild_locale) and each member's client language (each interaction's locale).
        self.guild_locales: dict[int, str] = {}
        self.user_locales: dict[int, str] = {}
        self.general_channels: dict[int, int] = {}
        self.roles: dict[int, dict[str, Any]] = {}
        self.role_guild: dict[int, int] = {}
        self.bot_roles: dict[int, int] = {}  # guild id -> the bot's managed role there
        self.channels: dict[int, dict[str, Any]] = {}
        self.deleted_channels: set[int] = set()
        self.bot_denies: dict[int, int] = {}
        self.stored: dict[int, dict[str, Any]] = {}  # message id -> stored message
        self.channel_log: dict[int, list[int]] = {}
        self.nonces: dict[tuple[int, int, str], tuple[int, float]] = {}
        self.cdn: dict[str, tuple[bytes, str | None]] = {}
        self.global_commands: list[dict[str, Any]] = []
        self.guild_commands: list[dict[str, Any]] = []
        self.interactions: dict[int, Interaction] = {}
        self.interactions_by_token: dict[str, Interaction] = {}

        self.requests: list[pipeline.RecordedRequest] = []
        self.unhandled: list[pipeline.RecordedRequest] = []
        self.violations: list[str] = []
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.identify_payloads: list[dict[str, Any]] = []
        self.resume_payloads: list[dict[str, Any]] = []
        self.replayed: list[tuple[str, list[int]]] = []  # (session id, replayed sequence numbers)
        self.sessions: dict[str, Session] = {}
        self.connections: list[Connection] = []
        self.faults: list[pipeline.Fault] = []
        self.holds: list[pipeline.Hold] = []
        self.resume_attempts = 0
        self.gateway_connections = 0
        self.open_sockets: set[web.WebSocketResponse] = set()

        self._runner: web.AppRunner | None = None
        self.port = 0
        self._setup_guild()

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        app = web.Application(client_max_size=MAX_REQUEST_BYTES)
        app[_STATE_KEY] = self
        for path in ("/gateway", "/gateway/", "/resume-gateway", "/resume-gateway/"):
            app.router.add_get(path, self._gateway_handler)
        for prefix in ("", "/media"):
            for kind in ("/attachments", "/ephemeral-attachments"):
                app.router.add_get(prefix + kind + "/{tail:.*}", self._cdn_handler)
        app.router.add_route("*", "/api/v10/{tail:.*}", self._api_handler)
        app.router.add_route("*", "/{tail:.*}", self._unhandled_handler)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        self.host = host
        self.port = sockets[0].getsockname()[1] if sockets else port

    async def stop(self) -> None:
        for ws in list(self.open_sockets):
            await ws.close(code=1001)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base_url(self) -> str:
        return self.base_url + "/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    @property
    def resume_gateway_url(self) -> str:
        """READY's ``resume_gateway_url``: another address, as Discord's is another host."""
        return f"ws://127.0.0.1:{self.port}/resume-gateway"

    @property
    def channel_id(self) -> int:
        return self.general_channels[self.guild_id]

    @property
    def gateway_connected(self) -> bool:
        """Whether some session has a healthy connection carrying live events."""
        return any(self._healthy(s) for s in self.sessions.values())

    # -- guild setup ------------------------------------------------------------------------

    def _setup_guild(self) -> None:
        self.users[self.bot_user_id] = models.user_payload(self.bot_user_id, "mjcord", bot=True)
        self.users[self.owner_user_id] = models.user_payload(self.owner_user_id, "owner")
        self.guild_id = self._create_guild("mjcord test guild", self.snowflakes.next())
        self.members = self.guild_members[self.guild_id]
        self.bot_role_id = self.bot_roles[self.guild_id]

    def _create_guild(self, name: str, guild_id: int) -> int:
        g = guild_id
        self.guild_ids.append(g)
        self.guild_names[g] = name
        self.guild_members[g] = {}
        self.roles[g] = models.role_payload(g, "@everyone", models.DEFAULT_MEMBER_PERMISSIONS)
        self.role_guild[g] = g
        bot_role = self.snowflakes.next()
        self.roles[bot_role] = models.role_payload(
            bot_role,
            "mjcord",
            models.DEFAULT_BOT_PERMISSIONS,
            position=1,
            managed=True,
            bot_id=self.bot_user_id,
        )
        self.role_guild[bot_role] = g
        self.bot_roles[g] = bot_role
        members = self.guild_members[g]
        members[self.bot_user_id] = {"roles": [bot_role], "joined_at": self.created_at}
        members[self.owner_user_id] = {"roles": [], "joined_at": self.created_at}
        self.general_channels[g] = self.add_channel("general", guild_id=g)
        return g

    def add_guild(self, name: str, *, shard: tuple[int, int] | None = None) -> int:
        """Another server in this world, the bot (and the owner) already in it; returns its id.

        ``shard=(i, n)`` picks an id whose events Discord routes to shard ``i`` of ``n``
        (``(guild_id >> 22) % n == i``): real guild ids spread over time, ids made in one
        millisecond here would all land on one shard. Sessions serving it get GUILD_CREATE, as
        when a bot is added to a server.
        """
        guild_id = self.snowflakes.next()
        if shard is not None:
            index, count = shard
            stamp = guild_id >> 22
            stamp += (index - stamp) % count
            guild_id = (stamp << 22) | (guild_id & ((1 << 22) - 1))
        self._create_guild(name, guild_id)
        for session in self.serving(guild_id):
            if session.subscribed("GUILD_CREATE", guild_id):
                session.push("GUILD_CREATE", self.guild_create_payload(guild_id, session=session))
        return guild_id

    def guild_of(self, channel_id: int | None) -> int:
        """The guild a channel (or thread) belongs to; the primary guild for unknown ids."""
        channel = self.channels.get(channel_id) if channel_id is not None else None
        if channel is None or channel.get("guild_id") is None:
            return self.guild_id
        return int(channel["guild_id"])

    def add_user(
        self,
        username: str,
        *,
        roles: tuple[int, ...] | list[int] = (),
        permissions: int | None = None,
        guild_id: int | None = None,
    ) -> int:
        """Add a guild member. ``permissions`` gives them a personal role with exactly those."""
        uid = self.snowflakes.next()
        self.users[uid] = models.user_payload(uid, username)
        self.join_guild(uid, guild_id or self.guild_id, roles=roles, permissions=permissions)
        return uid

    def join_guild(
        self,
        user_id: int,
        guild_id: int,
        *,
        roles: tuple[int, ...] | list[int] = (),
        permissions: int | None = None,
    ) -> None:
        """Make an existing user a member of another guild too (GUILD_MEMBER_ADD)."""
        member_roles = list(roles)
        if permissions is not None:
            name = f"{self.users[user_id]['username']}-perms"
            member_roles.append(self.add_role(name, permissions, guild_id=guild_id))
        self.guild_members[guild_id][user_id] = {
            "roles": member_roles,
            "joined_at": models.iso_now(),
        }
        member = self.member_payload(user_id, guild_id=guild_id) or {}
        self._emit_soon("GUILD_MEMBER_ADD", {**member, "guild_id": str(guild_id)})

    def add_role(
        self, name: str, permissions: int, *, mentionable: bool = False, guild_id: int | None = None
    ) -> int:
        gid = guild_id or self.guild_id
        rid = self.snowflakes.next()
        position = sum(1 for r in self.role_guild.values() if r == gid)
        self.roles[rid] = models.role_payload(
            rid, name, permissions, position=position, mentionable=mentionable
        )
        self.role_guild[rid] = gid
        self._emit_soon("GUILD_ROLE_CREATE", {"guild_id": str(gid), "role": self.roles[rid]})
        return rid

    def add_channel(self, name: str, *, guild_id: int | None = None) -> int:
        gid = guild_id or self.guild_id
        cid = self.snowflakes.next()
        position = sum(
            1
            for c in self.channels.values()
            if c["type"] == models.GUILD_TEXT and c["guild_id"] == str(gid)
        )
        self.channels[cid] = models.text_channel_payload(
            cid, gid, name, position=position, overwrites=[]
        )
        self.channel_log[cid] = []
        self._emit_soon("CHANNEL_CREATE", self.channels[cid])
        return cid

    def add_attachment(
        self, filename: str, data: bytes, content_type: str | None
    ) -> dict[str, Any]:
        """An attachment a member uploads with a slash command (served from the ephemeral CDN)."""
        return make_attachment(
            self,
            channel_id=self.channel_id,
            filename=filename,
            data=data,
            content_type=content_type,
            ephemeral=True,
        )

    # -- payloads ---------------------------------------------------------------------------

    def user_payload(self, user_id: int) -> dict[str, Any] | None:
        user = self.users.get(user_id)
        return dict(user) if user is not None else None

    def member_payload(
        self, user_id: int, *, with_user: bool = True, guild_id: int | None = None
    ) -> dict[str, Any] | None:
        member = self.guild_members[guild_id or self.guild_id].get(user_id)
        user = self.user_payload(user_id)
        if member is None or user is None:
            return None
        data = models.member_payload(user, member["roles"], member["joined_at"])
        if not with_user:
            del data["user"]
        return data

    def guild_member_payloads(self, guild_id: int) -> list[dict[str, Any]]:
        members = [
            self.member_payload(uid, guild_id=guild_id) for uid in self.guild_members[guild_id]
        ]
        return [m for m in members if m is not None]

    def guild_create_payload(
        self, guild_id: int | None = None, *, session: Session | None = None
    ) -> dict[str, Any]:
        """GUILD_CREATE as ``session`` receives it (None: as a session with every intent)."""
        gid = guild_id or self.guild_id
        mine = [c for c in self.channels.values() if c.get("guild_id") == str(gid)]
        channels = [c for c in mine if c["type"] not in models.THREAD_TYPES]
        threads = active_threads(self, gid)  # Discord syncs only the active ones
        everyone = self.guild_member_payloads(gid)
        members = everyone
        if session is not None and not session.intents & PRESENCES_INTENT:
            # Discord: without GUILD_PRESENCES, "members and presences returned in this event
            # will only contain your bot and users in voice channels".
            members = [m for m in everyone if m["user"]["id"] == str(self.bot_user_id)]
        return {
            "id": str(gid),
            "name": self.guild_names[gid],
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(self.owner_user_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 1,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": self.limits.boost_tier,
            "premium_subscription_count": 0,
            "premium_progress_bar_enabled": False,
            "preferred_locale": self.guild_locales.get(gid, "en-US"),
            "system_channel_id": str(self.general_channels[gid]),
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "max_members": 500000,
            "max_video_channel_users": 25,
            "max_stage_video_channel_users": 50,
            "application_id": None,
            "features": [],
            "roles": [r for rid, r in self.roles.items() if self.role_guild.get(rid) == gid],
            "emojis": [],
            "stickers": [],
            "soundboard_sounds": [],
            "channels": channels,
            "threads": threads,
            "members": members,
            "member_count": len(everyone),
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "large": False,
            "lazy": True,
            "unavailable": False,
            "joined_at": self.created_at,
            "nsfw": False,
            "incidents_data": None,
            "version": int(time.time() * 1000),
        }

    # -- permissions ------------------------------------------------------------------------

    def permissions_for(self, user_id: int, channel_id: int | None = None) -> int:
        """Discord's permission computation: roles, then the channel's overwrites."""
        if user_id == self.owner_user_id:
            return models.ALL_PERMISSIONS
        guild_id = self.guild_of(channel_id)
        member = self.guild_members[guild_id].get(user_id)
        if member is None:
            return 0
        perms = int(self.roles[guild_id]["permissions"])
        for rid in member["roles"]:
            if rid in self.roles:
                perms |= int(self.roles[rid]["permissions"])
        if perms & PERMISSIONS["ADMINISTRATOR"]:
            return models.ALL_PERMISSIONS
        if channel_id is None:
            return perms
        channel = self.channels.get(channel_id)
        base = channel
        if channel is not None and channel["type"] in models.THREAD_TYPES:
            base = self.channels.get(int(channel["parent_id"]))
        if base is None:
            return perms
        overwrites = {o["id"]: o for o in base.get("permission_overwrites", [])}
        everyone = overwrites.get(str(guild_id))
        if everyone:
            perms = (perms & ~int(everyone["deny"])) | int(everyone["allow"])
        allow = deny = 0
        for rid in member["roles"]:
            o = overwrites.get(str(rid))
            if o:
                allow |= int(o["allow"])
                deny |= int(o["deny"])
        perms = (perms & ~deny) | allow
        own = overwrites.get(str(user_id))
        if own:
            perms = (perms & ~int(own["deny"])) | int(own["allow"])
        if user_id == self.bot_user_id:
            perms &= ~self.bot_denies.get(channel_id, 0)
        return perms

    def has_permission(self, user_id: int, channel_id: int, bits: int) -> bool:
        return self.permissions_for(user_id, channel_id) & bits == bits

    def require_bot_permission(self, channel_id: int, *names: str) -> None:
        bits = 0
        for name in names:
            bits |= PERMISSIONS[name]
        if not self.has_permission(self.bot_user_id, channel_id, bits):
            raise DiscordHTTPError(403, 50013, "Missing Permissions")

    # -- channels and messages --------------------------------------------------------------

    def channel(self, channel_id: int) -> dict[str, Any] | None:
        data = self.channels.get(channel_id)
        return dict(data) if data is not None else None

    def threads(self) -> list[dict[str, Any]]:
        return [dict(c) for c in self.channels.values() if c["type"] in models.THREAD_TYPES]

    def message(self, message_id: int) -> dict[str, Any] | None:
        msg = self.stored.get(message_id)
        return public_view(msg) if msg is not None and not msg.get("_deleted") else None

    def messages(self, channel_id: int, *, include_ephemeral: bool = False) -> list[dict[str, Any]]:
        """The channel transcript, oldest first, as ``GET /channels/{id}/messages`` shows it."""
        out = []
        for mid in self.channel_log.get(channel_id, []):
            msg = self.stored[mid]
            if msg.get("_deleted"):
                continue
            if msg["flags"] & models.FLAG_EPHEMERAL and not include_ephemeral:
                continue
            out.append(public_view(msg))
        return out

    def _cdn_entry(self, url: str) -> tuple[bytes, str | None] | None:
        path = unquote(urlsplit(url).path).removeprefix("/media")
        return self.cdn.get(path)

    def cdn_bytes(self, url: str) -> bytes | None:
        """The bytes behind an attachment URL (``url`` or ``proxy_url``), or None."""
        entry = self._cdn_entry(url)
        return entry[0] if entry is not None else None

    async def _gateway_handler(self, request: web.Request) -> web.WebSocketResponse:
        return await gateway_handler(self, request)

    async def _api_handler(self, request: web.Request) -> web.Response:
        return await pipeline.handle(self, request)

    async def _unhandled_handler(self, request: web.Request) -> web.Response:
        return await pipeline.unhandled(self, request)

    async def _cdn_handler(self, request: web.Request) -> web.Response:
        entry = self._cdn_entry(str(request.rel_url))
        if entry is None:
            return web.Response(status=404, text="Not Found")
        data, ctype = entry
        return web.Response(
            body=data, headers={"Content-Type": ctype or "application/octet-stream"}
        )

    # -- gateway ----------------------------------------------------------------------------

    def ready_payload(self, session: Session, guilds: list[int]) -> dict[str, Any]:
        """READY for a new session: its guilds (unavailable until GUILD_CREATE), its shard."""
        return {
            "v": 10,
            "user": {
                **(self.user_payload(self.bot_user_id) or {}),
                "verified": True,
                "mfa_enabled": False,
            },
            "guilds": [{"id": str(g), "unavailable": True} for g in guilds],
            "session_id": session.session_id,
            "session_type": "normal",
            "resume_gateway_url": self.resume_gateway_url,
            "shard": list(session.shard),
            "application": {"id": str(self.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "user_settings": {},
            "auth": {},
            "_trace": ['["mjcord-emulator"]'],
        }

    def identify_allowed(self, shard_id: int, max_concurrency: int = 1) -> bool:
        """Whether an IDENTIFY for this shard fits its rate-limit bucket right now."""
        key = shard_id % max_concurrency  # Discord: rate_limit_key = shard_id % max_concurrency
        now = time.monotonic()
        last = self._last_identify.get(key)
        if self.identify_interval > 0 and last is not None and now - last < self.identify_interval:
            return False
        self._last_identify[key] = now
        return True

    def bot_gateway_payload(self) -> dict[str, Any]:
        """``GET /gateway/bot``: the URL, the recommended shard count, the session start limit."""
        # Discord: 1,000 IDENTIFYs per 24 h (RESUMEs don't count); max_concurrency 1 for small bots.
        limit = {
            "total": 1000,
            "remaining": max(0, 1000 - len(self.identify_payloads)),
            "reset_after": 14400000,
            "max_concurrency": 1,
        }
        return {"url": self.gateway_url, "shards": self.shards, "session_start_limit": limit}

    def publish(self, event: str, data: dict[str, Any]) -> None:
        """Route an event to every open session whose shard serves its guild and whose
        IDENTIFY intents ask for it.

        Sessions without a healthy connection keep it for RESUME; the data is copied now, as
        the event is what happened at this moment.
        """
        guild = event_guild(event, data)
        targets = [
            s
            for s in self.sessions.values()
            if not s.expired(self.session_timeout)
            and s.serves(guild)
            and s.subscribed(event, guild)
        ]
        if not targets:
            return  # no session: the bot is offline and never sees it, as live
        frozen = copy.deepcopy(data)
        for session in targets:
            session.push(event, frozen)
        self.events.append((event, frozen))

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send a gateway event to the sessions serving its guild (kept for RESUME if dropped)."""
        self.publish(event, data)

    def _emit_soon(self, event: str, data: dict[str, Any]) -> None:
        # Sync helpers (add_user, add_channel) notify the sessions at once; before any IDENTIFY
        # there is nobody to notify.
        self.publish(event, data)

    @staticmethod
    def _healthy(session: Session) -> bool:
        conn = session.connection
        return conn is not None and conn.ready and conn.open and not conn.zombie

    def serving(self, guild_id: int | None = None) -> list[Session]:
        """Open sessions that carry a guild's events (default: the primary guild)."""
        gid = guild_id or self.guild_id
        return [
            s
            for s in self.sessions.values()
            if not s.expired(self.session_timeout) and s.serves(gid)
        ]

    async def wait_gateway(self, timeout: float = 10.0, *, guild_id: int | None = None) -> None:
        """Wait until a healthy connection carries the guild's events (default: primary)."""
        gid = guild_id or self.guild_id
        await self.wait_for(
            lambda: any(self._healthy(s) for s in self.serving(gid)),
            timeout=timeout,
            what=f"gateway session for guild {gid}",
        )

    async def _wait_online(self, guild_id: int | None, timeout: float = 10.0) -> None:
        # A member acts whenever the bot has a session (connected or not: a dropped one keeps
        # the interaction for RESUME, as Discord does); only before any IDENTIFY is there nobody.
        gid = guild_id or self.guild_id
        await self.wait_for(
            lambda: bool(self.serving(gid)), timeout=timeout, what=f"a session for guild {gid}"
        )

    def _connections(self, shard: int | None) -> list[Connection]:
        out = []
        for session in self.sessions.values():
            conn = session.connection
            if session.closed or conn is None or not conn.open:
                continue
            if shard is None or session.shard[0] == shard:
                out.append(conn)
        if not out:
            raise RuntimeError(f"no gateway connection to act on (shard={shard})")
        return out

    async def drop_gateway(self, *, shard: int | None = None) -> None:
        """Close the websocket as a network fault would (4000); the client resumes."""
        for conn in self._connections(shard):
            conn.ready = False
            await conn.close(4000, b"Unknown error")

    async def request_reconnect(self, *, shard: int | None = None) -> None:
        """Send op 7 RECONNECT: the client should reconnect and resume."""
        for conn in self._connections(shard):
            conn.ready = False
            conn.send({"op": 7, "d": None, "s": None, "t": None})

    def request_heartbeat(self, *, shard: int | None = None) -> None:
        """Send op 1: Discord may ask for a heartbeat, which the client must send at once."""
        for conn in self._connections(shard):
            conn.send({"op": 1, "d": None, "s": None, "t": None})

    def zombie_gateway(self, *, shard: int | None = None) -> None:
        """Go quiet on the connection: heartbeat ACKs withheld, events kept for RESUME only."""
        for conn in self._connections(shard):
            conn.ready = False
            conn.zombie = True

    async def invalidate_session(self, *, resumable: bool, shard: int | None = None) -> None:
        """Send op 9 INVALID_SESSION; ``resumable=False`` ends the session (client identifies)."""
        for conn in self._connections(shard):
            conn.ready = False
            if not resumable and conn.session is not None:
                conn.session.closed = True
            conn.send({"op": 9, "d": resumable, "s": None, "t": None})

    # -- fault switches ---------------------------------------------------------------------

    def deny_permission(self, channel_id: int, permission: str) -> None:
        """Take a permission from the bot in one channel (as a member overwrite would)."""
        bit = PERMISSIONS[permission]
        self.bot_denies[channel_id] = self.bot_denies.get(channel_id, 0) | bit
        self._sync_bot_overwrite(channel_id)

    def grant_permission(self, channel_id: int, permission: str) -> None:
        bit = PERMISSIONS[permission]
        self.bot_denies[channel_id] = self.bot_denies.get(channel_id, 0) & ~bit
        self._sync_bot_overwrite(channel_id)

    def _sync_bot_overwrite(self, channel_id: int) -> None:
        channel = self.channels.get(channel_id)
        if channel is None or channel["type"] in models.THREAD_TYPES:
            return  # threads have no overwrites; the deny is applied by permissions_for
        deny = self.bot_denies.get(channel_id, 0)
        rest_ow = [o for o in channel["permission_overwrites"] if o["id"] != str(self.bot_user_id)]
        if deny:
            rest_ow.append(
                {"id": str(self.bot_user_id), "type": 1, "allow": "0", "deny": str(deny)}
            )
        channel["permission_overwrites"] = rest_ow
        self._emit_soon("CHANNEL_UPDATE", dict(channel))

    def fail_next(
        self,
        method: str,
        route_template: str,
        status: int,
        code: int = 0,
        message: str = "",
        count: int = 1,
        *,
        retry_after: float = 0.05,
        is_global: bool = False,
        scope: str | None = None,
    ) -> None:
        """Answer the next ``count`` matching requests with an error (429s carry retry_after)."""
        route = route_template.removeprefix("/api/v10")
        if not any(r.method == method.upper() and r.template == route for r in self.routes):
            # A typo here would make the fault silently never fire.
            raise ValueError(f"the emulator has no route {method.upper()} {route}")
        if status == 429:
            error = rate_limited(retry_after, is_global=is_global, code=code, scope=scope)
            if message:
                error.message = message
        else:
            error = DiscordHTTPError(status, code, message or _default_message(status))
        self.faults.append(pipeline.Fault(method.upper(), route, error, count))

    def hold(
        self, method: str, route_template: str, *, when: Callable[[Any], bool] | None = None
    ) -> pipeline.Hold:
        """Park the next matching request (whose JSON body satisfies ``when``) until released."""
        route = route_template.removeprefix("/api/v10")
        if not any(r.method == method.upper() and r.template == route for r in self.routes):
            raise ValueError(f"the emulator has no route {method.upper()} {route}")
        hold = pipeline.Hold(method.upper(), route, when)
        self.holds.append(hold)
        return hold

    async def delete_channel(self, channel_id: int) -> None:
        """Delete a channel (and its threads) as a moderator would; emits the gateway events."""
        channel = self.channels.pop(channel_id, None)
        if channel is None:
            raise KeyError(f"unknown channel {channel_id}")
        self.deleted_channels.add(channel_id)
        if channel["type"] in models.THREAD_TYPES:
            await self.dispatch("THREAD_DELETE", _thread_delete(channel))
            return
        for thread in [c for c in self.channels.values() if c.get("parent_id") == str(channel_id)]:
            self.channels.pop(int(thread["id"]))
            self.deleted_channels.add(int(thread["id"]))
            await self.dispatch("THREAD_DELETE", _thread_delete(thread))
        await self.dispatch("CHANNEL_DELETE", channel)

    # -- acting as members ------------------------------------------------------------------

    def command(self, name: str) -> tuple[dict[str, Any], bool]:
        """The synced command (guild commands first) and whether it is a guild command."""
        for cmd in self.guild_commands:
            if cmd["name"] == name:
                return cmd, True
        for cmd in self.global_commands:
            if cmd["name"] == name:
                return cmd, False
        synced = [c["name"] for c in self.guild_commands + self.global_commands]
        raise LookupError(f"/{name} was never synced to the emulator (synced: {synced})")

    async def slash_command(
        self,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        user_id: int,
        channel_id: int | None = None,
    ) -> Interaction:
        await self._wait_online(self.guild_of(channel_id or self.channel_id))
        payload = interactions.build_command_interaction(
            self, name, options or {}, user_id=user_id, channel_id=channel_id or self.channel_id
        )
        return await self._dispatch_interaction(payload)

    async def press_button(
        self, message_id: int, custom_id: str, *, user_id: int, values: list[str] | None = None
    ) -> Interaction:
        stored = self.stored.get(message_id)
        await self._wait_online(self.guild_of(int(stored["channel_id"]) if stored else None))
        payload = interactions.build_component_interaction(
            self, message_id, custom_id, user_id=user_id, values=values
        )
        return await self._dispatch_interaction(payload)

    async def submit_modal(
        self, source: Interaction, values: dict[str, str], *, user_id: int | None = None
    ) -> Interaction:
        """Submit the modal the bot opened (callback type 9) in answer to ``source``."""
        await self._wait_online(self.guild_of(source.channel_id))
        payload = interactions.build_modal_submit(self, source, values, user_id=user_id)
        return await self._dispatch_interaction(payload, trigger=source)

    async def _dispatch_interaction(
        self, payload: dict[str, Any], *, trigger: Interaction | None = None
    ) -> Interaction:
        record = Interaction.from_payload(self, payload)
        record.trigger = trigger
        self.interactions[record.id] = record
        self.interactions_by_token[record.token] = record
        record.dispatched_at = time.monotonic()
        await self.dispatch("INTERACTION_CREATE", payload)
        return record

    async def wait_for(
        self, predicate: Callable[[], bool], timeout: float = 10.0, *, what: str | None = None
    ) -> None:
        """Poll ``predicate`` until true; raise TimeoutError naming it otherwise."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() >= deadline:
                label = what or getattr(predicate, "__name__", repr(predicate))
                raise TimeoutError(
                    f"condition {label!s} not met within {timeout:.1f}s; last requests: "
                    + ", ".join(f"{r.method} {r.route} -> {r.status}" for r in self.requests[-5:])
                )
            await asyncio.sleep(0.01)

    # -- router -----------------------------------------------------------------------------

    routes = rest.ROUTES + interactions.ROUTES


def event_guild(event: str, data: dict[str, Any]) -> int | None:
    """The guild an event belongs to, for shard routing (None: shard 0 only, as DMs)."""
    gid = data.get("guild_id")
    if gid is None and event in ("GUILD_CREATE", "GUILD_UPDATE", "GUILD_DELETE"):
        gid = data.get("id")
    return int(gid) if gid is not None else None


def _thread_delete(thread: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": thread["id"],
        "guild_id": thread["guild_id"],
        "parent_id": thread["parent_id"],
        "type": thread["type"],
    }


def _default_message(status: int) -> str:
    return {
        500: "500: Internal Server Error",
        502: "502: Bad Gateway",
        503: "503: Service Unavailable",
    }.get(status, f"{status}: error")
