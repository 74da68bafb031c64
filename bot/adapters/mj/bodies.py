"""Submit bodies streamed in pieces: reference images never become one big string.

A submit with three 8 MB references used to be built as data URIs (one base64 copy each), put
in a dict, `json.dumps`-ed (a second copy) and encoded (a third), all on the event loop: several
times the input in memory and stalls of hundreds of milliseconds. Here the JSON is written as a
sequence of byte pieces for aiohttp's chunked upload (an async iterable is sent with
`Transfer-Encoding: chunked`, see aiohttp's `AsyncIterablePayload`): the small fields at once,
then each image as `"data:<mime>;base64,` followed by its base64 in slices encoded in a worker
thread, so at most a slice or two is held beyond the input bytes and the loop stays free.

Base64 output needs no JSON escaping (its alphabet is `A–Z a–z 0–9 + / =`), and neither does a
MIME type that `bot.core.images.sniff` produced, so the pieces are valid JSON as they stand.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

from bot.core.jobs import ReferenceImage

__all__ = ["SLICE", "add_common", "json_body", "streamed_body"]

# Raw bytes per base64 slice: a multiple of 3, so slices concatenate without padding between.
SLICE = 3 * 256 * 1024


def json_body(fields: dict[str, Any]) -> bytes:
    """A small body (no images) as compact JSON bytes."""
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


async def streamed_body(
    fields: dict[str, Any], images: dict[str, ReferenceImage | Sequence[ReferenceImage]]
) -> AsyncIterator[bytes]:
    """The JSON object of `fields` plus, for each key of `images`, the data URI of one image
    (a string) or of a list of images (an array of strings), in byte pieces."""
    yield b"{"
    first = True
    for key, value in fields.items():
        yield (b"" if first else b",") + json_body({key: value})[1:-1]
        first = False
    for key, value in images.items():
        yield (b"" if first else b",") + json.dumps(key).encode() + b":"
        first = False
        if isinstance(value, ReferenceImage):
            async for piece in _data_uri(value):
                yield piece
            continue
        yield b"["
        for index, image in enumerate(value):
            if index:
                yield b","
            async for piece in _data_uri(image):
                yield piece
        yield b"]"
    yield b"}"


async def _data_uri(image: ReferenceImage) -> AsyncIterator[bytes]:
    """`"data:<mime>;base64,<data>"` as pieces; the base64 of each slice made off the loop."""
    mime = json.dumps(image.content_type)[1:-1]  # escaped, should it ever need it
    yield f'"data:{mime};base64,'.encode("ascii")
    view = memoryview(image.data)
    for start in range(0, len(view), SLICE):
        yield await asyncio.to_thread(base64.b64encode, view[start : start + SLICE])
    yield b'"'


def add_common(body: dict[str, Any], state: str, notify_hook: str | None) -> None:
    """`state` always (proxies echo it back); `notifyHook` only when callbacks are wanted."""
    body["state"] = state
    if notify_hook:
        body["notifyHook"] = notify_hook
