"""The simulator's task model and lifecycle (mj-api.md §4), shared by both profiles.

A `SimTask` holds the *upstream* view of a task (the plus/C# proxy, layers B/C); the aggregator
profile re-shapes it into new-api's DTO on the way out (`aggregator_dto`), from snapshots taken
at every change so that it can show a view as stale as new-api's 15-second polling would.

`TaskBook` owns the tasks, the lifecycle steps (NOT_START → SUBMITTED 0% → IN_PROGRESS 0…93% →
SUCCESS/FAILURE), the button sets (§4.5, §4.7), and the image files the task URLs point at.
"""

from __future__ import annotations

import copy
import hashlib
import random
import re
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .faults import Faults
from .images import ImageSpec, preview_px

NOT_START, SUBMITTED, IN_PROGRESS = "NOT_START", "SUBMITTED", "IN_PROGRESS"
SUCCESS, FAILURE, MODAL = "SUCCESS", "FAILURE", "MODAL"
TERMINAL = frozenset({SUCCESS, FAILURE})
# The percentages Midjourney's progress messages show (issue logs quoted in mj-api.md §4.1).
PROGRESS_STEPS = (0, 15, 31, 46, 62, 78, 93)


def now_ms() -> int:
    return int(time.time() * 1000)


def snowflake() -> str:
    """A Discord-like 19-digit id (channels, messages, nonces)."""
    return str(random.randint(1_100_000_000_000_000_000, 1_399_999_999_999_999_999))


@dataclass
class SimTask:
    """One task as the upstream proxy stores it; `status`/`progress` are the live values."""

    id: str
    action: str
    status: str
    progress: str
    prompt: str
    bot_type: str
    state: str | None = None
    base64_array: list[str] = field(default_factory=list)
    image_url: str | None = None
    fail_reason: str | None = None
    buttons: list[dict[str, Any]] = field(default_factory=list)
    parent_id: str | None = None
    notify_hook: str | None = None
    prompt_en: str = ""
    description: str = ""
    # What the submit answer said: new-api freezes this into the DTO's description.
    submit_description: str = ""
    # new-api's own names and prompt for the task (§2.3, §4.4).
    d_action: str = ""
    d_prompt: str = ""
    d_submit_time: int = 0
    submit_time: int | None = None
    start_time: int | None = None
    finish_time: int | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    mode: str = "FAST"
    job_hash: str = field(default_factory=lambda: str(uuid.uuid4()))
    nonce: str = field(default_factory=snowflake)
    # What the final image looks like: "grid", "single" (an upscale), "describe", "video".
    kind: str = "grid"
    # For "single": the palette seed of the grid it came from, and which quadrant (0..3).
    seed: str = ""
    quadrant: int = 0
    # Why the task waits in MODAL: "custom_zoom", "inpaint", "remix", "pic_reader".
    modal: str | None = None
    # Extra lifecycle steps to spend in NOT_START (set by the code-22 fault).
    queue_wait: int = 0
    # Discord-like upscale button ids depend on the model version (§4.7).
    version: str = "v7"
    # The describe input, served as the describe task's imageUrl.
    upload_urls: list[str] = field(default_factory=list)
    next_step_at: float = 0.0
    # (monotonic time, upstream JSON) after every change: the aggregator's poll view reads these.
    history: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    # "STATUS:progress" keys already pushed to notifyHook (§5 de-duplication).
    notified: set[str] = field(default_factory=set)
    # Aggregator: the row /submit/action left behind when /submit/modal inserted a second one
    # for the same id (new-api inserts a row per submit; its poller updates only one of them).
    stale_row: dict[str, Any] | None = None
    # The reason this task will fail at its next step (the Java proxy's unchecked index).
    doomed: str | None = None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


# --- buttons ---------------------------------------------------------------------------------


def _button(custom_id: str, label: str = "", emoji: str = "", style: int = 2) -> dict[str, Any]:
    return {"customId": custom_id, "emoji": emoji, "label": label, "type": 2, "style": style}


def grid_buttons(job: str) -> list[dict[str, Any]]:
    """U1–U4, 🔄, V1–V4: MJ's standard grid rows (§4.5)."""
    ups = [_button(f"MJ::JOB::upsample::{i}::{job}", f"U{i}") for i in range(1, 5)]
    reroll = [_button(f"MJ::JOB::reroll::0::{job}::SOLO", emoji="🔄")]
    variations = [_button(f"MJ::JOB::variation::{i}::{job}", f"V{i}") for i in range(1, 5)]
    return ups + reroll + variations


def upscale_ids(version: str) -> list[tuple[str, str]]:
    """(customId action, label) of the upscale buttons MJ offers for `version` (§4.7)."""
    if version == "v5":
        return [("upsample_v5_2x", "Upscale (2x)"), ("upsample_v5_4x", "Upscale (4x)")]
    if version == "v8":
        return []
    prefix = {"v6": "upsample_v6_2x", "v6r1": "upsample_v6r1_2x"}.get(version, "upsample_v7_2x")
    return [(f"{prefix}_subtle", "Upscale (Subtle)"), (f"{prefix}_creative", "Upscale (Creative)")]


def upscale_buttons(job: str, version: str, with_upscales: bool = True) -> list[dict[str, Any]]:
    """The row set under an upscaled image (§4.7)."""
    out = []
    if with_upscales:
        out += [
            _button(f"MJ::JOB::{name}::1::{job}::SOLO", label, "upscale_1")
            for name, label in upscale_ids(version)
        ]
    out += [
        _button(f"MJ::JOB::low_variation::1::{job}::SOLO", "Vary (Subtle)", "🪄"),
        _button(f"MJ::JOB::high_variation::1::{job}::SOLO", "Vary (Strong)", "🪄"),
        _button(f"MJ::Inpaint::1::{job}::SOLO", "Vary (Region)", "🖌️"),
        _button(f"MJ::Outpaint::50::1::{job}::SOLO", "Zoom Out 2x", "🔍"),
        _button(f"MJ::Outpaint::75::1::{job}::SOLO", "Zoom Out 1.5x", "🔍"),
        _button(f"MJ::CustomZoom::{job}", "Custom Zoom", "🔍"),
        _button(f"MJ::JOB::pan_left::1::{job}::SOLO", emoji="⬅️"),
        _button(f"MJ::JOB::pan_right::1::{job}::SOLO", emoji="➡️"),
        _button(f"MJ::JOB::pan_up::1::{job}::SOLO", emoji="⬆️"),
        _button(f"MJ::JOB::pan_down::1::{job}::SOLO", emoji="⬇️"),
        _button(f"MJ::BOOKMARK::{job}", emoji="❤️"),
    ]
    return out


def describe_buttons() -> list[dict[str, Any]]:
    """C labels the PicReader buttons blank and keeps the keycap emoji (§2.7)."""
    keycaps = ["1️⃣", "2️⃣", "3️⃣", "4️⃣"]
    out = [_button(f"MJ::Job::PicReader::{i}", emoji=keycaps[i - 1]) for i in range(1, 5)]
    return [*out, _button("MJ::Picread::Retry", emoji="🔄")]


def model_version(prompt: str) -> str:
    """The version key for upscale button ids, from `--v`/`--niji` flags (default: v7)."""
    match = re.search(r"--(v|version|niji)\s+([\d.]+)", prompt)
    if not match:
        return "v7"
    number = match.group(2)
    if number.startswith("5"):
        return "v5"
    if number == "6.1":
        return "v6r1"
    if number.startswith("6"):
        return "v6"
    if number.startswith("8"):
        return "v8"
    return "v7"


def describe_prompts(seed: str) -> list[str]:
    """Four deterministic "described" prompts, numbered with keycaps as MJ's /describe does."""
    rng = random.Random(seed)
    subjects = ["a lighthouse", "four coloured panels", "a quiet harbour", "an abstract mosaic"]
    styles = ["flat design", "watercolor", "bauhaus poster", "minimalist color field painting"]
    ratios = ["1:1", "5:4", "4:3", "3:2"]
    prompts = []
    for subject in rng.sample(subjects, 4):
        prompts.append(f"{subject}, {rng.choice(styles)} --ar {rng.choice(ratios)}")
    return prompts


# --- customId → what the new task is ----------------------------------------------------------


@dataclass(frozen=True)
class ActionPlan:
    """What pressing a button creates, as the C# proxy maps it (§2.3)."""

    action: str  # upstream action; "" = same as the parent (reroll)
    kind: str  # final image kind
    index: int = 0
    modal: str | None = None
    remixable: bool = False  # goes to MODAL when remix is on (Faults.modal_actions)
    bookmark: bool = False
    pic_reader: int = 0
    describe_retry: bool = False


_ACTIONS: list[tuple[re.Pattern[str], Callable[[re.Match[str]], ActionPlan]]] = [
    (
        re.compile(r"^MJ::JOB::upsample::([1-4])::[^:]+"),
        lambda m: ActionPlan("UPSCALE", "single", index=int(m.group(1))),
    ),
    (
        re.compile(r"^MJ::JOB::variation::([1-4])::[^:]+"),
        lambda m: ActionPlan("VARIATION", "grid", index=int(m.group(1)), remixable=True),
    ),
    (re.compile(r"^MJ::JOB::reroll::0::"), lambda m: ActionPlan("", "grid", remixable=True)),
    (
        re.compile(r"^MJ::JOB::(high|low)_variation::1::"),
        lambda m: ActionPlan("VARIATION", "grid", index=1, remixable=True),
    ),
    (re.compile(r"^MJ::JOB::upsample_\w+::1::"), lambda m: ActionPlan("UPSCALE_HD", "hd")),
    (re.compile(r"^MJ::Outpaint::(50|75)::1::"), lambda m: ActionPlan("ZOOM", "grid")),
    (
        re.compile(r"^MJ::CustomZoom::[^:]+$"),
        lambda m: ActionPlan("ZOOM", "grid", modal="custom_zoom"),
    ),
    (
        re.compile(r"^MJ::JOB::pan_(left|right|up|down)::1::"),
        lambda m: ActionPlan("PAN", "grid", remixable=True),
    ),
    (re.compile(r"^MJ::Inpaint::1::"), lambda m: ActionPlan("VARIATION", "grid", modal="inpaint")),
    (re.compile(r"^MJ::JOB::animate_(high|low)::1::"), lambda m: ActionPlan("VIDEO", "video")),
    (
        re.compile(r"^MJ::Job::PicReader::([1-4])$"),
        lambda m: ActionPlan("IMAGINE", "grid", modal="pic_reader", pic_reader=int(m.group(1))),
    ),
    (
        re.compile(r"^MJ::Picread::Retry$"),
        lambda m: ActionPlan("DESCRIBE", "describe", describe_retry=True),
    ),
    (re.compile(r"^MJ::BOOKMARK::"), lambda m: ActionPlan("", "", bookmark=True)),
]


def plan_action(custom_id: str) -> ActionPlan | None:
    """The C# proxy's customId mapping; None means code 4 "未知的 Action 类型"."""
    for pattern, make in _ACTIONS:
        match = pattern.match(custom_id)
        if match:
            return make(match)
    return None


def newapi_action(custom_id: str) -> str | None:
    """new-api's CoverPlusActionToNormalAction (§2.3): its action name, or None = unknown_action.

    It splits on "::" and takes the 3rd segment after "JOB", else the 2nd, then matches by
    substring, so e.g. `MJ::BOOKMARK::…` and `MJ::Job::PicReader::1` are unknown to it.
    """
    parts = custom_id.split("::")
    if len(parts) < 2:
        return None
    name = parts[2] if parts[1] == "JOB" and len(parts) > 2 else parts[1]
    if "upsample" in name:
        if len(parts) < 4 or not parts[3].isdigit():
            return None
        return "UPSCALE"
    if "variation" in name:
        return {"low_variation": "LOW_VARIATION", "high_variation": "HIGH_VARIATION"}.get(
            name, "VARIATION"
        )
    if "pan" in name:
        return "PAN"
    if "reroll" in name:
        return "REROLL"
    return {"Outpaint": "ZOOM", "CustomZoom": "CUSTOM_ZOOM", "Inpaint": "INPAINT"}.get(name)


# --- task JSON ---------------------------------------------------------------------------------


def upstream_json(task: SimTask) -> dict[str, Any]:
    """The full task object as the plus/C# proxy returns it: camelCase, nulls included (§4.3)."""
    return {
        "id": task.id,
        "parentId": task.parent_id,
        "action": task.action,
        "status": task.status,
        "prompt": task.prompt,
        "promptEn": task.prompt_en,
        "description": task.description,
        "state": task.state,
        "submitTime": task.submit_time,
        "startTime": task.start_time,
        "finishTime": task.finish_time,
        "imageUrl": task.image_url,
        "imageUrls": [{"url": task.image_url}] if task.status == SUCCESS and task.image_url else [],
        "progress": task.progress,
        "failReason": task.fail_reason,
        "buttons": copy.deepcopy(task.buttons),
        "botType": task.bot_type,
        "realBotType": task.bot_type,
        "mode": task.mode,
        "nonce": task.nonce,
        "jobId": task.job_hash if task.status == SUCCESS else None,
        "seed": None,
        "properties": copy.deepcopy(task.properties),
    }


def aggregator_dto(
    task: SimTask, snapshot: dict[str, Any] | None, server_address: str
) -> dict[str, Any]:
    """new-api's MidjourneyDto (§4.4) of `task`, as of its last poll `snapshot` (None: no poll yet).

    Before the first poll new-api's row has an empty status and progress "0%"; afterwards every
    field comes from the upstream task it saw, except the frozen description, its own action
    name, the prompt as sent to it, and always-empty customId/botType/maskBase64. `imageUrl` is
    "" until the upstream task has an image, then `<ServerAddress>/mj/image/<id>` (with
    `?rand=` until SUCCESS), as QuantumNous/new-api relay/mjproxy_handler.go
    coverMidjourneyTaskDto builds it with MjForwardUrlEnabled (the default).
    """
    status = snapshot["status"] if snapshot else ""
    image_url = ""
    if snapshot and snapshot.get("imageUrl"):
        image_url = f"{server_address}/mj/image/{task.id}"
        if status != SUCCESS:
            image_url += f"?rand={time.time_ns()}"
    dto: dict[str, Any] = {
        "id": task.id,
        "action": task.d_action,
        "customId": "",
        "botType": "",
        "prompt": task.d_prompt,
        "promptEn": "",
        "description": task.submit_description,
        "state": "",
        "submitTime": task.d_submit_time,
        "startTime": 0,
        "finishTime": 0,
        "imageUrl": image_url,
        "status": status,
        "progress": "0%",
        "failReason": "",
        "buttons": None,
        "maskBase64": "",
        "properties": None,
    }
    if snapshot is None:
        return dto
    props = snapshot.get("properties") or {}
    dto.update(
        promptEn=snapshot.get("promptEn") or "",
        state=snapshot.get("state") or "",
        submitTime=snapshot.get("submitTime") or 0,
        startTime=snapshot.get("startTime") or 0,
        finishTime=snapshot.get("finishTime") or 0,
        # new-api marks any failure finished (and refunds) by forcing 100%.
        progress="100%" if status == FAILURE else snapshot.get("progress") or "",
        failReason=snapshot.get("failReason") or "",
        buttons=snapshot.get("buttons") or None,
        properties={
            "finalPrompt": props.get("finalPrompt") or "",
            "finalZhPrompt": props.get("finalZhPrompt") or "",
        },
    )
    return dto


def new_task_id(existing: dict[str, SimTask]) -> str:
    """`System.currentTimeMillis()` + 3 random digits, as A and C make them (§1)."""
    while True:
        candidate = f"{now_ms()}{secrets.randbelow(1000):03d}"
        if candidate not in existing:
            return candidate


def slug(prompt: str) -> str:
    """Discord-style file name words from a prompt: `a_lighthouse_in_a_storm`."""
    words = re.findall(r"[a-z0-9]+", prompt.lower().split("--")[0])
    return "_".join(words)[:40].strip("_") or "image"


def signed_query(seed: str) -> str:
    """Discord CDN signature parameters (`ex`, `is`, `hm`); the simulator does not check them."""
    issued = int(time.time())
    digest = hashlib.sha256(f"{seed}:{issued}".encode()).hexdigest()
    return f"ex={issued + 86400:08x}&is={issued:08x}&hm={digest}&"


@dataclass
class Attachment:
    """A file served under /attachments/...: a rendered image or an uploaded reference."""

    spec: ImageSpec | None = None
    data: bytes = b""
    content_type: str = "image/png"
    # When the link was signed (monotonic): Discord's signed links expire (§7.5).
    created: float = field(default_factory=time.monotonic)


class TaskBook:
    """The tasks, their lifecycle and the files their URLs point at.

    `on_change(task)` is called after every visible change (the server snapshots the task for the
    aggregator view and pushes notifyHook callbacks from it).
    """

    def __init__(self, faults: Faults, on_change: Callable[[SimTask], None]) -> None:
        self.tasks: dict[str, SimTask] = {}
        self.faults = faults
        self.on_change = on_change
        self.base_url = ""
        self.image_px = 256
        self.channel_id = snowflake()
        self.instance_id = snowflake()
        # "channel/message/filename" → what to serve there.
        self.attachments: dict[str, Attachment] = {}

    # --- files ---

    def attach(self, filename: str, attachment: Attachment, seed: str) -> str:
        key = f"{self.channel_id}/{snowflake()}/{filename}"
        self.attachments[key] = attachment
        return f"{self.base_url}/attachments/{key}?{signed_query(seed + key)}"

    def upload(self, data: bytes, content_type: str) -> str:
        """Store a reference image as the proxy's Discord upload does, and return its URL."""
        ext = {"image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp"}.get(
            content_type, "png"
        )
        name = f"{uuid.uuid4()}.{ext}"
        return self.attach(name, Attachment(data=data, content_type=content_type), name)

    def final_spec(self, task: SimTask) -> ImageSpec:
        if self.faults.noisy_images:
            return ImageSpec("noise", task.id, self.image_px)
        if task.kind in ("single", "hd", "video"):
            return ImageSpec("single", task.seed or task.id, self.image_px, quadrant=task.quadrant)
        return ImageSpec("grid", task.id, self.image_px)

    # --- lifecycle ---

    def add(self, task: SimTask) -> None:
        self.tasks[task.id] = task
        self.on_change(task)

    def step(self, task: SimTask) -> bool:
        """Move `task` one lifecycle step; returns whether anything visible changed."""
        if task.terminal or task.status == MODAL:
            return False
        if task.status == NOT_START:
            if task.queue_wait > 0:
                task.queue_wait -= 1
                return False
            task.status, task.progress = SUBMITTED, "0%"
            task.start_time = now_ms()
        elif task.doomed is not None or self.faults.fail_reason is not None:
            self._fail(task, task.doomed or self.faults.fail_reason or "")
        elif task.status == SUBMITTED:
            self._progress(task, PROGRESS_STEPS[0])
        else:
            current = int(task.progress.rstrip("%") or 0)
            later = [p for p in PROGRESS_STEPS if p > current]
            if later:
                self._progress(task, later[0])
            elif self.faults.never_finish:
                return False
            else:
                self._succeed(task)
        self.on_change(task)
        return True

    def complete(self, task: SimTask) -> None:
        if task.status == NOT_START:
            task.start_time = now_ms()
        self._succeed(task)
        self.on_change(task)

    def fail(self, task: SimTask, reason: str) -> None:
        self._fail(task, reason)
        self.on_change(task)

    def _progress(self, task: SimTask, percent: int) -> None:
        task.status, task.progress = IN_PROGRESS, f"{percent}%"
        if task.kind in ("grid", "single", "hd", "video"):
            spec = ImageSpec("preview", task.id, preview_px(self.image_px), progress=percent)
            if task.kind != "grid":
                spec = ImageSpec(
                    "preview", task.seed or task.id, preview_px(self.image_px), progress=percent
                )
            task.image_url = self.attach("grid_0.png", Attachment(spec=spec), task.id)

    def _succeed(self, task: SimTask) -> None:
        task.status, task.progress = SUCCESS, "100%"
        task.start_time = task.start_time or now_ms()
        task.finish_time = now_ms()
        task.fail_reason = ""
        if task.state is None:
            task.state = ""  # C fills a missing state in at finish
        if task.kind == "describe":
            prompts = describe_prompts(task.id)
            keycaps = ["1️⃣", "2️⃣", "3️⃣", "4️⃣"]
            final = "\n\n".join(f"{k} {p}" for k, p in zip(keycaps, prompts, strict=True))
            task.prompt_en = "\r\n".join(prompts)
            task.properties["finalPrompt"] = final
            task.properties["finalZhPrompt"] = ""
            task.image_url = task.upload_urls[0] if task.upload_urls else None
            task.buttons = describe_buttons()
            return
        filename = f"mjsim_{slug(task.prompt_en)}_{task.job_hash}.png"
        task.image_url = self.attach(filename, Attachment(spec=self.final_spec(task)), task.id)
        task.properties["messageHash"] = task.job_hash
        if task.kind == "single":
            task.buttons = upscale_buttons(task.job_hash, task.version)
        elif task.kind == "hd":
            task.buttons = upscale_buttons(task.job_hash, task.version, with_upscales=False)
        elif task.kind == "video":
            task.buttons = []
        else:
            task.buttons = grid_buttons(task.job_hash)

    def _fail(self, task: SimTask, reason: str) -> None:
        task.status, task.progress = FAILURE, ""
        task.fail_reason = reason
        task.finish_time = now_ms()
