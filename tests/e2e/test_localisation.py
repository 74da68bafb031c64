"""The commands Discord receives carry their localisations: each member's client shows them in
its own language (descriptions, option and choice names; command names stay Midjourney's)."""

from __future__ import annotations

from typing import Any

from bot.app import Application
from bot.discord_ui.i18n import LOCALES
from bot.sandbox.discord import DiscordEmulator


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
