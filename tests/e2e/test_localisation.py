"""The commands Discord receives carry their localisations: each member's client shows them in
its own language (descriptions, option and choice names; command names stay Midjourney's)."""

from __future__ import annotations

from typing import Any

import pytest

from bot.app import Application
from bot.discord_ui.i18n import LOCALES
from bot.sandbox.discord import DiscordEmulator
from bot.sandbox.mjproxy import MjProxySimulator
from tests.e2e.conftest import Running
from tests.e2e.test_imagine import _reply, wait_finish


def _synced(emu: DiscordEmulator, name: str) -> dict[str, Any]:
    commands = emu.guild_commands or emu.global_commands
    return next(c for c in commands if c["name"] == name)


async def test_synced_commands_carry_localised_descriptions_and_option_names(
    emu: DiscordEmulator, app: Application
) -> None:
    imagine = _synced(emu, "imagine")
    assert set(imagine["description_localizations"]) == set(LOCALES)
    assert imagine["description_localizations"]["ja"].startswith("Midjourney または Niji")
    prompt = next(o for o in imagine["options"] if o["name"] == "prompt")
    assert prompt["name_localizations"]["ja"] == "プロンプト"
    assert prompt["name_localizations"]["ko"] == "프롬프트"
    assert prompt["description_localizations"]["de"].startswith("Was gezeichnet werden soll")
    mode = next(o for o in imagine["options"] if o["name"] == "mode")
    assert mode["name_localizations"]["zh-CN"] == "模式"
    # Command names are not localised on purpose (see bot/discord_ui/i18n/translator.py).
    assert not imagine.get("name_localizations")


async def test_subcommands_of_mod_are_localised_too(emu: DiscordEmulator, app: Application) -> None:
    mod = _synced(emu, "mod")
    assert mod["description_localizations"]["fr"] == "Modérez la génération d'images sur ce serveur"
    ban = next(o for o in mod["options"] if o["name"] == "ban")
    member = next(o for o in ban["options"] if o["name"] == "member")
    assert member["name_localizations"]["ru"] == "участник"
    assert ban["description_localizations"]["pt-BR"].startswith("Proíba um membro")


# (server and member locale, what the public reply, the status message, the finish post and a
# refusal say there)
LOCALISED = {
    "ja": (
        "モード: Midjourney · リクエスト:",
        "✅ 完了",
        "画像ができました。",
        "キューが現在いっぱいです",
    ),
    "de": (
        "Modus: Midjourney · angefragt von",
        "✅ Fertig",
        "dein Bild ist fertig.",
        "ist gerade voll",
    ),
    "pt-BR": (
        "Modo: Midjourney · pedido por",
        "✅ Pronto",
        "sua imagem está pronta.",
        "está cheia agora",
    ),
}


@pytest.mark.parametrize("locale", sorted(LOCALISED))
async def test_a_member_sees_mjcord_in_their_language_from_imagine_to_the_image(
    emu: DiscordEmulator, sim: MjProxySimulator, bots: Running, locale: str
) -> None:
    reply_words, done_words, finish_words, refusal_words = LOCALISED[locale]
    emu.guild_locales[emu.guild_id] = locale
    alice = emu.add_user("alice")
    emu.user_locales[alice] = locale
    await bots.start()
    await emu.slash_command("imagine", {"prompt": "a lighthouse at dusk"}, user_id=alice)
    reply = await _reply(emu)
    assert reply_words in reply["content"]
    assert "a lighthouse at dusk" in reply["content"]  # the prompt is never translated
    thread = int(reply["id"])
    final = await wait_finish(emu, thread)
    assert finish_words in final["content"]
    status = emu.messages(thread)[0]
    await emu.wait_for(
        lambda: done_words in (emu.message(int(status["id"])) or {}).get("content", "")
    )
    sim.faults.queue_full = True
    inter = await emu.slash_command("imagine", {"prompt": "another"}, user_id=alice)
    await emu.wait_for(lambda: bool(inter.ephemeral_messages), timeout=15)
    assert refusal_words in inter.ephemeral_messages[0]["content"]


async def test_public_text_follows_the_server_and_private_text_the_member(
    emu: DiscordEmulator, sim: MjProxySimulator, bots: Running
) -> None:
    emu.guild_locales[emu.guild_id] = "fr"
    akiko = emu.add_user("akiko")
    emu.user_locales[akiko] = "ja"
    await bots.start()
    await emu.slash_command("imagine", {"prompt": "un phare"}, user_id=akiko)
    reply = await _reply(emu)
    assert "Mode : Midjourney · demandé par" in reply["content"]  # the channel reads French
    await wait_finish(emu, int(reply["id"]))
    sim.faults.queue_full = True
    inter = await emu.slash_command("imagine", {"prompt": "encore"}, user_id=akiko)
    await emu.wait_for(lambda: bool(inter.ephemeral_messages), timeout=15)
    assert "画像サービスのキューが現在いっぱいです" in inter.ephemeral_messages[0]["content"]
