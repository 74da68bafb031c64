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

from bot.core.errors import Unavailable
from bot.core.images import (
    DEFAULT_MAX_PIXELS,
    NOT_DOWNLOADED,
    AttachmentFault,
    image_size,
    pixel_problem,
    too_big,
)
from bot.core.messages import Message, msg

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
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        self._session = session
        self._hosts = frozenset(h.lower() for h in (*DISCORD_CDN_HOSTS, *extra_hosts) if h)
        self._seconds = timeout
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=5)
        self.max_pixels = max_pixels

    async def fetch_reference(self, url: str, max_bytes: int) -> bytes:
        """GET an attachment from an allowed host; redirects are not followed.

        Raises `AttachmentFault` saying what went wrong (the caller names the option and the
        file). An image whose header declares more than `max_pixels` is refused as soon as
        the header has arrived: the rest is never downloaded, and nothing is submitted.
        """
        host = (URL(url).host or "").lower()
        if host not in self._hosts:
            raise AttachmentFault(
                f"attachment host {host!r} not allowed",
                problem=msg("{option}: {file} is not on Discord's CDN, so I can't use it."),
            )
        try:
            return await self._get(
                url, max_bytes, allow_redirects=False, max_pixels=self.max_pixels
            )
        except _TooBig as exc:
            raise AttachmentFault(str(exc), problem=exc.problem) from None
        except _BadStatus as exc:
            raise AttachmentFault(str(exc), problem=exc.problem) from None
        except TimeoutError:
            seconds = f"{self._seconds:g}"
            raise AttachmentFault(
                f"attachment download timed out after {seconds} s",
                problem=msg(
                    "{option}: {file} took longer than {seconds} s to download. Please try again.",
                    seconds=seconds,
                ),
            ) from None
        except (aiohttp.ClientError, RuntimeError) as exc:
            # aiohttp raises a bare RuntimeError("Connection closed.") when the connection or
            # session closes mid-read.
            raise AttachmentFault(
                f"attachment download failed: {exc!r}",
                problem=NOT_DOWNLOADED,
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

    async def _get(
        self, url: str, max_bytes: int, *, allow_redirects: bool, max_pixels: int | None = None
    ) -> bytes:
        async with self._session.get(
            url, timeout=self._timeout, allow_redirects=allow_redirects
        ) as response:
            if response.status != 200:
                raise _BadStatus(response.status, URL(url).host or "")
            declared = response.content_length or 0
            if declared > max_bytes:
                raise _TooBig(
                    f"{declared} bytes > {max_bytes}",
                    problem=too_big(declared, max_bytes),
                )
            buffer = bytearray()
            sized = max_pixels is None
            async for chunk in response.content.iter_chunked(64 * 1024):
                buffer += chunk
                if len(buffer) > max_bytes:
                    raise _TooBig(
                        f"more than {max_bytes} bytes (declared {declared})",
                        problem=msg(
                            "{option}: {file} is larger than the limit of {limit} MB.",
                            limit=_mb(max_bytes),
                        ),
                    )
                if not sized and max_pixels is not None:
                    sized = _check_pixels(bytes(buffer), max_pixels)
            return bytes(buffer)


def _check_pixels(head: bytes, max_pixels: int) -> bool:
    """True once the header's size is known and allowed; raises when it is over the cap."""
    if image_size(head) is None:
        return False  # not read yet (or not an image: check_reference says so by name)
    problem = pixel_problem(head, max_pixels)
    if problem is not None:
        raise _TooBig(
            f"declared dimensions {image_size(head)} > {max_pixels} pixels", problem=problem
        )
    return True


def _mb(size: int) -> str:
    text = f"{size / (1024 * 1024):.1f}"
    return text[:-2] if text.endswith(".0") else text


class _BadStatus(Exception):
    def __init__(self, status: int, host: str) -> None:
        super().__init__(f"HTTP {status} from {host}")
        self.problem: Message
        if 300 <= status < 400:
            self.problem = msg(
                "{option}: {file} is not on Discord's CDN (its link redirects elsewhere), "
                "so I can't use it."
            )
        elif status in (403, 404, 410):
            self.problem = msg(
                "{option}: {file} is no longer on Discord's CDN. Please attach it again."
            )
        else:
            self.problem = msg(
                "{option}: {file} could not be downloaded (Discord's CDN answered HTTP {status}). "
                "Please try again in a minute.",
                status=status,
            )


class _TooBig(Exception):
    def __init__(self, detail: str, *, problem: Message) -> None:
        super().__init__(detail)
        self.problem = problem


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
