"""Follow-up buttons, modals, /describe and /blend end to end through the emulator."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.app import Application
from bot.sandbox.discord import DiscordEmulator
from bot.sandbox.mjproxy import MjProxySimulator
from tests.e2e.conftest import Running
from tests.e2e.test_imagine import _reply, finish_posts, png, wait_finish


def button(message: dict[str, Any], label: str) -> str:
    for row in message["components"]:
        for component in row["components"]:
            if (
                component.get("label") == label
                or (component.get("emoji") or {}).get("name") == label
            ):
                return str(component["custom_id"])
    raise AssertionError(f"no button {label!r} in {message['components']}")


async def grid(
    emu: DiscordEmulator, user: int, prompt: str = "a lighthouse"
) -> tuple[int, dict[str, Any]]:
    await emu.slash_command("imagine", {"prompt": prompt}, user_id=user)
    reply = await _reply(emu)
    thread_id = int(reply["id"])
    return thread_id, await wait_finish(emu, thread_id)


async def next_finish(emu: DiscordEmulator, thread_id: int, count: int) -> dict[str, Any]:
    await emu.wait_for(lambda: len(finish_posts(emu, thread_id)) >= count, timeout=20)
    return finish_posts(emu, thread_id)[count - 1]


async def press(emu: DiscordEmulator, message: dict[str, Any], label: str, user: int) -> Any:
    return await emu.press_button(int(message["id"]), button(message, label), user_id=user)


@pytest.mark.parametrize("profile", ["aggregator", "upstream"], indirect=True)
async def test_grid_u2_zoom_out_v1_in_one_thread_across_a_restart(
    emu: DiscordEmulator, sim: MjProxySimulator, bots: Running
) -> None:
    first = await bots.start()
    alice = emu.add_user("alice")
    thread_id, result = await grid(emu, alice)

    await press(emu, result, "U2", alice)
    upscale = await next_finish(emu, thread_id, 2)
    assert "upscale 2 is ready" in upscale["content"] and upscale["attachments"]
    labels = [c.get("label") for row in upscale["components"] for c in row["components"]]
    assert "Zoom Out 2x" in labels and "Vary (Region)" not in labels

    await first.stop()  # buttons must keep working after a restart
    await bots.start()
    await press(emu, upscale, "Zoom Out 2x", alice)
    zoomed = await next_finish(emu, thread_id, 3)
    assert "zoom out 2x is ready" in zoomed["content"]

    await press(emu, zoomed, "V1", alice)
    varied = await next_finish(emu, thread_id, 4)
    assert "variation 1 is ready" in varied["content"]

    actions = [r.json["customId"] for r in sim.requests_to("/mj/submit/action")]
    assert actions[0].startswith("MJ::JOB::upsample::2::")
    assert actions[1].startswith("MJ::Outpaint::50::1::")
    assert actions[2].startswith("MJ::JOB::variation::1::")
    assert len(emu.threads()) == 1


async def test_only_the_requester_may_press(
    emu: DiscordEmulator, sim: MjProxySimulator, app: Application
) -> None:
    alice, bob = emu.add_user("alice"), emu.add_user("bob")
    _, result = await grid(emu, alice)
    inter = await press(emu, result, "U1", bob)
    await emu.wait_for(lambda: bool(inter.ephemeral_messages), timeout=10)
    assert "Only the member who asked" in inter.ephemeral_messages[0]["content"]
    assert sim.requests_to("/mj/submit/action") == []


async def test_a_moderator_may_press_for_a_member(
    emu: DiscordEmulator, sim: MjProxySimulator, app: Application
) -> None:
    alice = emu.add_user("alice")
    mod = emu.add_user("mod", permissions=0x20 | 0x800 | 0x400)  # Manage Server
    thread_id, result = await grid(emu, alice)
    await press(emu, result, "U3", mod)
    upscale = await next_finish(emu, thread_id, 2)
    assert f"<@{mod}>" in upscale["content"]


async def test_a_double_press_makes_one_job(
    emu: DiscordEmulator, sim: MjProxySimulator, app: Application
) -> None:
    alice = emu.add_user("alice")
    thread_id, result = await grid(emu, alice)
    first, second = await asyncio.gather(
        press(emu, result, "V2", alice), press(emu, result, "V2", alice)
    )
    await next_finish(emu, thread_id, 2)
    await asyncio.sleep(0.5)
    assert len(sim.requests_to("/mj/submit/action")) == 1
    notes = first.ephemeral_messages + second.ephemeral_messages
    assert len(notes) == 1 and "already under way" in notes[0]["content"]


@pytest.mark.parametrize("profile", ["aggregator", "upstream"], indirect=True)
async def test_custom_zoom_asks_for_the_prompt_in_a_modal(
    emu: DiscordEmulator, sim: MjProxySimulator, app: Application
) -> None:
    alice = emu.add_user("alice")
    thread_id, result = await grid(emu, alice, "a cat")
    await press(emu, result, "U1", alice)
    upscale = await next_finish(emu, thread_id, 2)
    opened = await press(emu, upscale, "Custom Zoom", alice)
    await emu.wait_for(lambda: opened.modal is not None, timeout=10)
    assert "--zoom" in str(opened.modal)
    await emu.submit_modal(opened, {"prompt": "a cat on a roof", "zoom": "1.8"}, user_id=alice)
    zoomed = await next_finish(emu, thread_id, 3)
    assert "custom zoom is ready" in zoomed["content"]
    (modal,) = sim.requests_to("/mj/submit/modal")
    assert modal.json["prompt"] == "a cat on a roof --zoom 1.8"


@pytest.mark.parametrize("profile", ["upstream"], indirect=True)
async def test_remix_waits_for_input_then_continues(
    emu: DiscordEmulator, sim: MjProxySimulator, app: Application
) -> None:
    alice = emu.add_user("alice")
    thread_id, result = await grid(emu, alice, "a dog")
    sim.faults.modal_actions = True
    await press(emu, result, "V3", alice)

    def waiting() -> dict[str, Any] | None:
        return next(
            (
                m
                for m in emu.messages(thread_id)
                if "Waiting for your input" in (m["content"] or "")
            ),
            None,
        )

    await emu.wait_for(lambda: waiting() is not None, timeout=10)
    status = waiting()
    assert status is not None
    opened = await press(emu, status, "Edit prompt and continue", alice)
    await emu.wait_for(lambda: opened.modal is not None, timeout=10)
    await emu.submit_modal(opened, {"prompt": "a dog in the rain"}, user_id=alice)
    varied = await next_finish(emu, thread_id, 2)
    assert "variation 3 is ready" in varied["content"]
    assert sim.requests_to("/mj/submit/modal")[0].json["prompt"] == "a dog in the rain"


async def test_describe_then_imagine_one_of_the_prompts(
    emu: DiscordEmulator, sim: MjProxySimulator, app: Application
) -> None:
    alice = emu.add_user("alice")
    image = emu.add_attachment("photo.png", png(), "image/png")
    await emu.slash_command("describe", {"image": image}, user_id=alice)
    reply = await _reply(emu)
    thread_id = int(reply["id"])
    described = await wait_finish(emu, thread_id)
    assert "here are prompts" in described["content"] and "**2.**" in described["content"]
    (describe,) = sim.requests_to("/mj/submit/describe")
    assert describe.json["base64"].startswith("data:image/png;base64,")

    await press(emu, described, "Imagine 2", alice)
    imagined = await next_finish(emu, thread_id, 2)
    assert imagined["attachments"]
    (submit,) = sim.requests_to("/mj/submit/imagine")
    second_line = described["content"].split("**2.** ")[1].split("\n")[0]
    assert submit.json["prompt"].replace("\\", "") == second_line.replace("\\", "")


@pytest.mark.parametrize("count", [2, 5])
async def test_blend_makes_a_grid_from_the_images(
    emu: DiscordEmulator, sim: MjProxySimulator, app: Application, count: int
) -> None:
    alice = emu.add_user("alice")
    options: dict[str, Any] = {"dimensions": "LANDSCAPE"}
    for i in range(1, count + 1):
        options[f"image{i}"] = emu.add_attachment(f"p{i}.png", png((i * 40, 10, 10)), "image/png")
    await emu.slash_command("blend", options, user_id=alice)
    reply = await _reply(emu)
    final = await wait_finish(emu, int(reply["id"]))
    assert final["attachments"]
    (blend,) = sim.requests_to("/mj/submit/blend")
    assert len(blend.json["base64Array"]) == count and blend.json["dimensions"] == "LANDSCAPE"


async def test_blend_of_one_image_is_refused_and_six_cannot_be_sent(
    emu: DiscordEmulator, sim: MjProxySimulator, app: Application
) -> None:
    alice = emu.add_user("alice")
    one = emu.add_attachment("p.png", png(), "image/png")
    inter = await emu.slash_command("blend", {"image1": one}, user_id=alice)
    await emu.wait_for(lambda: bool(inter.ephemeral_messages), timeout=10)
    assert "2 to 5 images" in inter.ephemeral_messages[0]["content"]
    assert sim.requests_to("/mj/submit/blend") == []
    # Discord only offers the options the bot synced: there is no sixth image slot.
    blend = next(c for c in emu.guild_commands if c["name"] == "blend")
    names = [o["name"] for o in blend["options"]]
    assert [n for n in names if n.startswith("image")] == [f"image{i}" for i in range(1, 6)]
