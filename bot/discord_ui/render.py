"""Job → message text. Pure functions: no I/O, no client state."""

from __future__ import annotations

import discord

from bot.core.errors import describe_failure
from bot.core.followups import button_kind, describe_prompts
from bot.core.jobs import Button, Job, JobStatus

BAR_WIDTH = 20
MAX_CONTENT = 2000
THREAD_NAME_LIMIT = 100
PROMPT_ECHO_LIMIT = 1500

#: Mentions for messages that echo user text: nobody is pinged, whatever the text says.
NO_PINGS = discord.AllowedMentions.none()


def only_user(user_id: int) -> discord.AllowedMentions:
    """Mentions that ping exactly one member (the requester) and nothing else."""
    return discord.AllowedMentions(
        everyone=False, roles=False, replied_user=False, users=[discord.Object(user_id)]
    )


def clean(text: str, limit: int = PROMPT_ECHO_LIMIT) -> str:
    """User text made safe to echo: markdown escaped, mentions defused, length capped."""
    text = discord.utils.escape_mentions(discord.utils.escape_markdown(text))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def progress_bar(percent: int, width: int = BAR_WIDTH) -> str:
    """A text progress bar like `[██████░░░░░░░░░░░░░░] 31%`."""
    percent = max(0, min(100, percent))
    filled = round(width * percent / 100)
    return f"`[{'█' * filled}{'░' * (width - filled)}]` {percent}%"


def thread_name(prompt: str) -> str:
    """A thread name from the prompt: one line, within Discord's 100 characters."""
    line = " ".join(prompt.split()) or "imagine"
    return line if len(line) <= THREAD_NAME_LIMIT else line[: THREAD_NAME_LIMIT - 1] + "…"


def reply_content(prompt: str, mode_label: str, requester_id: int) -> str:
    """The public reply to /imagine: prompt, mode and requester."""
    return f"🎨 **{clean(prompt)}**\nMode: {mode_label} · requested by <@{requester_id}>"


def marker(job: Job) -> str:
    """The line that identifies a job's messages; also how an earlier finish post is found."""
    return f"-# job {job.id} · task {job.task_id or '—'}"


def action_label(custom_id: str) -> str:
    """A button press in words: "Upscale 2", "Vary (Strong)", "Zoom out 2x", "Pan left" …"""
    return button_kind(custom_id).label


def status_content(job: Job) -> str:
    """The thread's status message for a job at its current stage."""
    head = f"Task ID: `{job.task_id}`" if job.task_id else "Task ID: (pending)"
    if job.custom_id:
        head = (
            f"**{action_label(job.custom_id)}** · requested by <@{job.route.requester_id}>\n{head}"
        )
    match job.status:
        case JobStatus.QUEUED if job.queue_position:
            line = f"⏳ Queued — {job.queue_position} ahead of this job."
        case JobStatus.QUEUED | JobStatus.SUBMITTING:
            line = "⏳ Queued."
        case JobStatus.SUBMITTED:
            line = "📨 Submitted — waiting for Midjourney to start."
        case JobStatus.IN_PROGRESS:
            line = f"🖌️ In progress {progress_bar(job.progress)}"
        case JobStatus.MODAL:
            line = "✏️ Waiting for your input."
        case JobStatus.SUCCEEDED:
            line = f"✅ Done {progress_bar(100)}"
        case JobStatus.FAILED:
            line = "❌ Failed."
    return f"{head}\n{line}"


def finish_content(job: Job, *, link: str | None = None, why: str = "", note: str = "") -> str:
    """The finish post: mentions the requester; says what failed in plain words. With `link`,
    the image is linked and `why` says why it is not attached; `note` says why the post is not
    where the member expects it.

    The marker line always survives the length cap: it is how an earlier post is found.
    """
    who = f"<@{job.route.requester_id}>"
    if job.status is not JobStatus.SUCCEEDED:
        body = f"{who} ❌ {describe_failure(job.fail_reason)}"
    elif job.action == "DESCRIBE":
        prompts = describe_prompts(job.final_prompt)
        lines = [f"**{i}.** {clean(p, 400)}" for i, p in enumerate(prompts, 1)]
        body = f"{who} here are prompts for your image:\n" + "\n".join(lines)
        body += "\nPress a number to imagine one." if prompts else ""
    else:
        label = action_label(job.custom_id) if job.custom_id else "image"
        body = f"{who} your {label.lower() if job.custom_id else label} is ready."
        if link:
            body += f"\n{why or 'It could not be attached'}, so here is a link: {link}"
    if note:
        body += f"\n{note}"
    tail = f"\n{marker(job)}"
    return body[: MAX_CONTENT - len(tail)] + tail


def button_rows(buttons: tuple[Button, ...]) -> list[list[tuple[int, Button]]]:
    """Lay out the API's buttons within Discord's limits (5 per row, 5 rows).

    A grid keeps MJ's layout: U1–U4 and 🔄 on the first row, V1–V4 on the second. Buttons a
    chat bot cannot serve are left out. Each entry is (index into `buttons`, button).
    """
    rows: list[list[tuple[int, Button]]] = []
    current: list[tuple[int, Button]] = []
    last_family = ""
    for index, button in enumerate(buttons):
        kind = button_kind(button.custom_id)
        if not kind.offered:
            continue
        if current and (len(current) == 5 or (kind.starts_row and last_family != kind.family)):
            rows.append(current)
            current = []
        current.append((index, button))
        last_family = kind.family
    if current:
        rows.append(current)
    return rows[:5]


def button_face(button: Button) -> tuple[str | None, str | None]:
    """(label, emoji) for a Discord button. MJ's custom emoji *names* (upscale_1) are dropped."""
    emoji = button.emoji if button.emoji and not button.emoji.isascii() else None
    label = button.label[:80] or None
    if label is None and emoji is None:
        label = button_kind(button.custom_id).family.replace("_", " ").title() or "…"
    return label, emoji
