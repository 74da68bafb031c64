"""Every member-facing message, rendered as Discord will show it, in every locale, within the
limit of the place it is shown.

The sweep renders each catalogue key through the real renderer (`bot.discord_ui.i18n.render`)
with long, realistic parameters: the longest file name a refusal quotes, a 200-character code
span, a mention, a timestamp, a CDN link; plural messages with counts that reach every form
of every language. A message is at most 2,000 characters (Discord's content limit) unless its
translator comment names a tighter one ("a button's label, at most 80 characters"), which is
then the limit (Discord's: 80 for a button label, 45 for a modal title or field label, 100 for
a placeholder, 256 for an embed title).
"""

from __future__ import annotations

import re
import string
from datetime import UTC, datetime

import pytest
from babel.messages.catalog import Message as Entry

from bot.core.messages import Code, Codes, Message, Option, Param, Stamp, UserRef
from bot.discord_ui.i18n.catalog import LOCALES
from bot.discord_ui.i18n.extract import messages_template
from bot.discord_ui.i18n.render import MAX_CODE, render
from bot.discord_ui.validation import MAX_CHOICES_SHOWN

MAX_CONTENT = 2000
EVERY_LOCALE = ("en-US", *LOCALES)
#: Counts that reach every plural form of the ten languages (Russian's few/many, zero, one).
COUNTS = (0, 1, 2, 3, 5, 11, 21, 22, 25, 101, 1_000_000)
_LIMIT = re.compile(r"at most (\d+) characters")


def _placeholders(text: str) -> list[str]:
    return [field for _, field, _, _ in string.Formatter().parse(text) if field]


def _long(name: str) -> Param:
    """A long, realistic value for a placeholder, by what its name holds."""
    samples: dict[str, Param] = {
        "who": UserRef(2**63 - 1),
        "requester": UserRef(2**63 - 1),
        "since": Stamp(datetime(2026, 1, 1, tzinfo=UTC)),
        "file": Code("f" * 64),  # safe_filename caps names at 64
        "option": Option("image1"),
        "link": "https://cdn.discordapp.com/attachments/" + "9" * 20 + "/" + "x" * 180 + ".png",
        "flags": Codes(tuple("--" + "z" * 30 for _ in range(3))),
        "bar": "`[" + "█" * 20 + "]` 100%",
        "command": "mod " + "x" * 26,
        "choices": "c" * MAX_CHOICES_SHOWN,
    }
    return samples.get(name, Code("x" * MAX_CODE))


def _short(name: str) -> Param:
    """A value as a label shows it: a button's number, a short word."""
    return "4" if name == "number" else "x"


def _messages(entry: Entry, sample: object) -> list[Message]:
    """The entry as the code builds it, with sample parameters; a plural one at every count."""
    english = [entry.id] if isinstance(entry.id, str) else list(entry.id)
    names = dict.fromkeys(n for text in english for n in _placeholders(text))
    if isinstance(entry.id, str):
        return [Message(entry.id, tuple((n, sample(n)) for n in names))]  # type: ignore[operator]
    params = tuple((n, sample(n)) for n in names if n != "count")  # type: ignore[operator]
    return [Message(english[0], (("count", n), *params), english[1]) for n in COUNTS]


def _limit(entry: Entry) -> int:
    found = [int(m) for comment in entry.auto_comments for m in _LIMIT.findall(comment)]
    return min(found, default=MAX_CONTENT)


ENTRIES = [e for e in messages_template() if e.id]


def test_the_sweep_covers_every_message_and_the_labels() -> None:
    assert len(ENTRIES) > 100
    limited = {e.id for e in ENTRIES if _limit(e) < MAX_CONTENT}
    assert {"Vary (Strong)", "Report", "Edit prompt and continue", "Custom zoom"} <= limited


@pytest.mark.parametrize("locale", EVERY_LOCALE)
def test_every_message_fits_where_discord_shows_it(locale: str) -> None:
    problems = []
    for entry in ENTRIES:
        limit = _limit(entry)
        sample = _long if limit == MAX_CONTENT else _short
        for message in _messages(entry, sample):
            shown = render(message, locale)
            if len(shown) > limit:
                problems.append(f"{len(shown)} > {limit}: {shown[:80]!r}")
            if "{" in shown.replace("{{", "") and "{" not in str(message.values):
                problems.append(f"a placeholder left unfilled: {shown!r}")
    assert not problems, problems


@pytest.mark.parametrize("locale", LOCALES)
def test_a_plural_message_has_a_form_for_every_count(locale: str) -> None:
    for entry in (e for e in ENTRIES if not isinstance(e.id, str)):
        for message in _messages(entry, _long):
            shown = render(message, locale)
            assert str(message.values["count"]) in shown, (locale, shown)
