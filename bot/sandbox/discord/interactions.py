"""Interactions: INTERACTION_CREATE builders, the callback route and the interaction webhooks.

Discord rules modelled (the bot's correctness depends on each):

* the first callback must arrive within ``interaction_deadline`` of dispatch, else 404 10062;
  a second callback is 400 40060; tokens expire after ``token_ttl``;
* ``with_response`` answers carry ``resource`` only for callback types 4, 7 (and 12);
* after a *thinking* defer (type 5) the first followup **replaces the loading message** (same
  id, LOADING cleared, the defer's ephemerality kept — an ephemeral flag on that followup is
  ignored); once the original is gone a followup creates a new message;
* after a type 6/7 on a component, ``@original`` is the message carrying the component;
* ephemeral messages never reach the channel transcript nor the guild's gateway.
"""

from __future__ import annotations

import copy
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot.sandbox.discord import models
from bot.sandbox.discord.errors import (
    DiscordHTTPError,
    invalid_form,
    invalid_webhook_token,
    unknown_interaction,
    unknown_message,
    unknown_webhook,
)
from bot.sandbox.discord.messages import compose_message, public_view
from bot.sandbox.discord.pipeline import ApiRequest, Reply, Route
from bot.sandbox.discord.rest import delete_message, get_channel, store_message, update_message

if TYPE_CHECKING:
    from bot.sandbox.discord.emulator import DiscordEmulator

APPLICATION_COMMAND, MESSAGE_COMPONENT, MODAL_SUBMIT = 2, 3, 5
RESOURCE_TYPES = (4, 7, 12)


@dataclass
class Interaction:
    """What the emulator knows about one dispatched interaction (times are monotonic seconds)."""

    id: int
    token: str
    type: int
    user_id: int
    channel_id: int
    payload: dict[str, Any]
    dispatched_at: float = 0.0
    acked_at: float | None = None
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    response_type: int | None = None
    original_message_id: int | None = None
    loading: bool = False  # a thinking defer whose loading message is not replaced yet
    followup_ids: list[int] = field(default_factory=list)
    modal: dict[str, Any] | None = None
    source_message_id: int | None = None
    trigger: Interaction | None = None  # for a modal submit: the interaction that opened it
    _emu: Any = field(default=None, repr=False)
    _ephemeral_ids: list[int] = field(default_factory=list, repr=False)

    @classmethod
    def from_payload(cls, emu: DiscordEmulator, payload: dict[str, Any]) -> Interaction:
        message = payload.get("message")
        return cls(
            id=int(payload["id"]),
            token=payload["token"],
            type=payload["type"],
            user_id=int(payload["member"]["user"]["id"]),
            channel_id=int(payload["channel_id"]),
            payload=payload,
            source_message_id=int(message["id"]) if message else None,
            _emu=emu,
        )

    @property
    def ephemeral_messages(self) -> list[dict[str, Any]]:
        """Current state of every ephemeral message this interaction produced."""
        out = []
        for mid in self._ephemeral_ids:
            msg = self._emu.stored.get(mid)
            if msg is not None and not msg.get("_deleted"):
                out.append(public_view(msg))
        return out

    @property
    def original_message(self) -> dict[str, Any] | None:
        if self.original_message_id is None:
            return None
        return self._emu.message(self.original_message_id)  # type: ignore[no-any-return]


# -- INTERACTION_CREATE builders ----------------------------------------------------------------


def _base_payload(emu: DiscordEmulator, kind: int, user_id: int, channel_id: int) -> dict[str, Any]:
    channel = get_channel(emu, channel_id)
    guild_id = emu.guild_of(channel_id)
    member = emu.member_payload(user_id, guild_id=guild_id)
    if member is None:
        raise LookupError(f"user {user_id} is not a member of the emulated guild (use add_user)")
    member["permissions"] = str(emu.permissions_for(user_id, channel_id))
    guild_locale = emu.guild_locales.get(guild_id, "en-US")
    return {
        "id": str(emu.snowflakes.next()),
        "application_id": str(emu.application_id),
        "type": kind,
        "token": "itok_" + secrets.token_urlsafe(48),
        "version": 1,
        "guild_id": str(guild_id),
        "guild": {"id": str(guild_id), "locale": guild_locale, "features": []},
        "channel_id": str(channel_id),
        "channel": copy.deepcopy(channel),
        "member": member,
        "app_permissions": str(emu.permissions_for(emu.bot_user_id, channel_id)),
        "locale": emu.user_locales.get(user_id, "en-US"),
        "guild_locale": guild_locale,
        "context": 0,
        "authorizing_integration_owners": {"0": str(guild_id)},
        "entitlements": [],
        "entitlement_sku_ids": [],
        # What this member may upload: their Nitro limit or the server's, whichever is larger
        # (docs/interactions/receiving-and-responding.md, interaction object).
        "attachment_size_limit": emu.limits.attachment_size_limit(user_id),
    }


def _option_value(
    emu: DiscordEmulator, cmd: str, opt: dict[str, Any], value: Any, resolved: dict[str, Any]
) -> Any:
    kind, name = opt["type"], opt["name"]
    if kind == 11:
        if not isinstance(value, dict) or "id" not in value:
            raise TypeError(f"/{cmd} {name}: pass an attachment dict from emu.add_attachment()")
        resolved.setdefault("attachments", {})[value["id"]] = value
        return value["id"]
    if kind in (6, 9) and int(value) in emu.users:
        uid = int(value)
        resolved.setdefault("users", {})[str(uid)] = emu.user_payload(uid)
        member = emu.member_payload(uid, with_user=False)
        if member is not None:
            member["permissions"] = str(emu.permissions_for(uid))
            resolved.setdefault("members", {})[str(uid)] = member
        return str(uid)
    if kind in (8, 9) and int(value) in emu.roles:
        resolved.setdefault("roles", {})[str(value)] = emu.roles[int(value)]
        return str(value)
    if kind == 7:
        channel = get_channel(emu, int(value))
        resolved.setdefault("channels", {})[str(value)] = {
            k: channel[k]
            for k in ("id", "type", "name", "parent_id", "thread_metadata")
            if k in channel
        } | {"permissions": str(emu.permissions_for(emu.bot_user_id, int(value)))}
        return str(value)
    if kind in (6, 8, 9):
        raise LookupError(f"/{cmd} {name}: unknown user/role {value}")
    caster = {3: str, 4: int, 5: bool, 10: float}[kind]
    if kind == 5 and not isinstance(value, bool):
        raise TypeError(f"/{cmd} {name}: expected a bool")
    value = caster(value)
    choices = opt.get("choices")
    if choices and value not in [c["value"] for c in choices]:
        raise ValueError(f"/{cmd} {name}: {value!r} is not one of {[c['value'] for c in choices]}")
    if kind == 3 and not opt.get("min_length", 0) <= len(value) <= opt.get("max_length", 6000):
        raise ValueError(f"/{cmd} {name}: length outside the synced min/max_length")
    return value


def _build_options(
    emu: DiscordEmulator,
    cmd: str,
    schema: list[dict[str, Any]],
    given: dict[str, Any],
    resolved: dict[str, Any],
) -> list[dict[str, Any]]:
    by_name = {o["name"]: o for o in schema}
    unknown = set(given) - set(by_name)
    if unknown:
        raise ValueError(f"/{cmd} has no option(s) {sorted(unknown)}; synced: {sorted(by_name)}")
    out = []
    for opt in schema:
        name = opt["name"]
        if name not in given:
            if opt.get("required"):
                raise ValueError(f"/{cmd}: required option {name!r} missing")
            continue
        if opt["type"] in (1, 2):  # subcommand (group): its value is a dict of its options
            sub = _build_options(
                emu, f"{cmd} {name}", opt.get("options", []), given[name], resolved
            )
            out.append({"name": name, "type": opt["type"], "options": sub})
        else:
            value = _option_value(emu, cmd, opt, given[name], resolved)
            out.append({"name": name, "type": opt["type"], "value": value})
    return out


def build_command_interaction(
    emu: DiscordEmulator, name: str, options: dict[str, Any], *, user_id: int, channel_id: int
) -> dict[str, Any]:
    """A chat-input INTERACTION_CREATE typed from the command schema the bot synced."""
    command, is_guild = emu.command(name)
    resolved: dict[str, Any] = {}
    payload = _base_payload(emu, APPLICATION_COMMAND, user_id, channel_id)
    data: dict[str, Any] = {
        "id": command["id"],
        "name": command["name"],
        "type": command.get("type", 1),
        "options": _build_options(emu, name, command.get("options", []), options, resolved),
    }
    if resolved:
        data["resolved"] = resolved
    if is_guild:
        # discord.py looks a command up among guild commands when data.guild_id is set.
        data["guild_id"] = str(emu.guild_id)
    payload["data"] = data
    return payload


def _find_component(components: list[dict[str, Any]], custom_id: str) -> dict[str, Any] | None:
    for comp in components:
        if comp.get("custom_id") == custom_id:
            return comp
        for key in ("components",):
            found = _find_component(comp.get(key) or [], custom_id)
            if found is not None:
                return found
        for key in ("accessory", "component"):
            if isinstance(comp.get(key), dict):
                found = _find_component([comp[key]], custom_id)
                if found is not None:
                    return found
    return None


def build_component_interaction(
    emu: DiscordEmulator, message_id: int, custom_id: str, *, user_id: int, values: list[str] | None
) -> dict[str, Any]:
    msg = emu.stored.get(message_id)
    if msg is None or msg.get("_deleted"):
        raise LookupError(f"message {message_id} does not exist")
    component = _find_component(msg.get("components", []), custom_id)
    if component is None:
        raise LookupError(f"message {message_id} has no component with custom_id {custom_id!r}")
    if component.get("disabled"):
        raise ValueError(f"component {custom_id!r} is disabled; a member cannot press it")
    payload = _base_payload(emu, MESSAGE_COMPONENT, user_id, int(msg["channel_id"]))
    payload["message"] = public_view(msg)
    data: dict[str, Any] = {"custom_id": custom_id, "component_type": component["type"]}
    if "id" in component:
        data["id"] = component["id"]
    if component["type"] in (3, 5, 6, 7, 8):
        data["values"] = list(values or [])
    payload["data"] = data
    return payload


def _modal_answer(components: list[dict[str, Any]], values: dict[str, str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for comp in components:
        kind = comp.get("type")
        if kind == 1:
            out.append(
                {
                    "type": 1,
                    "id": comp.get("id", 0),
                    "components": _modal_answer(comp.get("components", []), values),
                }
            )
        elif kind == 18:
            inner = _modal_answer([comp["component"]], values)
            out.append({"type": 18, "id": comp.get("id", 0), "component": inner[0]})
        elif kind == 4:
            out.append(
                {
                    "type": 4,
                    "id": comp.get("id", 0),
                    "custom_id": comp["custom_id"],
                    "value": values.get(comp["custom_id"], comp.get("value") or ""),
                }
            )
        elif comp.get("custom_id") is not None:
            out.append(
                {
                    "type": kind,
                    "id": comp.get("id", 0),
                    "custom_id": comp["custom_id"],
                    "values": [values[comp["custom_id"]]] if comp["custom_id"] in values else [],
                }
            )
        else:
            out.append({"type": kind, "id": comp.get("id", 0)})
    return out


def build_modal_submit(
    emu: DiscordEmulator, source: Interaction, values: dict[str, str], *, user_id: int | None
) -> dict[str, Any]:
    if source.modal is None:
        raise LookupError(
            f"interaction {source.id} was not answered with a modal (callback type 9)"
        )
    payload = _base_payload(emu, MODAL_SUBMIT, user_id or source.user_id, source.channel_id)
    if source.source_message_id is not None:
        msg = emu.message(source.source_message_id)
        if msg is not None:
            payload["message"] = msg
    payload["data"] = {
        "custom_id": source.modal["custom_id"],
        "components": _modal_answer(source.modal.get("components", []), values),
    }
    return payload


# -- interaction-authored messages --------------------------------------------------------------


def _metadata(emu: DiscordEmulator, inter: Interaction, *, followup: bool) -> dict[str, Any]:
    user = emu.user_payload(inter.user_id)
    meta: dict[str, Any] = {
        "id": str(inter.id),
        "type": inter.type,
        "user": user,
        "authorizing_integration_owners": {"0": str(emu.guild_id)},
    }
    if inter.type == APPLICATION_COMMAND:
        meta["name"] = inter.payload["data"]["name"]
        meta["command_type"] = inter.payload["data"].get("type", 1)
    if inter.type == MESSAGE_COMPONENT:
        meta["interacted_message_id"] = str(inter.source_message_id)
    if inter.type == MODAL_SUBMIT and inter.trigger is not None:
        meta["triggering_interaction_metadata"] = _metadata(emu, inter.trigger, followup=False)
    if followup and inter.original_message_id is not None:
        meta["original_response_message_id"] = str(inter.original_message_id)
    return meta


def _interaction_extra(
    emu: DiscordEmulator, inter: Interaction, *, followup: bool
) -> dict[str, Any]:
    extra: dict[str, Any] = {
        "type": 20 if inter.type == APPLICATION_COMMAND else 0,
        "webhook_id": str(emu.application_id),
        "application_id": str(emu.application_id),
        "interaction_metadata": _metadata(emu, inter, followup=followup),
    }
    legacy: dict[str, Any] = {
        "id": str(inter.id),
        "type": inter.type,
        "user": emu.user_payload(inter.user_id),
    }
    if inter.type == APPLICATION_COMMAND:
        legacy["name"] = inter.payload["data"]["name"]
        extra["interaction"] = legacy
    return extra


async def _create_interaction_message(
    emu: DiscordEmulator,
    inter: Interaction,
    body: dict[str, Any],
    files: list[Any],
    *,
    followup: bool,
    loading: bool = False,
) -> dict[str, Any]:
    if loading:
        body = {"content": "", "flags": body.get("flags", 0)}
    msg = compose_message(
        emu,
        body,
        files,
        channel_id=inter.channel_id,
        author_id=emu.bot_user_id,
        allow_ephemeral=True,
        allow_empty=loading,
        extra=_interaction_extra(emu, inter, followup=followup),
    )
    if loading:
        msg["flags"] |= models.FLAG_LOADING
    await store_message(emu, msg)
    if msg["flags"] & models.FLAG_EPHEMERAL:
        inter._ephemeral_ids.append(int(msg["id"]))
    return msg


async def _edit_interaction_message(
    emu: DiscordEmulator,
    inter: Interaction,
    msg: dict[str, Any],
    body: dict[str, Any],
    files: list[Any],
) -> dict[str, Any]:
    body = (
        {k: v for k, v in body.items() if k != "flags"}
        if msg["flags"] & models.FLAG_LOADING
        else body
    )
    updated = compose_message(
        emu, body, files, channel_id=int(msg["channel_id"]), author_id=emu.bot_user_id, existing=msg
    )
    if updated["flags"] & models.FLAG_LOADING:
        # Resolving the loading state looks like a fresh reply, not an edit, on Discord.
        updated["flags"] &= ~models.FLAG_LOADING
        updated["edited_timestamp"] = None
        if inter.original_message_id == int(msg["id"]):
            inter.loading = False
    await update_message(emu, updated)
    return updated


# -- the callback route -------------------------------------------------------------------------


def _lookup_callback(emu: DiscordEmulator, req: ApiRequest) -> Interaction:
    try:
        inter = emu.interactions.get(int(req.params["interaction_id"]))
    except ValueError:
        inter = None
    if inter is None:
        raise unknown_interaction()
    if req.params["interaction_token"] != inter.token:
        raise invalid_webhook_token()
    now = time.monotonic()
    if now - inter.dispatched_at > emu.token_ttl:
        raise unknown_interaction()
    if inter.acked_at is not None:
        raise DiscordHTTPError(400, 40060, "Interaction has already been acknowledged.")
    if now - inter.dispatched_at > emu.interaction_deadline:
        raise unknown_interaction()
    return inter


async def create_interaction_response(emu: DiscordEmulator, req: ApiRequest) -> Reply:
    inter = _lookup_callback(emu, req)
    body = req.json
    if not isinstance(body, dict) or not isinstance(body.get("type"), int):
        raise invalid_form("type", "BASE_TYPE_REQUIRED", "This field is required")
    kind = body["type"]
    data = body.get("data") or {}
    msg: dict[str, Any] | None = None
    on_component = inter.type == MESSAGE_COMPONENT or (
        inter.type == MODAL_SUBMIT and inter.source_message_id is not None
    )
    if kind == 4:
        msg = await _create_interaction_message(emu, inter, data, req.files, followup=False)
    elif kind == 5:
        msg = await _create_interaction_message(emu, inter, data, [], followup=False, loading=True)
        inter.loading = True
    elif kind in (6, 7) and on_component:
        assert inter.source_message_id is not None
        source = emu.stored.get(inter.source_message_id)
        if source is None or source.get("_deleted"):
            raise unknown_message()
        if kind == 7:
            source = await _edit_interaction_message(emu, inter, source, data, req.files)
        msg = source
    elif kind == 9 and inter.type != MODAL_SUBMIT:
        if not data.get("custom_id") or not data.get("title") or not data.get("components"):
            raise invalid_form(
                "data", "BASE_TYPE_REQUIRED", "custom_id, title and components are required"
            )
        inter.modal = copy.deepcopy(data)
    else:
        raise invalid_form(
            "type",
            "INTERACTION_RESPONSE_TYPE_INVALID",
            f"Invalid interaction response type {kind} for interaction type {inter.type}",
        )

    inter.acked_at = time.monotonic()
    inter.response_type = kind
    inter.callbacks.append(copy.deepcopy(body))
    if msg is not None:
        inter.original_message_id = int(msg["id"])
    if not req.flag("with_response"):
        return Reply(204)
    info: dict[str, Any] = {"id": str(inter.id), "type": inter.type, "activity_instance_id": None}
    if msg is not None and kind in (4, 5, 7):
        info["response_message_id"] = msg["id"]
        info["response_message_loading"] = bool(msg["flags"] & models.FLAG_LOADING)
        info["response_message_ephemeral"] = bool(msg["flags"] & models.FLAG_EPHEMERAL)
    out: dict[str, Any] = {"interaction": info}
    if kind in RESOURCE_TYPES and msg is not None:
        out["resource"] = {"type": kind, "message": public_view(msg)}
    return Reply(200, out)


# -- interaction webhooks -----------------------------------------------------------------------


def _lookup_webhook(emu: DiscordEmulator, req: ApiRequest) -> Interaction:
    if req.params["webhook_id"] != str(emu.application_id):
        raise unknown_webhook()
    inter = emu.interactions_by_token.get(req.params["webhook_token"])
    if inter is None or time.monotonic() - inter.dispatched_at > emu.token_ttl:
        raise invalid_webhook_token()
    if inter.acked_at is None:
        raise unknown_webhook()  # no followups before the interaction is acknowledged
    return inter


def _webhook_message(emu: DiscordEmulator, inter: Interaction, message_id: str) -> dict[str, Any]:
    if message_id == "@original":
        mid = inter.original_message_id
    else:
        try:
            mid = int(message_id)
        except ValueError:
            mid = None
        if mid is not None and mid != inter.original_message_id and mid not in inter.followup_ids:
            mid = None
    msg = emu.stored.get(mid) if mid is not None else None
    if msg is None or msg.get("_deleted"):
        raise unknown_message()
    return msg


async def execute_webhook(emu: DiscordEmulator, req: ApiRequest) -> Reply:
    inter = _lookup_webhook(emu, req)
    body = req.json if isinstance(req.json, dict) else {}
    original = emu.stored.get(inter.original_message_id) if inter.original_message_id else None
    if inter.loading and original is not None and not original.get("_deleted"):
        # Discord: the first followup after a thinking defer *is* the deferred reply.
        msg = await _edit_interaction_message(emu, inter, original, body, req.files)
    else:
        msg = await _create_interaction_message(emu, inter, body, req.files, followup=True)
        inter.followup_ids.append(int(msg["id"]))
    if not req.flag("wait"):
        return Reply(204)
    return Reply(200, public_view(msg))


async def get_webhook_message(emu: DiscordEmulator, req: ApiRequest) -> Reply:
    inter = _lookup_webhook(emu, req)
    return Reply(
        200, public_view(_webhook_message(emu, inter, req.params.get("message_id", "@original")))
    )


async def edit_webhook_message(emu: DiscordEmulator, req: ApiRequest) -> Reply:
    inter = _lookup_webhook(emu, req)
    msg = _webhook_message(emu, inter, req.params.get("message_id", "@original"))
    body = req.json if isinstance(req.json, dict) else {}
    updated = await _edit_interaction_message(emu, inter, msg, body, req.files)
    return Reply(200, public_view(updated))


async def delete_webhook_message(emu: DiscordEmulator, req: ApiRequest) -> Reply:
    inter = _lookup_webhook(emu, req)
    msg = _webhook_message(emu, inter, req.params.get("message_id", "@original"))
    await delete_message(emu, msg)
    if int(msg["id"]) == inter.original_message_id:
        inter.loading = False
    return Reply(204)


_WEBHOOK = "/webhooks/{webhook_id}/{webhook_token}"
ROUTES: list[Route] = [
    Route(
        "POST",
        "/interactions/{interaction_id}/{interaction_token}/callback",
        create_interaction_response,
        auth=False,
    ),
    Route("POST", _WEBHOOK, execute_webhook, auth=False),
    Route("GET", _WEBHOOK + "/messages/@original", get_webhook_message, auth=False),
    Route("PATCH", _WEBHOOK + "/messages/@original", edit_webhook_message, auth=False),
    Route("DELETE", _WEBHOOK + "/messages/@original", delete_webhook_message, auth=False),
    Route("GET", _WEBHOOK + "/messages/{message_id}", get_webhook_message, auth=False),
    Route("PATCH", _WEBHOOK + "/messages/{message_id}", edit_webhook_message, auth=False),
    Route("DELETE", _WEBHOOK + "/messages/{message_id}", delete_webhook_message, auth=False),
]
