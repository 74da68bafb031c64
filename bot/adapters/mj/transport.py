"""HTTP for the image API client: one request out, the whole answer in, nothing interpreted.

Transport failures (refused, dropped, timed out, a body too large, a header that cannot be
built) become core errors here; what a *server* says is left to `outcomes`. Request bodies may
be bytes or an async iterable of byte pieces (sent chunked, see `bodies`), so a submit with
large reference images never needs the whole JSON in memory.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterable
from typing import Any, Literal

import aiohttp
import pydantic_core

from bot.core.errors import ApiError, Misconfigured, Unavailable

__all__ = ["EMPTY", "NOT_JSON", "AuthStyle", "Reply", "Transport"]

log = logging.getLogger("bot.adapters.mj")

AuthStyle = Literal["bearer", "mj-api-secret"]

# A response body larger than this is not an MJ answer (a task list of 1000 is ~3 MB).
MAX_BODY = 32 * 1024 * 1024
LOG_BODY_CHARS = 300
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/=]{64,}")

EMPTY: Any = object()  # sentinel: the body was empty
NOT_JSON: Any = object()  # sentinel: the body was not JSON

Body = bytes | AsyncIterable[bytes] | None


class Reply:
    """One HTTP answer, read in full, before any interpretation.

    `payload` (the body as JSON, or EMPTY, or NOT_JSON) is parsed on first use: a list reply
    whose bytes match the last one for its chunk is never parsed at all (see `MjClient`).
    """

    __slots__ = ("_payload", "body", "headers", "status")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self._payload: Any = _UNPARSED

    @property
    def payload(self) -> Any:
        """The body as JSON; EMPTY for an empty body, NOT_JSON for one that is not JSON."""
        if self._payload is _UNPARSED:
            self._payload = _parse(self.body)
        return self._payload


def _parse(body: bytes) -> Any:
    if not body.strip():
        return EMPTY
    try:
        # pydantic-core's parser (already here for the models) reads a 100-task list answer in
        # two thirds of the standard library's time; whatever it refuses (UTF-16, a lone
        # surrogate escape) is left to the standard library, so what parses is unchanged.
        return pydantic_core.from_json(body)
    except ValueError:
        pass
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # JSONDecodeError and bad UTF-8 are ValueErrors
        return NOT_JSON


_UNPARSED: Any = object()


class _TooLarge(Exception):
    """The server sent more than MAX_BODY bytes."""


class Transport:
    """The base URL, the key, the session and the time-outs; `send` does one request."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        auth_style: AuthStyle,
        session: aiohttp.ClientSession | None,
        connect_timeout: float,
        read_timeout: float,
    ) -> None:
        if auth_style not in ("bearer", "mj-api-secret"):
            raise ValueError(f"auth_style must be 'bearer' or 'mj-api-secret', not {auth_style!r}")
        base = base_url.strip().rstrip("/")
        # Operators often paste the documented `…/mj` root; the paths below already start there.
        if base.endswith("/mj"):
            base = base[: -len("/mj")]
        self.base = base
        # A key pasted into .env often carries a trailing newline; headers cannot.
        self._key = api_key.strip()
        self.auth_style: AuthStyle = auth_style
        self._session = session
        self._owns_session = session is None
        self._timeout = aiohttp.ClientTimeout(
            total=connect_timeout + read_timeout,
            sock_connect=connect_timeout,
            sock_read=read_timeout,
        )

    async def close(self) -> None:
        """Close the HTTP session if this transport made it; a shared session is left alone."""
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.auth_style == "bearer":
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

    async def send(self, method: str, path: str, body: Body = None) -> Reply:
        """Send one request and read the whole answer; transport failures become ApiErrors."""
        url = self.base + path
        headers = self._headers()
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            async with self._get_session().request(
                method, url, data=body, headers=headers, timeout=self._timeout
            ) as resp:
                raw = await _read_capped(resp)
                return Reply(resp.status, {k.lower(): v for k, v in resp.headers.items()}, raw)
        except aiohttp.InvalidURL as exc:
            err: ApiError = Misconfigured(f"{method} {path}: invalid URL {exc}")
        except _TooLarge:
            err = Unavailable(f"{method} {path}: response larger than {MAX_BODY} bytes")
        except TimeoutError:  # asyncio.TimeoutError and aiohttp's ServerTimeoutError alike
            err = Unavailable(f"{method} {path}: timed out")
        except aiohttp.ClientConnectorError as exc:
            err = Unavailable(f"{method} {path}: cannot connect: {self.clip(str(exc))}")
        except aiohttp.ClientError as exc:
            err = Unavailable(f"{method} {path}: {type(exc).__name__}: {self.clip(str(exc))}")
        except ValueError as exc:
            # aiohttp refuses header values with newlines or non-Latin-1 characters.
            err = Misconfigured(
                f"{method} {path}: the request could not be built ({type(exc).__name__}); "
                "does MJ_API_KEY contain spaces, newlines or non-ASCII characters?"
            )
        log.warning("mj %s %s -> no answer: %s", method, path, err.detail)
        raise err

    def clip(self, text: bytes | str) -> str:
        """A body fit for a log line: decoded, key and base64 runs masked, cut short."""
        if isinstance(text, bytes):
            text = text[: LOG_BODY_CHARS * 4].decode("utf-8", "replace")
        if self._key:
            text = text.replace(self._key, "***")
        text = _BASE64_RUN.sub("<base64…>", text)
        text = " ".join(text.split())
        return text if len(text) <= LOG_BODY_CHARS else text[:LOG_BODY_CHARS] + "…"


async def _read_capped(resp: aiohttp.ClientResponse) -> bytes:
    """Read the body, refusing to buffer more than MAX_BODY bytes from a confused server."""
    if (resp.content_length or 0) > MAX_BODY:
        raise _TooLarge
    parts: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > MAX_BODY:
            raise _TooLarge
        parts.append(chunk)
    return b"".join(parts)
