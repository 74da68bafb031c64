"""DiscordEmulator: a loopback Discord (REST v10, gateway, CDN) for the real discord.py client.

One guild with a ``#general`` text channel, the bot as a member with a managed role, and
helpers to act as members (slash commands, button presses, modal submits). State lives here;
the REST routes are in ``rest.py`` and ``interactions.py``, the request pipeline (recording,
OpenAPI validation, fault injection, the 404 catch-all) in ``pipeline.py`` and the websocket in
``gateway.py``. See ``/work/shared/docs/discord-emulation.md`` for the design.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit

from aiohttp import web

from bot.sandbox.discord import interactions, models, pipeline, rest
from bot.sandbox.discord.errors import DiscordHTTPError, rate_limited
from bot.sandbox.discord.gateway import GatewaySession, gateway_handler
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
    ) -> None:
        self.validator = validator
        # Rate limits, upload limits, latency, thread caps: see limits.py.
        self.limits = Limits(rate_limits=rate_limits, rest_delay=rest_delay, boost_tier=boost_tier)
        self.interaction_deadline = interaction_deadline
        self.token_ttl = token_ttl
        self.snowflakes = models.Snowflakes()
        self.created_at = models.iso_now()

        self.application_id = self.snowflakes.next()
        self.bot_user_id = self.application_id  # Discord: the bot user id equals the app id
        self.owner_user_id = self.snowflakes.next()
        self.guild_id = self.snowflakes.next()
        self.token = f"{secrets.token_urlsafe(18)}.{secrets.token_urlsafe(4)}.emulated"

        self.users: dict[int, dict[str, Any]] = {}
        self.members: dict[int, dict[str, Any]] = {}  # user id -> {"roles": [...], "joined_at"}
        self.roles: dict[int, dict[str, Any]] = {}
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
        self.faults: list[pipeline.Fault] = []
        self.holds: list[pipeline.Hold] = []
        self.resume_attempts = 0
        self.gateway_connections = 0
        self.open_sockets: set[web.WebSocketResponse] = set()
        self._session: GatewaySession | None = None

        self._runner: web.AppRunner | None = None
        self.port = 0
        self._setup_guild()

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        app = web.Application(client_max_size=MAX_REQUEST_BYTES)
        app[_STATE_KEY] = self
        app.router.add_get("/gateway", self._gateway_handler)
        app.router.add_get("/gateway/", self._gateway_handler)
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
    def channel_id(self) -> int:
        return self._general_id

    @property
    def gateway_connected(self) -> bool:
        return self._session is not None and not self._session.ws.closed

    # -- guild setup ------------------------------------------------------------------------

    def _setup_guild(self) -> None:
        g = self.guild_id
        self.roles[g] = models.role_payload(g, "@everyone", models.DEFAULT_MEMBER_PERMISSIONS)
        self.bot_role_id = self.snowflakes.next()
        self.roles[self.bot_role_id] = models.role_payload(
            self.bot_role_id,
            "mjcord",
            models.DEFAULT_BOT_PERMISSIONS,
            position=1,
            managed=True,
            bot_id=self.bot_user_id,
        )
        self.users[self.bot_user_id] = models.user_payload(self.bot_user_id, "mjcord", bot=True)
        self.members[self.bot_user_id] = {"roles": [self.bot_role_id], "joined_at": self.created_at}
        self.users[self.owner_user_id] = models.user_payload(self.owner_user_id, "owner")
        self.members[self.owner_user_id] = {"roles": [], "joined_at": self.created_at}
        self._general_id = self.add_channel("general")

    def add_user(
        self,
        username: str,
        *,
        roles: tuple[int, ...] | list[int] = (),
        permissions: int | None = None,
    ) -> int:
        """Add a guild member. ``permissions`` gives them a personal role with exactly those."""
        uid = self.snowflakes.next()
        self.users[uid] = models.user_payload(uid, username)
        member_roles = list(roles)
        if permissions is not None:
            member_roles.append(self.add_role(f"{username}-perms", permissions))
        self.members[uid] = {"roles": member_roles, "joined_at": models.iso_now()}
        self._emit_soon(
            "GUILD_MEMBER_ADD", {**(self.member_payload(uid) or {}), "guild_id": str(self.guild_id)}
        )
        return uid

    def add_role(self, name: str, permissions: int, *, mentionable: bool = False) -> int:
        rid = self.snowflakes.next()
        self.roles[rid] = models.role_payload(
            rid, name, permissions, position=len(self.roles), mentionable=mentionable
        )
        self._emit_soon(
            "GUILD_ROLE_CREATE", {"guild_id": str(self.guild_id), "role": self.roles[rid]}
        )
        return rid

    def add_channel(self, name: str) -> int:
        cid = self.snowflakes.next()
        position = sum(1 for c in self.channels.values() if c["type"] == models.GUILD_TEXT)
        self.channels[cid] = models.text_channel_payload(
            cid, self.guild_id, name, position=position, overwrites=[]
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

    def member_payload(self, user_id: int, *, with_user: bool = True) -> dict[str, Any] | None:
        member = self.members.get(user_id)
        user = self.user_payload(user_id)
        if member is None or user is None:
            return None
        data = models.member_payload(user, member["roles"], member["joined_at"])
        if not with_user:
            del data["user"]
        return data

    def guild_create_payload(self) -> dict[str, Any]:
        channels = [c for c in self.channels.values() if c["type"] not in models.THREAD_TYPES]
        threads = active_threads(self)  # Discord syncs only active threads up front
        members = [self.member_payload(uid) for uid in self.members]
        return {
            "id": str(self.guild_id),
            "name": "mjcord test guild",
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
            "preferred_locale": "en-US",
            "system_channel_id": str(self.channel_id),
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
            "roles": list(self.roles.values()),
            "emojis": [],
            "stickers": [],
            "soundboard_sounds": [],
            "channels": channels,
            "threads": threads,
            "members": [m for m in members if m is not None],
            "member_count": len(self.members),
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
        member = self.members.get(user_id)
        if member is None:
            return 0
        perms = int(self.roles[self.guild_id]["permissions"])
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
        everyone = overwrites.get(str(self.guild_id))
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

    def attach_session(self, session: GatewaySession) -> None:
        self._session = session

    def detach_session(self, session: GatewaySession) -> None:
        if self._session is session:
            self._session = None

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send a gateway event to the identified client (dropped while disconnected, as live)."""
        session = self._session
        if session is not None:
            await session.dispatch(event, data)

    def _emit_soon(self, event: str, data: dict[str, Any]) -> None:
        # Sync helpers (add_user, add_channel) notify a connected client from the running loop.
        if self._session is None:
            return
        with contextlib.suppress(RuntimeError):  # no running loop: nobody to notify
            asyncio.get_running_loop().create_task(self.dispatch(event, data))

    async def wait_gateway(self, timeout: float = 10.0) -> None:
        await self.wait_for(
            lambda: self.gateway_connected, timeout=timeout, what="gateway IDENTIFY"
        )

    async def drop_gateway(self) -> None:
        """Close the websocket as a network fault would; the client reconnects (RESUME refused)."""
        session = self._session
        if session is None:
            raise RuntimeError("no gateway session to drop")
        self._session = None
        await session.ws.close(code=4000, message=b"Unknown error")

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
        await self.wait_gateway()
        payload = interactions.build_command_interaction(
            self, name, options or {}, user_id=user_id, channel_id=channel_id or self.channel_id
        )
        return await self._dispatch_interaction(payload)

    async def press_button(
        self, message_id: int, custom_id: str, *, user_id: int, values: list[str] | None = None
    ) -> Interaction:
        await self.wait_gateway()
        payload = interactions.build_component_interaction(
            self, message_id, custom_id, user_id=user_id, values=values
        )
        return await self._dispatch_interaction(payload)

    async def submit_modal(
        self, source: Interaction, values: dict[str, str], *, user_id: int | None = None
    ) -> Interaction:
        """Submit the modal the bot opened (callback type 9) in answer to ``source``."""
        await self.wait_gateway()
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
