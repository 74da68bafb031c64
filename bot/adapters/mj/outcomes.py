"""From a server's answer to a core result or error: the one table of what each answer means.

======================================================  =========================================
what the server says                                    what the caller gets
======================================================  =========================================
code 1, 22 (``numberOfQueues``)                         `Submission` (queue_position from
                                                        numberOfQueues, also on new-api's 22→1)
code 21                                                 `Submission(needs_input=True)`
code 3                                                  `NoAccount`; on action/modal with the
                                                        "关联任务不存在" wording: `TaskNotFound`
code 4                                                  `InvalidRequest` (server text in detail);
                                                        C#'s per-user concurrency/queue limit
                                                        wording: `QueueFull`
code 9                                                  `Unavailable`; queue-full wording:
                                                        `QueueFull`
code 23                                                 `QueueFull`
code 24                                                 `BannedPrompt(word=bannedWord)`
code 30 / HTTP 429                                      `RateLimited(retry_after=Retry-After)`
new-api 400 task_not_found / task_no_found              `TaskNotFound`
new-api 400 prompt_is_required, unknown_action:…,       `InvalidRequest`
task_status_not_success, custom_id_is_required, …
new-api 400 quota_not_enough                            `Misconfigured` (the operator's account
                                                        is out of credit: only they can fix it)
new-api code 5 (do_request_failed …)                    `Unavailable` (new-api cannot reach the
                                                        proxy behind it)
new-api middleware ``{"error": {message, type}}``:      `Misconfigured`; an exhausted key says
401 (invalid, exhausted or expired key), 403            "out of credit" to members
new-api middleware 503 (no channel serves the model)    `Unavailable`
C# ``{success:false, message}`` at HTTP 200             queue/concurrency wording: `QueueFull`;
                                                        no-permission wording: `Misconfigured`;
                                                        otherwise `InvalidRequest`
C# envelope at HTTP 5xx, any other 5xx, 408             `Unavailable`
HTTP 401 / 403                                          `Misconfigured` (detail names which)
fetch: 200 empty, 204, JSON null, 404 code 3,           `TaskNotFound`
400 task_no_found
404 / 405 without an MJ envelope                        `Unsupported` (list-by-condition: per-task
                                                        fetch instead; /submit/action: the Java
                                                        proxy's /submit/change instead)
other 4xx without an envelope                           `InvalidRequest`
time-out, refused or dropped connection, a body that   `Unavailable` (transport)
is not JSON or not the expected shape
======================================================  =========================================

The functions here are pure: they return the error, and the client logs and raises it.
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Callable, Iterable
from typing import Literal

from bot.core.errors import (
    ApiError,
    BannedPrompt,
    InvalidRequest,
    Misconfigured,
    NoAccount,
    QueueFull,
    RateLimited,
    TaskNotFound,
    Unavailable,
    Unsupported,
)
from bot.core.jobs import Submission, TaskSnapshot
from bot.core.messages import msg

from .models import CSharpEnvelope, Envelope, MiddlewareError, NewApiError, parse_task
from .transport import EMPTY, NOT_JSON, AuthStyle, Reply

__all__ = [
    "Kind",
    "common_error",
    "describe",
    "fetch_outcome",
    "list_outcome",
    "submit_outcome",
]

log = logging.getLogger("bot.adapters.mj")

Kind = Literal["submit", "parent", "fetch", "list"]

# Wordings (mj-api.md §3, §7.1): the C# proxy says "queue full" with code 9 or in its other
# envelope; the per-user limits of the C# proxy mean the same thing to a member: try later.
_USER_LIMIT_WORDS = ("队列数已达上限", "并发数已达上限")
_QUEUE_FULL_WORDS = ("队列已满", *_USER_LIMIT_WORDS, "queue is full", "queue full")
_MISSING_PARENT_WORDS = ("关联任务不存在", "task not found", "task_not_found", "不存在或已失效")
_NO_PERMISSION_WORDS = ("无权限", "未登录", "unauthorized", "forbidden")
# new-api's token check (model/token.go ValidateUserToken): "该令牌额度已用尽" when the key's
# quota is spent; also its English builds' wording.
_KEY_EXHAUSTED_WORDS = ("额度已用尽", "quota exhausted", "额度不足", "insufficient quota")

# new-api's own error descriptions (relay/mjproxy_handler.go), by their first word.
_NEWAPI_NOT_FOUND = frozenset({"task_not_found", "task_no_found"})
_NEWAPI_UNAVAILABLE = frozenset(
    {"do_request_failed", "read_request_body_failed", "read_response_body_failed"}
)
QUOTA_MESSAGE = msg("The image service account is out of credit; the bot's operator has been told.")


def common_error(
    reply: Reply, where: str, kind: Kind, auth_style: AuthStyle, clip: Callable[[bytes | str], str]
) -> ApiError | None:
    """The answers that mean the same on every endpoint: auth, rate limits, outages, and the
    three foreign error shapes (new-api's two and the C# proxy's). `clip` makes a body safe
    for a detail line (the key masked)."""
    status, payload = reply.status, reply.payload
    middleware = MiddlewareError.read(payload)
    if status in (401, 403):
        header = "Authorization: Bearer" if auth_style == "bearer" else "mj-api-secret"
        why = "rejected the key" if status == 401 else "refused access with the key"
        said = f" ({clip(middleware.message.strip())})" if middleware else ""
        detail = (
            f"{where}: HTTP {status}: the API {why} sent as `{header}`{said} "
            "(check MJ_API_KEY and MJ_AUTH_STYLE)"
        )
        if middleware and _has_any(middleware.message, _KEY_EXHAUSTED_WORDS):
            return Misconfigured(detail, message=QUOTA_MESSAGE)
        return Misconfigured(detail)
    if status == 429 or (isinstance(payload, dict) and payload.get("code") == 30):
        return RateLimited(
            f"{where}: HTTP {status}: {describe(payload)}",
            retry_after=_retry_after(reply.headers.get("retry-after")),
        )
    if middleware is not None and status >= 500:
        # new-api's distributor: no enabled channel serves this model in the key's group.
        return Unavailable(f"{where}: HTTP {status}: new-api {middleware.message!r}")
    newapi = NewApiError.read(payload)
    if newapi is not None:
        return _newapi_error(newapi, where, status)
    csharp = CSharpEnvelope.read(payload)
    if csharp is not None:
        return _csharp_error(csharp, where, status)
    if status >= 500 or status == 408:
        return Unavailable(f"{where}: HTTP {status}: {clip(reply.body)}")
    if kind != "fetch" and 200 <= status < 300 and payload is NOT_JSON:
        return Unavailable(f"{where}: body is not JSON")
    return None


def _newapi_error(error: NewApiError, where: str, status: int) -> ApiError:
    """new-api's own `{description, type: "upstream_error", code}` answers (mj-api.md §3)."""
    description = error.description.strip()
    word = error.word
    detail = f"{where}: HTTP {status}: new-api {description!r} (code {error.code})"
    if word in _NEWAPI_NOT_FOUND:
        return TaskNotFound(detail)
    if word == "quota_not_enough":
        # The aggregator account the operator pays for is empty: an operator problem, not a
        # member's and not an outage; Misconfigured makes `check` and the logs say so.
        return Misconfigured(detail, message=QUOTA_MESSAGE)
    if word in _NEWAPI_UNAVAILABLE or error.code == 5 or status >= 500:
        return Unavailable(detail)
    if error.code == 24 or "sensitive" in word:
        return BannedPrompt(detail)
    return InvalidRequest(detail)


def _csharp_error(error: CSharpEnvelope, where: str, status: int) -> ApiError:
    """The C# proxy's exception-filter envelope `{success: false, code, message, timestamp}`."""
    message = error.message
    detail = f"{where}: HTTP {status}: C# proxy {message!r} (code {error.code})"
    if _has_any(message, _QUEUE_FULL_WORDS):
        return QueueFull(detail)
    if status >= 500:
        return Unavailable(detail)
    if _has_any(message, _NO_PERMISSION_WORDS) or error.code in (401, 403):
        return Misconfigured(detail)
    return InvalidRequest(detail)


def submit_outcome(
    reply: Reply, where: str, kind: Kind, clip: Callable[[bytes | str], str]
) -> Submission | ApiError:
    """A submit's answer once `common_error` found nothing: the envelope, else by status."""
    envelope = Envelope.read(reply.payload)
    if envelope is not None:
        return _envelope_outcome(envelope, where, kind, reply.status)
    if reply.status in (404, 405):
        return Unsupported(f"{where}: HTTP {reply.status}: the server has no such endpoint")
    if 400 <= reply.status < 500:
        return InvalidRequest(f"{where}: HTTP {reply.status}: {clip(reply.body)}")
    what = "an empty body" if reply.payload is EMPTY else "not a submit answer"
    return Unavailable(f"{where}: HTTP {reply.status} with {what}")


def fetch_outcome(
    reply: Reply, where: str, clip: Callable[[bytes | str], str]
) -> TaskSnapshot | ApiError:
    """A fetch's answer once `common_error` found nothing (mj-api.md §1, §2.9)."""
    payload = reply.payload
    if reply.status in (404, 405):
        if Envelope.read(payload):
            return TaskNotFound(f"{where}: {describe(payload)}")
        return Unsupported(f"{where}: HTTP {reply.status}: no fetch endpoint at this URL")
    if reply.status >= 400:
        return InvalidRequest(f"{where}: HTTP {reply.status}: {clip(reply.body)}")
    # Java answers an unknown id with 200 and no body, C# with 204, some with `null`.
    if reply.status == 204 or payload is EMPTY or payload is None:
        return TaskNotFound(f"{where}: no such task")
    if payload is NOT_JSON:
        return Unavailable(f"{where}: body is not JSON")
    snapshot = parse_task(payload)
    if snapshot is None:
        if Envelope.read(payload):  # e.g. {"code":3,"description":"任务不存在"}
            return TaskNotFound(f"{where}: {describe(payload)}")
        return Unavailable(f"{where}: not a task object")
    return snapshot


def list_outcome(
    reply: Reply, where: str, clip: Callable[[bytes | str], str]
) -> list[TaskSnapshot] | ApiError:
    """A JSON array of tasks (list-by-condition, list, queue); non-task entries are skipped."""
    if reply.status >= 400:
        return InvalidRequest(f"{where}: HTTP {reply.status}: {clip(reply.body)}")
    payload = reply.payload
    if payload is EMPTY or payload is None:
        return []  # nothing known
    if not isinstance(payload, list):
        return Unavailable(f"{where}: not a task list")
    snapshots = []
    for item in payload:
        snap = parse_task(item)
        if snap is None:
            log.warning("mj %s: skipped an entry that is not a task", where)
        else:
            snapshots.append(snap)
    return snapshots


def _envelope_outcome(
    envelope: Envelope, where: str, kind: Kind, status: int
) -> Submission | ApiError:
    """The MJ submit envelope `{code, description, result, properties}` (mj-api.md §3)."""
    code, description = envelope.code, envelope.description
    detail = f"{where}: code {code}: {description}"
    if code in (1, 21, 22):
        if not envelope.task_id:
            return Unavailable(f"{detail} without a task id")
        return envelope.submission()
    if code == 3:
        missing_parent = kind == "parent" and (
            status == 404 or _has_any(description, _MISSING_PARENT_WORDS)
        )
        return TaskNotFound(detail) if missing_parent else NoAccount(detail)
    if code == 4:
        # The C# proxy's /imagine reports its per-user concurrency and queue limits as code
        # 4; to a member they mean the same as a full queue (try again later), as they do
        # in its other envelope on the other endpoints.
        limited = _has_any(description, _USER_LIMIT_WORDS)
        return QueueFull(detail) if limited else InvalidRequest(detail)
    if code == 9:
        full = _has_any(description, _QUEUE_FULL_WORDS)
        return QueueFull(detail) if full else Unavailable(detail)
    if code == 23:
        return QueueFull(detail)
    if code == 24:
        word = envelope.properties.get("bannedWord")
        return BannedPrompt(detail, word=word if isinstance(word, str) else "")
    return Unavailable(f"{detail} (unknown code)")


def describe(payload: object) -> str:
    """The server's own words in a JSON answer, cut short, for a detail line."""
    if isinstance(payload, dict):
        text = payload.get("description") or payload.get("message") or ""
        return str(text)[:300]
    return ""


def _has_any(text: str, needles: Iterable[str]) -> bool:
    lowered = text.lower()
    return any(n.lower() in lowered for n in needles)


def _retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: either a number or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - time.time())
