"""The bot's HTTP side (aiohttp.web on PORT): `GET /healthz` and the API callback receiver.

Heroku-style hosts only route HTTP to `web` processes and restart one that does not bind $PORT,
so the bot always serves this.

`POST /mj/callback/{secret}` takes the API's notifyHook POSTs (mj-api.md §5: the full task JSON,
no signature, no retries). The secret in the path is the only credential, so:

* a wrong secret is compared in constant time and answered exactly like an unknown route (404),
  with no other effect;
* the path is never logged (the access log is off; rejections are logged without it);
* a callback is only a hint: the receiver passes the task id on and nothing else from the body
  is believed. The tracker reads the task from the API before acting on it.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)

HealthProbe = Callable[[], Awaitable[dict[str, Any]]]
#: Receives a task id from a callback; True when it belongs to a job still being tracked.
CallbackSink = Callable[[str], Awaitable[bool]]

#: Largest callback body accepted. A task object is a few KB (prompt, buttons, URLs).
MAX_CALLBACK_BYTES = 64 * 1024
_NOT_FOUND = "404: Not Found"  # aiohttp's own answer for an unknown route


class WebServer:
    """Serves `GET /healthz` (200 when every boolean check in the probe's answer is true, else
    503) and, when `callback_secret` and `on_callback` are given, `POST /mj/callback/{secret}`."""

    def __init__(
        self,
        health: HealthProbe,
        *,
        callback_secret: str | None = None,
        on_callback: CallbackSink | None = None,
    ) -> None:
        self._health = health
        self._secret = callback_secret.encode() if callback_secret else None
        self._on_callback = on_callback
        self._runner: web.AppRunner | None = None
        self._logged: set[str] = set()
        self.port = 0
        #: Callbacks by outcome: accepted, ignored (unknown task), bad_secret, too_large, bad_body.
        self.callback_counts: dict[str, int] = {}

    async def start(self, host: str, port: int) -> None:
        """Bind and serve in the background."""
        app = web.Application(client_max_size=MAX_CALLBACK_BYTES)
        app.router.add_get("/healthz", self._healthz)
        if self._secret is not None and self._on_callback is not None:
            app.router.add_post("/mj/callback/{secret}", self._callback)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        # The port actually bound (port 0 picks a free one), from the runner's public addresses.
        addresses = self._runner.addresses
        self.port = int(addresses[0][1]) if addresses else port
        log.info(
            "web server listening on %s:%s (callbacks %s)",
            host,
            self.port,
            "on" if self._secret is not None and self._on_callback is not None else "off",
        )

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, request: web.Request) -> web.Response:
        checks = await self._health()
        healthy = all(v for v in checks.values() if isinstance(v, bool))
        return web.json_response(
            {"status": "ok" if healthy else "degraded", **checks}, status=200 if healthy else 503
        )

    async def _callback(self, request: web.Request) -> web.Response:
        assert self._secret is not None and self._on_callback is not None
        given = request.match_info.get("secret", "").encode()
        if not hmac.compare_digest(given, self._secret):
            self._note("bad_secret", "a callback with a wrong secret (answered 404)")
            return web.Response(status=404, text=_NOT_FOUND)
        declared = request.content_length
        if declared is not None and declared > MAX_CALLBACK_BYTES:
            self._note("too_large", f"a callback body of {declared} bytes (over the cap)")
            return web.Response(status=413, text="body too large")
        raw = await _read_capped(request)
        if raw is None:
            self._note("too_large", "a callback body over the cap (no Content-Length)")
            return web.Response(status=413, text="body too large")
        task_id = _task_id(raw)
        if task_id is None:
            self._note("bad_body", f"a callback body that is not a task object ({len(raw)} bytes)")
            return web.Response(status=400, text="expected a task object")
        if not await self._on_callback(task_id):
            self._note("ignored", f"a callback for task {task_id[:40]!r}, which no job tracks")
            return web.json_response({"ignored": True})
        self._count("accepted")
        return web.Response(status=202)

    def _note(self, kind: str, what: str) -> None:
        """Count a rejected callback; log each kind once at WARNING, then only at DEBUG (a
        scanner or a misconfigured API must not flood the log)."""
        self._count(kind)
        if kind in self._logged:
            log.debug("callback rejected: %s (%d so far)", what, self.callback_counts[kind])
            return
        self._logged.add(kind)
        log.warning("callback rejected: %s; further ones are logged at DEBUG", what)

    def _count(self, kind: str) -> None:
        self.callback_counts[kind] = self.callback_counts.get(kind, 0) + 1


async def _read_capped(request: web.Request) -> bytes | None:
    """The whole body, or None as soon as it exceeds MAX_CALLBACK_BYTES."""
    parts: list[bytes] = []
    size = 0
    while chunk := await request.content.read(16 * 1024):
        size += len(chunk)
        if size > MAX_CALLBACK_BYTES:
            return None
        parts.append(chunk)
    return b"".join(parts)


def _task_id(raw: bytes) -> str | None:
    """The task id in a callback body (a task object with a non-empty string or number `id`)."""
    try:
        body = json.loads(raw)
    except ValueError:  # includes UnicodeDecodeError
        return None
    if not isinstance(body, dict):
        return None
    value = body.get("id")
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip()
    return text if 0 < len(text) <= 64 else None
