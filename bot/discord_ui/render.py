"""Job → message text in a locale. Pure functions: no I/O, no client state.

Public messages (the reply, the status message, the finish post) are rendered in the server's
locale (`locale`; English when left out), and so are the buttons under a result: Midjourney's
labels that are words ("Vary (Strong)", "Zoom Out 2x") are shown in the server's language,
U1, V1, 🔄 and the arrows as Midjourney shows them. Prompts are never translated.
"""

from __future__ import annotations

import dataclasses

import discord

from bot.core.errors import failure_messages
from bot.core.followups import button_kind, describe_prompts
from bot.core.images import safe_filename
from bot.core.jobs import Button, Job, JobStatus
from bot.core.messages import Code, Message, UserRef, msg, plural_msg
from bot.discord_ui.i18n.render import render

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


DEFAULT_LOCALE = "en-US"


def headline(job: Job, locale: str = DEFAULT_LOCALE) -> str:
    """What the public reply and the thread are titled: the member's prompt as written (never
    translated); for /describe and /blend, which have none, what was asked, in `locale`."""
    sources = job.inputs.sources
    if job.action == "DESCRIBE" and sources:
        return render(msg("Describe {file}", file=safe_filename(sources[0].filename)), locale)
    if job.action == "BLEND":
        count = job.reference_count or len(sources)
        match job.inputs.dimensions:
            case "PORTRAIT":
                blend = plural_msg(
                    "Blend of {count} image (portrait)", "Blend of {count} images (portrait)", count
                )
            case "LANDSCAPE":
                blend = plural_msg(
                    "Blend of {count} image (landscape)",
                    "Blend of {count} images (landscape)",
                    count,
                )
            case _:
                blend = plural_msg(
                    "Blend of {count} image (square)", "Blend of {count} images (square)", count
                )
        return render(blend, locale)
    return job.prompt


def reply_content(
    prompt: str, mode_label: str, requester_id: int, locale: str = DEFAULT_LOCALE
) -> str:
    """The public reply to /imagine: prompt, mode and requester."""
    line = msg(
        "Mode: {mode} · requested by {requester}", mode=mode_label, requester=UserRef(requester_id)
    )
    return f"🎨 **{clean(prompt)}**\n{render(line, locale)}"


def marker(job: Job) -> str:
    """The line that identifies a job's messages; also how an earlier finish post is found."""
    return f"-# job {job.id} · task {job.task_id or '—'}"


def action_label(custom_id: str, locale: str = DEFAULT_LOCALE) -> str:
    """A button press in words: "Upscale 2", "Vary (Strong)", "Zoom out 2x", "Pan left" …"""
    return render(button_kind(custom_id).label, locale)


def status_content(job: Job, locale: str = DEFAULT_LOCALE) -> str:
    """The thread's status message for a job at its current stage."""
    if job.task_id:
        head = render(msg("Task ID: {task}", task=Code(job.task_id)), locale)
    else:
        head = render(msg("Task ID: (pending)"), locale)
    if job.custom_id:
        asked = msg(
            "**{action}** · requested by {requester}",
            action=action_label(job.custom_id, locale),
            requester=UserRef(job.route.requester_id),
        )
        head = f"{render(asked, locale)}\n{head}"
    match job.status:
        case JobStatus.QUEUED if job.queue_position:
            line = msg("⏳ Queued — {count} ahead of this job.", count=job.queue_position)
        case JobStatus.QUEUED | JobStatus.SUBMITTING:
            line = msg("⏳ Queued.")
        case JobStatus.SUBMITTED:
            line = msg("📨 Submitted — waiting for Midjourney to start.")
        case JobStatus.IN_PROGRESS:
            line = msg("🖌️ In progress {bar}", bar=progress_bar(job.progress))
        case JobStatus.MODAL:
            line = msg("✏️ Waiting for your input.")
        case JobStatus.SUCCEEDED:
            line = msg("✅ Done {bar}", bar=progress_bar(100))
        case JobStatus.FAILED:
            line = msg("❌ Failed.")
    return f"{head}\n{render(line, locale)}"


def failure_text(reason: str, locale: str = DEFAULT_LOCALE) -> str:
    """A failed job's reason in plain words, then the service's own, one per line."""
    return "\n".join(render(m, locale) for m in failure_messages(reason))


def finish_content(
    job: Job,
    *,
    link: str | None = None,
    why: Message | None = None,
    note: Message | None = None,
    locale: str = DEFAULT_LOCALE,
) -> str:
    """The finish post: mentions the requester; says what failed in plain words. With `link`,
    the image is linked and `why` says why it is not attached; `note` says why the post is not
    where the member expects it.

    The marker line always survives the length cap: it is how an earlier post is found.
    """
    who = UserRef(job.route.requester_id)
    if job.status is not JobStatus.SUCCEEDED:
        reason = failure_text(job.fail_reason, locale)
        body = render(msg("{who} ❌ {reason}", who=who, reason=reason), locale)
    elif job.action == "DESCRIBE":
        prompts = describe_prompts(job.final_prompt)
        lines = [f"**{i}.** {clean(p, 400)}" for i, p in enumerate(prompts, 1)]
        body = render(msg("{who} here are prompts for your image:", who=who), locale)
        body += "\n" + "\n".join(lines)
        body += "\n" + render(msg("Press a number to imagine one."), locale) if prompts else ""
    elif job.custom_id:
        action = action_label(job.custom_id, locale)
        # English reads "your upscale 2 is ready"; other languages keep the label's own case
        # (German nouns, for one, are capitalised).
        action = action.lower() if locale.startswith("en") else action
        # TRANSLATORS: {action} is a button's label, such as "Upscale 2" or "Zoom out 2x".
        body = render(msg("{who} your {action} is ready.", who=who, action=action), locale)
    else:
        body = render(msg("{who} your image is ready.", who=who), locale)
    if link and job.status is JobStatus.SUCCEEDED and job.action != "DESCRIBE":
        # `why` is a whole sentence with a {link} placeholder (see presenter.py's reasons).
        said = why or msg("It could not be attached, so here is a link: {link}", link=link)
        body += "\n" + render(dataclasses.replace(said, params=(("link", link),)), locale)
    if note is not None:  # first, where the member looks
        body = f"{render(note, locale)}\n{body}"
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


def button_face(button: Button, locale: str = DEFAULT_LOCALE) -> tuple[str | None, str | None]:
    """(label, emoji) for a Discord button in `locale`. MJ's custom emoji *names* (upscale_1)
    are dropped. A label in words is the server's language's (English keeps Midjourney's own
    spelling, "Zoom Out 2x"); U1, V1 and the like stay as they are."""
    emoji = button.emoji if button.emoji and not button.emoji.isascii() else None
    kind = button_kind(button.custom_id)
    label = button.label[:80] or None
    if label is not None and kind.worded and not locale.startswith("en"):
        label = render(kind.label, locale)[:80]
    if label is None and emoji is None:
        label = kind.family.replace("_", " ").title() or "…"
    return label, emoji
