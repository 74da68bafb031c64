"""Command sync validated as Discord validates a bulk overwrite (``PUT .../commands``).

From discord/discord-api-docs ``docs/interactions/application-commands.md``:

* a CHAT_INPUT command's or option's name matches
  ``^[-_'\\p{L}\\p{N}\\p{sc=Deva}\\p{sc=Thai}]{1,32}$`` and uses the lowercase variant of every
  letter that has one; USER and MESSAGE command names are 1–32 characters, may be mixed case
  and contain spaces;
* descriptions are 1–100 characters for CHAT_INPUT commands and options, and empty for USER
  and MESSAGE commands; at most 25 options per level and 25 choices per option, choice names
  1–100 characters, string choice values at most 100;
* required options come before optional ones; names are unique per command type (and option
  names per level);
* at most 100 CHAT_INPUT, 15 USER and 15 MESSAGE commands;
* "the combined sum of characters for name, description, and value properties of a command
  and its options (including subcommands and choices)" is at most 8,000 — localized values
  count with the longest of each field.

A violation is the 50035 Invalid Form Body Discord answers, naming the field.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from bot.sandbox.discord.errors import invalid_form

CHAT_INPUT, USER, MESSAGE = 1, 2, 3
SUB_COMMAND, SUB_COMMAND_GROUP, STRING = 1, 2, 3
MAX_COMMANDS = {CHAT_INPUT: 100, USER: 15, MESSAGE: 15}
MAX_TOTAL_CHARACTERS = 8000
MAX_OPTIONS = 25
MAX_CHOICES = 25
# \p{sc=Deva} and \p{sc=Thai} admit the scripts' combining marks too (not letters in \p{L}).
_SCRIPT_RANGES = ((0x0900, 0x097F), (0xA8E0, 0xA8FF), (0x11B00, 0x11B5F), (0x0E00, 0x0E7F))


def _name_char_ok(ch: str) -> bool:
    if ch in "-_'":
        return True
    if unicodedata.category(ch)[0] in "LN":
        return True
    return any(lo <= ord(ch) <= hi for lo, hi in _SCRIPT_RANGES)


def valid_chat_input_name(name: Any) -> bool:
    """Discord's chat-input naming rule: the pattern, and lowercase where a letter has one."""
    if not isinstance(name, str) or not 1 <= len(name) <= 32:
        return False
    return all(_name_char_ok(ch) for ch in name) and name == name.lower()


def _length(value: Any, localized: Any) -> int:
    lengths = [len(str(value))] if value is not None else [0]
    if isinstance(localized, dict):
        lengths += [len(str(v)) for v in localized.values()]
    return max(lengths)


def _check_name(where: str, name: Any, localized: Any) -> None:
    for value in [name, *((localized or {}).values() if isinstance(localized, dict) else [])]:
        if not valid_chat_input_name(value):
            raise invalid_form(
                where,
                "APPLICATION_COMMAND_INVALID_NAME",
                "Command name is invalid: 1-32 lowercase letters, digits, - _ or '.",
            )


def _check_description(where: str, value: Any, localized: Any) -> None:
    for text in [value, *((localized or {}).values() if isinstance(localized, dict) else [])]:
        if not isinstance(text, str) or not 1 <= len(text) <= 100:
            raise invalid_form(
                where, "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
            )


def _options(where: str, options: Any) -> int:
    """Validate one level of options; return the characters they count."""
    if options is None:
        return 0
    if not isinstance(options, list):
        raise invalid_form(where, "LIST_TYPE_CONVERT", "Only iterables may be used in a ListType")
    if len(options) > MAX_OPTIONS:
        raise invalid_form(where, "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
    total = 0
    seen: set[str] = set()
    optional_seen = False
    for index, option in enumerate(options):
        here = f"{where}.{index}"
        name = option.get("name")
        _check_name(f"{here}.name", name, option.get("name_localizations"))
        if name in seen:
            raise invalid_form(
                f"{here}.name",
                "APPLICATION_COMMAND_OPTIONS_DUPLICATE_NAME",
                "Option names must be unique",
            )
        seen.add(name)
        _check_description(
            f"{here}.description",
            option.get("description"),
            option.get("description_localizations"),
        )
        total += _length(name, option.get("name_localizations"))
        total += _length(option.get("description"), option.get("description_localizations"))
        kind = option.get("type")
        if kind in (SUB_COMMAND, SUB_COMMAND_GROUP):
            total += _options(f"{here}.options", option.get("options"))
            continue
        if option.get("required"):
            if optional_seen:
                raise invalid_form(
                    f"{here}.required",
                    "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                    "Required options must be placed before non-required options",
                )
        else:
            optional_seen = True
        total += _choices(f"{here}.choices", kind, option.get("choices"))
    return total


def _choices(where: str, kind: Any, choices: Any) -> int:
    if not choices:
        return 0
    if len(choices) > MAX_CHOICES:
        raise invalid_form(where, "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
    total = 0
    for index, choice in enumerate(choices):
        name, value = choice.get("name"), choice.get("value")
        localized = choice.get("name_localizations")
        for text in [name, *((localized or {}).values() if isinstance(localized, dict) else [])]:
            if not isinstance(text, str) or not 1 <= len(text) <= 100:
                raise invalid_form(
                    f"{where}.{index}.name",
                    "BASE_TYPE_BAD_LENGTH",
                    "Must be between 1 and 100 in length.",
                )
        if kind == STRING and (not isinstance(value, str) or len(value) > 100):
            raise invalid_form(
                f"{where}.{index}.value", "BASE_TYPE_BAD_LENGTH", "Must be 100 or fewer in length."
            )
        total += _length(name, localized) + len(str(value))
    return total


def validate_commands(body: list[Any]) -> None:
    """Raise Discord's 50035 for the first rule a bulk overwrite breaks."""
    names: set[tuple[int, str]] = set()
    counts: dict[int, int] = {}
    for index, command in enumerate(body):
        if not isinstance(command, dict):
            raise invalid_form(
                f"{index}", "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType"
            )
        kind = command.get("type", CHAT_INPUT)
        name = command.get("name")
        if not isinstance(name, str) or not name:
            raise invalid_form(f"{index}.name", "BASE_TYPE_REQUIRED", "This field is required")
        if kind == CHAT_INPUT:
            _check_name(f"{index}.name", name, command.get("name_localizations"))
            _check_description(
                f"{index}.description",
                command.get("description"),
                command.get("description_localizations"),
            )
        elif not 1 <= len(name) <= 32:
            raise invalid_form(
                f"{index}.name", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 32 in length."
            )
        elif command.get("description"):
            raise invalid_form(
                f"{index}.description",
                "APPLICATION_COMMAND_DESCRIPTION_INVALID",
                "Context menu commands cannot have a description",
            )
        if (kind, name) in names:
            raise invalid_form(
                f"{index}.name",
                "APPLICATION_COMMANDS_DUPLICATE_NAME",
                f"Application command names must be unique ({name})",
            )
        names.add((kind, name))
        counts[kind] = counts.get(kind, 0) + 1
        if counts[kind] > MAX_COMMANDS.get(kind, 100):
            raise invalid_form(
                "_root", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_COMMANDS[kind]} or fewer in length."
            )
        total = _length(name, command.get("name_localizations"))
        total += _length(command.get("description"), command.get("description_localizations"))
        total += _options(f"{index}.options", command.get("options"))
        if total > MAX_TOTAL_CHARACTERS:
            raise invalid_form(
                f"{index}",
                "APPLICATION_COMMAND_TOO_LARGE",
                f"Command exceeds maximum size ({MAX_TOTAL_CHARACTERS})",
            )
