"""The Midjourney-proxy simulator: an aiohttp app on loopback that behaves like the real servers.

Three profiles (mj-api.md §0):

* ``aggregator`` (default) — new-api (layer D) in front of a plus/C# proxy: Bearer auth with
  one-api style 401s, its own HTTP 400 ``{description, type: "upstream_error", code}`` errors,
  the 22→1 and 21→1 code rewrites, the re-shaped fetch DTO (§4.4) as stale as its polling,
  ``/mj/image/{id}`` image URLs, and no notifyHook callbacks.
* ``upstream`` — the plus/C# proxy itself (layers B/C): ``mj-api-secret`` auth with HTTP 403,
  raw codes 1/3/4/9/21/22/23/24, full task objects, Discord-CDN-shaped image URLs served here,
  and notifyHook POSTs.
* ``classic`` — the original Java midjourney-proxy 2.x (layer A): ``mj-api-secret`` auth with a
  bare 401, no ``buttons``, no ``/submit/action`` or ``/submit/modal`` (Spring's 404 JSON) but
  ``/submit/change`` and ``/submit/simple-change``, ``/task/list`` and ``/task/queue``, no mode
  prefixes, Jackson's nulls (see `classic.py`).

What the real servers also do and the switches in `Faults` reproduce: signed image links that
expire, new-api's middleware errors (401/403/503 in ``{"error": {...}}``) and its code 5 when the
proxy behind it is down, the second row ``/submit/modal`` leaves in new-api's table, and
notifyHook delivered at least once (duplicated, reordered, some dropped).

One catch-all route does its own routing, so that the ``/mj-relax``, ``/mj-fast`` and
``/mj-turbo`` prefixes, faults that apply before routing, and request recording all live in one
place.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import math
import random
import re
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Self
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from . import classic
from .faults import Faults
from .images import ImageCache
from .tasks import (
    MODAL,
    NOT_START,
    SUCCESS,
    ActionPlan,
    SimTask,
    TaskBook,
    aggregator_dto,
    model_version,
    new_task_id,
    newapi_action,
    now_ms,
    plan_action,
    upstream_json,
)

log = logging.getLogger(__name__)

Profile = Literal["aggregator", "upstream", "classic"]
PROFILES = ("aggregator", "upstream", "classic")

MODE_PREFIX = re.compile(r"^/(mj-relax|mj-fast|mj-turbo)(?=/mj/)")
FETCH = re.compile(r"^/mj/task/([^/]+)/fetch$")
IMAGE = re.compile(r"^/mj/image/([^/]+)$")
# A's DataUrlSerializer: a full data URI whose MIME is lower-case `type/subtype` (§6).
DATA_URI = re.compile(r"^data:([a-z\-0-9]+/[a-z\-0-9]+);base64,(.+)$", re.DOTALL)
CSHARP_LIMIT = "并发数已达上限"
NEWAPI_BUSY = "当前分组负载已饱和，请稍后再试，或升级账户以提升服务质量。"
HTML = "<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>"


@dataclass
class RecordedRequest:
    """One request as the simulator received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    json: Any
    at: float


class _Reply(Exception):
    """Raised by handlers to answer at once (keeps the validation chains flat)."""

    def __init__(self, response: web.StreamResponse) -> None:
        super().__init__()
        self.response = response


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        status=status,
        text=json.dumps(data, ensure_ascii=False),
        content_type="application/json",
    )


def _envelope(
    code: int,
    description: str,
    result: str | None = None,
    properties: dict[str, Any] | None = None,
    status: int = 200,
) -> web.Response:
    """The submit envelope (§3); failures carry `result: null` and `properties: {}`."""
    body = {
        "code": code,
        "description": description,
        "result": result,
        "properties": properties or {},
    }
    return _json(body, status)


def _fail(code: int, description: str, status: int = 200, **properties: Any) -> _Reply:
    return _Reply(_envelope(code, description, None, properties, status))


def _newapi_error(description: str, code: int = 4, result: str = "") -> _Reply:
    """new-api's own error (§1): HTTP 400, or 429 for code 30. The description is
    `fmt.Sprintf("%s %s", Description, Result)` (controller/relay.go RelayMidjourney), so it
    ends in a space when there is no result."""
    status = 429 if code == 30 else 400
    text = f"{description} {result}"
    return _Reply(_json({"description": text, "type": "upstream_error", "code": code}, status))


def _middleware_error(status: int, message: str) -> _Reply:
    """new-api's middleware answer (abortWithOpenAiMessage): the message carries a request id."""
    request_id = time.strftime("%Y%m%d%H%M%S", time.gmtime()) + f"{random.randrange(10**8):08d}"
    body = {"error": {"message": f"{message} (request id: {request_id})", "type": "new_api_error"}}
    return _Reply(_json(body, status))


def _csharp_envelope() -> _Reply:
    """The C# proxy's exception-filter envelope, at HTTP 200 (§1)."""
    body = {"success": False, "code": 0, "message": CSHARP_LIMIT, "timestamp": str(now_ms())}
    return _Reply(_json(body))


class MjProxySimulator:
    """A Midjourney-proxy compatible API on loopback; see the module docstring for the profiles.

    Tests drive it through `faults`, `advance()`, `complete()` and `fail()`, and inspect
    `requests`, `tasks` and `callbacks`.
    """

    def __init__(
        self,
        *,
        profile: Profile = "aggregator",
        api_key: str = "sk-test",
        step_seconds: float = 0.2,
        auto_advance: bool = True,
        poll_granularity: float = 0.0,
        image_px: int = 256,
        server_address: str | None = None,
        seed: int | None = None,
    ) -> None:
        if profile not in PROFILES:
            raise ValueError(f"profile must be one of {PROFILES}, not {profile!r}")
        self.profile: Profile = profile
        self.api_key = api_key
        self.step_seconds = step_seconds
        self.auto_advance = auto_advance
        self.poll_granularity = poll_granularity
        # Aggregator: new-api's ServerAddress setting, the root of its /mj/image/<id> links
        # (None: this simulator's own URL). A wrong one gives dead links (new-api#144).
        self.server_address = server_address
        self.rng = random.Random(seed)
        self.requests: list[RecordedRequest] = []
        self.callbacks: list[dict[str, Any]] = []
        # At-least-once mode: the callbacks that were never sent.
        self.dropped_callbacks: list[dict[str, Any]] = []
        self.base_url = ""
        self._book = TaskBook(Faults(), self._changed)
        self._book.image_px = image_px
        self._images = ImageCache()
        self._runner: web.AppRunner | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._t0 = time.monotonic()

    # --- public surface ------------------------------------------------------------------------

    @property
    def faults(self) -> Faults:
        """The switches tests flip; replacing the whole object works too."""
        return self._book.faults

    @faults.setter
    def faults(self, value: Faults) -> None:
        self._book.faults = value

    @property
    def tasks(self) -> dict[str, SimTask]:
        return self._book.tasks

    @property
    def image_px(self) -> int:
        return self._book.image_px

    @image_px.setter
    def image_px(self, value: int) -> None:
        self._book.image_px = value

    def requests_to(self, path: str) -> list[RecordedRequest]:
        """Requests to `path` (e.g. "/mj/submit/imagine"), with or without a mode prefix."""
        return [r for r in self.requests if MODE_PREFIX.sub("", r.path) == path]

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._loop = asyncio.get_running_loop()
        self._t0 = time.monotonic()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        # A short shutdown timeout: a request parked by `slow_seconds` must not hold up stop().
        self._runner = web.AppRunner(app, shutdown_timeout=0.5, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = self._runner.addresses[0]
        self.base_url = f"http://{host}:{bound[1]}"
        self._book.base_url = self.base_url
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        self._ticker = asyncio.create_task(self._tick(), name="mjproxy-ticker")

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        for pending in list(self._background):
            pending.cancel()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def advance(self, task_id: str | None = None) -> None:
        """Move one task (or every unfinished one) one lifecycle step."""
        targets = [self.tasks[task_id]] if task_id is not None else list(self.tasks.values())
        for task in targets:
            self._book.step(task)

    def complete(self, task_id: str) -> None:
        """Finish the task with SUCCESS now (its final image and buttons appear)."""
        self._book.complete(self.tasks[task_id])

    def fail(self, task_id: str, reason: str) -> None:
        """End the task with FAILURE and `reason` now."""
        self._book.fail(self.tasks[task_id], reason)

    def seed_running(
        self, count: int, *, notify_hook: str | None = None, states: list[str] | None = None
    ) -> list[str]:
        """Create `count` imagine tasks already running (IN_PROGRESS 0%), as if submitted
        earlier; for scale tests and benchmarks. `states[i]` is task i's `state`."""
        ids = []
        for i in range(count):
            body: dict[str, Any] = {"prompt": f"seeded task {i}"}
            if notify_hook and self.profile != "aggregator":
                body["notifyHook"] = notify_hook
            if states is not None:
                body["state"] = states[i]
            task = self._new_task(body, None, "IMAGINE", body["prompt"], "/imagine seeded")
            task.status, task.progress = "IN_PROGRESS", "0%"
            task.start_time = now_ms()
            self.tasks[task.id] = task
            task.history.append((time.monotonic(), upstream_json(task)))
            ids.append(task.id)
        return ids

    # --- lifecycle plumbing --------------------------------------------------------------------

    async def _tick(self) -> None:
        while True:
            if self.auto_advance:
                now = time.monotonic()
                for task in list(self.tasks.values()):
                    if task.terminal or task.status == MODAL:
                        continue
                    if now >= task.next_step_at:
                        task.next_step_at = now + self.step_seconds
                        self._book.step(task)
            await asyncio.sleep(min(0.05, max(0.005, self.step_seconds / 4)))

    def _changed(self, task: SimTask) -> None:
        """After every change: snapshot for the aggregator's poll view, then notifyHook."""
        snapshot = upstream_json(task)
        task.history.append((time.monotonic(), snapshot))
        if self.profile == "aggregator" or not task.notify_hook:
            return
        # NOT_START and MODAL are never pushed; the rest once per "STATUS:progress" (§5).
        if task.status in (NOT_START, MODAL):
            return
        key = f"{task.status}:{task.progress}"
        if key in task.notified:
            return
        task.notified.add(key)
        body = classic.java_json(task) if self.profile == "classic" else snapshot
        faults = self.faults
        if not faults.at_least_once_callbacks:
            self._spawn(self._notify(task.notify_hook, body))
            return
        if self.rng.random() < faults.callback_drop_rate:
            self.dropped_callbacks.append({"url": task.notify_hook, "body": body})
            return
        copies = 2 if self.rng.random() < faults.callback_duplicate_rate else 1
        for _ in range(copies):
            delay = self.rng.uniform(0.0, max(0.0, faults.callback_max_delay))
            self._spawn(self._notify(task.notify_hook, body, delay))

    def _spawn(self, coro: Any) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None:
            if self._loop is None:
                coro.close()
                return
            self._loop.call_soon_threadsafe(self._spawn, coro)
            return
        job = loop.create_task(coro)
        self._background.add(job)
        job.add_done_callback(self._background.discard)

    async def _notify(self, url: str, body: dict[str, Any], delay: float = 0.0) -> None:
        """One fire-and-forget POST; no retries, the outcome only recorded (§5)."""
        if delay > 0:
            await asyncio.sleep(delay)
        record: dict[str, Any] = {"url": url, "body": body, "at": time.monotonic()}
        try:
            if self._session is None:
                raise RuntimeError("simulator stopped")
            async with self._session.post(url, json=body) as resp:
                await resp.read()
                record["status"] = resp.status
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            record["error"] = f"{type(exc).__name__}: {exc}"
        self.callbacks.append(record)

    def _view(self, task: SimTask) -> dict[str, Any] | None:
        """The upstream snapshot the aggregator last polled, or None before its first poll.

        With `poll_granularity` 0 every change counts as polled (but not the submit itself, so
        the empty status shows until the task first moves); otherwise the view is the state at
        the last multiple of the granularity since start, like new-api's 15 s poll loop.
        """
        if self.poll_granularity <= 0:
            return task.history[-1][1] if len(task.history) > 1 else None
        g = self.poll_granularity
        boundary = self._t0 + math.floor((time.monotonic() - self._t0) / g) * g
        seen = [snap for at, snap in task.history if at <= boundary]
        return seen[-1] if seen else None

    # --- HTTP ----------------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        self.requests.append(
            RecordedRequest(
                method=request.method,
                path=request.path,
                query=dict(request.query),
                headers=dict(request.headers),
                body=raw,
                json=parsed,
                at=time.monotonic(),
            )
        )
        path = request.path
        if request.method == "GET" and path.startswith("/attachments/"):
            return await self._serve_attachment(path.removeprefix("/attachments/"))
        image = IMAGE.match(path)
        if image and request.method == "GET" and self.profile == "aggregator":
            return await self._serve_newapi_image(image.group(1))
        prefix = MODE_PREFIX.match(path)
        if prefix and self.profile == "classic":
            prefix = None  # the Java proxy has no mode routes: /mj-relax/... is just unknown
        api_path = path[prefix.end() :] if prefix else path
        mode = prefix.group(1).removeprefix("mj-").upper() if prefix else None

        faults = self.faults
        if faults.slow_seconds > 0:
            await asyncio.sleep(faults.slow_seconds)
        if faults.drop_connection:
            return self._drop(request)
        if faults.http_status is not None:
            return web.Response(
                status=faults.http_status, text=f"HTTP {faults.http_status} from the simulator"
            )
        if faults.not_json:
            return web.Response(text=HTML, content_type="text/html")
        try:
            self._authorize(request)
            if self.profile == "aggregator":
                self._newapi_middleware(request.method, api_path)
            if faults.rate_limited:
                if self.profile == "aggregator":
                    raise _newapi_error(NEWAPI_BUSY, 30)
                raise _Reply(web.Response(status=429, text="Too Many Requests"))
            return await self._route(request.method, api_path, raw, parsed, mode)
        except _Reply as reply:
            return reply.response

    def _drop(self, request: web.Request) -> web.StreamResponse:
        """Close the socket without a byte of answer."""
        if request.transport is not None:
            request.transport.close()
        # aiohttp still wants a response object; nothing of it reaches the closed socket.
        return web.Response(status=500)

    def _newapi_middleware(self, method: str, path: str) -> None:
        """new-api's TokenAuth and Distribute, after the key matched (middleware/auth.go,
        model/token.go ValidateUserToken, middleware/distributor.go)."""
        words = {
            "exhausted": "该令牌额度已用尽",
            "expired": "该令牌已过期",
            "disabled": "该令牌状态不可用",
        }
        state = self.faults.key_state
        if state in words:
            raise _middleware_error(401, words[state])
        if state == "user_banned":
            raise _middleware_error(403, "用户已被封禁")
        # Fetch and list-by-condition read new-api's own table: no channel is chosen for them.
        submitting = method == "POST" and path.startswith("/mj/submit/")
        if submitting and self.faults.no_channel:
            model = "mj_" + path.rsplit("/", 1)[-1].replace("-", "_")
            raise _middleware_error(503, f"当前分组 default 下对于模型 {model} 无可用渠道")
        if submitting and self.faults.upstream_down:
            raise _newapi_error("do_request_failed", code=5)

    def _authorize(self, request: web.Request) -> None:
        if self.profile == "classic":
            # ApiAuthorizeInterceptor: only `mj-api-secret`, a bare 401 otherwise.
            if request.headers.get("mj-api-secret") != self.api_key:
                raise _Reply(web.Response(status=401))
            return
        if self.profile == "aggregator":
            # new-api's TokenAuth: Authorization with "Bearer " and "sk-" stripped; the
            # mj-api-secret header when Authorization is empty or literally "midjourney-proxy".
            key = request.headers.get("Authorization", "")
            if key in ("", "midjourney-proxy"):
                key = request.headers.get("mj-api-secret", "")
            key = key.removeprefix("Bearer ").removeprefix("sk-")
            if not key:
                raise _Reply(
                    _json({"error": {"message": "未提供令牌", "type": "new_api_error"}}, 401)
                )
            if key != self.api_key.removeprefix("sk-"):
                raise _Reply(
                    _json({"error": {"message": "无效的令牌", "type": "new_api_error"}}, 401)
                )
            return
        # The C# proxy: the raw Authorization value (no "Bearer " stripping), else mj-api-secret.
        key = request.headers.get("Authorization") or request.headers.get("mj-api-secret") or ""
        if key != self.api_key:
            body = {
                "success": False,
                "code": 403,
                "message": "您无权限访问",
                "timestamp": str(now_ms()),
            }
            raise _Reply(_json(body, 403))

    async def _route(
        self, method: str, path: str, raw: bytes, body: Any, mode: str | None
    ) -> web.StreamResponse:
        fetch = FETCH.match(path)
        if fetch and method == "GET":
            return self._fetch(fetch.group(1))
        submits = {
            "/mj/submit/imagine": self._imagine,
            "/mj/submit/describe": self._describe,
            "/mj/submit/blend": self._blend,
        }
        if self.profile == "classic":
            submits["/mj/submit/change"] = self._change
            submits["/mj/submit/simple-change"] = self._simple_change
        else:
            submits["/mj/submit/action"] = self._action
            submits["/mj/submit/modal"] = self._modal
        lists = {"/mj/task/list-by-condition"}
        if self.profile == "upstream":
            lists.add("/mj/task/list-by-ids")
        if method == "POST" and path in lists:
            return self._list(self._body(raw, body, path))
        if method == "POST" and path in submits:
            return submits[path](self._body(raw, body, path), mode)
        # §2.11: the Java proxy has both, the C# one only the list, new-api neither.
        if method == "GET" and path == "/mj/task/list" and self.profile != "aggregator":
            return self._task_list()
        if method == "GET" and path == "/mj/task/queue" and self.profile == "classic":
            return self._task_queue()
        if self.profile == "aggregator":
            return web.Response(status=404, text="404 page not found")  # gin's default
        if self.profile == "classic":
            return _json(classic.spring_error(404, path, "Not Found"), 404)
        return web.Response(status=404)

    def _body(self, raw: bytes, body: Any, path: str = "") -> dict[str, Any]:
        """The JSON object body, or the server's own "cannot bind" answer."""
        if isinstance(body, dict):
            return body
        if self.profile == "aggregator":
            raise _newapi_error("bind_request_body_failed")
        if self.profile == "classic":
            raise _Reply(_json(classic.spring_error(400, path, "Bad Request"), 400))
        problem = {
            "type": "https://tools.ietf.org/html/rfc9110#section-15.5.1",
            "title": "One or more validation errors occurred.",
            "status": 400,
            "errors": {"$": ["The JSON value could not be converted."]},
        }
        raise _Reply(_json(problem, 400))

    # --- fetch and list ---

    def _fetch(self, task_id: str) -> web.StreamResponse:
        task = self.tasks.get(task_id)
        if self.profile == "aggregator":
            if task is None:
                raise _newapi_error("task_no_found")
            # GetByMJId takes the first row: after /submit/modal, the one left behind.
            return _json(task.stale_row or self._dto(task))
        if task is None:
            if self.faults.unknown_id_style == "204":
                return web.Response(status=204)
            return web.Response(status=200)  # Java: the controller returns null → empty body
        return _json(self._task_json(task))

    def _list(self, body: dict[str, Any]) -> web.StreamResponse:
        status = self.faults.list_by_condition_status
        if status is not None:
            if self.profile == "aggregator":
                return web.Response(status=status, text=f"{status} page not found")
            return web.Response(status=status)
        ids = body.get("ids")
        if not isinstance(ids, list):
            return _json([])
        found = []
        for raw_id in ids:
            task = self.tasks.get(str(raw_id).strip())
            if task is None:
                continue
            if self.profile == "aggregator":
                # GetByMJIds returns every row with the id: the stale one and the live one.
                if task.stale_row is not None:
                    found.append(task.stale_row)
                found.append(self._dto(task))
            else:
                found.append(self._task_json(task))
        return _json(found)

    def _task_list(self) -> web.StreamResponse:
        """GET /mj/task/list: Java every task newest first, C# the newest 100 (§2.11)."""
        tasks = sorted(self.tasks.values(), key=lambda t: t.submit_time or 0, reverse=True)
        if self.profile == "upstream":
            tasks = tasks[:100]
        return _json([self._task_json(t) for t in tasks])

    def _task_queue(self) -> web.StreamResponse:
        """GET /mj/task/queue (Java): the tasks waiting or running, oldest first."""
        running = [t for t in self.tasks.values() if not t.terminal]
        running.sort(key=lambda t: t.submit_time or 0)
        return _json([self._task_json(t) for t in running])

    def _task_json(self, task: SimTask) -> dict[str, Any]:
        return classic.java_json(task) if self.profile == "classic" else upstream_json(task)

    def _dto(self, task: SimTask) -> dict[str, Any]:
        return aggregator_dto(task, self._view(task), self.server_address or self.base_url)

    # --- submits ---

    def _imagine(self, body: dict[str, Any], mode: str | None) -> web.StreamResponse:
        prompt = str(body.get("prompt") or "").strip()
        if self.profile == "aggregator" and not prompt:
            raise _newapi_error("prompt_is_required")
        if not prompt:
            raise _fail(4, "prompt不能为空")
        self._check_common(body)
        images = self._decode_all(body.get("base64Array"))
        self._check_banned(prompt)
        if self.faults.csharp_envelope:
            # Only /imagine catches the C# limit exceptions and answers code 4 (§1).
            raise _fail(4, CSHARP_LIMIT)
        self._check_capacity()
        urls = [self._book.upload(data, mime) for mime, data in images]
        # C prepends the uploaded reference URLs to the prompt (§2.2).
        full = " ".join([*urls, prompt])
        task = self._new_task(body, mode, "IMAGINE", full, f"/imagine {full}")
        task.d_prompt = prompt
        task.version = model_version(prompt)
        return self._accepted(task, "IMAGINE")

    def _describe(self, body: dict[str, Any], mode: str | None) -> web.StreamResponse:
        self._check_common(body)
        # The Java proxy takes `base64` only; the C# one also a `link` (§2.7).
        source = body.get("base64") or (body.get("link") if self.profile != "classic" else None)
        if not source:
            raise _fail(4, "base64不能为空")
        if self.faults.csharp_envelope:
            raise _csharp_envelope()
        if isinstance(source, str) and re.match(r"^https?://", source):
            urls = [source]
        else:
            ((mime, data),) = self._decode_all([source])
            urls = [self._book.upload(data, mime)]
        self._check_capacity()
        task = self._new_task(body, mode, "DESCRIBE", "", "")
        task.description = f"/describe {task.id}"
        task.kind = "describe"
        task.upload_urls = urls
        return self._accepted(task, "DESCRIBE")

    def _blend(self, body: dict[str, Any], mode: str | None) -> web.StreamResponse:
        self._check_common(body)
        items = body.get("base64Array")
        if not isinstance(items, list) or not 2 <= len(items) <= 5:
            raise _fail(4, "图片参数错误，2~5张图片")
        images = self._decode_all(items)
        dimensions = body.get("dimensions", "SQUARE")
        ratios = {"PORTRAIT": "2:3", "SQUARE": "1:1", "LANDSCAPE": "3:2"}
        if dimensions not in ratios:
            raise _fail(4, "dimensions参数错误")
        if self.faults.csharp_envelope:
            raise _csharp_envelope()
        self._check_capacity()
        urls = [self._book.upload(data, mime) for mime, data in images]
        prompt = " ".join(urls) + f" --ar {ratios[str(dimensions)]}"
        task = self._new_task(body, mode, "BLEND", prompt, "")
        task.description = f"/blend {task.id} {len(urls)}"
        return self._accepted(task, "BLEND")

    def _action(self, body: dict[str, Any], mode: str | None) -> web.StreamResponse:
        task_id = str(body.get("taskId") or "").strip()
        custom_id = str(body.get("customId") or "").strip()
        d_action = ""
        if self.profile == "aggregator":
            # new-api validates and names the action itself before forwarding (§2.3).
            if not custom_id:
                raise _newapi_error("custom_id_is_required")
            d_action = newapi_action(custom_id) or ""
            if not d_action:
                raise _newapi_error(f"unknown_action:{custom_id}")
            if not task_id:
                raise _newapi_error("task_id_is_required")
            known = self.tasks.get(task_id)
            if known is None:
                raise _newapi_error("task_not_found")
            seen = self._view(known)
            if (seen or {}).get("status") != SUCCESS:
                raise _newapi_error("task_status_not_success")
        if not task_id or not custom_id:
            raise _fail(4, "参数错误")
        self._check_common(body)
        parent = self.tasks.get(task_id)
        if parent is None:
            raise _fail(3, "关联任务不存在或已失效", status=404)
        if parent.status != SUCCESS:
            raise _fail(4, "关联任务状态错误")
        plan = plan_action(custom_id)
        if plan is None:
            raise _fail(4, "未知的 Action 类型")
        if plan.bookmark:
            return _envelope(1, self._ok_text(), parent.id, self._instance_props())
        if self.faults.csharp_envelope:
            raise _csharp_envelope()
        modal = plan.modal or ("remix" if plan.remixable and self.faults.modal_actions else None)
        if modal is None:
            self._check_capacity()
        task = self._child(body, mode, parent, plan, custom_id, modal)
        task.d_action = d_action
        if modal is not None:
            return self._waiting_for_modal(task)
        return self._accepted(task, d_action)

    def _change(self, body: dict[str, Any], mode: str | None) -> web.StreamResponse:
        """The Java proxy's POST /submit/change (SubmitController.change, mj-api.md §2.5)."""
        task_id = str(body.get("taskId") or "").strip()
        if not task_id:
            raise _fail(4, "taskId不能为空")
        action = body.get("action")
        if isinstance(action, str) and action not in classic.TASK_ACTIONS:
            # Not a TaskAction: Jackson cannot bind the body.
            raise _Reply(_json(classic.spring_error(400, "/mj/submit/change", "Bad Request"), 400))
        if action not in classic.CHANGE_ACTIONS:
            raise _fail(4, "action参数错误")
        self._check_common(body)
        parent = self.tasks.get(task_id)
        if parent is None:
            raise _fail(3, "关联任务不存在或已失效")
        if parent.status != SUCCESS:
            raise _fail(4, "关联任务状态错误")
        if parent.action not in classic.CHANGE_PARENTS:
            raise _fail(4, "关联任务不允许执行变化")
        index = body.get("index")
        chosen = index if isinstance(index, int) and 1 <= index <= 4 else None
        self._check_capacity()
        custom_id = classic.custom_id_for(str(action), chosen or 1, parent.job_hash)
        plan = plan_action(custom_id)
        assert plan is not None
        task = self._child(body, mode, parent, plan, custom_id, None)
        task.action = str(action)
        task.description = classic.change_description(task_id, str(action), index)
        if action != "REROLL" and chosen is None:
            # The proxy does not check the index; Discord refuses the button it makes up.
            task.doomed = "[Invalid parameter] Invalid value"
        return self._accepted(task, "")

    def _simple_change(self, body: dict[str, Any], mode: str | None) -> web.StreamResponse:
        """POST /submit/simple-change: `{"content": "<id> U2"}` → /submit/change."""
        change = classic.simple_change(body.get("content"))
        if change is None:
            raise _fail(4, "content参数错误")
        for key in ("state", "notifyHook"):
            if key in body:
                change[key] = body[key]
        return self._change(change, mode)

    def _modal(self, body: dict[str, Any], mode: str | None) -> web.StreamResponse:
        task_id = str(body.get("taskId") or "").strip()
        if not task_id:
            raise _fail(4, "参数错误")
        self._check_common(body)
        task = self.tasks.get(task_id)
        if task is None:
            raise _fail(3, "关联任务不存在或已失效", status=404)
        if task.status != MODAL:
            raise _fail(4, "关联任务状态错误")
        prompt = str(body.get("prompt") or "").strip() or task.prompt_en
        if task.modal == "custom_zoom" and "--zoom" not in prompt:
            raise _fail(4, "参数错误")
        self._check_banned(prompt)
        if self.faults.csharp_envelope:
            raise _csharp_envelope()
        self._check_capacity()
        if self.profile == "aggregator" and task.stale_row is None:
            # new-api inserts a row per submit: the modal's answer carries the same id, so the
            # row /submit/action made stays behind, frozen as its poller last saw it.
            task.stale_row = self._dto(task)
            task.d_action = "MODAL"
        task.prompt = task.prompt_en = prompt
        task.properties["finalPrompt"] = prompt
        task.version = model_version(prompt)
        task.description = f"/{task.action.lower()} {task.parent_id or task.id}"
        task.modal = None
        task.status, task.progress = NOT_START, "0%"
        task.next_step_at = time.monotonic() + self.step_seconds
        if self.profile != "aggregator" and isinstance(body.get("notifyHook"), str):
            task.notify_hook = body["notifyHook"] or task.notify_hook
        self._book.on_change(task)
        return self._queued_or_ok(task, task.d_action)

    # --- submit helpers ---

    def _check_common(self, body: dict[str, Any]) -> None:
        state = body.get("state")
        if isinstance(state, str) and len(state) > 255:
            raise _fail(4, "state参数过长，最大255字符")
        hook = body.get("notifyHook")
        if self.profile != "aggregator" and isinstance(hook, str) and len(hook) > 2000:
            raise _fail(4, "NotifyHook参数过长，最大2000字符")

    def _decode_all(self, items: Any) -> list[tuple[str, bytes]]:
        """Each entry must be a full data URI with a lower-case MIME, else the request fails."""
        if items is None:
            return []
        if not isinstance(items, list):
            raise _fail(4, "base64格式错误")
        out = []
        for item in items:
            match = DATA_URI.match(item) if isinstance(item, str) else None
            if match is None:
                raise _fail(4, "base64格式错误")
            try:
                data = base64.b64decode(match.group(2), validate=True)
            except (binascii.Error, ValueError):
                raise _fail(4, "base64格式错误") from None
            out.append((match.group(1), data))
        return out

    def _check_banned(self, prompt: str) -> None:
        """A's BannedPromptUtils: `\\b<word>\\b` on the lower-cased prompt → code 24."""
        lowered = prompt.lower()
        for word in sorted(self.faults.banned_words):
            if re.search(rf"\b{re.escape(word.lower())}\b", lowered):
                raise _fail(24, "可能包含敏感词", promptEn=prompt, bannedWord=word)

    def _check_capacity(self) -> None:
        if self.faults.no_account:
            raise _fail(3, "无可用的账号实例")
        if self.faults.queue_full:
            if self.faults.queue_full_style == "csharp":
                raise _fail(9, "提交失败，队列已满，请稍后重试", **self._instance_props())
            raise _fail(23, "队列已满，请稍后尝试", discordInstanceId=self._book.instance_id)

    def _instance_props(self) -> dict[str, Any]:
        if self.profile == "classic":
            return {"discordInstanceId": self._book.instance_id}
        # C sets discordChannelId == discordInstanceId (§0).
        return {
            "discordInstanceId": self._book.instance_id,
            "discordChannelId": self._book.instance_id,
        }

    def _ok_text(self) -> str:
        # Behind the aggregator sits a plus build ("Submit success"); C says "提交成功" (§0).
        return "Submit success" if self.profile == "aggregator" else "提交成功"

    def _new_task(
        self, body: dict[str, Any], mode: str | None, action: str, prompt: str, description: str
    ) -> SimTask:
        bot_type = str(body.get("botType") or "")
        bot_type = "NIJI_JOURNEY" if bot_type in ("NIJI_JOURNEY", "niji") else "MID_JOURNEY"
        state = body.get("state")
        # new-api deletes notifyHook from what it forwards (MjNotifyEnabled defaults to off).
        hook = body.get("notifyHook") if self.profile != "aggregator" else None
        task = SimTask(
            id=new_task_id(self.tasks),
            action=action,
            status=NOT_START,
            progress="0%",
            prompt=prompt,
            prompt_en=prompt,
            bot_type=bot_type,
            state=state if isinstance(state, str) else None,
            base64_array=[x for x in body.get("base64Array") or [] if isinstance(x, str)],
            notify_hook=hook if isinstance(hook, str) and hook else None,
            description=description,
            submit_time=now_ms(),
            mode=mode or _mode_from_flags(prompt),
            d_action=action,
            d_prompt=prompt,
            d_submit_time=now_ms(),
        )
        task.properties = {
            "notifyHook": task.notify_hook,
            "discordInstanceId": self._book.instance_id,
            "discordChannelId": self._book.instance_id,
            "finalPrompt": prompt,
            "nonce": task.nonce,
            "botType": bot_type,
        }
        task.next_step_at = time.monotonic() + self.step_seconds
        return task

    def _child(
        self,
        body: dict[str, Any],
        mode: str | None,
        parent: SimTask,
        plan: ActionPlan,
        custom_id: str,
        modal: str | None,
    ) -> SimTask:
        action = plan.action or (
            "IMAGINE" if parent.action.startswith("UPSCALE") else parent.action
        )
        prompt = parent.prompt_en
        if plan.pic_reader:
            lines = str(parent.properties.get("finalPrompt") or "").split("\n\n")
            chosen = lines[plan.pic_reader - 1] if len(lines) >= plan.pic_reader else prompt
            prompt = chosen.split(" ", 1)[-1]  # drop the keycap
        task = self._new_task(body, mode or parent.mode, action, prompt, "")
        task.parent_id = parent.id
        task.bot_type = parent.bot_type
        task.kind = plan.kind
        task.version = parent.version
        task.d_prompt = parent.d_prompt
        task.properties.update(
            custom_id=custom_id, action_index=plan.index, botType=parent.bot_type
        )
        if plan.kind in ("single", "hd", "video"):
            if parent.kind == "grid":
                task.seed, task.quadrant = parent.id, max(plan.index, 1) - 1
            else:
                task.seed, task.quadrant = parent.seed or parent.id, parent.quadrant
        if plan.describe_retry:
            task.upload_urls = list(parent.upload_urls)
        short = {"UPSCALE": f"U{plan.index}", "VARIATION": f"V{plan.index}"}.get(action, "")
        verb = {"UPSCALE": "up"}.get(action, action.lower())
        task.description = f"/{verb} {parent.id} {short}".rstrip()
        if modal is not None:
            task.status, task.modal = MODAL, modal
            task.description = "Waiting for window confirm"
        return task

    def _accepted(self, task: SimTask, d_action: str) -> web.StreamResponse:
        if self.faults.queue_position is not None:
            task.queue_wait = max(0, self.faults.queue_position)
        self._book.add(task)
        return self._queued_or_ok(task, d_action)

    def _queued_or_ok(self, task: SimTask, d_action: str) -> web.StreamResponse:
        """Code 1, or 22 with the queue position (which new-api rewrites to 1, §3)."""
        props = self._instance_props()
        position = self.faults.queue_position
        if position is not None:
            code, text = 22, f"排队中，前面还有{position}个任务"
            props = {"numberOfQueues": position, **props}
        else:
            code, text = 1, self._ok_text()
        if self.profile == "aggregator":
            code = 1
        task.submit_description = task.submit_description or text
        if d_action:
            task.d_action = d_action
        return _envelope(code, text, task.id, props)

    def _waiting_for_modal(self, task: SimTask) -> web.StreamResponse:
        """Code 21 "Waiting for window confirm"; new-api keeps 21 only for INPAINT/CUSTOM_ZOOM."""
        self._book.add(task)
        code = 21
        if self.profile == "aggregator" and task.d_action not in ("INPAINT", "CUSTOM_ZOOM"):
            code = 1
        text = "Waiting for window confirm"
        task.submit_description = text
        return _envelope(code, text, task.id, {"finalPrompt": task.prompt_en, "remix": True})

    # --- files ---

    async def _serve_attachment(self, key: str) -> web.StreamResponse:
        attachment = self._book.attachments.get(key)
        if attachment is None:
            return web.Response(status=404, text="This content is no longer available.")
        ttl = self.faults.link_ttl_seconds
        if ttl is not None and time.monotonic() - attachment.created > ttl:
            # A signed link past its `ex`: Discord refuses it (§7.5).
            status = self.faults.expired_link_status
            return web.Response(status=status, text="This content is no longer available.")
        data = await self._images.get(attachment.spec) if attachment.spec else attachment.data
        return web.Response(body=data, content_type=attachment.content_type)

    async def _serve_newapi_image(self, task_id: str) -> web.StreamResponse:
        """new-api's /mj/image/{id}: no auth, streams the upstream image it last saw (§2.14)."""
        task = self.tasks.get(task_id)
        if task is None:
            return _json({"error": "midjourney_task_not_found"}, 400)
        url = (self._view(task) or {}).get("imageUrl") or ""
        path = urlsplit(url).path
        if not path.startswith("/attachments/"):
            return _json({"error": "http_get_image_failed"}, 500)
        upstream = await self._serve_attachment(path.removeprefix("/attachments/"))
        if upstream.status != 200 and isinstance(upstream, web.Response):
            # RelayMidjourneyImage relays a non-200 with the body as `error`.
            text = upstream.text or ""
            return _json({"error": text}, upstream.status)
        return upstream


def _mode_from_flags(prompt: str) -> str:
    for flag in ("relax", "turbo", "fast"):
        if f"--{flag}" in prompt:
            return flag.upper()
    return "FAST"


__all__ = ["MjProxySimulator", "RecordedRequest"]
