"""The web receiver over loopback: /healthz and POST /mj/callback/{secret}, with a fake health
probe and a recording callback sink."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from bot.adapters.web import MAX_CALLBACK_BYTES, WebServer

SECRET = "s3cret-callback-path-0123"
KNOWN = "1730621718151844"


class RecordingSink:
    def __init__(self) -> None:
        self.hints: list[str] = []

    async def __call__(self, task_id: str) -> bool:
        self.hints.append(task_id)
        return task_id == KNOWN


class Probe:
    def __init__(self) -> None:
        self.checks: dict[str, Any] = {
            "gateway": True,
            "database": True,
            "last_api_success": "2026-11-24T12:00:00+00:00",
        }

    async def __call__(self) -> dict[str, Any]:
        return dict(self.checks)


Serve = Callable[..., Awaitable[tuple[WebServer, str]]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    servers: list[WebServer] = []

    async def start(**kwargs: Any) -> tuple[WebServer, str]:
        server = WebServer(kwargs.pop("probe", Probe()), **kwargs)
        await server.start("127.0.0.1", 0)
        servers.append(server)
        return server, f"http://127.0.0.1:{server.port}"

    yield start
    for server in servers:
        await server.stop()


async def request(method: str, url: str, **kwargs: Any) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.request(method, url, **kwargs) as r:
        return r.status, await r.text()


async def test_healthz_is_200_with_the_checks_when_all_pass(serve: Serve) -> None:
    _, base = await serve()
    async with aiohttp.ClientSession() as session, session.get(f"{base}/healthz") as resp:
        assert resp.status == 200
        assert await resp.json() == {
            "status": "ok",
            "gateway": True,
            "database": True,
            "last_api_success": "2026-11-24T12:00:00+00:00",
        }


@pytest.mark.parametrize("failing", ["gateway", "database"])
async def test_healthz_is_503_when_a_check_fails(serve: Serve, failing: str) -> None:
    probe = Probe()
    probe.checks[failing] = False
    probe.checks["last_api_success"] = None  # information only: never decides the status
    _, base = await serve(probe=probe)
    async with aiohttp.ClientSession() as session, session.get(f"{base}/healthz") as resp:
        assert resp.status == 503
        body = await resp.json()
        assert body["status"] == "degraded" and body[failing] is False


async def test_without_callbacks_configured_the_route_does_not_exist(serve: Serve) -> None:
    _, base = await serve()
    assert await request("POST", f"{base}/mj/callback/{SECRET}", json={"id": KNOWN}) == (
        404,
        "404: Not Found",
    )


async def test_a_valid_callback_passes_only_the_task_id_on(serve: Serve) -> None:
    sink = RecordingSink()
    server, base = await serve(callback_secret=SECRET, on_callback=sink)
    body = {"id": KNOWN, "status": "SUCCESS", "imageUrl": "https://evil.example/x.png"}
    assert (await request("POST", f"{base}/mj/callback/{SECRET}", json=body))[0] == 202
    assert (await request("POST", f"{base}/mj/callback/{SECRET}", json={"id": 17}))[0] == 200
    assert sink.hints == [KNOWN, "17"]
    assert server.callback_counts == {"accepted": 1, "ignored": 1}


async def test_wrong_secrets_get_404_and_reach_nothing(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    sink = RecordingSink()
    server, base = await serve(callback_secret=SECRET, on_callback=sink)
    caplog.set_level(logging.DEBUG, logger="bot.adapters.web")
    for wrong in ("", SECRET[:-1], SECRET + "x", "S" + SECRET[1:], "a" * len(SECRET)):
        status, text = await request("POST", f"{base}/mj/callback/{wrong}", json={"id": KNOWN})
        assert (status, text) == (404, "404: Not Found")
    assert sink.hints == []
    assert server.callback_counts == {"bad_secret": 4}  # "" does not even match the route
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1  # logged once, then at DEBUG
    assert SECRET not in caplog.text and SECRET[:-1] not in caplog.text


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"not json at all", "text/plain"),
        (b"\xff\xfe\x00garbage", "application/json"),
        (b"[1, 2, 3]", "application/json"),
        (b'{"status": "SUCCESS"}', "application/json"),
        (b'{"id": ""}', "application/json"),
        (b'{"id": true}', "application/json"),
        (b'{"id": {"nested": 1}}', "application/json"),
        (b"", "application/json"),
    ],
)
async def test_bodies_that_are_not_task_objects_get_400(
    serve: Serve, body: bytes, content_type: str
) -> None:
    sink = RecordingSink()
    server, base = await serve(callback_secret=SECRET, on_callback=sink)
    status, _ = await request(
        "POST", f"{base}/mj/callback/{SECRET}", data=body, headers={"Content-Type": content_type}
    )
    assert status == 400 and sink.hints == [] and server.callback_counts == {"bad_body": 1}


async def test_oversize_bodies_get_413_with_or_without_a_length(serve: Serve) -> None:
    sink = RecordingSink()
    server, base = await serve(callback_secret=SECRET, on_callback=sink)
    big = b'{"id": "' + KNOWN.encode() + b'", "pad": "' + b"x" * MAX_CALLBACK_BYTES + b'"}'

    async def chunked() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 8192):
            yield big[start : start + 8192]

    assert (await request("POST", f"{base}/mj/callback/{SECRET}", data=big))[0] == 413
    assert (await request("POST", f"{base}/mj/callback/{SECRET}", data=chunked()))[0] == 413
    assert sink.hints == [] and server.callback_counts == {"too_large": 2}
