"""Thread life as Discord runs it: auto-archive, unarchive on send, locks, the active cap.

From discord/discord-api-docs ``docs/topics/threads.md``:

* threads archive after a period of inactivity (``auto_archive_duration`` minutes; "activity"
  is sending a message, unarchiving, or changing the duration) — here
  ``emu.limits.thread_archive_after`` seconds replaces the duration so tests can be quick;
* "Users cannot edit messages, add reactions ... in archived threads" → 400 code 50083; only
  deleting messages works there; "Sending a message will automatically unarchive the thread,
  unless the thread has been locked by a moderator";
* members without MANAGE_THREADS cannot create or update messages in a locked thread →
  code 160005 ("Thread is locked", ``docs/topics/opcodes-and-status-codes.md``);
* a guild holds a capped number of active threads: creating or unarchiving one over the cap is
  code 160006;
* GUILD_CREATE's ``threads`` lists active threads only (``active_threads``); archived ones are
  not synced up front, and discord.py drops a thread from its cache when THREAD_UPDATE archives
  it (``discord/state.py``, ``parse_thread_update``).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from bot.sandbox.discord import models
from bot.sandbox.discord.errors import (
    invalid_form,
    missing_permissions,
    thread_archived,
    thread_locked,
    too_many_active_threads,
)

if TYPE_CHECKING:
    from bot.sandbox.discord.emulator import DiscordEmulator

ARCHIVE_DURATIONS = (60, 1440, 4320, 10080)


def is_thread(channel: dict[str, Any]) -> bool:
    return channel["type"] in models.THREAD_TYPES


def active_threads(emu: DiscordEmulator, guild_id: int | None = None) -> list[dict[str, Any]]:
    """The threads GUILD_CREATE carries: the active (unarchived) ones (of ``guild_id``)."""
    return [
        dict(c)
        for c in emu.channels.values()
        if is_thread(c)
        and not c["thread_metadata"]["archived"]
        and (guild_id is None or c.get("guild_id") == str(guild_id))
    ]


def touch(emu: DiscordEmulator, thread_id: int) -> None:
    """Record activity: the archive timer starts again."""
    emu.limits.thread_activity[thread_id] = time.monotonic()


def _idle_limit(emu: DiscordEmulator, thread: dict[str, Any]) -> float:
    if emu.limits.thread_archive_after is not None:
        return emu.limits.thread_archive_after
    return float(thread["thread_metadata"]["auto_archive_duration"]) * 60


async def archive_idle_threads(emu: DiscordEmulator) -> None:
    """Archive every thread idle longer than its duration (runs before each REST request)."""
    now = time.monotonic()
    for thread in list(emu.channels.values()):
        if not is_thread(thread) or thread["thread_metadata"]["archived"]:
            continue
        since = emu.limits.thread_activity.setdefault(int(thread["id"]), now)
        if now - since >= _idle_limit(emu, thread):
            await set_state(emu, int(thread["id"]), archived=True)


async def set_state(
    emu: DiscordEmulator,
    thread_id: int,
    *,
    archived: bool | None = None,
    locked: bool | None = None,
) -> dict[str, Any]:
    """Archive/unarchive or lock/unlock a thread (as a moderator or the timer would)."""
    thread = emu.channels[thread_id]
    meta = thread["thread_metadata"]
    if archived is not None and archived != meta["archived"]:
        guild_id = int(thread["guild_id"])
        if not archived and len(active_threads(emu, guild_id)) >= emu.limits.max_active_threads:
            raise too_many_active_threads()
        meta["archived"] = archived
        meta["archive_timestamp"] = models.iso_now()
        if not archived:
            touch(emu, thread_id)
    if locked is not None:
        meta["locked"] = locked
    await emu.dispatch("THREAD_UPDATE", dict(thread))
    return thread


def _bot_manages_threads(emu: DiscordEmulator, thread: dict[str, Any]) -> bool:
    bits = models.PERMISSIONS["MANAGE_THREADS"]
    return emu.has_permission(emu.bot_user_id, int(thread["id"]), bits)


async def before_send(emu: DiscordEmulator, channel: dict[str, Any]) -> None:
    """A message is about to be created in ``channel``: locked → 160005; archived → reopen."""
    if not is_thread(channel):
        return
    meta = channel["thread_metadata"]
    if meta["locked"] and not _bot_manages_threads(emu, channel):
        raise thread_locked()
    if meta["archived"]:
        await set_state(emu, int(channel["id"]), archived=False)
    touch(emu, int(channel["id"]))


def before_edit(emu: DiscordEmulator, channel: dict[str, Any]) -> None:
    """A message in ``channel`` is about to be edited (or reacted to)."""
    if not is_thread(channel):
        return
    meta = channel["thread_metadata"]
    if meta["archived"]:
        raise thread_archived()
    if meta["locked"] and not _bot_manages_threads(emu, channel):
        raise thread_locked()


def before_create(emu: DiscordEmulator, parent: dict[str, Any], archive_duration: Any) -> int:
    """Checks for a new thread in ``parent``'s server; returns its auto_archive_duration
    (Discord's default 4320 minutes)."""
    duration = before_create_duration(archive_duration or 4320)
    if len(active_threads(emu, int(parent["guild_id"]))) >= emu.limits.max_active_threads:
        raise too_many_active_threads()
    return duration


async def modify_thread(
    emu: DiscordEmulator, thread: dict[str, Any], body: dict[str, Any]
) -> dict[str, Any]:
    """``PATCH /channels/{thread_id}`` by the bot, with the permission rules of threads.md."""
    tid = int(thread["id"])
    manages = _bot_manages_threads(emu, thread)
    creator = thread["owner_id"] == str(emu.bot_user_id)
    meta = thread["thread_metadata"]
    if ("locked" in body or "rate_limit_per_user" in body) and not manages:
        raise missing_permissions()
    if ({"name", "auto_archive_duration"} & set(body)) and not (manages or creator):
        raise missing_permissions()
    if body.get("archived") is False and meta["locked"] and not manages:
        raise missing_permissions()
    if meta["archived"] and body.get("archived") is not False and not manages:
        raise thread_archived()  # an archived thread must be reopened before anything else
    if "name" in body:
        name = body["name"]
        if not isinstance(name, str) or not 1 <= len(name) <= 100:
            raise invalid_form(
                "name", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
            )
        thread["name"] = name
    if "auto_archive_duration" in body:
        meta["auto_archive_duration"] = before_create_duration(body["auto_archive_duration"])
        touch(emu, tid)
    if "rate_limit_per_user" in body:
        thread["rate_limit_per_user"] = int(body["rate_limit_per_user"] or 0)
    archived = body.get("archived")
    locked = body.get("locked")
    if archived is not None and not isinstance(archived, bool):
        raise invalid_form("archived", "BASE_TYPE_BOOLEAN", "Must be either true or false.")
    return await set_state(
        emu,
        tid,
        archived=archived,
        locked=bool(locked) if locked is not None else None,
    )


def before_create_duration(value: Any) -> int:
    if value not in ARCHIVE_DURATIONS:
        raise invalid_form(
            "auto_archive_duration",
            "BASE_TYPE_CHOICES",
            "Value must be one of {60, 1440, 4320, 10080}.",
        )
    return int(value)
