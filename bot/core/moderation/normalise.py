"""The text banned terms are compared on, so that invisible characters, accents, compatibility
forms and look-alike letters from other scripts do not hide a term.

Each character of a prompt is folded on its own:

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

from confusable_homoglyphs import confusables


@functools.lru_cache(maxsize=16384)
def _compatible(char: str) -> str:
    """Steps 1 and 2 for one character: nothing for a format character, else its compatibility
    form without combining marks."""
    if unicodedata.category(char) == "Cf":
        return ""
    decomposed = unicodedata.normalize("NFKD", char)
    kept = "".join(c for c in decomposed if not unicodedata.category(c).startswith("M"))
    return unicodedata.normalize("NFC", kept)


def _bare(char: str) -> str:
    return _compatible(char).casefold()


@functools.lru_cache(maxsize=16384)
def look_alike(char: str) -> str:
    """Step 3: the ASCII letter `char` looks like, per Unicode's confusables table, or `char`.

    ASCII letters are their own prototypes. When the table offers several letters, a
    lowercase one wins (Latin capital iota `Ɩ` looks like `l` and `I`, and `I` would fold to
    `i`), then the alphabet decides, so the choice is stable.
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
    # Look-alikes are looked up before and after case folding: a capital can look like a
    # Latin letter that its small form does not (Greek Ν looks like N, its ν like v).
    return "".join(
        look_alike(c) for c in "".join(look_alike(c) for c in _compatible(char)).casefold()
    )


def fold(text: str) -> str:
    """The whole text folded (steps 1–3), whatever its length: `Ｇｏｒｅ`, `GÖRE`, `gore` with
    a zero-width space inside and `gоre` with a Cyrillic о all become `gore`."""
    return "".join(_fold_char(c) for c in text)


def plain(text: str) -> str:
    """The whole text with steps 1–2 only (format characters, compatibility forms, accents,
    case): what moderators' regular expressions see besides the fully folded text."""
    return "".join(_bare(c) for c in text)
