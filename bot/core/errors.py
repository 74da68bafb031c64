"""One hierarchy of errors. Each carries the one sentence a member sees (`member_message`);
the detail for the log (`detail`) never reaches Discord.
"""

from __future__ import annotations


class MjcordError(Exception):
    """Base of every error mjcord expects. `member_message` is shown to the member as is."""

    member_message = "Something went wrong. Please try again in a minute."

    def __init__(self, detail: str = "", *, member_message: str | None = None) -> None:
        super().__init__(detail or self.member_message)
        self.detail = detail
        if member_message is not None:
            self.member_message = member_message


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
        super().__init__(
            detail,
            member_message=f"The image service refused this prompt{named}. "
            "Please rephrase it and try again.",
        )


class QueueFull(ApiError):
    """Code 23, or the C# proxy's code 9 queue-full wording."""

    member_message = (
        "The image service's queue is full right now. Please try again in a few minutes."
    )


class InvalidRequest(ApiError):
    """Code 4 and HTTP 400 validation errors (bad prompt, bad image, unknown action …)."""

    member_fault = True
    member_message = (
        "The image service could not accept this request. Please check it and try again."
    )


class NoAccount(ApiError):
    """Code 3: no usable Midjourney account behind the API (or the parent task is gone)."""

    member_message = "The image service has no account available right now. Please try again later."


class TaskNotFound(ApiError):
    """The API does not know the task id (empty body, 204, 400 task_no_found, 404 code 3)."""

    member_message = "The image service no longer knows this job. Please start a new one."


class Misconfigured(ApiError):
    """HTTP 401/403: the operator's key or auth style is wrong. Members are not told more."""

    member_message = "The image service is misconfigured; the bot's operator has been told."


class RateLimited(ApiError):
    """HTTP 429 (and new-api code 30)."""

    member_message = "The image service is busy right now. Please try again in a minute."

    def __init__(self, detail: str = "", *, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class Unavailable(ApiError):
    """5xx, time-outs, refused connections, bodies that are not JSON, code 9 system errors."""

    member_message = "The image service is unavailable right now. Please try again later."


class Unsupported(ApiError):
    """The server does not offer an endpoint (404/405 on a route the proxy lacks)."""

    member_message = "The image service does not support this action."


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

# (substring, sentence): the API's failReason strings (mj-api.md §7.4) in plain words.
_FAILURE_WORDS: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        ("banned", "敏感词", "image denied", "community standards"),
        "The image service refused this prompt under its content rules. Please rephrase it.",
    ),
    (
        ("超时", "timeout", "timed out", "time out"),
        "The image service took too long and gave up on this job. Please try again.",
    ),
    (("取消", "cancel"), "The image service cancelled this job. Please try again."),
    (
        ("invalid parameter", "invalid value", "参数"),
        "Midjourney rejected a parameter in the prompt. Check flags like --ar or --v.",
    ),
    (
        ("internal server error", "服务异常", "渠道"),
        "The image service had an internal error. Please try again in a few minutes.",
    ),
)


def describe_failure(reason: str) -> str:
    """The failure reason of a finished job, as one sentence a member understands.

    Our own reasons (time limit, restart) are already sentences and pass through unchanged.
    """
    lowered = reason.lower()
    for needles, sentence in _FAILURE_WORDS:
        if any(n in lowered for n in needles):
            return sentence
    if reason.startswith("The "):
        return reason
    return "The image service could not make this image. Please try again."


def is_banned_content(reason: str) -> bool:
    """True when a failure reason says the prompt was refused as banned content (a strike)."""
    return describe_failure(reason) == _FAILURE_WORDS[0][1]
