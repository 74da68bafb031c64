"""Refusals, notes and buttons in the right language, end to end (the real bot, the Discord
emulator, the API simulator).

What only one member sees (a crafted-input refusal, a refused attachment, "this button is not
yours") is in that member's client language; what the channel sees (an outage note, a time-out
in a finish post, the buttons under a result) is in the server's. Each sweep runs every locale
mjcord speaks against one bot, and spot-checks the words a native reader expects.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

from bot.core.jobs import Job
from bot.core.messages import Code, msg
from bot.discord_ui.i18n import LOCALES
from bot.discord_ui.i18n.render import option_name, render
from bot.sandbox.discord import DiscordEmulator
from bot.sandbox.mjproxy import MjProxySimulator
from tests.e2e import crafting as c
from tests.e2e.conftest import Running
from tests.e2e.test_followups import button, grid, next_finish, press
from tests.e2e.test_imagine import _reply, png, thread_of, wait_finish
from tests.e2e.test_tracking_outage import status_texts

EVERY_LOCALE = ("en-US", *LOCALES)

#: The crafted blank prompt, as a native reader of each spot-checked locale expects it.
BLANK_PROMPT = {
    "en-US": "`prompt` can't be empty.",
    "ja": "`プロンプト` は空にできません。",
    "de": "`prompt` darf nicht leer sein.",
    "ru": "`промпт` не может быть пустым.",
}
#: A text file attached as image1.
NOT_AN_IMAGE = {
    "en-US": "image1: `notes.pdf` is not a PNG, JPEG, WebP or GIF image.",
    "ja": "画像1: `notes.pdf` は PNG、JPEG、WebP、GIF 画像ではありません。",
    "de": "bild1: `notes.pdf` ist kein PNG-, JPEG-, WebP- oder GIF-Bild.",
    "ru": "изображение1: `notes.pdf` — не изображение PNG, JPEG, WebP или GIF.",
}


async def _private(emu: DiscordEmulator, record: Any, what: str) -> dict[str, Any]:
    """The one ephemeral sentence the member got."""
    await emu.wait_for(lambda: bool(record.ephemeral_messages), timeout=15, what=what)
    (said,) = record.ephemeral_messages
    assert said["flags"] & 64, f"{what}: not ephemeral"
    return dict(said)


async def test_a_crafted_input_is_refused_in_each_members_language(
    emu: DiscordEmulator, bots: Running
) -> None:
    emu.guild_locales[emu.guild_id] = "fr"  # the server's language must not leak into these
    await bots.start()
    for locale in EVERY_LOCALE:
        member = emu.add_user(f"member-{locale}")
        emu.user_locales[member] = locale
        payload = c.command(emu, "imagine", {"prompt": "a lighthouse"}, user_id=member)
        record = await c.send(emu, c.set_value(payload, "prompt", " \u200b "))
        said = await _private(emu, record, f"{locale}: the refusal")
        expected = BLANK_PROMPT.get(locale)
        if expected is None:  # not spot-checked: the catalogue's sentence, not the English
            name = Code(option_name("prompt", locale))
            expected = render(msg("{name} can't be empty.", name=name), locale)
            assert expected != BLANK_PROMPT["en-US"], locale
        assert said["content"] == expected, locale


async def test_a_refused_attachment_is_explained_in_each_members_language(
    emu: DiscordEmulator, sim: MjProxySimulator, bots: Running
) -> None:
    await bots.start()
    for locale in EVERY_LOCALE:
        member = emu.add_user(f"member-{locale}")
        emu.user_locales[member] = locale
        pdf = emu.add_attachment("notes.pdf", b"%PDF-1.7\n" + b"x" * 200, "application/pdf")
        record = await emu.slash_command(
            "imagine", {"prompt": "a lighthouse", "image1": pdf}, user_id=member
        )
        said = await _private(emu, record, f"{locale}: the refusal")
        if locale in NOT_AN_IMAGE:
            assert said["content"] == NOT_AN_IMAGE[locale], locale
        else:
            assert "`notes.pdf`" in said["content"] and "PNG" in said["content"], locale
            assert "is not a PNG" not in said["content"], locale
    assert not sim.requests_to("/mj/submit/imagine")  # nothing was sent to the image API


async def test_the_outage_note_is_in_the_servers_language(
    emu: DiscordEmulator, sim: MjProxySimulator, bots: Running
) -> None:
    emu.guild_locales[emu.guild_id] = "de"
    app = await bots.start()
    assert app.tracker is not None and app.storage is not None
    app.tracker.outage_notice_after = timedelta(seconds=1)
    sim.faults.never_finish = True
    alice = emu.add_user("alice")
    emu.user_locales[alice] = "ja"  # the note is public: her language does not matter
    await emu.slash_command("imagine", {"prompt": "ein Leuchtturm"}, user_id=alice)

    jobs: list[Job] = []
    deadline = time.monotonic() + 20
    while not jobs:
        assert time.monotonic() < deadline, "the job never got its status message"
        jobs = [j for j in await app.storage.jobs.unfinished() if j.route.status_message_id]
        await asyncio.sleep(0.2)
    (job,) = jobs
    sim.faults.http_status = 503
    await emu.wait_for(
        lambda: any("Der Bilddienst antwortet seit" in t for t in status_texts(emu, job)),
        timeout=20,
        what="the outage note, in German",
    )
    noted = next(t for t in status_texts(emu, job) if "Der Bilddienst antwortet seit" in t)
    assert "<t:" in noted and "has not answered" not in noted
    sim.faults.http_status = None


async def test_a_time_out_is_posted_in_the_servers_language_with_its_plural(
    emu: DiscordEmulator, sim: MjProxySimulator, bots: Running
) -> None:
    emu.guild_locales[emu.guild_id] = "ru"
    sim.faults.never_finish = True
    await bots.start(MJ_TASK_TIMEOUT="0.05")  # 3 seconds
    alice = emu.add_user("alice")
    await emu.slash_command("imagine", {"prompt": "маяк"}, user_id=alice)
    reply = await _reply(emu)
    final = await wait_finish(emu, int(reply["id"]), timeout=15)
    # Russian's "few" form: 3 секунды (1 секунду, 5 секунд).
    assert "Сервис изображений не завершил это задание за 3 секунды." in final["content"]
    assert f"<@{alice}>" in final["content"]


def _labels(message: dict[str, Any]) -> list[str]:
    return [str(b.get("label")) for row in message["components"] for b in row["components"]]


async def test_buttons_speak_the_server_and_their_refusal_the_member(
    emu: DiscordEmulator, bots: Running
) -> None:
    emu.guild_locales[emu.guild_id] = "fr"
    await bots.start()
    alice, akiko = emu.add_user("alice"), emu.add_user("akiko")
    emu.user_locales[alice] = "de"
    emu.user_locales[akiko] = "ja"
    thread_id, result = await grid(emu, alice, "un phare")
    labels = _labels(result)
    assert {"U1", "U2", "V1", "V4", "Signaler"} <= set(labels), labels  # U/V stay as they are
    assert "Report" not in labels

    await press(emu, result, "U2", alice)
    upscale = await next_finish(emu, thread_id, 2)
    labels = _labels(upscale)
    assert {"Varier (fort)", "Varier (subtil)", "Dézoomer 2x", "Signaler"} <= set(labels), labels
    assert not {"Vary (Strong)", "Zoom Out 2x"} & set(labels)
    assert "est prêt" in upscale["content"]  # the finish post is French too

    # Akiko presses Alice's button: she alone is told, in Japanese.
    record = await emu.press_button(
        int(upscale["id"]), button(upscale, "Dézoomer 2x"), user_id=akiko
    )
    said = await _private(emu, record, "the refusal of someone else's button")
    assert said["content"] == "この画像のボタンは、リクエストしたメンバーだけが使えます。"

    # The translated button works like Midjourney's own.
    await press(emu, upscale, "Dézoomer 2x", alice)
    zoomed = await next_finish(emu, thread_id, 3)
    assert "Dézoomer 2x" in zoomed["content"]


async def test_a_blend_is_titled_in_the_servers_language(
    emu: DiscordEmulator, sim: MjProxySimulator, bots: Running
) -> None:
    emu.guild_locales[emu.guild_id] = "ja"
    await bots.start()
    alice = emu.add_user("alice")
    options: dict[str, Any] = {
        f"image{i}": emu.add_attachment(f"{i}.png", png((40 * i, 20, 20)), "image/png")
        for i in (1, 2, 3)
    }
    await emu.slash_command("blend", {**options, "dimensions": "LANDSCAPE"}, user_id=alice)
    reply = await _reply(emu)
    assert "3 枚の画像のブレンド（横長）" in reply["content"]
    await emu.wait_for(lambda: thread_of(emu, int(reply["id"])) is not None, timeout=10)
    thread = thread_of(emu, int(reply["id"]))
    assert thread is not None and thread["name"] == "3 枚の画像のブレンド（横長）"
    await wait_finish(emu, int(reply["id"]))


async def test_a_crafted_choice_is_refused_with_the_choices_the_member_was_shown(
    emu: DiscordEmulator, bots: Running
) -> None:
    await bots.start()
    akiko = emu.add_user("akiko")
    emu.user_locales[akiko] = "ja"
    image = emu.add_attachment("1.png", png(), "image/png")
    payload = c.command(emu, "blend", {"image1": image}, user_id=akiko)
    record = await c.send(emu, c.set_value(payload, "dimensions", "CIRCLE"))
    said = await _private(emu, record, "the refusal")
    assert said["content"] == (
        "`縦横比` は次のいずれかにしてください: 縦長 (2:3), 正方形 (1:1), 横長 (3:2)。"
    )
