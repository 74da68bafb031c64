"""The original midjourney-proxy 2.x (Java, layer A of mj-api.md §0): its task JSON and its
legacy button endpoints.

Read from novicezk/midjourney-proxy at 0be95a9: `support/Task.java` + `domain/DomainObject.java`
(the task fields; Jackson writes nulls), `controller/SubmitController.java` (`/submit/change`,
`/submit/simple-change` and their error texts), `util/ConvertUtils.java` (the simple-change
grammar), `controller/TaskController.java` (`/task/queue`, `/task/list`),
`support/ApiAuthorizeInterceptor.java` (a wrong `mj-api-secret` is a bare 401).
"""

from __future__ import annotations

import copy
import time
from typing import Any

from .tasks import SimTask

# What /submit/change accepts (TaskAction) and which parents it may follow.
CHANGE_ACTIONS = ("UPSCALE", "VARIATION", "REROLL")
# Every TaskAction (enums/TaskAction.java): any other value fails Jackson's binding.
TASK_ACTIONS = frozenset({"IMAGINE", "UPSCALE", "VARIATION", "REROLL", "DESCRIBE", "BLEND"})
CHANGE_PARENTS = frozenset({"IMAGINE", "VARIATION", "REROLL", "BLEND"})
_CUSTOM_IDS = {
    "UPSCALE": "MJ::JOB::upsample::{i}::{job}",
    "VARIATION": "MJ::JOB::variation::{i}::{job}",
    "REROLL": "MJ::JOB::reroll::0::{job}::SOLO",
}


def java_json(task: SimTask) -> dict[str, Any]:
    """The Task object as Jackson writes it: no `buttons`, nulls included (§4.9).

    `progress` is null until the task starts (Task.start sets "0%"), "" after a failure.
    """
    props = {
        "notifyHook": task.notify_hook,
        "nonce": task.nonce,
        "discordInstanceId": task.properties.get("discordInstanceId"),
        "finalPrompt": task.properties.get("finalPrompt"),
    }
    if task.status == "SUCCESS":
        props["messageHash"] = task.job_hash
    return {
        "id": task.id,
        "properties": copy.deepcopy(props),
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
        "progress": None if task.status == "NOT_START" else task.progress,
        "failReason": task.fail_reason,
    }


def spring_error(status: int, path: str, error: str) -> dict[str, Any]:
    """Spring Boot's default error JSON (no such route: 404; a body Jackson cannot bind: 400)."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000+00:00", time.gmtime())
    return {"timestamp": stamp, "status": status, "error": error, "path": path}


def simple_change(content: object) -> dict[str, Any] | None:
    """ConvertUtils.convertChangeParams: `"<id> U2"`, `"<id> v3"`, `"<id> R"` → a change body."""
    if not isinstance(content, str):
        return None
    parts = [p for p in content.split(" ") if p]
    if len(parts) != 2:
        return None
    task_id, action = parts[0], parts[1].lower()
    if action == "r":
        return {"taskId": task_id, "action": "REROLL"}
    kinds = {"u": "UPSCALE", "v": "VARIATION"}
    if action[0] not in kinds or len(action) < 2 or not action[1].isdigit():
        return None
    index = int(action[1])
    if not 1 <= index <= 4:
        return None
    return {"taskId": task_id, "action": kinds[action[0]], "index": index}


def change_description(task_id: str, action: str, index: object) -> str:
    """ "/up <id> U1", "/up <id> V2", "/up <id> R" (SubmitController.change)."""
    if action == "REROLL":
        return f"/up {task_id} R"
    return f"/up {task_id} {action[0]}{index}"


def custom_id_for(action: str, index: int, job: str) -> str:
    """The button a change stands for, so the shared action plan (tasks.plan_action) applies."""
    return _CUSTOM_IDS[action].format(i=index, job=job)
