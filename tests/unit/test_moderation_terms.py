"""The banned-term matcher: whole words, case, accents, invisible characters and look-alike
letters, the whole prompt, patterns and their time bounds (examples and properties)."""

from __future__ import annotations

import re
import time
import unicodedata

import pytest
from confusable_homoglyphs import confusables
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from bot.core.moderation import (
    BadTerm,
    Term,
    TermKind,
    TermMatcher,
    check_term,
    check_terms,
    fold,
)
from bot.core.moderation.bounds import TEST_PROMPT_LENGTH
from bot.discord_ui.i18n.render import render

MAX_SCAN = TEST_PROMPT_LENGTH


def matcher(*words: str, patterns: tuple[str, ...] = ()) -> TermMatcher:
    terms = [check_term(TermKind.WORD, w) for w in words]
    terms += [check_term(TermKind.PATTERN, p) for p in patterns]
    return TermMatcher(terms)


@pytest.mark.parametrize(
    "prompt",
    ["gore", "GORE", "Göre", "ＧＯＲＥ", "a gore-fest", "(gore)", "lots of gore!", "gore\nart"],
)
def test_a_word_matches_whatever_its_case_and_accents(prompt: str) -> None:
    assert matcher("gore").find(prompt) is not None


@pytest.mark.parametrize("prompt", ["gorgeous", "Gregory", "gored", "ungore", "g o r e", "go_re"])
def test_a_word_matches_only_whole_words(prompt: str) -> None:
    assert matcher("gore").find(prompt) is None


def test_a_phrase_matches_with_any_spacing_and_an_accented_term_matches_plain_text() -> None:
    m = matcher("blood  bath", "café")
    assert m.find("a BLOOD\tbath scene") is not None
    assert m.find("the cafe at night") is not None
    assert m.find("bloodbath") is None


def test_patterns_are_case_and_accent_insensitive_and_whole_word() -> None:
    m = matcher(patterns=(r"n[a@]ked", r"kill\w*"))
    assert m.find("a NÄKED statue") is not None
    assert m.find("n@ked") is not None
    assert m.find("killers everywhere") is not None
    assert m.find("skill") is None


def test_the_refusal_names_what_matched() -> None:
    refusal = check_terms(matcher("gore"), "Some GORE, please")
    assert refusal is not None
    assert render(refusal.reason, "en-US") == (
        "Your prompt contains “gore”, which this server does not allow; please rephrase it."
    )
    assert check_terms(matcher("gore"), "a lighthouse") is None


@pytest.mark.parametrize(
    "pattern",
    [
        r"(a+)+",
        r"(\w+\s?)+$",
        r"(a|aa)+",
        r"(x+x+)+y",
        "a" * 101,
        r".*.*.*x",
        "(",
        "",
    ],
)
def test_dangerous_or_broken_patterns_are_refused_when_added(pattern: str) -> None:
    with pytest.raises(BadTerm):
        check_term(TermKind.PATTERN, pattern)


def test_a_stored_pattern_that_is_no_longer_accepted_is_skipped() -> None:
    m = TermMatcher([Term(TermKind.PATTERN, r"(a+)+b"), Term(TermKind.WORD, "gore")])
    assert m.find("a" * 5000) is None
    assert m.find("gore") is not None


word_text = st.text(alphabet=st.characters(categories=["Ll", "Lu"]), min_size=2, max_size=12)
separators = st.sampled_from([" ", ", ", "! ", "\n", " (", ") ", " - "])
filler = st.lists(word_text, max_size=6).map(" ".join)


def accent(text: str, data: st.DataObject) -> str:
    """Randomly change case and add combining accents to ASCII letters."""
    out = []
    for c in text:
        c = c.upper() if data.draw(st.booleans()) else c
        if c.isascii() and c.isalpha() and data.draw(st.booleans()):
            c = unicodedata.normalize("NFC", c + data.draw(st.sampled_from(["\u0301", "\u0308"])))
        out.append(c)
    return "".join(out)


@given(
    word=st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=2, max_size=10),
    before=filler,
    after=filler,
    left=separators,
    right=separators,
    data=st.data(),
)
def test_a_banned_word_is_found_in_any_prompt_that_contains_it(
    word: str, before: str, after: str, left: str, right: str, data: st.DataObject
) -> None:
    prompt = f"{before}{left}{accent(word, data)}{right}{after}"
    hit = matcher(word).find(prompt)
    assert hit is not None and fold(hit.matched) == word


@given(word=st.text(alphabet="abcdefghij", min_size=2, max_size=8), prompt=st.text(max_size=300))
def test_a_prompt_without_the_word_never_matches(word: str, prompt: str) -> None:
    assume(word not in fold(prompt))
    assert matcher(word).find(prompt) is None


@given(word=word_text, prompt=st.text(max_size=300))
def test_a_match_is_always_a_whole_word_of_the_folded_prompt(word: str, prompt: str) -> None:
    try:
        m = matcher(word)
    except BadTerm:
        return
    hit = m.find(prompt)
    if hit is not None:
        folded = fold(prompt)
        assert re.search(r"(?<!\w)" + re.escape(hit.matched) + r"(?!\w)", folded)


pattern_atoms = st.sampled_from(
    ["a", "b", r"\w", r"\d", ".", "[ab]", "(a)", "(a|b)", r"\s", "x", "(?:ab)"]
)
quantifiers = st.sampled_from(["", "", "*", "+", "?", "{2,5}", "{1,}"])


# Derandomized: the same patterns every run (a random draw made this the suite's slowest and
# least predictable unit test). The bound is on this thread's CPU time, which a loaded machine
# does not stretch; the matcher's own time limit is wall time and far below it.
@settings(
    max_examples=100,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
    deadline=None,
    database=None,
)
@given(
    parts=st.lists(st.tuples(pattern_atoms, quantifiers), min_size=1, max_size=6),
    wrap=st.sampled_from(["{}", "({})", "({})+", "({})*", "(?:{}){{2,}}"]),
    text=st.sampled_from(["a" * MAX_SCAN, "ab " * 1333, "a1" * 2000, "x" * (MAX_SCAN - 1) + "!"]),
)
def test_every_accepted_pattern_matches_a_worst_case_prompt_quickly(
    parts: list[tuple[str, str]], wrap: str, text: str
) -> None:
    pattern = wrap.format("".join(a + q for a, q in parts))
    try:
        term = check_term(TermKind.PATTERN, pattern)
    except BadTerm:
        return
    m = TermMatcher([term])
    start = time.thread_time()
    hit = m.find(text)
    assert time.thread_time() - start < 0.5, f"{pattern!r} took too long"
    # A pattern that ran out of time refuses the prompt: nothing passes unchecked.
    if hit is not None and hit.timed_out:
        assert check_terms(m, text) is not None


# --- the normaliser: invisible characters, look-alike letters, the whole prompt -----------------


@pytest.mark.parametrize(
    "prompt",
    [
        "g\u200bore",  # zero-width space
        "go\u00adre",  # soft hyphen
        "g\u200do\u200cre",  # zero-width joiner and non-joiner
        "go\u2060re",  # word joiner
        "g\u043ere",  # Cyrillic о
        "\u0261\u03bf\u0433\u0435",  # Latin script g, Greek omicron, Cyrillic г and е
        "GORE".replace("O", "\u039f"),  # Greek capital omicron
        "𝐠𝐨𝐫𝐞",
        "g0re",
    ],
)
def test_invisible_characters_and_look_alike_letters_do_not_hide_a_word(prompt: str) -> None:
    hit = matcher("gore").find(f"a {prompt} scene")
    assert hit is not None and hit.matched == "gore"


def test_a_term_is_found_anywhere_in_a_prompt_of_any_length() -> None:
    long_prompt = "a lighthouse at dusk, " * 500 + "gore"
    assert len(long_prompt) > 10_000
    hit = matcher("gore").find(long_prompt)
    assert hit is not None and hit.matched == "gore"
    refusal = check_terms(matcher(patterns=(r"n[a@]ked",)), "x " * 5000 + "n@ked")
    assert refusal is not None


def _look_alikes(letter: str) -> list[str]:
    """Every single character Unicode's confusables table (as the library ships it) lists as
    looking like `letter` or its capital: other scripts' letters and digits, and compatibility
    forms whose NFKC is the letter itself."""
    out: set[str] = set()
    for form in (letter, letter.upper()):
        found = confusables.is_confusable(form, greedy=True)
        for glyph in (h["c"] for h in found[0]["homoglyphs"]) if found else ():
            if len(glyph) != 1 or glyph.isascii():
                continue
            nfkc = unicodedata.normalize("NFKC", glyph)
            if nfkc.casefold() == letter or (
                nfkc == glyph and unicodedata.category(glyph)[0] in "LN"
            ):
                out.add(glyph)
    return sorted(out)


LOOK_ALIKES = {c: _look_alikes(c) for c in "abcdefghijklmnopqrstuvwxyz"}
FORMAT_CHARACTERS = st.characters(categories=["Cf"])
banned_words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=3, max_size=10)


@st.composite
def disguised(draw: st.DrawFn, word: str) -> str:
    """`word` with look-alike substitutions and format characters inserted anywhere."""
    out = []
    for i, c in enumerate(word):
        if LOOK_ALIKES[c] and draw(st.booleans()):
            c = draw(st.sampled_from(LOOK_ALIKES[c]))
        elif draw(st.booleans()):
            c = c.upper()
        out.append(c)
        if i < len(word) - 1:
            out.append(draw(st.text(alphabet=FORMAT_CHARACTERS, max_size=3)))
    return "".join(out)


@settings(max_examples=300, deadline=None)
@given(
    word=banned_words,
    before=filler,
    after=filler,
    left=separators,
    right=separators,
    data=st.data(),
)
def test_any_format_characters_and_look_alike_substitutions_still_match(
    word: str, before: str, after: str, left: str, right: str, data: st.DataObject
) -> None:
    hidden = data.draw(disguised(word))
    prompt = f"{before}{left}{hidden}{right}{after}"
    hit = matcher(word).find(prompt)
    assert hit is not None, (word, hidden)
    assert fold(hit.matched) == word


@settings(max_examples=300, deadline=None)
@given(
    word=banned_words,
    prefix=st.text(alphabet="abcdefghijklmnopqrstuvwxyz", max_size=4),
    suffix=st.text(alphabet="abcdefghijklmnopqrstuvwxyz", max_size=4),
    before=filler,
    after=filler,
    data=st.data(),
)
def test_a_word_that_merely_contains_the_term_does_not_match_however_it_is_written(
    word: str, prefix: str, suffix: str, before: str, after: str, data: st.DataObject
) -> None:
    assume(prefix or suffix)
    assume(word not in fold(before).split() and word not in fold(after).split())
    hidden = data.draw(disguised(word))
    prompt = f"{before} {prefix}{hidden}{suffix} {after}"
    assert matcher(word).find(prompt) is None, prompt


def test_look_alikes_fold_to_one_letter_whatever_the_table_offers() -> None:
    # Cyrillic capital palochka Ӏ looks like l in the table (its small form like i).
    assert matcher("kill").find("KI\u04c0\u04c0 them") is not None
    assert matcher("kill").find("KI11") is not None  # ASCII digits one and zero fold too
    assert fold("\u04c0") == fold("1") == "l" and fold("I") == fold("\u04cf") == "i"


def test_gorgeous_is_not_gore_however_it_is_written() -> None:
    m = matcher("gore")
    for prompt in ["gorgeous", "GORGEOUS", "g\u043ergeous", "gor\u200bgeous", "gored", "ungore"]:
        assert m.find(prompt) is None, prompt
