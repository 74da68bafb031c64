"""PNG images the simulator serves: grids, single upscales, progress previews, noise.

Everything is deterministic per task (colours come from a hash of the task id), rendered with
Pillow in a worker thread (`asyncio.to_thread`) so the server loop never blocks, and cached: a
client that downloads the same image twice gets the same bytes without a second render.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
from dataclasses import dataclass

from PIL import Image, ImageDraw

# A preview is small on purpose: Discord's progress images are low-resolution webps.
PREVIEW_DIVISOR = 8
MIN_PREVIEW_PX = 32


def palette(seed: str) -> list[tuple[int, int, int]]:
    """Four distinct, saturated-enough colours derived from `seed` (a task id or job hash)."""
    digest = hashlib.sha256(seed.encode()).digest()
    colours = []
    for i in range(4):
        r, g, b = digest[i * 3 : i * 3 + 3]
        # Lift dark values so quadrants stay distinguishable from the preview's grey wash.
        colours.append((64 + r % 192, 64 + g % 192, 64 + b % 192))
    return colours


@dataclass(frozen=True)
class ImageSpec:
    """What to draw: a 2×2 grid, one tile (an upscale), a preview of a grid, or noise."""

    kind: str  # "grid" | "single" | "preview" | "noise"
    seed: str
    px: int
    quadrant: int = 0  # for "single": which colour of the seed's palette (0..3)
    progress: int = 0  # for "preview": how far the grid has faded in, 0..100


def render(spec: ImageSpec) -> bytes:
    """Render `spec` to PNG bytes. CPU-bound: call through `asyncio.to_thread`."""
    px = max(2, spec.px)
    if spec.kind == "noise":
        # Random bytes do not compress, so the PNG is about px*px*3 bytes: big on purpose.
        image = Image.frombytes("RGB", (px, px), os.urandom(px * px * 3))
        return _png(image, compress_level=1)
    colours = palette(spec.seed)
    if spec.kind == "single":
        image = Image.new("RGB", (px, px), colours[spec.quadrant % 4])
        draw = ImageDraw.Draw(image)
        # A centred disc so an upscale is visibly an image, not a flat swatch.
        r = px // 4
        draw.ellipse(
            (px // 2 - r, px // 2 - r, px // 2 + r, px // 2 + r),
            fill=colours[3 - spec.quadrant % 4],
        )
        return _png(image)
    image = Image.new("RGB", (px, px))
    half = px // 2
    draw = ImageDraw.Draw(image)
    for i, colour in enumerate(colours):
        x0, y0 = (i % 2) * half, (i // 2) * half
        x1 = px - 1 if i % 2 else half - 1
        y1 = px - 1 if i // 2 else half - 1
        draw.rectangle((x0, y0, x1, y1), fill=colour)
    if spec.kind == "preview":
        grey = Image.new("RGB", (px, px), (128, 128, 128))
        image = Image.blend(grey, image, max(0.0, min(1.0, spec.progress / 100)))
    return _png(image)


def _png(image: Image.Image, compress_level: int = 6) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=compress_level)
    return out.getvalue()


class ImageCache:
    """Renders each spec once; concurrent requests for the same spec share one render."""

    def __init__(self) -> None:
        self._done: dict[ImageSpec, bytes] = {}
        self._pending: dict[ImageSpec, asyncio.Future[bytes]] = {}

    async def get(self, spec: ImageSpec) -> bytes:
        if spec in self._done:
            return self._done[spec]
        pending = self._pending.get(spec)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._pending[spec] = future
        try:
            data = await asyncio.to_thread(render, spec)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters (if any) re-raise it themselves
            raise
        finally:
            self._pending.pop(spec, None)
        # Noise is random per render; caching it keeps a task's image stable across downloads.
        self._done[spec] = data
        future.set_result(data)
        return data


def preview_px(image_px: int) -> int:
    return max(MIN_PREVIEW_PX, image_px // PREVIEW_DIVISOR)
