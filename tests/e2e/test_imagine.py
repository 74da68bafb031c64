"""/imagine end to end: the real discord.py client against the Discord emulator and the
Midjourney-proxy simulator, over loopback."""

from __future__ import annotations

import asyncio
import base64
import io
import itertools
import random
import socket
from typing import Any

import pytest
from PIL import Image

from bot.app import Application
from bot.sandbox.discord import DiscordEmulator
from bot.sandbox.mjproxy import MjProxySimulator
from tests.e2e.conftest import Running


def png(color: tuple[int, int, int] = (200, 30, 30), size: int = 8) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (size, size), color).save(out, format="PNG")
    return out.getvalue()


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (0, 90, 200)).save(out, format="JPEG")
    return out.getvalue()


def gif() -> bytes:
    out = io.BytesIO()
    Image.new("P", (8, 8), 3).save(out, format="GIF")
    return out.getvalue()


def thread_of(emu: DiscordEmulator, message_id: int) -> dict[str, Any] | None:
    return next((t for t in emu.threads() if int(t["id"]) == message_id), None)


def public_reply(emu: DiscordEmulator) -> dict[str, Any]:
    replies = [m for m in emu.messages(emu.channel_id) if m.get("interaction_metadata")]
    assert replies, f"no public reply in the channel: {emu.messages(emu.channel_id)}"
    return replies[-1]


def finish_posts(emu: DiscordEmulator, channel_id: int) -> list[dict[str, Any]]:
    return [
        m
        for m in emu.messages(channel_id)
        if "-# job " in (m.get("content") or "") and m["content"].find("Task ID") < 0
    ]


async def wait_finish(emu: DiscordEmulator, channel_id: int, timeout: float = 15) -> dict[str, Any]:
    await emu.wait_for(lambda: bool(finish_posts(emu, channel_id)), timeout=timeout)
    return finish_posts(emu, channel_id)[-1]


@pytest.mark.parametrize("profile", ["aggregator", "upstream"], indirect=True)
@pytest.mark.parametrize("mode", ["MID_JOURNEY", "NIJI_JOURNEY"])
@pytest.mark.parametrize("count", [0, 1, 3])
async def test_imagine_posts_the_image_in_its_thread(
    emu: DiscordEmulator, sim: MjProxySimulator, app: Application, mode: str, count: int
) -> None:
    alice = emu.add_user("alice")
    blobs = [png(), jpeg(), gif()][:count]
    names = ["ref.png", "ref.jpg", "ref.gif"]
    mimes = ["image/png", "image/jpeg", "image/gif"]
    options: dict[str, Any] = {"prompt": "a lighthouse --ar 3:2", "mode": mode}
    for i, blob in enumerate(blobs):
        options[f"image{i + 1}"] = emu.add_attachment(names[i], blob, mimes[i])

    await emu.slash_command("imagine", options, user_id=alice)

    reply = await _reply(emu)
    label = "Niji" if mode == "NIJI_JOURNEY" else "Midjourney"
    assert "a lighthouse --ar 3:2" in reply["content"] and f"Mode: {label}" in reply["content"]
    assert f"<@{alice}>" in reply["content"] and reply["mentions"] == []
    await emu.wait_for(lambda: thread_of(emu, int(reply["id"])) is not None, timeout=10)
    thread = thread_of(emu, int(reply["id"]))
    assert thread is not None and thread["name"] == "a lighthouse --ar 3:2"
    final = await wait_finish(emu, int(thread["id"]))

    (submit,) = sim.requests_to("/mj/submit/imagine")
    assert submit.json["botType"] == mode
    assert submit.json["prompt"] == "a lighthouse --ar 3:2"
    expected = [
        f"data:{m};base64,{base64.b64encode(b).decode()}"
        for m, b in zip(mimes, blobs, strict=False)
    ]
    assert submit.json.get("base64Array", []) == expected
    task_id = next(iter(sim.tasks))

    await emu.wait_for(lambda: "Done" in emu.messages(int(thread["id"]))[0]["content"], timeout=5)
    status = emu.messages(int(thread["id"]))[0]
    assert f"Task ID: `{task_id}`" in status["content"] and "Done" in status["content"]
    assert final["attachments"] and final["attachments"][0]["filename"].startswith(
        f"mjcord-{task_id}"
    )
    grid = emu.cdn_bytes(final["attachments"][0]["url"])
    assert grid is not None and Image.open(io.BytesIO(grid)).size[0] > 0
    assert [u["id"] for u in final["mentions"]] == [str(alice)]
    labels = [c.get("label") for row in final["components"] for c in row["components"]]
    assert labels[:4] == ["U1", "U2", "U3", "U4"] and "V4" in labels
    assert len(final["components"]) == 2  # U1–U4 + 🔄, then V1–V4


async def _reply(emu: DiscordEmulator) -> dict[str, Any]:
    await emu.wait_for(
        lambda: any(
            m.get("interaction_metadata") and not (m.get("flags", 0) & 128)
            for m in emu.messages(emu.channel_id)
        ),
        timeout=10,
    )
    return public_reply(emu)


async def test_progress_is_shown_in_one_edited_status_message(
    emu: DiscordEmulator, sim: MjProxySimulator, bots: Running
) -> None:
    sim.step_seconds = 0.3
    await bots.start()
    alice = emu.add_user("alice")
    await emu.slash_command("imagine", {"prompt": "a fox"}, user_id=alice)
    reply = await _reply(emu)
    thread_id = int(reply["id"])
    await wait_finish(emu, thread_id, timeout=20)
    edits = [
        r
        for r in emu.requests
        if r.method == "PATCH" and r.route == "/channels/{channel_id}/messages/{message_id}"
    ]
    assert len(edits) >= 2
    bodies = [e.json.get("content", "") for e in edits]
    assert any("In progress" in b and "%" in b for b in bodies)
    # Coalesced: never two edits of one job's status message within the edit interval.
    times = [e.at for e in edits]
    assert all(b - a >= 0.15 for a, b in itertools.pairwise(times))


async def test_everyone_in_a_prompt_pings_nobody(
    emu: DiscordEmulator, sim: MjProxySimulator, app: Application
) -> None:
    alice = emu.add_user("alice")
    role = emu.add_role("Supporter", 0)
    await emu.slash_command(
        "imagine", {"prompt": f"@everyone @here <@&{role}> party"}, user_id=alice
    )
    reply = await _reply(emu)
    final = await wait_finish(emu, int(reply["id"]))
    for message in [reply, *emu.messages(int(reply["id"]))]:
        assert message.get("mention_everyone") is False
        assert message.get("mention_roles", []) == []
    assert [u["id"] for u in final["mentions"]] == [str(alice)]


@pytest.mark.parametrize(
    ("fault", "value", "sentence"),
    [
        ("banned_words", {"lighthouse"}, "refused this prompt"),
        ("queue_full", True, "queue is full"),
        ("no_account", True, "no account available"),
        ("http_status", 502, "unavailable right now"),
        ("rate_limited", True, "busy right now"),
        ("not_json", True, "unavailable right now"),
        ("drop_connection", True, "unavailable right now"),
    ],
)
async def test_api_refusals_reach_only_the_member_as_one_sentence(
    emu: DiscordEmulator,
    sim: MjProxySimulator,
    app: Application,
    fault: str,
    value: object,
    sentence: str,
) -> None:
    alice = emu.add_user("alice")
    setattr(sim.faults, fault, value)
    inter = await emu.slash_command("imagine", {"prompt": "a lighthouse"}, user_id=alice)
    await emu.wait_for(lambda: bool(inter.ephemeral_messages), timeout=15)
    (message,) = inter.ephemeral_messages
    assert sentence in message["content"]
    # Nothing public is left behind: no reply, no thread, no loading message.
    assert [m for m in emu.messages(emu.channel_id) if m.get("interaction_metadata")] == []
    assert emu.threads() == []


async def test_wrong_api_key_tells_members_the_service_is_misconfigured(
    emu: DiscordEmulator, sim: MjProxySimulator, bots: Running
) -> None:
    await bots.start(MJ_API_KEY="sk-wrong")
    alice = emu.add_user("alice")
    inter = await emu.slash_command("imagine", {"prompt": "a lighthouse"}, user_id=alice)
    await emu.wait_for(lambda: bool(inter.ephemeral_messages), timeout=15)
    assert "misconfigured" in inter.ephemeral_messages[0]["content"]


async def test_unreachable_api_says_unavailable(
    emu: DiscordEmulator, sim: MjProxySimulator, bots: Running
) -> None:
    # A bound socket that never listens: connecting is refused, and no other server can take
    # the port meanwhile (a merely "free" port could be reused by the bot's own web server).
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        await bots.start(MJ_API_BASE_URL=f"http://127.0.0.1:{port}")
        alice = emu.add_user("alice")
        inter = await emu.slash_command("imagine", {"prompt": "a lighthouse"}, user_id=alice)
        await emu.wait_for(lambda: bool(inter.ephemeral_messages), timeout=15)
    assert "unavailable" in inter.ephemeral_messages[0]["content"]


async def test_a_task_failure_is_posted_in_the_thread_in_plain_words(
    emu: DiscordEmulator, sim: MjProxySimulator, app: Application
) -> None:
    sim.faults.fail_reason = "[Banned prompt detected] Sorry! Our AI moderators feel your prompt …"
    alice = emu.add_user("alice")
    await emu.slash_command("imagine", {"prompt": "a lighthouse"}, user_id=alice)
    reply = await _reply(emu)
    final = await wait_finish(emu, int(reply["id"]))
    assert "content rules" in final["content"] and not final["attachments"]


async def test_a_non_image_attachment_is_refused_by_name(
    emu: DiscordEmulator, sim: MjProxySimulator, app: Application
) -> None:
    alice = emu.add_user("alice")
    pdf = emu.add_attachment("notes.pdf", b"%PDF-1.7\n" + b"x" * 100, "image/png")
    inter = await emu.slash_command(
        "imagine", {"prompt": "a lighthouse", "image2": pdf}, user_id=alice
    )
    await emu.wait_for(lambda: bool(inter.ephemeral_messages), timeout=10)
    content = inter.ephemeral_messages[0]["content"]
    assert "image2" in content and "notes.pdf" in content
    assert sim.requests_to("/mj/submit/imagine") == []


async def test_an_oversized_attachment_is_refused_before_download(
    emu: DiscordEmulator, sim: MjProxySimulator, bots: Running
) -> None:
    await bots.start(MAX_REFERENCE_MB="0.001")
    alice = emu.add_user("alice")
    noisy = Image.frombytes("RGB", (64, 64), random.Random(7).randbytes(64 * 64 * 3))
    out = io.BytesIO()
    noisy.save(out, format="PNG")
    assert len(out.getvalue()) > 1100
    big = emu.add_attachment("big.png", out.getvalue(), "image/png")
    inter = await emu.slash_command("imagine", {"prompt": "x", "image1": big}, user_id=alice)
    await emu.wait_for(lambda: bool(inter.ephemeral_messages), timeout=10)
    assert "image1" in inter.ephemeral_messages[0]["content"]
    assert "limit" in inter.ephemeral_messages[0]["content"]
    assert sim.requests_to("/mj/submit/imagine") == []


async def test_when_a_thread_cannot_be_made_the_job_carries_on_in_the_channel(
    emu: DiscordEmulator, sim: MjProxySimulator, app: Application
) -> None:
    emu.deny_permission(emu.channel_id, "CREATE_PUBLIC_THREADS")
    alice = emu.add_user("alice")
    await emu.slash_command("imagine", {"prompt": "a lighthouse"}, user_id=alice)
    final = await wait_finish(emu, emu.channel_id)
    assert final["attachments"]
    notes = [
        m for m in emu.messages(emu.channel_id) if "couldn't open a thread" in (m["content"] or "")
    ]
    assert len(notes) == 1
    assert emu.threads() == []


async def test_a_thread_deleted_mid_job_does_not_lose_the_job(
    emu: DiscordEmulator, sim: MjProxySimulator, app: Application
) -> None:
    sim.step_seconds = 0.2
    alice = emu.add_user("alice")
    await emu.slash_command("imagine", {"prompt": "a lighthouse"}, user_id=alice)
    reply = await _reply(emu)
    await emu.wait_for(lambda: thread_of(emu, int(reply["id"])) is not None, timeout=10)
    await emu.delete_channel(int(reply["id"]))
    final = await wait_finish(emu, emu.channel_id, timeout=20)
    assert final["attachments"] and f"<@{alice}>" in final["content"]
    assert app.bot is not None and not app.bot.is_closed()


async def test_an_image_over_the_upload_limit_is_posted_as_a_smaller_rendition(
    emu: DiscordEmulator, sim: MjProxySimulator, app: Application
) -> None:
    # A noisy 2048 px PNG is about 12.6 MB, over the 10 MiB a server without boosts allows.
    sim.image_px = 2048
    sim.faults.noisy_images = True
    alice = emu.add_user("alice")
    await emu.slash_command("imagine", {"prompt": "static"}, user_id=alice)
    reply = await _reply(emu)
    final = await wait_finish(emu, int(reply["id"]), timeout=60)
    (attachment,) = final["attachments"]
    limit = emu.limits.upload_limit
    assert attachment["filename"].endswith(".jpg") and attachment["size"] <= limit


async def test_without_permission_in_the_thread_the_file_goes_to_the_channel_saying_why(
    emu: DiscordEmulator, sim: MjProxySimulator, app: Application
) -> None:
    alice = emu.add_user("alice")
    await emu.slash_command("imagine", {"prompt": "a lighthouse"}, user_id=alice)
    reply = await _reply(emu)
    thread_id = int(reply["id"])
    await emu.wait_for(lambda: thread_of(emu, thread_id) is not None, timeout=10)
    emu.deny_permission(thread_id, "ATTACH_FILES")
    final = await wait_finish(emu, emu.channel_id)
    assert final["attachments"], "the file itself, not a link"
    assert "not allowed to post the image in this job's thread" in final["content"]
    assert "too large" not in final["content"] and "link" not in final["content"]
    assert finish_posts(emu, thread_id) == [] and len(finish_posts(emu, emu.channel_id)) == 1


async def test_a_link_only_when_no_file_can_be_uploaded_anywhere_and_size_is_not_blamed(
    emu: DiscordEmulator, sim: MjProxySimulator, app: Application
) -> None:
    emu.deny_permission(emu.channel_id, "ATTACH_FILES")  # the channel and its threads
    alice = emu.add_user("alice")
    await emu.slash_command("imagine", {"prompt": "a lighthouse"}, user_id=alice)
    reply = await _reply(emu)
    final = await wait_finish(emu, int(reply["id"]))
    assert not final["attachments"] and "here is a link" in final["content"]
    assert "not allowed to attach files" in final["content"]
    assert "too large" not in final["content"]
    await asyncio.sleep(0.5)
    assert len(finish_posts(emu, int(reply["id"]))) == 1
    assert finish_posts(emu, emu.channel_id) == []


async def test_a_discord_5xx_on_the_finish_post_is_retried_and_posts_once(
    emu: DiscordEmulator, sim: MjProxySimulator, app: Application
) -> None:
    # The first message the bot creates (the status message) gets a 502; discord.py retries it
    # while the job finishes, and the outcome must still land once, in the thread.
    emu.fail_next("POST", "/channels/{channel_id}/messages", 502, count=1)
    alice = emu.add_user("alice")
    await emu.slash_command("imagine", {"prompt": "a lighthouse"}, user_id=alice)
    reply = await _reply(emu)
    final = await wait_finish(emu, int(reply["id"]), timeout=30)
    assert final["attachments"]
    await asyncio.sleep(1.0)
    assert len(finish_posts(emu, int(reply["id"]))) == 1
    assert finish_posts(emu, emu.channel_id) == []
    status = emu.messages(int(reply["id"]))[0]
    await emu.wait_for(lambda: "Done" in emu.messages(int(reply["id"]))[0]["content"], timeout=5)
    assert status["id"] == emu.messages(int(reply["id"]))[0]["id"]
