"""The gettext catalogues, loaded once: look a string up in a locale, with fallbacks.

Babel reads the `.po` files directly (no compiled `.mo` to keep in step). A lookup falls back
from the exact locale (`zh-TW`) to English, never to another language: Traditional Chinese
readers should not get Simplified text, nor Brazilians European Portuguese.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

#: Where the catalogues live (inside the package, so an installed bot carries them).
LOCALE_DIR = Path(__file__).resolve().parents[2] / "locales"

#: The locales mjcord speaks besides English, as Discord spells them (Discord's "Locales" table:
#: https://discord.com/developers/docs/reference#locales).
LOCALES: tuple[str, ...] = ("ja", "zh-CN", "zh-TW", "ko", "es-ES", "pt-BR", "fr", "de", "ru")

#: The English locales Discord has; English is the source text, so these need no catalogue.
ENGLISH: frozenset[str] = frozenset({"en-US", "en-GB"})


def catalogue_path(locale: str, domain: str) -> Path:
    """The `.po` file of one locale and domain."""
    return LOCALE_DIR / locale / "LC_MESSAGES" / f"{domain}.po"


def template_path(domain: str) -> Path:
    """The domain's template (`.pot`): every string the code has, untranslated."""
    return LOCALE_DIR / f"{domain}.pot"


def read_catalogue(path: Path) -> Catalog:
    """One `.po` or `.pot` file, parsed. A locale's file is read as that locale's (the files
    have no header), so a plural message has as many forms as the language has (Russian 3,
    Japanese 1), not gettext's default 2."""
    locale = path.parent.parent.name if path.parent.name == "LC_MESSAGES" else None
    with path.open("rb") as handle:
        return read_po(handle, locale=locale.replace("-", "_") if locale else None)


#: A translation: one string, or a plural message's forms in the locale's gettext order.
Translation = str | tuple[str, ...]


@dataclass(frozen=True)
class Catalogues:
    """The translations of one domain, by locale: `(context, English singular) → translated`."""

    domain: str
    by_locale: dict[str, dict[tuple[str | None, str], Translation]] = field(default_factory=dict)

    def lookup_any(self, locale: str, text: str, context: str | None = None) -> Translation | None:
        """The translation (or plural forms) of `text` in `locale`, or None."""
        table = self.by_locale.get(locale)
        return None if table is None else table.get((context, text))

    def lookup(self, locale: str, text: str, context: str | None = None) -> str | None:
        """The translation of a singular `text` in `locale`, or None (English, or missing)."""
        found = self.lookup_any(locale, text, context)
        return found if isinstance(found, str) else None


@cache
def load_catalogues(domain: str) -> Catalogues:
    """Every locale's catalogue of `domain` that exists on disk (read once per process)."""
    by_locale: dict[str, dict[tuple[str | None, str], Translation]] = {}
    for locale in LOCALES:
        path = catalogue_path(locale, domain)
        if not path.is_file():
            continue
        table: dict[tuple[str | None, str], Translation] = {}
        for message in read_catalogue(path):
            if not message.id or message.fuzzy:
                continue
            if isinstance(message.id, str) and isinstance(message.string, str):
                if message.string:
                    table[(message.context, message.id)] = message.string
            elif isinstance(message.id, tuple | list) and isinstance(message.string, tuple | list):
                forms = tuple(str(form) for form in message.string)
                if forms and all(forms):
                    table[(message.context, str(message.id[0]))] = forms
        by_locale[locale] = table
    return Catalogues(domain, by_locale)
