"""REST routes for login, command sync, channels, messages and threads.

Route templates are spelled exactly as in Discord's OpenAPI spec, so ``emu.requests[].route``
and ``emu.fail_next(method, route_template, ...)`` use the names a reader finds in the spec.
Handlers raise ``DiscordHTTPError`` with Discord's own codes (10003, 10008, 50013, 50024,
160004, ...), and emit the gateway events Discord would, so the client's cache stays right.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from bot.sandbox.discord import commands, models, threads
from bot.sandbox.discord.errors import (
    DiscordHTTPError,
    invalid_form,
    missing_permissions,
    unknown_channel,
    unknown_message,
)
from bot.sandbox.discord.messages import compose_message, public_view
from bot.sandbox.discord.pipeline import ApiRequest, Reply, Route

if TYPE_CHECKING:
    from bot.sandbox.discord.emulator import DiscordEmulator

# -- shared helpers (also used by interactions.py) ----------------------------------------------


def get_channel(emu: DiscordEmulator, channel_id: int | str) -> dict[str, Any]:
    cid = int(channel_id)
    channel = emu.channels.get(cid)
    if channel is None or cid in emu.deleted_channels:
        raise unknown_channel()
    return channel


def get_channel_message(
    emu: DiscordEmulator, channel_id: int, message_id: int | str
) -> dict[str, Any]:
    try:
        mid = int(message_id)
    except ValueError as exc:
        raise invalid_form("message_id", "NUMBER_TYPE_COERCE", "Value is not snowflake.") from exc
    msg = emu.stored.get(mid)
    if (
        msg is None
        or msg.get("_deleted")
        or msg["channel_id"] != str(channel_id)
        or msg["flags"] & models.FLAG_EPHEMERAL
    ):
        raise unknown_message()
    return msg


def gateway_message(emu: DiscordEmulator, msg: dict[str, Any]) -> dict[str, Any]:
    """MESSAGE_CREATE/UPDATE data: the message plus guild_id, the author's member and nonce."""
    data = public_view(msg)
    guild_id = emu.guild_of(int(msg["channel_id"]))
    data["guild_id"] = str(guild_id)
    if msg.get("_nonce") is not None:
        data["nonce"] = msg["_nonce"]
    if not msg.get("webhook_id"):
        author = int(msg["author"]["id"])
        member = emu.member_payload(author, with_user=False, guild_id=guild_id)
        if member is not None:
            data["member"] = member
    return data


def response_message(msg: dict[str, Any]) -> dict[str, Any]:
    """The REST answer for a create: includes the nonce (history via GET does not)."""
    data = public_view(msg)
    if msg.get("_nonce") is not None:
        data["nonce"] = msg["_nonce"]
    return data


async def store_message(
    emu: DiscordEmulator, msg: dict[str, Any], *, dispatch: bool = True
) -> None:
    """Append to the transcript; bump thread counters; emit MESSAGE_CREATE unless ephemeral."""
    mid = int(msg["id"])
    cid = int(msg["channel_id"])
    emu.stored[mid] = msg
    emu.channel_log.setdefault(cid, []).append(mid)
    if msg["flags"] & models.FLAG_EPHEMERAL:
        return  # ephemeral messages exist only for the invoking user: no guild event
    channel = emu.channels.get(cid)
    if channel is not None:
        channel["last_message_id"] = str(mid)
        if channel["type"] in models.THREAD_TYPES:
            msg["position"] = channel["total_message_sent"]
            channel["message_count"] += 1
            channel["total_message_sent"] += 1
    if dispatch:
        await emu.dispatch("MESSAGE_CREATE", gateway_message(emu, msg))


async def update_message(emu: DiscordEmulator, msg: dict[str, Any]) -> None:
    emu.stored[int(msg["id"])] = msg
    if not msg["flags"] & models.FLAG_EPHEMERAL:
        await emu.dispatch("MESSAGE_UPDATE", gateway_message(emu, msg))


async def delete_message(emu: DiscordEmulator, msg: dict[str, Any]) -> None:
    msg["_deleted"] = True
    channel = emu.channels.get(int(msg["channel_id"]))
    if channel is not None and channel["type"] in models.THREAD_TYPES:
        channel["message_count"] = max(0, channel["message_count"] - 1)
    if not msg["flags"] & models.FLAG_EPHEMERAL:
        guild_id = str(emu.guild_of(int(msg["channel_id"])))
        data = {"id": msg["id"], "channel_id": msg["channel_id"], "guild_id": guild_id}
        await emu.dispatch("MESSAGE_DELETE", data)


def _send_permissions(emu: DiscordEmulator, channel: dict[str, Any], with_files: bool) -> None:
    cid = int(channel["id"])
    send = "SEND_MESSAGES_IN_THREADS" if channel["type"] in models.THREAD_TYPES else "SEND_MESSAGES"
    if not emu.has_permission(emu.bot_user_id, cid, models.PERMISSIONS["VIEW_CHANNEL"]):
        raise DiscordHTTPError(403, 50001, "Missing Access")
    emu.require_bot_permission(cid, send)
    if with_files:
        emu.require_bot_permission(cid, "ATTACH_FILES")


# -- login and commands -------------------------------------------------------------------------


async def get_my_user(emu: DiscordEmulator, req: ApiRequest) -> Reply:
    user = emu.user_payload(emu.bot_user_id)
    assert user is not None
    return Reply(200, models.my_user_payload(user))


async def get_my_application(emu: DiscordEmulator, req: ApiRequest) -> Reply:
    bot_user = emu.user_payload(emu.bot_user_id)
    owner = emu.user_payload(emu.owner_user_id)
    assert bot_user is not None and owner is not None
    return Reply(200, models.application_payload(emu.application_id, bot_user, owner))


async def get_gateway(emu: DiscordEmulator, req: ApiRequest) -> Reply:
    return Reply(200, {"url": emu.gateway_url})


async def get_bot_gateway(emu: DiscordEmulator, req: ApiRequest) -> Reply:
    return Reply(200, emu.bot_gateway_payload())


def _check_app(emu: DiscordEmulator, req: ApiRequest) -> None:
    if req.params.get("application_id") != str(emu.application_id):
        raise DiscordHTTPError(403, 50001, "Missing Access")
    if "guild_id" in req.params and req.params["guild_id"] != str(emu.guild_id):
        raise DiscordHTTPError(404, 10004, "Unknown Guild")


def _sync(
    emu: DiscordEmulator, req: ApiRequest, current: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    body = req.json
    if body is None:
        body = []
    if not isinstance(body, list):
        raise invalid_form("_root", "LIST_TYPE_CONVERT", "Only iterables may be used in a ListType")
    commands.validate_commands(body)
    guild_id = emu.guild_id if "guild_id" in req.params else None
    old = {(c["name"], c.get("type", 1)): c for c in current}
    out = []
    for command in body:
        prev = old.get((command["name"], command.get("type", 1)))
        cid = int(prev["id"]) if prev else emu.snowflakes.next()
        out.append(
            models.app_command_payload(
                command, cid, emu.application_id, emu.snowflakes.next(), guild_id
            )
        )
    return out


async def put_global_commands(emu: DiscordEmulator, req: ApiRequest) -> Reply:
    _check_app(emu, req)
    emu.global_commands = _sync(emu, req, emu.global_commands)
    return Reply(200, emu.global_commands)


async def put_guild_commands(emu: DiscordEmulator, req: ApiRequest) -> Reply:
    _check_app(emu, req)
    emu.guild_commands = _sync(emu, req, emu.guild_commands)
    return Reply(200, emu.guild_commands)


async def list_global_commands(emu: DiscordEmulator, req: ApiRequest) -> Reply:
    _check_app(emu, req)
    return Reply(200, emu.global_commands)


async def list_guild_commands(emu: DiscordEmulator, req: ApiRequest) -> Reply:
    _check_app(emu, req)
    return Reply(200, emu.guild_commands)


async def get_user(emu: DiscordEmulator, req: ApiRequest) -> Reply:
    try:
        user = emu.user_payload(int(req.params["user_id"]))
    except ValueError:
        user = None
    if user is None:
        raise DiscordHTTPError(404, 10013, "Unknown User")
    return Reply(200, user)


async def get_guild_member(emu: DiscordEmulator, req: ApiRequest) -> Reply:
    if int(req.params["guild_id"]) not in emu.guild_ids:
        raise DiscordHTTPError(404, 10004, "Unknown Guild")
    member = emu.member_payload(int(req.params["user_id"]), guild_id=int(req.params["guild_id"]))
    if member is None:
        raise DiscordHTTPError(404, 10007, "Unknown Member")
    return Reply(200, member)


# -- channels and messages ----------------------------------------------------------------------


async def get_channel_route(emu: DiscordEmulator, req: ApiRequest) -> Reply:
    channel = get_channel(emu, req.params["channel_id"])
    if not emu.has_permission(
        emu.bot_user_id, int(channel["id"]), models.PERMISSIONS["VIEW_CHANNEL"]
    ):
        raise DiscordHTTPError(403, 50001, "Missing Access")
    return Reply(200, dict(channel))


async def modify_channel(emu: DiscordEmulator, req: ApiRequest) -> Reply:
    """Only threads are modified by the bot (reopening one); a text channel needs Manage
    Channels, which the invite does not grant."""
    channel = get_channel(emu, req.params["channel_id"])
    body = req.json if isinstance(req.json, dict) else {}
    if not threads.is_thread(channel):
        emu.require_bot_permission(int(channel["id"]), "MANAGE_CHANNELS")
        raise invalid_form("_root", "UNSUPPORTED", "the emulator modifies threads only")
    return Reply(200, dict(await threads.modify_thread(emu, channel, body)))


MAX_NONCE_LENGTH = 25


def _nonce_key(body: Any) -> str | None:
    """The nonce Discord deduplicates on (``enforce_nonce``), checked as Discord checks it."""
    if not isinstance(body, dict) or body.get("nonce") is None:
        return None
    nonce = body["nonce"]
    if isinstance(nonce, bool) or not isinstance(nonce, (int, str)):
        raise invalid_form("nonce", "BASE_TYPE_REQUIRED", "Must be an integer or a string.")
    if len(str(nonce)) > MAX_NONCE_LENGTH:
        raise invalid_form(
            "nonce", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_NONCE_LENGTH} or fewer in length."
        )
    return str(nonce)


async def create_message(emu: DiscordEmulator, req: ApiRequest) -> Reply:
    channel = get_channel(emu, req.params["channel_id"])
    cid = int(channel["id"])
    body = req.json if req.json is not None else {}
    _send_permissions(emu, channel, bool(req.files))
    history = models.PERMISSIONS["READ_MESSAGE_HISTORY"]
    replying = isinstance(body, dict) and body.get("message_reference")
    if replying and not emu.has_permission(emu.bot_user_id, cid, history):
        raise DiscordHTTPError(
            403, 160002, "Cannot reply without permission to read message history"
        )
    nonce = _nonce_key(body)
    key = (cid, emu.bot_user_id, str(nonce))
    if nonce is not None and body.get("enforce_nonce"):
        # docs/resources/message.md: "If another message was created by the same author with
        # the same nonce [in the past few minutes], that message will be returned". When that
        # message has since been deleted, Discord answers 404 Unknown Message (10008).
        seen = emu.nonces.get(key)
        if seen is not None and time.monotonic() - seen[1] < emu.limits.nonce_window:
            existing = emu.stored.get(seen[0])
            if existing is None or existing.get("_deleted"):
                raise unknown_message()
            return Reply(200, response_message(existing))
    await threads.before_send(emu, channel)
    msg = compose_message(emu, body, req.files, channel_id=cid, author_id=emu.bot_user_id)
    if nonce is not None:
        msg["_nonce"] = body["nonce"]
        emu.nonces[key] = (int(msg["id"]), time.monotonic())
    await store_message(emu, msg)
    return Reply(200, response_message(msg))


async def list_messages(emu: DiscordEmulator, req: ApiRequest) -> Reply:
    channel = get_channel(emu, req.params["channel_id"])
    cid = int(channel["id"])
    emu.require_bot_permission(cid, "VIEW_CHANNEL", "READ_MESSAGE_HISTORY")
    try:
        limit = int(req.query.get("limit", "50"))
    except ValueError as exc:
        raise invalid_form("limit", "NUMBER_TYPE_COERCE", "Value is not int.") from exc
    if not 1 <= limit <= 100:
        raise invalid_form("limit", "NUMBER_TYPE_MAX", "int value should be <= 100 and >= 1.")
    msgs = [
        public_view(m)
        for m in (emu.stored[i] for i in emu.channel_log.get(cid, []))
        if not m.get("_deleted") and not m["flags"] & models.FLAG_EPHEMERAL
    ]
    if "before" in req.query:
        msgs = [m for m in msgs if int(m["id"]) < int(req.query["before"])]
        msgs = msgs[-limit:]
    elif "after" in req.query:
        msgs = [m for m in msgs if int(m["id"]) > int(req.query["after"])][:limit]
    else:
        msgs = msgs[-limit:]
    return Reply(200, list(reversed(msgs)))  # Discord answers newest first


async def get_message(emu: DiscordEmulator, req: ApiRequest) -> Reply:
    channel = get_channel(emu, req.params["channel_id"])
    emu.require_bot_permission(int(channel["id"]), "VIEW_CHANNEL", "READ_MESSAGE_HISTORY")
    return Reply(
        200, public_view(get_channel_message(emu, int(channel["id"]), req.params["message_id"]))
    )


async def edit_message(emu: DiscordEmulator, req: ApiRequest) -> Reply:
    channel = get_channel(emu, req.params["channel_id"])
    cid = int(channel["id"])
    msg = get_channel_message(emu, cid, req.params["message_id"])
    body = req.json if req.json is not None else {}
    threads.before_edit(emu, channel)
    if msg["author"]["id"] != str(emu.bot_user_id):
        if set(body) - {"flags"}:
            raise DiscordHTTPError(403, 50005, "Cannot edit a message authored by another user")
        emu.require_bot_permission(cid, "MANAGE_MESSAGES")
    if req.files:
        emu.require_bot_permission(cid, "ATTACH_FILES")
    updated = compose_message(
        emu, body, req.files, channel_id=cid, author_id=emu.bot_user_id, existing=msg
    )
    await update_message(emu, updated)
    return Reply(200, public_view(updated))


async def delete_message_route(emu: DiscordEmulator, req: ApiRequest) -> Reply:
    channel = get_channel(emu, req.params["channel_id"])
    cid = int(channel["id"])
    msg = get_channel_message(emu, cid, req.params["message_id"])
    if msg["author"]["id"] != str(emu.bot_user_id):
        emu.require_bot_permission(cid, "MANAGE_MESSAGES")
    await delete_message(emu, msg)
    return Reply(204)


async def trigger_typing(emu: DiscordEmulator, req: ApiRequest) -> Reply:
    channel = get_channel(emu, req.params["channel_id"])
    _send_permissions(emu, channel, False)
    return Reply(204)


async def add_reaction(emu: DiscordEmulator, req: ApiRequest) -> Reply:
    channel = get_channel(emu, req.params["channel_id"])
    cid = int(channel["id"])
    msg = get_channel_message(emu, cid, req.params["message_id"])
    emu.require_bot_permission(cid, "ADD_REACTIONS", "READ_MESSAGE_HISTORY")
    threads.before_edit(emu, channel)
    name = req.params["emoji_name"]
    reactions = msg.setdefault("reactions", [])
    for reaction in reactions:
        if reaction["emoji"]["name"] == name:
            if not reaction["me"]:
                reaction["me"] = True
                reaction["count"] += 1
                reaction["count_details"]["normal"] += 1
            break
    else:
        reactions.append(
            {
                "emoji": {"id": None, "name": name},
                "count": 1,
                "count_details": {"burst": 0, "normal": 1},
                "burst_colors": [],
                "me_burst": False,
                "burst_me": False,
                "burst_count": 0,
                "me": True,
            }
        )
        data = {
            "user_id": str(emu.bot_user_id),
            "channel_id": str(cid),
            "message_id": msg["id"],
            "guild_id": str(emu.guild_of(cid)),
            "emoji": {"id": None, "name": name},
            "burst": False,
            "type": 0,
        }
        await emu.dispatch("MESSAGE_REACTION_ADD", data)
    return Reply(204)


# -- threads ------------------------------------------------------------------------------------


async def create_thread_from_message(emu: DiscordEmulator, req: ApiRequest) -> Reply:
    parent = get_channel(emu, req.params["channel_id"])
    pid = int(parent["id"])
    if parent["type"] != models.GUILD_TEXT:
        raise DiscordHTTPError(400, 50024, "Cannot execute action on this channel type")
    msg = get_channel_message(emu, pid, req.params["message_id"])
    if not emu.has_permission(emu.bot_user_id, pid, models.PERMISSIONS["CREATE_PUBLIC_THREADS"]):
        raise missing_permissions()
    if msg.get("thread") is not None or int(msg["id"]) in emu.channels:
        raise DiscordHTTPError(400, 160004, "A thread has already been created for this message")
    body = req.json or {}
    name = body.get("name")
    if not isinstance(name, str) or not 1 <= len(name) <= 100:
        raise invalid_form("name", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
    archive = threads.before_create(emu, parent, body.get("auto_archive_duration"))
    thread_id = int(msg["id"])  # Discord: a thread started from a message shares its id
    thread = models.thread_payload(
        thread_id,
        emu.guild_of(pid),
        pid,
        name,
        owner_id=emu.bot_user_id,
        auto_archive_duration=archive,
        created=models.iso_now(),
        rate_limit_per_user=body.get("rate_limit_per_user") or 0,
    )
    emu.channels[thread_id] = thread
    emu.channel_log[thread_id] = []
    threads.touch(emu, thread_id)
    await emu.dispatch("THREAD_CREATE", {**thread, "newly_created": True})
    msg["thread"] = dict(thread)
    msg["flags"] |= models.FLAG_HAS_THREAD
    await update_message(emu, msg)
    system = {
        "id": str(emu.snowflakes.next()),
        "type": 18,  # THREAD_CREATED
        "channel_id": str(pid),
        "author": emu.user_payload(emu.bot_user_id),
        "content": name,
        "timestamp": models.iso_now(),
        "edited_timestamp": None,
        "tts": False,
        "pinned": False,
        "mention_everyone": False,
        "mentions": [],
        "mention_roles": [],
        "attachments": [],
        "embeds": [],
        "components": [],
        "flags": 0,
        "message_reference": {
            "type": 0,
            "channel_id": str(thread_id),
            "guild_id": str(emu.guild_of(pid)),
        },
    }
    await store_message(emu, system)
    return Reply(201, dict(thread))


ROUTES: list[Route] = [
    Route("GET", "/users/@me", get_my_user),
    Route("GET", "/oauth2/applications/@me", get_my_application),
    Route("GET", "/gateway", get_gateway, auth=False),
    Route("GET", "/gateway/bot", get_bot_gateway),
    Route("PUT", "/applications/{application_id}/commands", put_global_commands),
    Route("GET", "/applications/{application_id}/commands", list_global_commands),
    Route("PUT", "/applications/{application_id}/guilds/{guild_id}/commands", put_guild_commands),
    Route("GET", "/applications/{application_id}/guilds/{guild_id}/commands", list_guild_commands),
    Route("GET", "/users/{user_id}", get_user),
    Route("GET", "/guilds/{guild_id}/members/{user_id}", get_guild_member),
    Route("GET", "/channels/{channel_id}", get_channel_route),
    Route("PATCH", "/channels/{channel_id}", modify_channel),
    Route("POST", "/channels/{channel_id}/messages", create_message),
    Route("GET", "/channels/{channel_id}/messages", list_messages),
    Route("GET", "/channels/{channel_id}/messages/{message_id}", get_message),
    Route("PATCH", "/channels/{channel_id}/messages/{message_id}", edit_message),
    Route("DELETE", "/channels/{channel_id}/messages/{message_id}", delete_message_route),
    Route("POST", "/channels/{channel_id}/typing", trigger_typing),
    Route(
        "PUT",
        "/channels/{channel_id}/messages/{message_id}/reactions/{emoji_name}/@me",
        add_reaction,
    ),
    Route(
        "POST", "/channels/{channel_id}/messages/{message_id}/threads", create_thread_from_message
    ),
]
