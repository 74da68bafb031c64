"""The REST request pipeline: route matching, body parsing, recording, validation, faults.

Every request under ``/api/v10`` goes through ``handle``: it is matched against the route
table (templates spelled exactly as in Discord's OpenAPI spec), parsed (JSON, or multipart
``payload_json`` + ``files[n]``), recorded in ``emu.requests``, validated, possibly failed by
an injected fault, handled, and answered with ``Content-Type: application/json`` exactly —
discord.py parses JSON only for that exact header value. Anything unmatched is recorded in
``emu.unhandled`` and answered 404, so a missing route fails the test loudly.

Before a request is handled it is counted against Discord's rate limits (``limits.py``: the
global limit, its route's bucket, a 429 when over), and every response carries the bucket's
``X-RateLimit-*`` headers and ``Via``. ``emu.limits.rest_delay`` adds a network round trip
(half each way), so a callback sent near the end of the 3-second window arrives after it.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.sandbox.discord.errors import DiscordHTTPError
from bot.sandbox.discord.limits import VIA
from bot.sandbox.discord.messages import UploadedFile
from bot.sandbox.discord.threads import archive_idle_threads

if TYPE_CHECKING:
    from bot.sandbox.discord.emulator import DiscordEmulator

API_PREFIX = "/api/v10"


@dataclass
class ApiRequest:
    """A parsed REST request handed to a route handler."""

    method: str
    path: str
    route: str
    params: dict[str, str]
    query: dict[str, str]
    json: Any
    files: list[UploadedFile]
    multipart: bool
    headers: dict[str, str]

    def flag(self, name: str) -> bool:
        return self.query.get(name, "").lower() in ("1", "true")


@dataclass
class Reply:
    status: int = 200
    body: Any = None


@dataclass
class RecordedRequest:
    """One REST call as the emulator saw it (``json`` is the JSON body or ``payload_json``)."""

    method: str
    path: str
    route: str | None
    query: dict[str, str]
    json: Any
    files: list[dict[str, Any]]
    multipart: bool
    status: int = 0
    response: Any = None
    at: float = field(default_factory=time.monotonic)  # when it arrived (monotonic seconds)


@dataclass
class Hold:
    """A request parked in flight: it arrives, then waits until ``release``.

    ``release(apply=True)`` lets the emulator carry it out (as Discord would for a request it
    received from a client that has since died); ``apply=False`` discards it.
    """

    method: str
    route: str
    when: Callable[[Any], bool] | None = None
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    released: asyncio.Event = field(default_factory=asyncio.Event)
    apply: bool = True
    body: Any = None

    def release(self, *, apply: bool = True) -> None:
        self.apply = apply
        self.released.set()


@dataclass
class Fault:
    method: str
    route: str
    error: DiscordHTTPError
    remaining: int


Handler = Callable[["DiscordEmulator", ApiRequest], Awaitable[Reply]]


@dataclass
class Route:
    method: str
    template: str
    handler: Handler
    auth: bool = True  # webhook and interaction routes are authenticated by their token
    regex: re.Pattern[str] = field(init=False)

    def __post_init__(self) -> None:
        pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.template))
        self.regex = re.compile(f"^{pattern}$")


def match_route(routes: list[Route], method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    best: tuple[Route, dict[str, str]] | None = None
    best_literals = -1
    for route in routes:
        if route.method != method:
            continue
        m = route.regex.match(path)
        if m:
            literals = sum(1 for p in route.template.split("/") if p and not p.startswith("{"))
            if literals > best_literals:
                best, best_literals = (route, m.groupdict()), literals
    return best


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    all_headers = {"Content-Type": "application/json"}
    all_headers.update(headers or {})
    if body is None:
        return web.Response(
            status=status, headers={k: v for k, v in all_headers.items() if k != "Content-Type"}
        )
    return web.Response(status=status, body=json.dumps(body).encode(), headers=all_headers)


async def _parse_body(request: web.Request) -> tuple[Any, list[UploadedFile], bool]:
    ctype = request.content_type
    if ctype == "multipart/form-data":
        payload: Any = None
        files: list[UploadedFile] = []
        reader = await request.multipart()
        while True:
            part = await reader.next()
            if part is None:
                break
            name = getattr(part, "name", None) or ""
            data = await part.read()  # type: ignore[union-attr]
            if name == "payload_json":
                payload = json.loads(data.decode())
            else:
                files.append(
                    UploadedFile(
                        field=name,
                        filename=getattr(part, "filename", None) or name,
                        content_type=part.headers.get("Content-Type"),  # type: ignore[union-attr]
                        data=bytes(data),
                    )
                )
        return payload, files, True
    raw = await request.read()
    if not raw:
        return None, [], False
    try:
        return json.loads(raw), [], False
    except ValueError as exc:
        raise DiscordHTTPError(400, 50109, "The request body contains invalid JSON.") from exc


async def unhandled(emu: DiscordEmulator, request: web.Request) -> web.Response:
    record = RecordedRequest(
        request.method, request.path, None, dict(request.query), None, [], False, 404
    )
    emu.requests.append(record)
    emu.unhandled.append(record)
    return _answer(emu, 404, {"message": "404: Not Found", "code": 0}, {})


async def handle(emu: DiscordEmulator, request: web.Request) -> web.Response:
    # Timestamped as it arrives, before the simulated network delay and any handling: benchmarks
    # count arrivals in one-second windows.
    arrived = time.monotonic()
    # One way of a round trip: REST's own setting, or the gateway's one-way latency.
    delay = max(emu.limits.rest_delay / 2, emu.latency_ms / 1000)
    if delay > 0:
        await asyncio.sleep(delay)  # the request's way to Discord
    response = await _handle(emu, request, arrived)
    if delay > 0:
        await asyncio.sleep(delay)  # and the answer's way back
    return response


def _answer(emu: DiscordEmulator, status: int, body: Any, headers: dict[str, str]) -> web.Response:
    # Every real response passes Cloudflare and Google's front end, hence ``Via``; discord.py
    # reads a 429 without it as a Cloudflare ban (discord/http.py, HTTPClient.request).
    emu.limits.record_response(status, headers)
    return json_response(status, body, {"Via": VIA, **headers})


async def _handle(emu: DiscordEmulator, request: web.Request, arrived: float) -> web.Response:
    path = request.path.removeprefix(API_PREFIX) or "/"
    method = request.method.upper()
    matched = match_route(emu.routes, method, path)
    record = RecordedRequest(method, path, None, dict(request.query), None, [], False, at=arrived)
    emu.requests.append(record)
    await archive_idle_threads(emu)
    try:
        body, files, multipart = await _parse_body(request)
    except DiscordHTTPError as err:
        record.status, record.response = err.status, err.body()
        return _answer(emu, err.status, err.body(), err.headers)
    record.json, record.multipart = body, multipart
    record.files = [
        {
            "field": f.field,
            "filename": f.filename,
            "content_type": f.content_type,
            "size": len(f.data),
        }
        for f in files
    ]
    if matched is None:
        emu.unhandled.append(record)
        record.status, record.response = 404, {"message": "404: Not Found", "code": 0}
        return _answer(emu, 404, record.response, {})
    route, params = matched
    record.route = route.template
    validator = emu.validator
    if validator is not None:
        emu.violations.extend(
            validator.validate_request(method, route.template, body, multipart=multipart)
        )

    injected = False
    limit_headers: dict[str, str] = {}
    try:
        fault = _take_fault(emu, method, route.template)
        if fault is not None:
            injected = True
            raise fault
        if route.auth and request.headers.get("Authorization") != f"Bot {emu.token}":
            raise DiscordHTTPError(401, 0, "401: Unauthorized")
        limit_headers = emu.limits.admit(method, route.template, params, authenticated=route.auth)
        api_request = ApiRequest(
            method,
            path,
            route.template,
            params,
            dict(request.query),
            body,
            files,
            multipart,
            dict(request.headers),
        )
        hold = _take_hold(emu, method, route.template, body)
        if hold is not None:
            hold.body = body
            hold.arrived.set()
            await hold.released.wait()
            if not hold.apply:
                injected = True  # a test's fault, not a response of Discord's to validate
                raise DiscordHTTPError(503, 0, "Service Unavailable")
        reply = await route.handler(emu, api_request)
        status, out, headers = reply.status, reply.body, dict(limit_headers)
    except DiscordHTTPError as err:
        status, out, headers = err.status, err.body(), {**limit_headers, **err.headers}
    record.status, record.response = status, out
    if validator is not None and not injected:
        emu.violations.extend(validator.validate_response(method, route.template, status, out))
    return _answer(emu, status, out, headers)


def _take_hold(emu: DiscordEmulator, method: str, template: str, body: Any) -> Hold | None:
    for hold in emu.holds:
        if (
            hold.method == method
            and hold.route == template
            and (hold.when is None or hold.when(body))
        ):
            emu.holds.remove(hold)
            return hold
    return None


def _take_fault(emu: DiscordEmulator, method: str, template: str) -> DiscordHTTPError | None:
    for fault in emu.faults:
        if fault.method == method and fault.route == template and fault.remaining > 0:
            fault.remaining -= 1
            if fault.remaining == 0:
                emu.faults.remove(fault)
            return fault.error
    return None
