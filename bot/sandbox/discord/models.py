"""Payload builders for the Discord emulator: users, members, roles, channels, threads, commands.

Every builder returns exactly the JSON Discord would send (snowflakes as strings, nullable
fields present as ``null``), because discord.py's parsers index many keys directly and a
missing one kills the bot, and because the emulator's REST responses are checked against
Discord's OpenAPI spec.
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
import time
from typing import Any

DISCORD_EPOCH_MS = 1420070400000

# Permission bits by Discord's names (https://discord.com/developers/docs/topics/permissions).
PERMISSIONS: dict[str, int] = {
    "CREATE_INSTANT_INVITE": 1 << 0,
    "KICK_MEMBERS": 1 << 1,
    "BAN_MEMBERS": 1 << 2,
    "ADMINISTRATOR": 1 << 3,
    "MANAGE_CHANNELS": 1 << 4,
    "MANAGE_GUILD": 1 << 5,
    "ADD_REACTIONS": 1 << 6,
    "VIEW_AUDIT_LOG": 1 << 7,
    "VIEW_CHANNEL": 1 << 10,
    "SEND_MESSAGES": 1 << 11,
    "SEND_TTS_MESSAGES": 1 << 12,
    "MANAGE_MESSAGES": 1 << 13,
    "EMBED_LINKS": 1 << 14,
    "ATTACH_FILES": 1 << 15,
    "READ_MESSAGE_HISTORY": 1 << 16,
    "MENTION_EVERYONE": 1 << 17,
    "USE_EXTERNAL_EMOJIS": 1 << 18,
    "MANAGE_ROLES": 1 << 28,
    "MANAGE_WEBHOOKS": 1 << 29,
    "USE_APPLICATION_COMMANDS": 1 << 31,
    "MANAGE_THREADS": 1 << 34,
    "CREATE_PUBLIC_THREADS": 1 << 35,
    "CREATE_PRIVATE_THREADS": 1 << 36,
    "SEND_MESSAGES_IN_THREADS": 1 << 38,
    "MODERATE_MEMBERS": 1 << 40,
    "PIN_MESSAGES": 1 << 51,
}
ALL_PERMISSIONS = (1 << 53) - 1
# What a new guild's @everyone role gets on Discord today.
DEFAULT_MEMBER_PERMISSIONS = 2248473465835073
#: The permissions the README's invite link asks for (Send Messages, Create Public Threads,
#: Send Messages in Threads, Attach Files, Embed Links, Read Message History) plus View
#: Channel, which every bot invite implies: exactly what the bot's managed role holds.
INVITE_PERMISSIONS = (
    PERMISSIONS["VIEW_CHANNEL"]
    | PERMISSIONS["SEND_MESSAGES"]
    | PERMISSIONS["CREATE_PUBLIC_THREADS"]
    | PERMISSIONS["SEND_MESSAGES_IN_THREADS"]
    | PERMISSIONS["ATTACH_FILES"]
    | PERMISSIONS["EMBED_LINKS"]
    | PERMISSIONS["READ_MESSAGE_HISTORY"]
)
DEFAULT_BOT_PERMISSIONS = INVITE_PERMISSIONS

# Channel types.
GUILD_TEXT = 0
PUBLIC_THREAD = 11
THREAD_TYPES = (10, 11, 12)

# Message flags.
FLAG_HAS_THREAD = 1 << 5
FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7


class Snowflakes:
    """Monotonic snowflake generator: real timestamps in the high bits, so ids sort by time."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)
        self._lock = threading.Lock()
        self._last = 0

    def next(self) -> int:
        with self._lock:
            ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
            value = (ms << 22) | ((next(self._counter) & 0xFFF) << 0)
            # Keep strict monotonicity even within one millisecond or on a clock step back.
            value = max(value, self._last + 1)
            self._last = value
            return value


def iso_now() -> str:
    """Discord's timestamp format: ISO 8601 with microseconds and +00:00."""
    return dt.datetime.now(dt.UTC).isoformat()


def user_payload(
    user_id: int, username: str, *, bot: bool = False, global_name: str | None = None
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": str(user_id),
        "username": username,
        "discriminator": "0",
        "avatar": None,
        "global_name": global_name,
        "public_flags": 0,
        "flags": 0,
        "banner": None,
        "accent_color": None,
        "avatar_decoration_data": None,
        "collectibles": None,
        "primary_guild": None,
    }
    if bot:
        data["bot"] = True
    return data


def role_payload(
    role_id: int,
    name: str,
    permissions: int,
    *,
    position: int = 0,
    managed: bool = False,
    bot_id: int | None = None,
    mentionable: bool = False,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": str(role_id),
        "name": name,
        "description": None,
        "permissions": str(permissions),
        "position": position,
        "color": 0,
        "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
        "hoist": False,
        "managed": managed,
        "mentionable": mentionable,
        "icon": None,
        "unicode_emoji": None,
        "flags": 0,
    }
    if bot_id is not None:
        data["tags"] = {"bot_id": str(bot_id)}
    return data


def text_channel_payload(
    channel_id: int, guild_id: int, name: str, *, position: int, overwrites: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "id": str(channel_id),
        "type": GUILD_TEXT,
        "guild_id": str(guild_id),
        "name": name,
        "position": position,
        "permission_overwrites": overwrites,
        "parent_id": None,
        "topic": None,
        "nsfw": False,
        "last_message_id": None,
        "rate_limit_per_user": 0,
        "flags": 0,
        "last_pin_timestamp": None,
    }


def thread_payload(
    thread_id: int,
    guild_id: int,
    parent_id: int,
    name: str,
    *,
    owner_id: int,
    auto_archive_duration: int,
    created: str,
    message_count: int = 0,
    member_count: int = 1,
    total_message_sent: int = 0,
    last_message_id: int | None = None,
    rate_limit_per_user: int = 0,
) -> dict[str, Any]:
    return {
        "id": str(thread_id),
        "type": PUBLIC_THREAD,
        "guild_id": str(guild_id),
        "parent_id": str(parent_id),
        "owner_id": str(owner_id),
        "name": name,
        "flags": 0,
        "last_message_id": str(last_message_id) if last_message_id else None,
        "last_pin_timestamp": None,
        "rate_limit_per_user": rate_limit_per_user,
        "message_count": message_count,
        "member_count": member_count,
        "total_message_sent": total_message_sent,
        "thread_metadata": {
            "archived": False,
            "archive_timestamp": created,
            "auto_archive_duration": auto_archive_duration,
            "locked": False,
            "create_timestamp": created,
        },
    }


def member_payload(
    user: dict[str, Any], roles: list[int], joined_at: str, *, permissions: int | None = None
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "user": user,
        "roles": [str(r) for r in roles],
        "joined_at": joined_at,
        "nick": None,
        "avatar": None,
        "banner": None,
        "premium_since": None,
        "deaf": False,
        "mute": False,
        "pending": False,
        "flags": 0,
        "communication_disabled_until": None,
    }
    if permissions is not None:
        data["permissions"] = str(permissions)
    return data


def my_user_payload(user: dict[str, Any]) -> dict[str, Any]:
    """``GET /users/@me`` for a bot: the public user plus the private fields."""
    return {
        **user,
        "bot": True,
        "mfa_enabled": False,
        "locale": "en-US",
        "verified": True,
        "email": None,
        "premium_type": 0,
    }


def application_payload(
    app_id: int, bot_user: dict[str, Any], owner: dict[str, Any]
) -> dict[str, Any]:
    return {
        "id": str(app_id),
        "name": bot_user["username"],
        "icon": None,
        "description": "",
        "type": None,
        "bot": bot_user,
        "summary": "",
        "bot_public": True,
        "bot_require_code_grant": False,
        "verify_key": "0" * 64,
        "flags": 0,
        "flags_new": "0",
        "owner": owner,
        "team": None,
        "rpc_origins": [],
        "tags": [],
        "redirect_uris": [],
        "interactions_endpoint_url": None,
        "role_connections_verification_url": None,
        "event_webhooks_url": None,
        "event_webhooks_status": 1,
        "event_webhooks_types": [],
        "integration_types_config": {"0": {}},
        "approximate_guild_count": 1,
        "approximate_user_install_count": 0,
        "approximate_user_authorization_count": 0,
        "explicit_content_filter": 0,
        "hook": True,
        "is_monetized": False,
        "is_verified": False,
        "is_discoverable": False,
        "storefront_available": False,
        "max_participants": None,
        "eligible_oauth2_scopes": ["applications.commands", "bot"],
    }


def _permission_string(value: Any) -> str | None:
    return None if value is None else str(value)


def app_command_payload(
    command: dict[str, Any], command_id: int, app_id: int, version: int, guild_id: int | None
) -> dict[str, Any]:
    """An ApplicationCommand as Discord returns it after a bulk overwrite."""
    out: dict[str, Any] = {
        "id": str(command_id),
        "application_id": str(app_id),
        "version": str(version),
        "type": command.get("type", 1),
        "name": command["name"],
        "description": command.get("description", ""),
        # discord.py sends the bits as an int; Discord answers with a string (or null).
        "default_member_permissions": _permission_string(command.get("default_member_permissions")),
        "nsfw": bool(command.get("nsfw", False)),
        "integration_types": command.get("integration_types") or [0],
        "contexts": command.get("contexts"),
        "name_localizations": command.get("name_localizations"),
        "description_localizations": command.get("description_localizations"),
    }
    if guild_id is not None:
        out["guild_id"] = str(guild_id)
    else:
        out["dm_permission"] = command.get("dm_permission", True)
    if command.get("options"):
        out["options"] = [_option(o) for o in command["options"]]
    return out


def _option(option: dict[str, Any]) -> dict[str, Any]:
    # Discord drops null/false-y defaults from options in its answer; keep the meaningful keys.
    out = {k: v for k, v in option.items() if v is not None}
    if not out.get("required"):
        out.pop("required", None)
    if "options" in out:
        out["options"] = [_option(o) for o in out["options"]]
    return out
