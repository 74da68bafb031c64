"""Crafted INTERACTION_CREATE payloads: what a modified client or a replayed payload can send.

The emulator's own builders (`emu.slash_command`, `press_button`, `submit_modal`) refuse what
Discord's client would refuse; these helpers start from a valid payload and then change it,
and dispatch it the way the emulator dispatches any interaction (registered, so the bot's
callbacks and followups reach it).
"""

from __future__ import annotations

import copy
import secrets
import time
from typing import Any

from bot.sandbox.discord import DiscordEmulator
from bot.sandbox.discord.interactions import Interaction, build_command_interaction

COMPONENT, MODAL_SUBMIT = 3, 5


async def send(
    emu: DiscordEmulator, payload: dict[str, Any], *, trigger: Interaction | None = None
) -> Interaction:
    """Dispatch `payload` as INTERACTION_CREATE; returns the emulator's record of it.

    A modal submit needs `trigger`, the interaction that opened the modal (Discord always has
    one; the emulator describes it in the answer's interaction metadata).
    """
    await emu.wait_gateway()
    # The record reads the member's id; a DM payload has `user` instead of `member`.
    user = payload.get("member", {}).get("user") or payload["user"]
    record = Interaction.from_payload(emu, {**payload, "member": {"user": user}})
    record.payload = payload
    record.trigger = trigger
    emu.interactions[record.id] = record
    emu.interactions_by_token[record.token] = record
    record.dispatched_at = time.monotonic()
    await emu.dispatch("INTERACTION_CREATE", payload)
    return record


def command(
    emu: DiscordEmulator, name: str, options: dict[str, Any], *, user_id: int
) -> dict[str, Any]:
    """A valid chat-input payload for `/name` (built from the synced schema), to change."""
    return build_command_interaction(emu, name, options, user_id=user_id, channel_id=emu.channel_id)


def leaf(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The option list of the subcommand that runs (payload['data']['options'] or deeper)."""
    options: list[dict[str, Any]] = payload["data"].setdefault("options", [])
    while options and options[0].get("type") in (1, 2):
        options = options[0].setdefault("options", [])
    return options


def option(payload: dict[str, Any], name: str) -> dict[str, Any]:
    """The option `name` of the payload (KeyError when absent)."""
    for opt in leaf(payload):
        if opt["name"] == name:
            return opt
    raise KeyError(name)


def set_value(
    payload: dict[str, Any], name: str, value: Any, *, kind: int | None = None
) -> dict[str, Any]:
    """Set (or add) option `name` to `value`, optionally with another declared type."""
    try:
        opt = option(payload, name)
    except KeyError:
        opt = {"name": name, "type": kind or 3}
        leaf(payload).append(opt)
    opt["value"] = value
    if kind is not None:
        opt["type"] = kind
    return payload


def drop(payload: dict[str, Any], name: str) -> dict[str, Any]:
    """Remove option `name`."""
    options = leaf(payload)
    options[:] = [o for o in options if o["name"] != name]
    return payload


def in_dm(payload: dict[str, Any]) -> dict[str, Any]:
    """The same interaction as Discord sends it from a DM: no guild, `user` instead of `member`,
    a DM channel, context 1 (BOT_DM)."""
    dm = copy.deepcopy(payload)
    user = dm.pop("member")["user"]
    for key in ("guild_id", "guild", "guild_locale"):
        dm.pop(key, None)
    dm["data"].pop("guild_id", None)
    dm["user"] = user
    dm["context"] = 1
    dm["channel"] = {"id": dm["channel_id"], "type": 1, "recipients": [user]}
    dm["authorizing_integration_owners"] = {"1": user["id"]}
    return dm


def _base(emu: DiscordEmulator, kind: int, template: dict[str, Any]) -> dict[str, Any]:
    payload = copy.deepcopy(template)
    payload.pop("data", None)
    payload["id"] = str(emu.snowflakes.next())
    payload["token"] = "itok_" + secrets.token_urlsafe(48)
    payload["type"] = kind
    return payload


def component(
    emu: DiscordEmulator,
    template: dict[str, Any],
    custom_id: str,
    *,
    message: dict[str, Any] | None,
    component_type: int = 2,
    values: list[str] | None = None,
) -> dict[str, Any]:
    """A component press with any custom id; `template` is a valid payload for its member."""
    payload = _base(emu, COMPONENT, template)
    if message is not None:
        payload["message"] = message
    data: dict[str, Any] = {"custom_id": custom_id, "component_type": component_type}
    if values is not None:
        data["values"] = values
    payload["data"] = data
    return payload


def message_with(message: dict[str, Any], *custom_ids: str) -> dict[str, Any]:
    """A copy of a real message whose only components are buttons with these custom ids."""
    out = copy.deepcopy(message)
    buttons = [{"type": 2, "style": 2, "label": "x", "custom_id": c} for c in custom_ids]
    out["components"] = [{"type": 1, "components": buttons}] if buttons else []
    return out


def modal_submit(
    emu: DiscordEmulator, template: dict[str, Any], custom_id: str, values: dict[str, str]
) -> dict[str, Any]:
    """A modal submit for any modal custom id, with text inputs holding `values`."""
    payload = _base(emu, MODAL_SUBMIT, template)
    payload["data"] = {
        "custom_id": custom_id,
        "components": [
            {"type": 1, "components": [{"type": 4, "custom_id": k, "value": v}]}
            for k, v in values.items()
        ],
    }
    return payload
