"""The wire shapes of the image API as pydantic models, and their reading into core values.

Every server spells its JSON a little differently (mj-api.md §4): the Java proxy has no
`buttons` and sends nulls, new-api sends `0` for times not yet known and `null` buttons, the C#
proxy sends everything. The field types below are lenient on purpose: a value of the wrong type
reads as "absent", never as an error, so one odd field cannot hide a task's progress. Only a
task without an id is no task at all.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from bot.core.jobs import Button, Submission, TaskSnapshot, TaskStatus

__all__ = [
    "CSharpEnvelope",
    "Envelope",
    "MiddlewareError",
    "NewApiError",
    "WireTask",
    "most_advanced",
    "parse_task",
]


def _text(value: object) -> str:
    """Strings as they are; numbers as their text; null, lists, objects and booleans as ""."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return str(int(value)) if value.is_integer() else str(value)
    return ""


def _whole(value: object) -> int | None:
    """An integer from an int, a finite float or a numeric string; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and abs(value) < 2**63:
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def _time_ms(value: object) -> int | None:
    """Epoch milliseconds; new-api's 0 (and null) mean "not yet"."""
    ms = _whole(value)
    return ms if ms and ms > 0 else None


def _percent(value: object) -> int:
    """ "46%", "", 46, "100%" → 0–100."""
    if isinstance(value, str):
        value = value.strip().rstrip("%").strip()
        try:
            number = float(value) if value else 0.0
        except ValueError:
            return 0
    elif isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    else:
        return 0
    if not math.isfinite(number):
        return 0
    return int(min(100.0, max(0.0, number)))


def _mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _objects(value: object) -> list[Any] | None:
    """A list keeps only its objects; anything else is "no list" (None)."""
    if not isinstance(value, list):
        return None
    return [item for item in value if isinstance(item, dict)]


Text = Annotated[str, BeforeValidator(_text)]
Whole = Annotated[int | None, BeforeValidator(_whole)]
TimeMs = Annotated[int | None, BeforeValidator(_time_ms)]
Percent = Annotated[int, BeforeValidator(_percent)]
Mapping = Annotated[dict[str, Any], BeforeValidator(_mapping)]


class _Wire(BaseModel):
    # Unknown fields are ignored: every layer adds its own (mj-api.md §4.3).
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


class WireButton(_Wire):
    """One entry of `buttons` (`{customId, emoji, label, type, style}`, mj-api.md §4.3)."""

    custom_id: Text = Field("", alias="customId")
    label: Text = ""
    emoji: Text = ""
    style: Whole = None

    def to_core(self) -> Button | None:
        custom_id = self.custom_id.strip()
        if not custom_id:
            return None
        return Button(custom_id, self.label, self.emoji, 2 if self.style is None else self.style)


Buttons = Annotated[list[WireButton] | None, BeforeValidator(_objects)]


class WireTask(_Wire):
    """A task in any server's shape: the proxies' Task/TaskInfo or new-api's DTO (§4.3, §4.4)."""

    id: Text = ""
    action: Text = ""
    status: Text = ""
    progress: Percent = 0
    prompt: Text = ""
    prompt_en: Text = Field("", alias="promptEn")
    state: Text = ""
    image_url: Text = Field("", alias="imageUrl")
    fail_reason: Text = Field("", alias="failReason")
    submit_time: TimeMs = Field(None, alias="submitTime")
    finish_time: TimeMs = Field(None, alias="finishTime")
    # None: the field is absent or null (the Java proxy 2.x never sends it, §4.3).
    buttons: Buttons = None
    properties: Mapping = Field(default_factory=dict)

    def to_core(self) -> TaskSnapshot | None:
        """The core snapshot; None when there is no id. Failures report progress 0: new-api
        forces "100%" on every failure, the proxies "", and neither says how far it got."""
        task_id = self.id.strip()
        if not task_id:
            return None
        status = TaskStatus.parse(self.status)
        progress = self.progress
        if status is TaskStatus.FAILURE:
            progress = 0
        elif status is TaskStatus.SUCCESS:
            progress = 100
        buttons = tuple(b for b in (w.to_core() for w in self.buttons or ()) if b is not None)
        if self.buttons is None and status is TaskStatus.SUCCESS:
            buttons = classic_buttons(self)
        return TaskSnapshot(
            task_id=task_id,
            status=status,
            progress=progress,
            action=self.action,
            prompt=self.prompt or self.prompt_en,
            final_prompt=_text(self.properties.get("finalPrompt")),
            image_url=self.image_url.strip() or None,
            fail_reason=self.fail_reason,
            state=self.state,
            buttons=buttons,
            submit_time_ms=self.submit_time,
            finish_time_ms=self.finish_time,
        )


# The Java proxy 2.x lets U/V/🔄 follow these actions only (SubmitController.change, §2.5).
_GRID_ACTIONS = frozenset({"IMAGINE", "VARIATION", "REROLL", "BLEND"})
_HASH_IN_FILENAME = re.compile(r"_([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.")


def classic_buttons(task: WireTask) -> tuple[Button, ...]:
    """The grid buttons MJ shows under a 2×2 image, for a server that sends none (Java 2.x).

    Their custom ids have MJ's own shape (mj-api.md §4.5), so the rest of the bot treats them
    like any server's; the client presses them through /mj/submit/change where the server has
    no /mj/submit/action. The job hash is the proxy's `messageHash`, else the image file's,
    else the task id (only /submit/action servers ever read it).
    """
    if task.action.upper() not in _GRID_ACTIONS:
        return ()
    job = _text(task.properties.get("messageHash")).strip()
    if not job:
        found = _HASH_IN_FILENAME.search(task.image_url)
        job = found.group(1) if found else task.id.strip()
    ups = [Button(f"MJ::JOB::upsample::{i}::{job}", f"U{i}") for i in range(1, 5)]
    reroll = [Button(f"MJ::JOB::reroll::0::{job}::SOLO", "", "🔄")]
    variations = [Button(f"MJ::JOB::variation::{i}::{job}", f"V{i}") for i in range(1, 5)]
    return (*ups, *reroll, *variations)


def parse_task(raw: object) -> TaskSnapshot | None:
    """Any JSON value as a snapshot, or None when it is not a task (never raises)."""
    if not isinstance(raw, dict):
        return None
    try:
        return WireTask.model_validate(raw).to_core()
    except (ValidationError, RecursionError):
        return None


# Rank of a task's status along its one way forward: of two rows for one id, the later wins.
_RANK = {
    TaskStatus.UNKNOWN: 0,
    TaskStatus.NOT_START: 1,
    TaskStatus.MODAL: 2,
    TaskStatus.SUBMITTED: 3,
    TaskStatus.IN_PROGRESS: 4,
    TaskStatus.SUCCESS: 5,
    TaskStatus.FAILURE: 5,
}


def most_advanced(snapshots: list[TaskSnapshot]) -> list[TaskSnapshot]:
    """One snapshot per task id, in first-seen order: the furthest along of its rows."""
    best: dict[str, TaskSnapshot] = {}
    for snap in snapshots:
        held = best.get(snap.task_id)
        if held is None or (_RANK[snap.status], snap.progress) > (
            _RANK[held.status],
            held.progress,
        ):
            best[snap.task_id] = snap
    return list(best.values())


class Envelope(_Wire):
    """The submit envelope `{code, description, result, properties}` (mj-api.md §3)."""

    code: int
    description: Text = ""
    result: Any = None
    properties: Mapping = Field(default_factory=dict)

    @classmethod
    def read(cls, payload: object) -> Envelope | None:
        """The envelope, or None when `payload` is not one (an int `code` and a description or
        a result)."""
        if not isinstance(payload, dict) or not ("description" in payload or "result" in payload):
            return None
        code = payload.get("code")
        if not isinstance(code, int) or isinstance(code, bool):
            return None
        return cls.model_validate(payload)

    @property
    def task_id(self) -> str:
        """`result` as a task id ("" when it is none)."""
        if isinstance(self.result, str):
            return self.result.strip()
        if isinstance(self.result, int) and not isinstance(self.result, bool):
            return str(self.result)
        return ""

    def submission(self) -> Submission:
        """An accepted submit (codes 1, 21, 22) as the core value."""
        queue = _whole(self.properties.get("numberOfQueues"))
        return Submission(
            task_id=self.task_id,
            # new-api rewrites 22 to 1 but may keep numberOfQueues: still a queue position.
            queue_position=queue if queue and queue > 0 else None,
            needs_input=self.code == 21,
            description=self.description,
            final_prompt=_text(self.properties.get("finalPrompt")),
        )


class NewApiError(_Wire):
    """new-api's own answer `{description, type: "upstream_error", code}` (mj-api.md §1, §3)."""

    description: Text = ""
    code: Whole = None

    @classmethod
    def read(cls, payload: object) -> NewApiError | None:
        """The answer as this shape, or None when `payload` is not one."""
        if (
            isinstance(payload, dict)
            and payload.get("type") == "upstream_error"
            and "description" in payload
        ):
            return cls.model_validate(payload)
        return None

    @property
    def word(self) -> str:
        """The error's name: its first word before any ":" (`unknown_action:MJ::…` →
        `unknown_action`), without new-api's trailing space."""
        return self.description.strip().split(" ", 1)[0].split(":", 1)[0].lower()


class MiddlewareError(_Wire):
    """new-api's middleware answer `{"error": {"message", "type"}}` (auth, distributor)."""

    message: Text = ""
    type: Text = ""

    @classmethod
    def read(cls, payload: object) -> MiddlewareError | None:
        """The answer as this shape, or None when `payload` is not one."""
        if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
            return cls.model_validate(payload["error"])
        return None


class CSharpEnvelope(_Wire):
    """The C# proxy's exception-filter answer `{success: false, code, message, timestamp}`."""

    message: Text = ""
    code: Whole = None

    @classmethod
    def read(cls, payload: object) -> CSharpEnvelope | None:
        """The answer as this shape, or None when `payload` is not one."""
        if (
            isinstance(payload, dict)
            and payload.get("success") is False
            and "message" in payload
            and "result" not in payload
        ):
            return cls.model_validate(payload)
        return None
