"""The one input check at the edge: an interaction's options and a modal's fields re-checked
against what the bot declared to Discord, before any other work.

Discord enforces an option's limits in its own client only; a modified client or a replayed
payload can send anything, and discord.py passes most of it through (an out-of-range integer,
a string outside its `choices`, a blank or over-long string, an attachment id missing from
`resolved`). The declarations are read from the command tree itself (discord.py's
`app_commands.Parameter`: type, required, choices, min/max value or length, channel types)
and from the modal's `TextInput`s, so there is no second copy of any limit.

Each violation raises `InvalidInput`, whose message names the option and the limit; it is a
`CheckFailure`, so the command tree's error path tells the member privately, in their language.
"""

from __future__ import annotations

import math
import re
import unicodedata
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import discord
from discord import AppCommandOptionType as T
from discord import app_commands

from bot.core.followups import MAX_ID
from bot.core.messages import Code, Message, msg
from bot.discord_ui.i18n.render import choice_name, option_name
from bot.discord_ui.i18n.where import member_locale

if TYPE_CHECKING:
    from bot.discord_ui.client import MjcordBot

# Discord's INTEGER and NUMBER options hold values within ±2^53 (the Discord developer docs,
# "Application Command Option Type": "Any integer between -2^53+1 and 2^53-1").
DISCORD_NUMBER_LIMIT = 2**53 - 1

#: How much of an option's list of choices a refusal quotes.
MAX_CHOICES_SHOWN = 500

_SAFE_NAME = re.compile(r"[-_\w]{1,32}")
_SUB = (T.subcommand.value, T.subcommand_group.value)
# Where each kind of entity lives in the interaction's `resolved` data.
_RESOLVED_KEYS: dict[T, tuple[str, ...]] = {
    T.user: ("users",),
    T.channel: ("channels",),
    T.role: ("roles",),
    T.mentionable: ("users", "roles"),
    T.attachment: ("attachments",),
}


class InvalidInput(app_commands.CheckFailure):
    """An option or modal field outside its declaration; `message` says which and why."""

    def __init__(self, message: Message) -> None:
        super().__init__(message.plain())
        self.message = message


def _no_such_option(command: str, name: object) -> InvalidInput:
    """An unknown option, named only when the name is a plain word (crafted names can hold
    anything: mentions, markdown, megabytes)."""
    if isinstance(name, str) and _SAFE_NAME.fullmatch(name):
        return InvalidInput(
            msg("/{command} has no option {option}.", command=command, option=Code(name))
        )
    return InvalidInput(msg("/{command} has no such option.", command=command))


def _blank(text: str) -> bool:
    """True when nothing in `text` would show: spaces, and invisible format characters (zero
    widths, joiners, soft hyphens, BOM — Unicode categories Z and C) count as nothing."""
    return all(unicodedata.category(ch)[0] in "ZC" for ch in text)


def leaf_options(options: object) -> list[Any]:
    """The options of the (sub)command that runs: descend through subcommand groups."""
    current = options if isinstance(options, list) else []
    while current and isinstance(current[0], dict) and current[0].get("type") in _SUB:
        inner = current[0].get("options")
        current = inner if isinstance(inner, list) else []
    return current


def check_command(interaction: discord.Interaction[MjcordBot]) -> None:
    """Check every option of a slash command interaction against the command's parameters.

    Does nothing for an interaction whose command the tree does not know: the tree answers
    that one itself (CommandNotFound).
    """
    command = interaction.command
    locale = member_locale(interaction)  # the refusal is the member's alone: their language
    data: dict[str, Any] = dict(interaction.data or {})
    if not isinstance(command, app_commands.Command):
        return
    params = {p.display_name: p for p in command.parameters}
    resolved = data.get("resolved") if isinstance(data.get("resolved"), dict) else {}
    seen: set[str] = set()
    for option in leaf_options(data.get("options")):
        name = option.get("name") if isinstance(option, dict) else None
        param = params.get(name) if isinstance(name, str) else None
        if param is None:
            raise _no_such_option(command.qualified_name, name)
        shown = shown_name(param, locale)
        if param.display_name in seen:
            raise InvalidInput(msg("{name} was given twice.", name=shown))
        seen.add(param.display_name)
        check_value(param, option, resolved or {}, shown, locale)
    for param in params.values():
        if param.required and param.display_name not in seen:
            raise InvalidInput(msg("{name} is required.", name=shown_name(param, locale)))


def shown_name(param: app_commands.Parameter, locale: str) -> Code:
    """The option's name as the member's client shows it, as inert code."""
    return Code(option_name(param.display_name, locale))


def check_value(
    param: app_commands.Parameter,
    option: Mapping[str, Any],
    resolved: Any,
    name: Code,
    locale: str = "en-US",
) -> None:
    """One option's value against its parameter's declaration (`name`: the option as the
    member's sentence names it; `locale`: their language, for the choices it lists)."""
    value = option.get("value")
    kind = param.type
    if option.get("type") != kind.value:
        raise InvalidInput(_expected(param, name))
    if kind is T.string:
        _check_string(param, name, value)
    elif kind is T.integer:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidInput(msg("{name} must be a whole number.", name=name))
        _check_range(param, name, value)
    elif kind is T.number:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise InvalidInput(msg("{name} must be a number.", name=name))
        _check_range(param, name, value)
    elif kind is T.boolean:
        if not isinstance(value, bool):
            raise InvalidInput(msg("{name} must be true or false.", name=name))
    elif kind in _RESOLVED_KEYS:
        _check_resolved(param, name, value, resolved)
    if param.choices and value not in [c.value for c in param.choices]:
        names = ", ".join(choice_name(c.name, locale) for c in param.choices)
        if len(names) > MAX_CHOICES_SHOWN:  # 25 choices of 100 characters would not fit
            names = names[: MAX_CHOICES_SHOWN - 1] + "…"
        raise InvalidInput(msg("{name} must be one of: {choices}.", name=name, choices=names))


def _expected(param: app_commands.Parameter, name: Code) -> Message:
    """ "`x` must be …": what a value of the parameter's type is."""
    match param.type:
        case T.string:
            return msg("{name} must be text.", name=name)
        case T.integer:
            return msg("{name} must be a whole number.", name=name)
        case T.number:
            return msg("{name} must be a number.", name=name)
        case T.boolean:
            return msg("{name} must be true or false.", name=name)
        case T.attachment:
            return msg("{name} must be an attached file.", name=name)
        case T.user:
            return msg("{name} must be a member.", name=name)
        case T.channel:
            return msg("{name} must be a channel.", name=name)
        case T.role:
            return msg("{name} must be a role.", name=name)
        case T.mentionable:
            return msg("{name} must be a member or role.", name=name)
    return msg("{name} must be a value of its kind.", name=name)


def _too_long(name: Code, length: int, limit: int) -> Message:
    return msg(
        "{name} is {length} characters long; the limit is {limit}.",
        name=name,
        length=length,
        limit=limit,
    )


def _too_short(name: Code, limit: int) -> Message:
    return msg("{name} must be at least {limit} characters long.", name=name, limit=limit)


def _check_string(param: app_commands.Parameter, name: Code, value: object) -> None:
    if not isinstance(value, str):
        raise InvalidInput(msg("{name} must be text.", name=name))
    if _blank(value):
        raise InvalidInput(msg("{name} can't be empty.", name=name))
    # For a string parameter discord.py keeps min_length/max_length in min_value/max_value
    # (Parameter.to_dict sends them as min_length/max_length).
    low, high = param.min_value, param.max_value
    if high is not None and len(value) > high:
        raise InvalidInput(_too_long(name, len(value), int(high)))
    if low is not None and len(value) < low:
        raise InvalidInput(_too_short(name, int(low)))


def _number(value: float) -> str:
    """A limit as a sentence shows it: whole numbers in full (`1000000`, not `:g`'s `1e+06`)."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _check_range(param: app_commands.Parameter, name: Code, value: float) -> None:
    low = param.min_value if param.min_value is not None else -DISCORD_NUMBER_LIMIT
    high = param.max_value if param.max_value is not None else DISCORD_NUMBER_LIMIT
    if not low <= value <= high:
        raise InvalidInput(
            msg(
                "{name} must be from {low} to {high}.",
                name=name,
                low=_number(low),
                high=_number(high),
            )
        )


def _not_found(param: app_commands.Parameter, name: Code) -> Message:
    match param.type:
        case T.user:
            return msg("{name}: I couldn't find that member. Please pick it again.", name=name)
        case T.channel:
            return msg("{name}: I couldn't find that channel. Please pick it again.", name=name)
        case T.role:
            return msg("{name}: I couldn't find that role. Please pick it again.", name=name)
    return msg("{name}: I couldn't find that member or role. Please pick it again.", name=name)


def _check_resolved(
    param: app_commands.Parameter, name: Code, value: object, resolved: Any
) -> None:
    key = str(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""
    if not key.isdigit() or not 0 < int(key) <= MAX_ID:
        raise InvalidInput(_expected(param, name))
    entry = None
    for group in _RESOLVED_KEYS[param.type]:
        table = resolved.get(group) if isinstance(resolved, dict) else None
        if isinstance(table, dict) and isinstance(table.get(key), dict):
            entry = table[key]
            break
    no_details = msg(
        "{name}: Discord did not send the file's details. Please attach it again.", name=name
    )
    if entry is None:
        raise InvalidInput(no_details if param.type is T.attachment else _not_found(param, name))
    if param.type is T.attachment:
        size, url, filename = entry.get("size"), entry.get("url"), entry.get("filename")
        if not (isinstance(size, int) and size >= 0 and isinstance(url, str)):
            raise InvalidInput(no_details)
        if not isinstance(filename, str):
            raise InvalidInput(
                msg("{name}: the file has no name. Please attach it again.", name=name)
            )
    if param.type is T.channel and param.channel_types:
        allowed = {t.value for t in param.channel_types}
        if entry.get("type") not in allowed:
            raise InvalidInput(_wrong_channel(param.channel_types, name))


def _wrong_channel(kinds: Sequence[discord.ChannelType], name: Code) -> Message:
    """The channel kinds the option takes, as one sentence (threads, text channels, both)."""
    threads = any("thread" in kind.name for kind in kinds)
    names = {kind.name for kind in kinds if "thread" not in kind.name}
    if "text" in names:
        names.discard("news")  # an announcement channel is a text channel to members
    others = tuple(sorted(names))
    if threads and not others:
        return msg("{name} must be a thread.", name=name)
    if others == ("text",) and not threads:
        return msg("{name} must be a text channel.", name=name)
    if others == ("text",):
        return msg("{name} must be a text channel or thread.", name=name)
    words = ", ".join(kind.replace("_", " ") for kind in others)
    return msg("{name} must be a channel of these kinds: {kinds}.", name=name, kinds=words)


def check_fields(fields: Sequence[discord.ui.TextInput[Any]]) -> None:
    """A modal's answers against each text input's declared required/min/max length."""
    for field in fields:
        # discord.py 2.6+ deprecates TextInput.label (labels move to ui.Label) and forces its
        # warning on with simplefilter("always"); recording keeps it out of the log.
        with warnings.catch_warnings(record=True):
            name = Code(field.label or field.custom_id)
        value = field.value or ""
        if field.required and _blank(value):
            raise InvalidInput(msg("{name} can't be empty.", name=name))
        if field.max_length is not None and len(value) > field.max_length:
            raise InvalidInput(_too_long(name, len(value), field.max_length))
        if value and field.min_length is not None and len(value) < field.min_length:
            raise InvalidInput(_too_short(name, field.min_length))
