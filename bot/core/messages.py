"""What the bot says to members, as catalogue keys with parameters (never finished sentences).

Core decides *what* to say; the Discord layer renders it in a locale (the member's when only
they see it, the server's when the channel does) — `bot.discord_ui.i18n.render`. The key is the
English sentence with `{named}` placeholders, gettext's convention: it is its own English text
and the translator's context, and a missing translation falls back to it.

Parameters are plain values, or one of the small types below for what needs Discord's markup
(a timestamp each member's client shows in their own time zone, an inert code span), so core
writes no markup itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TypeAlias


@dataclass(frozen=True, slots=True)
class Stamp:
    """A moment, shown by each member's client in their own time (`R`: "in 3 hours")."""

    at: datetime
    style: str = "R"


@dataclass(frozen=True, slots=True)
class Code:
    """Member or server text shown verbatim and inert (a file name, a parameter, a reason)."""

    text: str


@dataclass(frozen=True, slots=True)
class Codes:
    """Several such texts, shown as a list of inert code spans (`--zz`, `--yy`)."""

    texts: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Option:
    """A slash command's option, named as the member's client shows it (`image1`, `画像1`)."""

    name: str


@dataclass(frozen=True, slots=True)
class UserRef:
    """A member, shown as a mention (messages are sent with pings disabled)."""

    user_id: int


@dataclass(frozen=True, slots=True)
class ChannelRefs:
    """Channels, shown as a list of channel links."""

    channel_ids: tuple[int, ...]


#: A parameter; a `Message` inside a message is rendered in the same locale (a duration, a
#: quota's wording inside a sentence).
Param: TypeAlias = (
    "str | int | float | Stamp | Code | Codes | Option | UserRef | ChannelRefs | Message"
)


def _plain(value: Param) -> str:
    if isinstance(value, Message):
        return value.plain()
    if isinstance(value, Stamp):
        return value.at.isoformat(timespec="seconds")
    if isinstance(value, Code):
        return f"`{value.text}`"
    if isinstance(value, Codes):
        return ", ".join(f"`{text}`" for text in value.texts)
    if isinstance(value, UserRef):
        return f"<@{value.user_id}>"
    if isinstance(value, Option):
        return value.name
    if isinstance(value, ChannelRefs):
        return ", ".join(f"<#{c}>" for c in value.channel_ids)
    return str(value)


@dataclass(frozen=True, slots=True)
class Message:
    """One sentence for a member: the English template (the key) and its parameters.

    With `plural`, the sentence depends on the `count` parameter: `text` is the English
    singular, `plural` the English plural, and each locale has its own forms.
    """

    text: str
    params: tuple[tuple[str, Param], ...] = ()
    plural: str | None = None

    @property
    def values(self) -> dict[str, Param]:
        """The parameters by name."""
        return dict(self.params)

    def plain(self) -> str:
        """The sentence in English with its parameters as plain text: for logs, records (the
        audit log) and an error's English `member_message`, never for Discord (the Discord
        layer renders)."""
        text = self.plural if self.plural is not None and self.values.get("count") != 1 else None
        try:
            return (text or self.text).format_map({k: _plain(v) for k, v in self.params})
        except (KeyError, IndexError, ValueError):
            return self.text


def msg(text: str, **params: Param) -> Message:
    """A sentence for a member: `msg("The limit is {limit} MB.", limit=10)`.

    `text` must be a string literal: the catalogue extractor reads it from the source."""
    return Message(text, tuple(params.items()))


def plural_msg(text: str, plural: str, count: int, **params: Param) -> Message:
    """A sentence that varies with `count`: `plural_msg("{count} image", "{count} images", n)`;
    each locale picks its own plural form. Both texts must be string literals."""
    return Message(text, (("count", count), *params.items()), plural)
