"""The old import path of the image API client; it lives in `bot.adapters.mj` now."""

from bot.adapters.mj import MjClient, parse_task

_parse_task = parse_task  # the name tests used before the split

__all__ = ["MjClient", "parse_task"]
