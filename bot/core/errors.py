"""One hierarchy of errors. Each carries the one sentence a member sees (`member_message`);
the detail for the log (`detail`) never reaches Discord.
"""

from __future__ import annotations

import re

from bot.core.messages import Code, Codes, Message, msg, plural_msg


class MjcordError(Exception):
    """Base of every error mjcord expects.

    `message`, where set, is the member's sentence as a catalogue key (rendered in the
    member's locale by the Discord layer); `member_message` is the same sentence in English,
    for logs and for errors not yet in the catalogue (shown to the member as is).
    """

    message: Message | None = msg("Something went wrong. Please try again in a minute.")
    member_message = "Something went wrong. Please try again in a minute."

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        # A class that declares its sentence as a message has it in English for free; one that
        # declares only an English sentence is shown that, not an inherited key.
        if "message" in cls.__dict__ and cls.message is not None:
            cls.member_message = cls.message.plain()
        elif "member_message" in cls.__dict__:
            cls.message = None

    def __init__(
        self, detail: str = "", *, member_message: str | None = None, message: Message | None = None
    ) -> None:
        if member_message is not None:
            self.member_message = member_message
            self.message = message  # an explicit English sentence outranks the class's key
        elif message is not None:
            self.message = message
            self.member_message = message.plain()
        super().__init__(detail or self.member_message)
        self.detail = detail


# --- the image API -----------------------------------------------------------------------------


class ApiError(MjcordError):
    """The image API refused or failed a request."""

    #: True when the member's request itself was at fault (so no retry helps).
    member_fault = False


class BannedPrompt(ApiError):
    """Code 24, or a failure naming banned content: the API's moderation refused the prompt."""

    member_fault = True

    def __init__(self, detail: str = "", *, word: str = "") -> None:
        self.word = word
        named = f" (it flagged “{word}”)" if word else ""
        key = (
            msg(
                "The image service refused this prompt (it flagged {word}). "
                "Please rephrase it and try again.",
                word=Code(word),
            )
            if word
            else msg("The image service refused this prompt. Please rephrase it and try again.")
        )
        super().__init__(
            detail,
            member_message=f"The image service refused this prompt{named}. "
            "Please rephrase it and try again.",
            message=key,
        )


class QueueFull(ApiError):
    """Code 23, or the C# proxy's code 9 queue-full wording."""

    message = msg("The image service's queue is full right now. Please try again in a few minutes.")


class InvalidRequest(ApiError):
    """Code 4 and HTTP 400 validation errors (bad prompt, bad image, unknown action …)."""

    member_fault = True
    message = msg("The image service could not accept this request. Please check it and try again.")


class NoAccount(ApiError):
    """Code 3: no usable Midjourney account behind the API (or the parent task is gone)."""

    message = msg("The image service has no account available right now. Please try again later.")


class TaskNotFound(ApiError):
    """The API does not know the task id (empty body, 204, 400 task_no_found, 404 code 3)."""

    message = msg("The image service no longer knows this job. Please start a new one.")


class Misconfigured(ApiError):
    """HTTP 401/403: the operator's key or auth style is wrong. Members are not told more."""

    message = msg("The image service is misconfigured; the bot's operator has been told.")


class RateLimited(ApiError):
    """HTTP 429 (and new-api code 30)."""

    message = msg("The image service is busy right now. Please try again in a minute.")

    def __init__(self, detail: str = "", *, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class Unavailable(ApiError):
    """5xx, time-outs, refused connections, bodies that are not JSON, code 9 system errors."""

    message = msg("The image service is unavailable right now. Please try again later.")


class Unsupported(ApiError):
    """The server does not offer an endpoint (404/405 on a route the proxy lacks)."""

    message = msg("The image service does not support this action.")


# --- member input ------------------------------------------------------------------------------


class ImageRejected(MjcordError):
    """A reference image the bot will not send: wrong type, too big, unreadable."""

    member_fault = True


class DownloadError(MjcordError):
    """An attachment could not be fetched: not on Discord's CDN, too big, too slow, or gone."""

    member_fault = True


class Refused(MjcordError):
    """A gate refusal (banned, cooldown, quota, channel …): the message says why and when."""


# --- finished jobs -----------------------------------------------------------------------------

_BANNED = msg("The image service refused this prompt under its content rules. Please rephrase it.")
_PARAMETER = msg("Midjourney rejected a parameter in the prompt. Check flags like --ar or --v.")

# (substring, sentence): the API's failReason strings (mj-api.md §7.4) in plain words.
_FAILURE_WORDS: tuple[tuple[tuple[str, ...], Message], ...] = (
    (("banned", "敏感词", "image denied", "community standards"), _BANNED),
    (
        ("超时", "timeout", "timed out", "time out"),
        msg("The image service took too long and gave up on this job. Please try again."),
    ),
    (("取消", "cancel"), msg("The image service cancelled this job. Please try again.")),
    (("invalid parameter", "invalid value", "unrecognized parameter", "参数"), _PARAMETER),
    (
        ("internal server error", "服务异常", "渠道"),
        msg("The image service had an internal error. Please try again in a few minutes."),
    ),
)
_GENERIC = msg("The image service could not make this image. Please try again.")

#: How much of the service's own words a member is shown.
REASON_LIMIT = 200
# A Midjourney flag as failReasons quote it ("Unrecognized parameter(s): `--zzfail`").
_FLAG = re.compile(r"(?<![\w-])--[A-Za-z][A-Za-z0-9_.-]{0,30}")
_TITLE = re.compile(r"^\s*\[([^\]]{1,80})\]")
_UNRECOGNISED = ("unrecognized parameter", "unrecognised parameter", "unknown parameter")


def failure_messages(reason: str) -> tuple[Message, ...]:
    """The failure reason of a finished job for a member, as messages to render in a locale:
    one plain sentence and, when there is any, the service's own words cleaned of markup
    (see `shown_reason`).

    A rejected parameter is named (`--zzfail` was not recognised). Our own reasons (time
    limit, restart) are already sentences and pass through as their own key.
    """
    sentence = _sentence(reason)
    if sentence is None:
        timed_out = _TIMED_OUT.fullmatch(reason)
        if timed_out is not None:
            return (_time_limit(int(timed_out["count"]), timed_out["unit"]),)
        if reason.startswith("The "):
            return (Message(reason),)
        sentence = _GENERIC
    shown = _clean_reason(reason)
    if not shown:
        return (sentence,)
    return sentence, msg("The image service said: {shown}", shown=Code(shown))


# The tracker's own time-limit reason (bot.core.tracking, `Tracker._time_out`), kept in the
# ledger in English: read back into a plural message so the number agrees in every language.
_TIMED_OUT = re.compile(
    r"The image service did not finish this job within (?P<count>\d+) (?P<unit>seconds?|minutes)\."
)


def _time_limit(count: int, unit: str) -> Message:
    if unit.startswith("second"):
        return plural_msg(
            "The image service did not finish this job within {count} second.",
            "The image service did not finish this job within {count} seconds.",
            count,
        )
    return plural_msg(
        "The image service did not finish this job within {count} minute.",
        "The image service did not finish this job within {count} minutes.",
        count,
    )


def _sentence(reason: str) -> Message | None:
    lowered = reason.lower()
    # Proxies write failures as "[<embed title>] <description>" (Java ErrorMessageHandler):
    # the title decides, since the description may quote the member's own words
    # ("Unrecognized parameter(s): --banned" is not a banned prompt).
    title = _TITLE.match(lowered)
    sentence = None
    for text in (title.group(1), lowered) if title else (lowered,):
        sentence = next(
            (words for needles, words in _FAILURE_WORDS if any(n in text for n in needles)), None
        )
        if sentence is not None:
            break
    if sentence is not _PARAMETER:
        return sentence
    flags = list(dict.fromkeys(_FLAG.findall(reason)))[:3]
    if not flags:
        return sentence
    named = Codes(tuple(flags))
    if any(word in lowered for word in _UNRECOGNISED):
        return msg(
            "Midjourney does not recognise {flags}. "
            "Remove it or check its spelling (flags look like --ar 3:2 or --v 6.1).",
            flags=named,
        )
    return msg(
        "Midjourney rejected the value of {flags}. Check it against Midjourney's flag list.",
        flags=named,
    )


def _clean_reason(reason: str, limit: int = REASON_LIMIT) -> str:
    """The service's own failure text, safe inside a code span: one line, backticks become ˋ,
    `@` gets a zero-width space after it, control characters go, at most `limit` characters.
    Empty when there is nothing to show."""
    text = "".join(ch if ch.isprintable() else " " for ch in reason)
    text = " ".join(text.split())
    if not text:
        return ""
    text = text.replace("`", "ˋ").replace("@", "@\u200b")
    if len(text) > limit:
        text = text[: limit - 1].rstrip("\u200b").rstrip() + "…"
    return text


def shown_reason(reason: str, limit: int = REASON_LIMIT) -> str:
    """The service's own failure text, safe to show: one line in one code span, so no
    Discord markdown renders and no mention can form (see `_clean_reason`). Empty when there
    is nothing to show."""
    text = _clean_reason(reason, limit)
    return f"`{text}`" if text else ""


def is_banned_content(reason: str) -> bool:
    """True when a failure reason says the prompt was refused as banned content (a strike)."""
    return _sentence(reason) == _BANNED
