"""The catalogues, checked as Discord will check what they produce.

Every localisable command string exists in every locale; placeholders match their English;
names follow Discord's name rule and stay unique inside a command; no localised string is over
Discord's length limits; and the template on disk is what the code declares today (so a changed
description cannot silently fall back to English).
"""

from __future__ import annotations

import string
import unicodedata
from collections.abc import Callable

import pytest
from babel.messages.catalog import Catalog
from babel.messages.plurals import get_plural

from bot.discord_ui.i18n.catalog import LOCALES, catalogue_path, read_catalogue, template_path
from bot.discord_ui.i18n.extract import (
    AnyCommand,
    all_strings,
    command_strings,
    messages_template,
    template,
    template_bytes,
    top_level_commands,
)
from bot.discord_ui.i18n.render import DOMAIN as MESSAGES
from bot.discord_ui.i18n.translator import DOMAIN

MAX_NAME = 32
MAX_DESCRIPTION = 100
MAX_CHOICE_NAME = 100
MAX_COMMAND_CHARACTERS = 8000


def discord_name_ok(name: str) -> bool:
    """Discord's name rule, `^[-_\\p{L}\\p{N}\\p{sc=Deva}\\p{sc=Thai}]{1,32}$`, lower case where
    the script has case (Application Command Object, "Application Command Naming":
    https://discord.com/developers/docs/interactions/application-commands)."""

    def allowed(char: str) -> bool:
        if char in "-_" or unicodedata.category(char)[0] in "LN":
            return True
        return unicodedata.name(char, "").startswith(("DEVANAGARI", "THAI"))

    return 1 <= len(name) <= MAX_NAME and all(map(allowed, name)) and name == name.lower()


def _translations(locale: str) -> dict[tuple[str | None, str], str]:
    catalog = read_catalogue(catalogue_path(locale, DOMAIN))
    return {
        (m.context, m.id): m.string
        for m in catalog
        if m.id and isinstance(m.id, str) and isinstance(m.string, str) and not m.fuzzy
    }


def _placeholders(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}


@pytest.mark.parametrize(("domain", "build"), [(DOMAIN, template), (MESSAGES, messages_template)])
def test_the_templates_on_disk_are_what_the_code_declares(
    domain: str, build: Callable[[], Catalog]
) -> None:
    on_disk = template_path(domain).read_bytes()
    assert template_bytes(build()) == on_disk, "run `python -m bot.discord_ui.i18n.extract`"


@pytest.mark.parametrize("locale", LOCALES)
def test_every_command_string_is_translated(locale: str) -> None:
    table = _translations(locale)
    missing = [text for context, text in all_strings() if not table.get((context, text))]
    assert not missing, f"{locale} lacks: {missing}"


@pytest.mark.parametrize("locale", LOCALES)
def test_placeholders_match_their_english(locale: str) -> None:
    wrong = {
        text: translated
        for (_, text), translated in _translations(locale).items()
        if _placeholders(text) != _placeholders(translated)
    }
    assert not wrong


@pytest.mark.parametrize("locale", LOCALES)
def test_localised_names_and_lengths_pass_discords_rules(locale: str) -> None:
    table = _translations(locale)
    problems = []
    for (context, _english), translated in table.items():
        if context == "option name":
            if not discord_name_ok(translated):
                problems.append(f"name {translated!r} breaks Discord's name rule")
        elif context == "description" and len(translated) > MAX_DESCRIPTION:
            problems.append(f"description over {MAX_DESCRIPTION}: {translated!r}")
        elif context == "choice" and len(translated) > MAX_CHOICE_NAME:
            problems.append(f"choice over {MAX_CHOICE_NAME}: {translated!r}")
    assert not problems


@pytest.mark.parametrize("locale", LOCALES)
def test_option_names_stay_unique_inside_each_command(locale: str) -> None:
    from discord import app_commands

    table = _translations(locale)

    def leaves(command: object) -> list[AnyCommand]:
        if isinstance(command, app_commands.Group):
            return [leaf for child in command.commands for leaf in leaves(child)]
        assert isinstance(command, app_commands.Command)
        return [command]

    for top in top_level_commands():
        for command in leaves(top):
            names = [table.get(("option name", p.name), p.name) for p in command.parameters]
            assert len(names) == len(set(names)), f"{locale} /{command.qualified_name}: {names}"


@pytest.mark.parametrize("locale", LOCALES)
def test_no_command_exceeds_discords_character_budget(locale: str) -> None:
    table = _translations(locale)
    for top in top_level_commands():
        total = len(top.name) + sum(
            len(table.get((context, text), text)) for context, text in command_strings(top)
        )
        assert total <= MAX_COMMAND_CHARACTERS, f"/{top.name} in {locale}: {total}"


def test_the_name_rule_rejects_what_discord_rejects() -> None:
    assert discord_name_ok("画像1") and discord_name_ok("por_día") and discord_name_ok("в_день")
    assert not discord_name_ok("Two words") and not discord_name_ok("Bild")
    assert not discord_name_ok("x" * 33) and not discord_name_ok("")


# --- member-facing messages -------------------------------------------------------------------

MAX_MESSAGE = 2000  # Discord's message content limit


def _messages(locale: str) -> dict[str, object]:
    catalog = read_catalogue(catalogue_path(locale, MESSAGES))
    out: dict[str, object] = {}
    for m in catalog:
        if m.id and not m.fuzzy:
            key = m.id if isinstance(m.id, str) else m.id[0]
            out[key] = m.string
    return out


@pytest.mark.parametrize("locale", LOCALES)
def test_every_message_is_translated_with_the_locales_plural_forms(locale: str) -> None:
    table = _messages(locale)
    forms = get_plural(locale.replace("-", "_")).num_plurals
    problems = []
    for entry in (e for e in messages_template() if e.id):
        key = entry.id if isinstance(entry.id, str) else entry.id[0]
        translated = table.get(key)
        if isinstance(entry.id, str):
            if not translated:
                problems.append(f"missing: {key!r}")
        elif not isinstance(translated, tuple | list) or len(translated) != forms:
            problems.append(f"needs {forms} plural forms: {key!r}")
        elif not all(translated):
            problems.append(f"an empty plural form: {key!r}")
    assert not problems, problems


@pytest.mark.parametrize("locale", LOCALES)
def test_messages_keep_their_placeholders_and_fit_in_a_discord_message(locale: str) -> None:
    table = _messages(locale)
    problems = []
    for entry in (e for e in messages_template() if e.id):
        english = [entry.id] if isinstance(entry.id, str) else list(entry.id)
        wanted = set().union(*(_placeholders(text) for text in english))
        key = english[0]
        found = table.get(key)
        for text in [found] if isinstance(found, str) else list(found or []):
            if _placeholders(text) - wanted or (
                isinstance(entry.id, str) and _placeholders(text) != wanted
            ):
                problems.append(f"placeholders differ: {text!r}")
            sample = text.format_map({name: "x" * 200 for name in _placeholders(text)})
            if len(sample) > MAX_MESSAGE:
                problems.append(f"over {MAX_MESSAGE} characters: {key!r}")
    assert not problems, problems
