"""Turn a core `Message` into the text Discord shows, in a locale.

Lookup: the `messages` catalogue of the exact locale, else the English key itself. Parameters
are rendered to Discord markup here and only here: a `Stamp` becomes `<t:…:R>`, a `Code` an
inline code span that its own backticks cannot break out of, a `UserRef` a mention (sent with
pings disabled), an `Option` the option's name in the locale, `ChannelRefs` channel links, and
a `Message` inside a message (a duration, a quota) is rendered in the same locale. A
translation that names a placeholder its English lacks is a catalogue bug the test suite
catches; at run time the English is used instead, never an exception.
"""

from __future__ import annotations

import gettext
import logging
from collections.abc import Callable
from functools import cache

from babel.messages.plurals import get_plural

from bot.core.messages import ChannelRefs, Code, Codes, Message, Option, Param, Stamp, UserRef
from bot.discord_ui.i18n.catalog import Catalogues, load_catalogues
from bot.discord_ui.i18n.translator import DOMAIN as COMMANDS

log = logging.getLogger(__name__)

#: The gettext domain of member-facing sentences.
DOMAIN = "messages"

#: Longest code span rendered from member text (a file name, a failure reason).
MAX_CODE = 200


def code_span(text: str) -> str:
    """`text` as an inert inline code span: no backticks, no line breaks, bounded length."""
    flat = " ".join(text.replace("`", "ˋ").split())
    if len(flat) > MAX_CODE:
        flat = flat[: MAX_CODE - 1] + "…"
    return f"`{flat}`" if flat else "` `"


def option_name(name: str, locale: str) -> str:
    """A slash command option's name as the member's client shows it (its localisation from
    the command catalogue, else the English name Discord sends)."""
    return load_catalogues(COMMANDS).lookup(locale, name, "option name") or name


def choice_name(name: str, locale: str) -> str:
    """A choice's name as the member's client lists it ("Portrait (2:3)", "縦長 (2:3)")."""
    return load_catalogues(COMMANDS).lookup(locale, name, "choice") or name


def render_param(value: Param, locale: str = "en-US", catalogues: Catalogues | None = None) -> str:
    """One parameter as Discord text (a message inside a message in the same `locale`)."""
    if isinstance(value, Message):
        return render(value, locale, catalogues)
    if isinstance(value, ChannelRefs):
        return ", ".join(f"<#{c}>" for c in value.channel_ids)
    if isinstance(value, Stamp):
        return f"<t:{int(value.at.timestamp())}:{value.style}>"
    if isinstance(value, Code):
        return code_span(value.text)
    if isinstance(value, Codes):
        return ", ".join(code_span(text) for text in value.texts)
    if isinstance(value, UserRef):
        return f"<@{value.user_id}>"
    if isinstance(value, Option):
        return option_name(value.name, locale)
    return str(value)


@cache
def plural_index(locale: str) -> Callable[[int], int]:
    """The locale's gettext plural rule (from Babel's table), as a function n → form index."""
    return gettext.c2py(get_plural(locale.replace("-", "_")).plural_expr)


def _english(message: Message) -> str:
    if message.plural is not None and message.values.get("count") != 1:
        return message.plural
    return message.text


def template(message: Message, locale: str, catalogues: Catalogues | None = None) -> str:
    """The message's template in `locale` (its English when there is no translation)."""
    found = (catalogues or load_catalogues(DOMAIN)).lookup_any(locale, message.text)
    if found is None:
        return _english(message)
    if isinstance(found, str):
        return found
    count = message.values.get("count", 0)
    position = plural_index(locale)(int(count) if isinstance(count, int | float) else 0)
    return found[min(position, len(found) - 1)]


def render(message: Message, locale: str, catalogues: Catalogues | None = None) -> str:
    """The message as Discord text in `locale`."""
    values = {name: render_param(value, locale, catalogues) for name, value in message.params}
    text = template(message, locale, catalogues)
    try:
        return text.format_map(values)
    except (KeyError, IndexError, ValueError) as exc:
        log.error("catalogue %s: bad placeholders in %r: %s", locale, message.text, exc)
        return _english(message).format_map(values)
