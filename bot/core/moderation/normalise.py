"""The text banned terms are compared on, so that invisible characters, accents, compatibility
forms and look-alike letters from other scripts do not hide a term.

Each character of a prompt is folded on its own, which keeps a map from the folded text back to
the prompt (to show the member what matched):

1. format characters (Unicode category Cf: zero-width space and joiners, soft hyphen, word
   joiner, bidi controls) are removed;
2. NFKC's compatibility mapping (`ｇ`, `𝐠`, `ﬁ`), with combining marks (accents) dropped and
   case folded;
3. a letter or digit that is not a plain ASCII letter becomes the ASCII letter Unicode's
   confusables table says it looks like (Cyrillic `о` → `o`, Greek `ο` → `o`, `0` → `o`,
   `1` → `l`). The table is Unicode's confusables.txt as shipped by the `confusable_homoglyphs`
   package, read through its public `is_confusable`. Only letters and digits are folded, and
   only into letters, so the word boundaries the matcher relies on stay where they were.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from confusable_homoglyphs import confusables


@dataclass(frozen=True, slots=True)
class Folded:
    """A text as the matcher compares it, and for each of its characters the index of the
    source character it came from."""

    text: str
    origin: tuple[int, ...]

    def source(self, source: str, start: int, end: int) -> str:
        """The part of `source` that folded to `text[start:end]`, format characters removed."""
        if start >= end:
            return ""
        span = source[self.origin[start] : self.origin[end - 1] + 1]
        return "".join(c for c in span if unicodedata.category(c) != "Cf")


@functools.lru_cache(maxsize=16384)
def _bare(char: str) -> str:
    """Step 1 and 2 for one character: nothing for a format character, else its compatibility
    form without combining marks, case folded."""
    if unicodedata.category(char) == "Cf":
        return ""
    decomposed = unicodedata.normalize("NFKD", char)
    kept = "".join(c for c in decomposed if not unicodedata.category(c).startswith("M"))
    return unicodedata.normalize("NFC", kept).casefold()


@functools.lru_cache(maxsize=16384)
def look_alike(char: str) -> str:
    """Step 3: the ASCII letter `char` looks like, per Unicode's confusables table, or `char`.

    ASCII letters are their own prototypes. When the table offers several letters, a
    lowercase one wins (Cyrillic palochka `ӏ` looks like `l` and `I`; `I` folds to `i`), then
    the alphabet decides, so the choice is stable.
    """
    if char.isascii() and not char.isdigit():
        return char
    if unicodedata.category(char)[0] not in "LN":
        return char
    found = confusables.is_confusable(char, greedy=True)
    if not found:
        return char
    letters = sorted(
        (not glyph.islower(), glyph.casefold())
        for glyph in (h["c"] for h in found[0]["homoglyphs"])
        if len(glyph) == 1 and glyph.isascii() and glyph.isalpha()
    )
    return letters[0][1] if letters else char


@functools.lru_cache(maxsize=16384)
def _fold_char(char: str) -> str:
    return "".join(look_alike(c) for c in _bare(char))


def _fold_with(text: str, step: Callable[[str], str]) -> Folded:
    out: list[str] = []
    origin: list[int] = []
    for i, char in enumerate(text):
        folded = step(char)
        out.append(folded)
        origin.extend([i] * len(folded))
    return Folded("".join(out), tuple(origin))


def fold_prompt(text: str) -> Folded:
    """The whole text folded (steps 1–3), whatever its length, with its map back."""
    return _fold_with(text, _fold_char)


def plain_prompt(text: str) -> Folded:
    """The whole text with steps 1–2 only (format characters, compatibility forms, accents,
    case): what moderators' regular expressions see besides the fully folded text."""
    return _fold_with(text, _bare)


def fold(text: str) -> str:
    """Text as the matcher compares it (`Ｇｏｒｅ`, `GÖRE`, `gore` with a zero-width space inside
    and `gоre` with a Cyrillic о all become `gore`)."""
    return fold_prompt(text).text
