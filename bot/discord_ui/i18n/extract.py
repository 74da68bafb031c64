"""`python -m bot.discord_ui.i18n.extract`: refresh the command-string catalogues from the code.

Walks every cog's slash commands (names, descriptions, options, choices) as declared in the
classes, writes `bot/locales/commands.pot`, and merges it into every locale's `commands.po`
(Babel's update: translations kept, new strings added empty, vanished ones marked obsolete).
The check in the test suite fails while any locale lacks a string, so the translator's work
after a change to a command is: run this, fill in the empty `msgstr`s.
"""

from __future__ import annotations

import importlib
import inspect
import io
import pkgutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import write_po
from discord import app_commands
from discord.ext import commands

from bot.discord_ui.i18n.catalog import (
    LOCALES,
    catalogue_path,
    read_catalogue,
    template_path,
)
from bot.discord_ui.i18n.render import DOMAIN as MESSAGES
from bot.discord_ui.i18n.translator import DOMAIN

AnyCommand = app_commands.Command[Any, ..., Any]


def cog_classes() -> list[type[commands.Cog]]:
    """Every Cog class defined under bot.discord_ui.cogs, in module order."""
    import bot.discord_ui.cogs as package

    found: list[type[commands.Cog]] = []
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, commands.Cog) and cls.__module__ == module.__name__:
                found.append(cls)
    return found


def top_level_commands() -> list[AnyCommand | app_commands.Group]:
    """The slash commands and groups the cogs declare (what the tree syncs)."""
    out: list[AnyCommand | app_commands.Group] = []
    for cls in cog_classes():
        for command in cls.__cog_app_commands__:
            if isinstance(command, app_commands.Group) and command.parent is not None:
                continue
            out.append(command)
    return out


def command_strings(
    command: AnyCommand | app_commands.Group,
) -> Iterator[tuple[str, str]]:
    """`(msgctxt, English)` for every localisable string of a command and its children."""
    yield "description", command.description
    if isinstance(command, app_commands.Group):
        for child in command.commands:
            yield from command_strings(child)
        return
    for parameter in command.parameters:
        yield "option name", parameter.name
        yield "description", parameter.description
        for choice in parameter.choices:
            yield "choice", choice.name


def all_strings() -> list[tuple[str, str]]:
    """Every localisable command string, each once, in declaration order."""
    seen: dict[tuple[str, str], None] = {}
    for command in top_level_commands():
        for item in command_strings(command):
            seen.setdefault(item, None)
    return list(seen)


def template() -> Catalog:
    """The `.pot` catalogue of the command strings."""
    catalog = Catalog(project="mjcord", domain=DOMAIN, fuzzy=False)
    for context, text in all_strings():
        catalog.add(text, context=context)
    return catalog


#: Where member-facing sentences are written (`msg(...)`, `plural_msg(...)`, bot.core.messages).
KEYWORDS = {"msg": (1,), "plural_msg": (1, 2)}


def messages_template() -> Catalog:
    """The `.pot` catalogue of member-facing sentences, read from the source of `bot/`."""
    catalog = Catalog(project="mjcord", domain=MESSAGES, fuzzy=False)
    root = Path(__file__).resolve().parents[2]
    found = extract_from_dir(
        root,
        method_map=[("sandbox/**.py", "ignore"), ("**.py", "python")],
        keywords=KEYWORDS,
        comment_tags=("TRANSLATORS:",),
        strip_comment_tags=True,
    )
    for filename, lineno, text, comments, context in found:
        catalog.add(
            text, locations=[(f"bot/{filename}", lineno)], auto_comments=comments, context=context
        )
    return catalog


def template_bytes(pot: Catalog) -> bytes:
    """A template as written to disk (so the check can compare it with the code's)."""
    out = io.BytesIO()
    write_po(out, pot, omit_header=True, sort_output=False, width=100, no_location=True)
    return out.getvalue()


def write_domain(domain: str, pot: Catalog) -> None:
    """Write a domain's template and merge it into every locale's catalogue."""
    template_path(domain).write_bytes(template_bytes(pot))
    for locale in LOCALES:
        path = catalogue_path(locale, domain)
        if path.is_file():
            catalog = read_catalogue(path)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            catalog = Catalog(locale=locale.replace("-", "_"), domain=domain, fuzzy=False)
        catalog.update(pot, no_fuzzy_matching=True)
        with path.open("wb") as handle:
            write_po(
                handle,
                catalog,
                omit_header=True,
                ignore_obsolete=True,
                width=100,
                no_location=True,
            )


def main() -> int:
    """Write both templates and merge them into every locale's catalogues."""
    commands_pot, messages_pot = template(), messages_template()
    write_domain(DOMAIN, commands_pot)
    write_domain(MESSAGES, messages_pot)
    print(
        f"{len(commands_pot)} command strings, {len(messages_pot)} messages; "
        f"catalogues updated for {', '.join(LOCALES)}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
