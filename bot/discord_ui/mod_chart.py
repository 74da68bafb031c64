"""The usage report's chart: jobs per day as a PNG bar chart (Pillow only), numbers and dates
only; its caption is in the report's embed."""

from __future__ import annotations

import io
from datetime import date

from PIL import Image, ImageDraw


def daily_chart(
    daily: tuple[tuple[date, int], ...], *, width: int = 640, height: int = 260
) -> bytes:
    """A bar chart of jobs per day as PNG bytes (Pillow only; run it in a thread)."""
    image = Image.new("RGB", (width, height), (47, 49, 54))
    draw = ImageDraw.Draw(image)
    left, right, top, bottom = 40, 10, 20, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max((count for _, count in daily), default=0) or 1
    draw.line(
        [(left, top), (left, top + plot_h), (left + plot_w, top + plot_h)], fill=(180, 180, 180)
    )
    draw.text((4, top - 6), str(peak), fill=(220, 220, 220))
    draw.text((4, top + plot_h - 6), "0", fill=(220, 220, 220))
    n = max(1, len(daily))
    slot = plot_w / n
    for i, (day, count) in enumerate(daily):
        x0 = left + i * slot + slot * 0.15
        x1 = left + (i + 1) * slot - slot * 0.15
        y0 = top + plot_h - plot_h * count / peak
        if count:
            draw.rectangle([x0, y0, max(x0 + 1, x1), top + plot_h - 1], fill=(88, 101, 242))
        if n <= 14 or i % max(1, n // 10) == 0 or i == n - 1:
            draw.text((x0, top + plot_h + 6), day.strftime("%m-%d"), fill=(200, 200, 200))
    # No words in the image (Pillow's font has no CJK or Cyrillic glyphs): the caption is the
    # report embed's footer, in the reader's language.
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()
