"""discord.py's own errors reach members as sentences, never as "something went wrong"."""

from __future__ import annotations

from typing import Any

import discord
import pytest
from discord import app_commands

from bot.core.messages import Code, msg
from bot.discord_ui.tree import SERVER_ONLY, member_sentence
from bot.discord_ui.validation import InvalidInput


class _Response:
    status, reason = 404, "Not Found"


class _Transformer(app_commands.Transformer[Any]):
    async def transform(self, interaction: discord.Interaction[Any], value: Any) -> Any:
        return value


CASES: list[tuple[BaseException, str]] = [
    (
        InvalidInput(msg("{name} can't be empty.", name=Code("prompt"))),
        r"^`prompt` can't be empty\.$",
    ),
    (app_commands.NoPrivateMessage(), "^" + SERVER_ONLY.text),
    (
        app_commands.TransformerError("x", discord.AppCommandOptionType.user, _Transformer()),
        r"^An option has a value I can't use",
    ),
    (app_commands.MissingPermissions(["manage_guild"]), r"^You don't have the permission"),
    (app_commands.BotMissingPermissions(["attach_files"]), r"^I need the attach files permission"),
    (app_commands.CommandNotFound("nuke", []), r"no longer available"),
    (app_commands.CheckFailure(), r"^You can't use this command here\.$"),
    (discord.NotFound(_Response(), {"code": 10008, "message": "Unknown Message"}), r"is gone"),  # type: ignore[arg-type]
    (discord.Forbidden(_Response(), {"code": 50013, "message": "Missing"}), r"did not let me"),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(("error", "sentence"), CASES, ids=[type(e).__name__ for e, _ in CASES])
def test_library_errors_have_their_own_sentence(error: BaseException, sentence: str) -> None:
    import re

    said = member_sentence(error)
    assert re.search(sentence, said), said
    assert "went wrong" not in said


def test_anything_else_gets_a_reference() -> None:
    assert "ref " in member_sentence(RuntimeError("boom"))
