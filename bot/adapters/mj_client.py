"""The Midjourney-proxy HTTP client: implements the `ImageApi` port over aiohttp.

It speaks to all four layers of mj-api.md (the Java proxy, the plus build, the C# proxy and the
new-api aggregator) and turns every answer into a core result or a core `ApiError`:

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
new-api code 5 (do_request_failed …)                    `Unavailable`
C# ``{success:false, message}`` at HTTP 200             queue/concurrency wording: `QueueFull`;
                                                        no-permission wording: `Misconfigured`;
                                                        otherwise `InvalidRequest`
C# envelope at HTTP 5xx, any other 5xx, 408             `Unavailable`
HTTP 401 / 403                                          `Misconfigured` (detail names which)
fetch: 200 empty, 204, JSON null, 404 code 3,           `TaskNotFound`
400 task_no_found
404 / 405 without an MJ envelope                        `Unsupported` (list-by-condition: falls
                                                        back to per-task fetch instead)
other 4xx without an envelope                           `InvalidRequest`
time-out, refused or dropped connection, a body that   `Unavailable`
is not JSON or not the expected shape
======================================================  =========================================

No aiohttp, json or time-out exception leaves this module. Failures are logged once, as one line
with the endpoint and the HTTP status; the key never appears, and bodies are cut short with long
base64 runs blanked out.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import re
import time
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Any, Literal, NoReturn, Self
from urllib.parse import quote

import aiohttp

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
from bot.core.images import to_data_uri
from bot.core.jobs import Button, Mode, ReferenceImage, Submission, TaskSnapshot, TaskStatus
from bot.core.ports import ImagineRequest

__all__ = ["MjClient"]

log = logging.getLogger(__name__)

AuthStyle = Literal["bearer", "mj-api-secret"]
_Kind = Literal["submit", "parent", "fetch", "list"]

# A response body larger than this is not an MJ answer (a task list of 1000 is ~3 MB).
_MAX_BODY = 32 * 1024 * 1024
# How many single-task fetches run at once when the server lacks list-by-condition.
_FALLBACK_CONCURRENCY = 8
_LOG_BODY_CHARS = 300
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/=]{64,}")

# Wordings (mj-api.md §3, §7.1): the C# proxy says "queue full" with code 9 or in its other
# envelope; the per-user limits of the C# proxy mean the same thing to a member: try later.
_USER_LIMIT_WORDS = ("队列数已达上限", "并发数已达上限")
_QUEUE_FULL_WORDS = ("队列已满", *_USER_LIMIT_WORDS, "queue is full", "queue full")
_MISSING_PARENT_WORDS = ("关联任务不存在", "task not found", "task_not_found", "不存在或已失效")
_NO_PERMISSION_WORDS = ("无权限", "未登录", "unauthorized", "forbidden")

# new-api's own error descriptions (relay-mj.go), by their first word.
_NEWAPI_NOT_FOUND = frozenset({"task_not_found", "task_no_found"})
_NEWAPI_UNAVAILABLE = frozenset(
    {"do_request_failed", "read_request_body_failed", "read_response_body_failed"}
)
_QUOTA_MESSAGE = "The image service account is out of credit; the bot's operator has been told."

_EMPTY: Any = object()  # sentinel: the body was empty
_NOT_JSON: Any = object()  # sentinel: the body was not JSON


class _Reply:
    """One HTTP answer, read in full, before any interpretation."""

    __slots__ = ("body", "headers", "payload", "status")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.payload: Any = _EMPTY
        if body.strip():
            try:
                self.payload = json.loads(body)
            except (ValueError, RecursionError):  # JSONDecodeError and bad UTF-8 are ValueErrors
                self.payload = _NOT_JSON


class MjClient:
    """A Midjourney-proxy compatible API over HTTP (the `ImageApi` port).

    `base_url` is the API root, optionally with a mode prefix (`https://api.example.com/mj-relax`);
    the client appends `/mj/submit/imagine` and so on. `auth_style` picks the header the key goes
    in. Pass a shared `session` to reuse its connection pool; otherwise the client makes (and
    `close()` closes) its own. `connect_timeout` bounds connecting; `read_timeout` bounds the rest
    of each request. `chunk_size` is how many ids go in one list-by-condition request.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        auth_style: AuthStyle = "bearer",
        session: aiohttp.ClientSession | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        chunk_size: int = 100,
    ) -> None:
        if auth_style not in ("bearer", "mj-api-secret"):
            raise ValueError(f"auth_style must be 'bearer' or 'mj-api-secret', not {auth_style!r}")
        if chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")
        base = base_url.strip().rstrip("/")
        # Operators often paste the documented `…/mj` root; the paths below already start there.
        if base.endswith("/mj"):
            base = base[: -len("/mj")]
        self._base = base
        # A key pasted into .env often carries a trailing newline; headers cannot.
        self._key = api_key.strip()
        self._auth_style: AuthStyle = auth_style
        self._session = session
        self._owns_session = session is None
        self._timeout = aiohttp.ClientTimeout(
            total=connect_timeout + read_timeout,
            sock_connect=connect_timeout,
            sock_read=read_timeout,
        )
        self._chunk_size = chunk_size
        # Learnt from a 404/405: this server has no list-by-condition; fetch one by one.
        self._list_unsupported = False

    # --- lifecycle -----------------------------------------------------------------------------

    async def close(self) -> None:
        """Close the HTTP session if this client made it; a shared session is left alone."""
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def list_by_condition_supported(self) -> bool:
        """False once the server has answered list-by-condition with 404/405."""
        return not self._list_unsupported

    # --- the port ------------------------------------------------------------------------------

    async def imagine(self, request: ImagineRequest) -> Submission:
        """POST /mj/submit/imagine with the prompt and the reference images as data URIs."""
        body: dict[str, Any] = {
            "botType": request.mode.value,
            "prompt": request.prompt,
            "base64Array": [to_data_uri(image) for image in request.images],
        }
        _add_common(body, request.state, request.notify_hook)
        return await self._submit("/mj/submit/imagine", body, "submit")

    async def action(
        self, task_id: str, custom_id: str, *, state: str = "", notify_hook: str | None = None
    ) -> Submission:
        """POST /mj/submit/action: press one of a finished task's buttons by its customId."""
        body: dict[str, Any] = {"taskId": task_id, "customId": custom_id}
        _add_common(body, state, notify_hook)
        return await self._submit("/mj/submit/action", body, "parent")

    async def modal(
        self,
        task_id: str,
        *,
        prompt: str = "",
        mask_base64: str = "",
        state: str = "",
        notify_hook: str | None = None,
    ) -> Submission:
        """POST /mj/submit/modal: confirm a task waiting in MODAL (remix, custom zoom, region).

        An empty prompt is left out: the proxies then use the parent's prompt.
        """
        body: dict[str, Any] = {"taskId": task_id}
        if prompt:
            body["prompt"] = prompt
        if mask_base64:
            body["maskBase64"] = mask_base64
        _add_common(body, state, notify_hook)
        return await self._submit("/mj/submit/modal", body, "parent")

    async def describe(
        self, image: ReferenceImage, mode: Mode, *, state: str = "", notify_hook: str | None = None
    ) -> Submission:
        """POST /mj/submit/describe with one image as a data URI."""
        body: dict[str, Any] = {"botType": mode.value, "base64": to_data_uri(image)}
        _add_common(body, state, notify_hook)
        return await self._submit("/mj/submit/describe", body, "submit")

    async def blend(
        self,
        images: Sequence[ReferenceImage],
        mode: Mode,
        *,
        dimensions: str = "SQUARE",
        state: str = "",
        notify_hook: str | None = None,
    ) -> Submission:
        """POST /mj/submit/blend with 2–5 images (checked here, before any upload)."""
        if not 2 <= len(images) <= 5:
            raise InvalidRequest(
                f"blend needs 2-5 images, got {len(images)}",
                member_message="A blend needs between 2 and 5 images.",
            )
        body: dict[str, Any] = {
            "botType": mode.value,
            "base64Array": [to_data_uri(image) for image in images],
            "dimensions": dimensions,
        }
        _add_common(body, state, notify_hook)
        return await self._submit("/mj/submit/blend", body, "submit")

    async def fetch(self, task_id: str) -> TaskSnapshot:
        """GET /mj/task/{id}/fetch. Raises TaskNotFound for an id the server does not know."""
        path = f"/mj/task/{_quote_id(task_id)}/fetch"
        reply = await self._send("GET", path, None)
        self._raise_for_common(reply, "GET", path, "fetch")
        payload = reply.payload
        if reply.status == 404 or reply.status == 405:
            if _is_mj_envelope(payload):
                self._fail(TaskNotFound(f"GET {path}: {_describe(payload)}"), "GET", path, reply)
            self._fail(
                Unsupported(f"GET {path}: HTTP {reply.status}: no fetch endpoint at this URL"),
                "GET",
                path,
                reply,
            )
        if reply.status >= 400:
            self._fail(
                InvalidRequest(f"GET {path}: HTTP {reply.status}: {self._clip(reply.body)}"),
                "GET",
                path,
                reply,
            )
        # Java answers an unknown id with 200 and no body, C# with 204, some with `null`.
        if reply.status == 204 or payload is _EMPTY or payload is None:
            self._fail(TaskNotFound(f"GET {path}: no such task"), "GET", path, reply)
        if payload is _NOT_JSON:
            self._fail(Unavailable(f"GET {path}: body is not JSON"), "GET", path, reply)
        snapshot = _parse_task(payload)
        if snapshot is None:
            if _is_mj_envelope(payload):  # e.g. {"code":3,"description":"任务不存在"}
                self._fail(TaskNotFound(f"GET {path}: {_describe(payload)}"), "GET", path, reply)
            self._fail(Unavailable(f"GET {path}: not a task object"), "GET", path, reply)
        return snapshot

    async def list_by_ids(self, task_ids: Sequence[str]) -> list[TaskSnapshot]:
        """Several tasks at once: list-by-condition in chunks of `chunk_size`, in order.

        Where the server answers 404/405 the client remembers it and from then on fetches each
        task on its own (concurrently, bounded). Ids the server does not know are left out.
        """
        ids = list(dict.fromkeys(str(i) for i in task_ids if i))
        if not ids:
            return []
        found: list[TaskSnapshot] = []
        for start in range(0, len(ids), self._chunk_size):
            chunk = ids[start : start + self._chunk_size]
            if not self._list_unsupported:
                listed = await self._list_chunk(chunk)
                if listed is not None:
                    found.extend(listed)
                    continue
            found.extend(await self._fetch_each(chunk))
        return found

    async def find_by_state(self, state: str) -> TaskSnapshot | None:
        """The task whose `state` equals `state`. Placeholder until the mjapi branch lands the
        real look-up (`GET /mj/task/list`, mj-api.md §2.11): says the server cannot look."""
        raise Unsupported(f"no task look-up by state on {self._base}")

    async def probe(self) -> None:
        """One harmless authenticated call: returns if the API answers and accepts the key.

        Asks list-by-condition for an id that cannot exist (falling back to fetch where the
        server lacks it). Raises Misconfigured for a rejected key or a URL with no API behind
        it, Unavailable when the server cannot be reached, RateLimited when it is busy.
        """
        impossible = "0"
        try:
            if not self._list_unsupported:
                listed = await self._list_chunk([impossible])
                if listed is not None:
                    return
            try:
                await self.fetch(impossible)
            except TaskNotFound:
                return
        except Unsupported as exc:
            raise Misconfigured(
                f"{exc.detail}; is MJ_API_BASE_URL ({self._base}) the root of a "
                "Midjourney-proxy API?"
            ) from None

    # --- requests ------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self._auth_style == "bearer":
            headers["Authorization"] = f"Bearer {self._key}"
        else:
            headers["mj-api-secret"] = self._key
        return headers

    def _get_session(self) -> aiohttp.ClientSession:
        # Made lazily: a ClientSession belongs to the running event loop.
        if self._session is None or (self._owns_session and self._session.closed):
            self._session = aiohttp.ClientSession()
            self._owns_session = True
        return self._session

    async def _send(self, method: str, path: str, body: dict[str, Any] | None) -> _Reply:
        """Send one request and read the whole answer; transport failures become Unavailable."""
        url = self._base + path
        headers = self._headers()
        data: bytes | None = None
        if body is not None:
            data = json.dumps(body, ensure_ascii=False).encode("utf-8")
            headers["Content-Type"] = "application/json"
        try:
            async with self._get_session().request(
                method, url, data=data, headers=headers, timeout=self._timeout
            ) as resp:
                raw = await _read_capped(resp)
                return _Reply(resp.status, {k.lower(): v for k, v in resp.headers.items()}, raw)
        except aiohttp.InvalidURL as exc:
            err: ApiError = Misconfigured(f"{method} {path}: invalid URL {exc}")
        except _TooLarge:
            err = Unavailable(f"{method} {path}: response larger than {_MAX_BODY} bytes")
        except TimeoutError:  # asyncio.TimeoutError and aiohttp's ServerTimeoutError alike
            err = Unavailable(f"{method} {path}: timed out")
        except aiohttp.ClientConnectorError as exc:
            err = Unavailable(f"{method} {path}: cannot connect: {self._clip(str(exc))}")
        except aiohttp.ClientError as exc:
            err = Unavailable(f"{method} {path}: {type(exc).__name__}: {self._clip(str(exc))}")
        except ValueError as exc:
            # aiohttp refuses header values with newlines or non-Latin-1 characters.
            err = Misconfigured(
                f"{method} {path}: the request could not be built ({type(exc).__name__}); "
                "does MJ_API_KEY contain spaces, newlines or non-ASCII characters?"
            )
        log.warning("mj %s %s -> no answer: %s", method, path, err.detail)
        raise err

    async def _submit(self, path: str, body: dict[str, Any], kind: _Kind) -> Submission:
        reply = await self._send("POST", path, body)
        self._raise_for_common(reply, "POST", path, kind)
        payload = reply.payload
        if _is_mj_envelope(payload):
            return self._submission(payload, "POST", path, kind, reply)
        if reply.status in (404, 405):
            self._fail(
                Unsupported(f"POST {path}: HTTP {reply.status}: the server has no such endpoint"),
                "POST",
                path,
                reply,
            )
        if 400 <= reply.status < 500:
            self._fail(
                InvalidRequest(f"POST {path}: HTTP {reply.status}: {self._clip(reply.body)}"),
                "POST",
                path,
                reply,
            )
        what = "an empty body" if payload is _EMPTY else "not a submit answer"
        self._fail(
            Unavailable(f"POST {path}: HTTP {reply.status} with {what}"), "POST", path, reply
        )

    async def _list_chunk(self, ids: list[str]) -> list[TaskSnapshot] | None:
        """One list-by-condition request; None when the server lacks the endpoint (404/405)."""
        path = "/mj/task/list-by-condition"
        reply = await self._send("POST", path, {"ids": ids})
        self._raise_for_common(reply, "POST", path, "list")
        if reply.status in (404, 405):
            log.info(
                "mj POST %s -> HTTP %s: no list-by-condition here; fetching tasks one by one",
                path,
                reply.status,
            )
            self._list_unsupported = True
            return None
        if reply.status >= 400:
            self._fail(
                InvalidRequest(f"POST {path}: HTTP {reply.status}: {self._clip(reply.body)}"),
                "POST",
                path,
                reply,
            )
        payload = reply.payload
        if payload is _EMPTY or payload is None:
            return []  # nothing known
        if not isinstance(payload, list):
            self._fail(Unavailable(f"POST {path}: not a task list"), "POST", path, reply)
        wanted = set(ids)
        snapshots = []
        for item in payload:
            snap = _parse_task(item)
            if snap is None:
                log.warning("mj POST %s: skipped an entry that is not a task", path)
            elif snap.task_id in wanted:
                snapshots.append(snap)
        return snapshots

    async def _fetch_each(self, ids: list[str]) -> list[TaskSnapshot]:
        """Per-task fetch, at most a few at once. Unknown ids are absent.

        A task that fails for another reason is left out too, so one bad task does not stall
        the others; but when every fetch failed, the first error is raised so the caller backs
        off as for any outage.
        """
        gate = asyncio.Semaphore(_FALLBACK_CONCURRENCY)

        async def one(task_id: str) -> TaskSnapshot | ApiError | None:
            async with gate:
                try:
                    return await self.fetch(task_id)
                except TaskNotFound:
                    return None
                except ApiError as exc:
                    return exc

        results = await asyncio.gather(*(one(i) for i in ids))
        snapshots = [r for r in results if isinstance(r, TaskSnapshot)]
        errors = [r for r in results if isinstance(r, ApiError)]
        if errors and not snapshots and len(errors) == len(ids):
            raise errors[0]
        return snapshots

    # --- interpretation ------------------------------------------------------------------------

    def _raise_for_common(self, reply: _Reply, method: str, path: str, kind: _Kind) -> None:
        """The answers that mean the same on every endpoint: auth, rate limits, outages, and the
        two foreign error envelopes (new-api's and the C# proxy's)."""
        status, payload = reply.status, reply.payload
        where = f"{method} {path}"
        if status in (401, 403):
            header = "Authorization: Bearer" if self._auth_style == "bearer" else "mj-api-secret"
            why = "rejected the key" if status == 401 else "refused access with the key"
            self._fail(
                Misconfigured(
                    f"{where}: HTTP {status}: the API {why} sent as `{header}` "
                    "(check MJ_API_KEY and MJ_AUTH_STYLE)"
                ),
                method,
                path,
                reply,
            )
        if status == 429 or (isinstance(payload, dict) and payload.get("code") == 30):
            retry_after = _retry_after(reply.headers.get("retry-after"))
            self._fail(
                RateLimited(
                    f"{where}: HTTP {status}: {_describe(payload)}", retry_after=retry_after
                ),
                method,
                path,
                reply,
            )
        if _is_newapi_error(payload):
            self._fail(self._newapi_error(payload, where, status), method, path, reply)
        if _is_csharp_envelope(payload):
            self._fail(self._csharp_error(payload, where, status), method, path, reply)
        if status >= 500 or status == 408:
            self._fail(
                Unavailable(f"{where}: HTTP {status}: {self._clip(reply.body)}"),
                method,
                path,
                reply,
            )
        if kind != "fetch" and 200 <= status < 300 and payload is _NOT_JSON:
            self._fail(Unavailable(f"{where}: body is not JSON"), method, path, reply)

    def _newapi_error(self, payload: dict[str, Any], where: str, status: int) -> ApiError:
        """new-api's own `{description, type: "upstream_error", code}` answers (mj-api.md §3)."""
        description = str(payload.get("description") or "").strip()
        word = description.split(" ", 1)[0].split(":", 1)[0].lower()
        detail = f"{where}: HTTP {status}: new-api {description!r} (code {payload.get('code')})"
        if word in _NEWAPI_NOT_FOUND:
            return TaskNotFound(detail)
        if word == "quota_not_enough":
            # The aggregator account the operator pays for is empty: an operator problem, not a
            # member's and not an outage; Misconfigured makes `check` and the logs say so.
            return Misconfigured(detail, member_message=_QUOTA_MESSAGE)
        if word in _NEWAPI_UNAVAILABLE or payload.get("code") == 5 or status >= 500:
            return Unavailable(detail)
        if payload.get("code") == 24 or "sensitive" in word:
            return BannedPrompt(detail)
        return InvalidRequest(detail)

    def _csharp_error(self, payload: dict[str, Any], where: str, status: int) -> ApiError:
        """The C# proxy's exception-filter envelope `{success: false, code, message, timestamp}`."""
        message = str(payload.get("message") or "")
        detail = f"{where}: HTTP {status}: C# proxy {message!r} (code {payload.get('code')})"
        if _has_any(message, _QUEUE_FULL_WORDS):
            return QueueFull(detail)
        if status >= 500:
            return Unavailable(detail)
        if _has_any(message, _NO_PERMISSION_WORDS) or payload.get("code") in (401, 403):
            return Misconfigured(detail)
        return InvalidRequest(detail)

    def _submission(
        self, payload: dict[str, Any], method: str, path: str, kind: _Kind, reply: _Reply
    ) -> Submission:
        """The MJ submit envelope `{code, description, result, properties}` (mj-api.md §3)."""
        code = payload.get("code")
        description = str(payload.get("description") or "")
        props = payload.get("properties")
        props = props if isinstance(props, dict) else {}
        detail = f"{method} {path}: code {code}: {description}"
        if code in (1, 21, 22):
            task_id = _task_id(payload.get("result"))
            if not task_id:
                self._fail(Unavailable(f"{detail} without a task id"), method, path, reply)
            queue = _int_or_none(props.get("numberOfQueues"))
            return Submission(
                task_id=task_id,
                # new-api rewrites 22 to 1 but may keep numberOfQueues: still a queue position.
                queue_position=queue if queue and queue > 0 else None,
                needs_input=code == 21,
                description=description,
                final_prompt=_str(props.get("finalPrompt")),
            )
        error: ApiError
        if code == 3:
            missing_parent = kind == "parent" and (
                reply.status == 404 or _has_any(description, _MISSING_PARENT_WORDS)
            )
            error = TaskNotFound(detail) if missing_parent else NoAccount(detail)
        elif code == 4:
            # The C# proxy's /imagine reports its per-user concurrency and queue limits as code
            # 4; to a member they mean the same as a full queue (try again later), as they do
            # in its other envelope on the other endpoints.
            limited = _has_any(description, _USER_LIMIT_WORDS)
            error = QueueFull(detail) if limited else InvalidRequest(detail)
        elif code == 9:
            error = (
                QueueFull(detail)
                if _has_any(description, _QUEUE_FULL_WORDS)
                else Unavailable(detail)
            )
        elif code == 23:
            error = QueueFull(detail)
        elif code == 24:
            error = BannedPrompt(detail, word=_str(props.get("bannedWord")))
        else:
            error = Unavailable(f"{detail} (unknown code)")
        self._fail(error, method, path, reply)

    def _fail(self, error: ApiError, method: str, path: str, reply: _Reply) -> NoReturn:
        """Log the failure once (endpoint, status, a cut body) and raise it."""
        # Unknown ids and the member's own bad input are routine; service trouble is a warning.
        routine = isinstance(error, TaskNotFound) or error.member_fault
        level = logging.INFO if routine else logging.WARNING
        log.log(
            level,
            "mj %s %s -> HTTP %s: %s: %s",
            method,
            path,
            reply.status,
            type(error).__name__,
            self._clip(reply.body),
        )
        raise error

    def _clip(self, text: bytes | str) -> str:
        """A body fit for a log line: decoded, key and base64 runs masked, cut short."""
        if isinstance(text, bytes):
            text = text[: _LOG_BODY_CHARS * 4].decode("utf-8", "replace")
        if self._key:
            text = text.replace(self._key, "***")
        text = _BASE64_RUN.sub("<base64…>", text)
        text = " ".join(text.split())
        return text if len(text) <= _LOG_BODY_CHARS else text[:_LOG_BODY_CHARS] + "…"


# --- helpers -----------------------------------------------------------------------------------


class _TooLarge(Exception):
    """The server sent more than _MAX_BODY bytes."""


async def _read_capped(resp: aiohttp.ClientResponse) -> bytes:
    """Read the body, refusing to buffer more than _MAX_BODY bytes from a confused server."""
    if (resp.content_length or 0) > _MAX_BODY:
        raise _TooLarge
    parts: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > _MAX_BODY:
            raise _TooLarge
        parts.append(chunk)
    return b"".join(parts)


def _add_common(body: dict[str, Any], state: str, notify_hook: str | None) -> None:
    """`state` always (proxies echo it back); `notifyHook` only when callbacks are wanted."""
    body["state"] = state
    if notify_hook:
        body["notifyHook"] = notify_hook


def _quote_id(task_id: str) -> str:
    """Ids are digits; anything else is percent-encoded so it cannot change the path."""
    return quote(str(task_id), safe="")


def _has_any(text: str, needles: Iterable[str]) -> bool:
    lowered = text.lower()
    return any(n.lower() in lowered for n in needles)


def _is_mj_envelope(payload: object) -> bool:
    return (
        isinstance(payload, dict)
        and isinstance(payload.get("code"), int)
        and ("description" in payload or "result" in payload)
    )


def _is_newapi_error(payload: object) -> bool:
    return (
        isinstance(payload, dict)
        and payload.get("type") == "upstream_error"
        and "description" in payload
    )


def _is_csharp_envelope(payload: object) -> bool:
    return (
        isinstance(payload, dict)
        and payload.get("success") is False
        and "message" in payload
        and "result" not in payload
    )


def _describe(payload: object) -> str:
    if isinstance(payload, dict):
        return str(payload.get("description") or payload.get("message") or "")[:_LOG_BODY_CHARS]
    return ""


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


def _str(value: object) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def _task_id(value: object) -> str:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return ""


def _int_or_none(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value == value and abs(value) < 2**63:
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def _time_ms(value: object) -> int | None:
    """Epoch milliseconds; new-api's 0 (and null) mean "not yet"."""
    ms = _int_or_none(value)
    return ms if ms and ms > 0 else None


def _progress(value: object) -> int:
    """ "46%", "", 46, "100%" → 0–100."""
    if isinstance(value, str):
        value = value.strip().rstrip("%").strip()
        try:
            number = float(value) if value else 0.0
        except ValueError:
            return 0
    elif isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    else:
        return 0
    if number != number:  # NaN
        return 0
    return int(min(100.0, max(0.0, number)))


def _buttons(value: object) -> tuple[Button, ...]:
    """`buttons` may be absent (Java), null (new-api) or a list of `{customId, …}`."""
    if not isinstance(value, list):
        return ()
    buttons = []
    for item in value:
        if not isinstance(item, dict):
            continue
        custom_id = _str(item.get("customId")).strip()
        if not custom_id:
            continue
        style = _int_or_none(item.get("style"))
        buttons.append(
            Button(
                custom_id=custom_id,
                label=_str(item.get("label")),
                emoji=_str(item.get("emoji")),
                style=style if style is not None else 2,
            )
        )
    return tuple(buttons)


def _parse_task(raw: object) -> TaskSnapshot | None:
    """Either task shape (the proxies' TaskInfo or new-api's DTO) as a snapshot; None if it has
    no id. Failures report progress 0: new-api forces "100%" on every failure, the proxies "",
    and neither says how far the task really got."""
    if not isinstance(raw, dict):
        return None
    task_id = _task_id(raw.get("id"))
    if not task_id:
        return None
    status = TaskStatus.parse(raw.get("status"))
    props = raw.get("properties")
    props = props if isinstance(props, dict) else {}
    progress = _progress(raw.get("progress"))
    if status is TaskStatus.FAILURE:
        progress = 0
    elif status is TaskStatus.SUCCESS:
        progress = 100
    image_url = _str(raw.get("imageUrl")).strip()
    return TaskSnapshot(
        task_id=task_id,
        status=status,
        progress=progress,
        action=_str(raw.get("action")),
        prompt=_str(raw.get("prompt")) or _str(raw.get("promptEn")),
        final_prompt=_str(props.get("finalPrompt")),
        image_url=image_url or None,
        fail_reason=_str(raw.get("failReason")),
        state=_str(raw.get("state")),
        buttons=_buttons(raw.get("buttons")),
        submit_time_ms=_time_ms(raw.get("submitTime")),
        finish_time_ms=_time_ms(raw.get("finishTime")),
    )
