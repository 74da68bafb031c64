"""Attachment downloads against a real HTTP server on loopback: every failure says what went
wrong in a form the caller can name (option and file), and the pixel cap stops a download as
soon as the header has arrived."""

from __future__ import annotations

import asyncio
import io
import struct
import zlib
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from PIL import Image

from bot.adapters.http_images import HttpImages
from bot.core.images import AttachmentFault
from tests.conftest import free_port


def _png(size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (1, 2, 3)).save(out, format="PNG")
    return out.getvalue()


def _bomb_head() -> bytes:
    body = struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)
    ihdr = (
        struct.pack(">I", len(body))
        + b"IHDR"
        + body
        + struct.pack(">I", zlib.crc32(b"IHDR" + body))
    )
    return b"\x89PNG\r\n\x1a\n" + ihdr


class Cdn:
    def __init__(self) -> None:
        self.bomb_bytes_sent = 0
        self.base = ""


@pytest.fixture
async def cdn() -> AsyncIterator[Cdn]:
    state = Cdn()

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(1.5)
        return web.Response(body=_png((4, 4)))

    async def ok(request: web.Request) -> web.Response:
        return web.Response(body=_png((4, 4)), content_type="image/png")

    async def bomb(request: web.Request) -> web.StreamResponse:
        # The header, then megabytes of "pixel data" the bot must never wait for.
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(_bomb_head())
        state.bomb_bytes_sent += len(_bomb_head())
        for _ in range(100):
            await asyncio.sleep(0.01)
            await response.write(b"\x00" * 64 * 1024)
            state.bomb_bytes_sent += 64 * 1024
        return response

    app = web.Application()
    app.router.add_get("/slow.png", slow)
    app.router.add_get("/ok.png", ok)
    app.router.add_get("/bomb.png", bomb)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    state.base = f"http://127.0.0.1:{port}"
    yield state
    await runner.cleanup()


async def test_a_slow_cdn_is_a_named_time_out(cdn: Cdn) -> None:
    async with aiohttp.ClientSession() as session:
        files = HttpImages(session, extra_hosts=["127.0.0.1"], timeout=0.3)
        with pytest.raises(AttachmentFault) as caught:
            await files.fetch_reference(f"{cdn.base}/slow.png", 10 * 1024 * 1024)
    named = caught.value.named("image2", "sunset.png")
    assert named.member_message == (
        "image2: `sunset.png` took longer than 0.3 s to download. Please try again."
    )


async def test_a_bomb_is_refused_from_its_header_without_downloading_the_rest(cdn: Cdn) -> None:
    async with aiohttp.ClientSession() as session:
        files = HttpImages(session, extra_hosts=["127.0.0.1"], max_pixels=50_000_000)
        with pytest.raises(AttachmentFault) as caught:
            await files.fetch_reference(f"{cdn.base}/bomb.png", 10 * 1024 * 1024)
    assert "20000×20000 pixels (400 megapixels); the limit is 50 megapixels" in (
        caught.value.named("image1", "bomb.png").member_message
    )
    assert cdn.bomb_bytes_sent < 2 * 1024 * 1024  # the download stopped early


async def test_the_pixel_cap_is_a_setting(cdn: Cdn) -> None:
    async with aiohttp.ClientSession() as session:
        generous = HttpImages(session, extra_hosts=["127.0.0.1"], max_pixels=16)
        assert await generous.fetch_reference(f"{cdn.base}/ok.png", 1024 * 1024)
        strict = HttpImages(session, extra_hosts=["127.0.0.1"], max_pixels=15)
        with pytest.raises(AttachmentFault) as caught:
            await strict.fetch_reference(f"{cdn.base}/ok.png", 1024 * 1024)
    said = caught.value.named("image1", "ok.png").member_message
    assert said.startswith("image1: `ok.png` is 4×4 pixels")
