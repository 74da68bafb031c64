"""The Java proxy 2.x's way to press U/V/🔄: `/mj/submit/change` (mj-api.md §2.5).

That server has no `/mj/submit/action` and sends no `buttons`; the client shows MJ's grid
buttons for its tasks (`models.classic_buttons`) and, once the server has answered
`/submit/action` with 404/405, presses them here by action and index instead of by customId.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["change_body"]

_PRESS = re.compile(r"^MJ::JOB::(upsample|variation|reroll)::(\d)::")
_ACTIONS = {"upsample": "UPSCALE", "variation": "VARIATION", "reroll": "REROLL"}


def change_body(task_id: str, custom_id: str) -> dict[str, Any] | None:
    """The `/submit/change` body for a grid button, or None for a button it cannot express
    (zoom, pan, vary, upscale-HD …: none exist on that server).

    REROLL carries `index: 1`: the Java proxy ignores the index for a reroll, and new-api
    (which forwards `/submit/change`) refuses any change whose index is 0 (`index_is_required`).
    """
    press = _PRESS.match(custom_id)
    if press is None:
        return None
    kind, index = press.group(1), int(press.group(2))
    if kind == "reroll":
        index = 1
    elif not 1 <= index <= 4:
        return None
    return {"taskId": task_id, "action": _ACTIONS[kind], "index": index}
