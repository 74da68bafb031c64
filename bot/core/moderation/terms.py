"""Banned terms: whole words (or phrases) and moderators' regular expressions, matched on the
whole prompt after folding (see `normalise`).

Moderators' patterns run on the `regex` module with a timeout, so no pattern can hold the bot
up: a pattern is refused when added if it is slow on long probe prompts, and a match that still
runs out of time refuses the prompt rather than letting it through unchecked.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

import regex

from bot.core.messages import Code, Message, msg
from bot.core.moderation.bounds import TERM_LENGTH, TEST_PROMPT_LENGTH
from bot.core.moderation.normalise import fold, plain
from bot.core.moderation.policy import Refusal, Rule

log = logging.getLogger(__name__)

#: Longest banned word or pattern accepted.
MAX_TERM_LENGTH = TERM_LENGTH
MAX_PATTERN_LENGTH = TERM_LENGTH
#: Most banned words and patterns one server may have.
MAX_TERMS = 500
#: Seconds a pattern may take on one probe prompt when it is added, and all of a server's
#: patterns together on one real prompt.
PROBE_TIMEOUT = 0.1
MATCH_TIMEOUT = 0.25


class TermKind(enum.StrEnum):
    """A whole word (or phrase), or a regular expression matched on whole words."""

    WORD = "word"
    PATTERN = "pattern"


@dataclass(frozen=True, slots=True)
class Term:
    """One banned term of a server."""

    kind: TermKind
    text: str


class BadTerm(ValueError):
    """A term moderators may not add; `message` says why, for the moderator."""

    def __init__(self, message: Message) -> None:
        super().__init__(message.plain())
        self.message = message


def _strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return unicodedata.normalize(
        "NFC", "".join(c for c in decomposed if not unicodedata.category(c).startswith("M"))
    )


def _compile(pattern: str) -> regex.Pattern[str]:
    # VERSION0 is Python's `re` behaviour; whole words as the word matcher counts them.
    return regex.compile(r"(?<!\w)(?:" + pattern + r")(?!\w)", regex.IGNORECASE | regex.VERSION0)


def _probes(pattern: str) -> list[str]:
    """Long prompts that make a backtracking pattern show its worst case: runs of the
    pattern's own letters (and of common ones) that end in a character that breaks a match,
    a word character (`_`) or not (`!`)."""
    letters = [*[c for c in dict.fromkeys(pattern) if c.isalnum()][:6], "a", "1"]
    size = TEST_PROMPT_LENGTH
    probes = [c * size + end for c in letters for end in ("!", "_")]
    probes += [(" ".join(letters) + " ") * (size // (2 * len(letters))), "ab " * (size // 3)]
    return probes


def check_term(kind: TermKind, text: str) -> Term:
    """The term as stored, or BadTerm saying why it is refused.

    Words are stored folded. Patterns are at most 100 characters, must compile, and must
    answer every probe prompt within `PROBE_TIMEOUT` seconds.
    """
    text = text.strip()
    if not text:
        raise BadTerm(msg("A banned term can't be empty."))
    if kind is TermKind.WORD:
        if len(text) > MAX_TERM_LENGTH:
            raise BadTerm(
                msg("A banned word can be at most {limit} characters.", limit=MAX_TERM_LENGTH)
            )
        folded = " ".join(fold(text).split())
        if not folded:
            raise BadTerm(msg("A banned word needs at least one visible character."))
        return Term(kind, folded)
    if len(text) > MAX_PATTERN_LENGTH:
        raise BadTerm(
            msg("A banned pattern can be at most {limit} characters.", limit=MAX_PATTERN_LENGTH)
        )
    pattern = _strip_accents(text)
    try:
        regex.compile(pattern)  # alone first, so an error's position is the moderator's
        compiled = _compile(pattern)
    except regex.error as exc:
        raise BadTerm(
            msg("That is not a valid regular expression: {error}.", error=Code(str(exc)))
        ) from None
    for probe in _probes(pattern):
        try:
            compiled.search(probe, timeout=PROBE_TIMEOUT)
        except TimeoutError:
            raise BadTerm(
                msg(
                    "That pattern could make the bot slow on long prompts: avoid a repeat inside "
                    "a repeat (like {nested}) and keep repeats small (like {small} instead of "
                    "{large}).",
                    nested=Code("(a+)+"),
                    small=Code("k{1,10}"),
                    large=Code("k+"),
                )
            ) from None
    return Term(kind, pattern)


@dataclass(frozen=True, slots=True)
class Hit:
    """A banned term found in a prompt, and the prompt's text it matched.

    `timed_out`: a pattern ran out of time on this prompt, which then counts as refused.
    """

    term: Term
    matched: str
    timed_out: bool = False


class TermMatcher:
    """All of a server's banned terms, compiled once; `find` returns the first hit.

    Matching is on the folded prompt and on whole words: `gore` matches `GÖRE!`, `gore`
    with a soft hyphen or a zero-width space inside, `gоre` with a Cyrillic о and `gore-fest`,
    but not `gorgeous` or `Gregory`.
    Patterns that no longer pass `check_term` (the rules got stricter) are skipped.
    """

    def __init__(self, terms: Iterable[Term]) -> None:
        self.terms = tuple(terms)
        # Words are folded again: a word stored by an older, weaker fold still matches.
        by_folded = {
            " ".join(fold(t.text).split()): t for t in self.terms if t.kind is TermKind.WORD
        }
        by_folded.pop("", None)
        words = sorted(by_folded, key=len, reverse=True)
        self._words = (
            regex.compile(
                r"(?<!\w)(?:"
                + "|".join(r"\s+".join(map(regex.escape, w.split())) for w in words)
                + r")(?!\w)",
                regex.VERSION0,
            )
            if words
            else None
        )
        self._by_word = by_folded
        self._patterns: list[tuple[Term, regex.Pattern[str]]] = []
        for term in self.terms:
            if term.kind is not TermKind.PATTERN:
                continue
            try:
                checked = check_term(term.kind, term.text)
            except BadTerm:
                log.warning("banned pattern %r is skipped: it no longer passes", term.text)
                continue
            self._patterns.append((term, _compile(checked.text)))

    async def find_async(self, prompt: str) -> Hit | None:
        """`find` without holding up the event loop: with patterns (which may run up to
        `MATCH_TIMEOUT`), in a worker thread; the `regex` module releases the GIL while it
        matches (`concurrent=True`)."""
        if not self._patterns:
            return self.find(prompt)
        return await asyncio.to_thread(self.find, prompt)

    def find(self, prompt: str) -> Hit | None:
        """The first banned term anywhere in the prompt, or None."""
        folded = fold(prompt)
        if self._words is not None:
            match = self._words.search(folded)
            if match:
                key = " ".join(match.group(0).split())
                return Hit(self._by_word.get(key, Term(TermKind.WORD, key)), match.group(0))
        if self._patterns:
            # One time budget for all of the server's patterns on this prompt.
            deadline = time.monotonic() + MATCH_TIMEOUT
            texts = (plain(prompt), folded)
            for term, rx in self._patterns:
                for text in texts:
                    try:
                        match = rx.search(
                            text,
                            concurrent=True,
                            timeout=max(0.001, deadline - time.monotonic()),
                        )
                    except TimeoutError:
                        log.warning("banned pattern %r ran out of time on a prompt", term.text)
                        return Hit(term, "", timed_out=True)
                    if match:
                        return Hit(term, match.group(0))
        return None


def check_terms(matcher: TermMatcher, prompt: str) -> Refusal | None:
    """Refuse a prompt containing a banned term; the member is told which words."""
    return refusal_for(matcher.find(prompt))


def refusal_for(hit: Hit | None) -> Refusal | None:
    """The refusal a hit brings (None for no hit)."""
    if hit is None:
        return None
    if hit.timed_out:
        return Refusal(
            Rule.TERM,
            msg(
                "Your prompt took too long to check against this server's banned patterns; "
                "please shorten or rephrase it."
            ),
        )
    shown = " ".join(hit.matched.split())[:40]
    return Refusal(
        Rule.TERM,
        msg(
            "Your prompt contains “{word}”, which this server does not allow; please rephrase it.",
            word=shown,
        ),
    )
