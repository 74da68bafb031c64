"""Image bytes over HTTP: members' attachments (Discord's CDN only), the API's finished images,
and smaller renditions when a result is over the server's upload limit (Pillow, in a thread).
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Iterable

import aiohttp
from PIL import Image
from yarl import URL

from bot.core.errors import DownloadError, Unavailable

log = logging.getLogger(__name__)

DISCORD_CDN_HOSTS = ("cdn.discordapp.com", "media.discordapp.net")
RESULT_MAX_BYTES = 64 * 1024 * 1024


class HttpImages:
    """Implements the ImageFiles port over one shared aiohttp session."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        extra_hosts: Iterable[str] = (),
        timeout: float = 20.0,
    ) -> None:
        self._session = session
        self._hosts = frozenset(h.lower() for h in (*DISCORD_CDN_HOSTS, *extra_hosts) if h)
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=5)

    async def fetch_reference(self, url: str, max_bytes: int) -> bytes:
        """GET an attachment from an allowed host; redirects are not followed."""
        host = (URL(url).host or "").lower()
        if host not in self._hosts:
            raise DownloadError(
                f"attachment host {host!r} not allowed",
                member_message="That attachment is not on Discord's CDN, so I cannot use it.",
            )
        try:
            return await self._get(url, max_bytes, allow_redirects=False)
        except _TooBig as exc:
            raise DownloadError(str(exc), member_message="That attachment is too large.") from None
        except (aiohttp.ClientError, TimeoutError, _BadStatus, RuntimeError) as exc:
            # aiohttp raises a bare RuntimeError("Connection closed.") when the connection or
            # session closes mid-read.
            raise DownloadError(
                f"attachment download failed: {exc!r}",
                member_message="I could not download that attachment; please upload it again.",
            ) from None

    async def download(self, url: str) -> bytes:
        """GET a result image from the API (redirects allowed: proxies use them)."""
        try:
            return await self._get(url, RESULT_MAX_BYTES, allow_redirects=True)
        except (aiohttp.ClientError, TimeoutError, _BadStatus, _TooBig, RuntimeError) as exc:
            raise Unavailable(f"result image download failed: {exc!r}") from None

    async def fit(self, data: bytes, max_bytes: int) -> bytes | None:
        """A JPEG rendition within max_bytes, scaling down until it fits (CPU work: a thread)."""
        return await asyncio.to_thread(_shrink, data, max_bytes)

    async def _get(self, url: str, max_bytes: int, *, allow_redirects: bool) -> bytes:
        async with self._session.get(
            url, timeout=self._timeout, allow_redirects=allow_redirects
        ) as response:
            if response.status != 200:
                raise _BadStatus(f"HTTP {response.status} from {URL(url).host}")
            if (response.content_length or 0) > max_bytes:
                raise _TooBig(f"{response.content_length} bytes > {max_bytes}")
            buffer = bytearray()
            async for chunk in response.content.iter_chunked(64 * 1024):
                buffer += chunk
                if len(buffer) > max_bytes:
                    raise _TooBig(f"more than {max_bytes} bytes")
            return bytes(buffer)


class _BadStatus(Exception):
    pass


class _TooBig(Exception):
    pass


def _shrink(data: bytes, max_bytes: int) -> bytes | None:
    try:
        with Image.open(io.BytesIO(data)) as opened:
            image = opened.convert("RGB")
    except (OSError, ValueError) as exc:
        log.warning("cannot open result image for a smaller rendition: %s", exc)
        return None
    for scale in (1.0, 0.75, 0.5, 0.35, 0.25, 0.15):
        size = (max(1, int(image.width * scale)), max(1, int(image.height * scale)))
        candidate = image if scale == 1.0 else image.resize(size, Image.Resampling.LANCZOS)
        for quality in (90, 80, 65):
            out = io.BytesIO()
            candidate.save(out, format="JPEG", quality=quality, optimize=True)
            if out.tell() <= max_bytes:
                return out.getvalue()
    return None
