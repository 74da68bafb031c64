"""The Discord emulator driven by the real discord.py client over loopback.

Each test starts its own emulator on a free port and its own ``commands.Bot`` (pitfalls 6 and 7
of docs/discord-emulation.md), and ends by asserting that the bot hit no unknown route and that
neither side broke Discord's OpenAPI spec (when the spec is present).
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands

from bot.sandbox.discord import DiscordEmulator, OpenApiValidator, load_spec_validator
from tests.integration.discord_helpers import (
    errors_recorder,
    new_bot,
    png_bytes,
    running_bot,
    spec_state,
    sync_on_setup,
)

RESULT_PNG = png_bytes(8, 6, (10, 120, 240))
MODES = [
    app_commands.Choice(name="Midjourney", value="MID_JOURNEY"),
    app_commands.Choice(name="Niji", value="NIJI_JOURNEY"),
]


@pytest.fixture
async def emu(spec_validator: OpenApiValidator | None) -> AsyncIterator[DiscordEmulator]:
    emulator = DiscordEmulator(spec_validator)
    await emulator.start()
    yield emulator
    await emulator.stop()


@pytest.fixture
async def make_emu(
    spec_validator: OpenApiValidator | None,
) -> AsyncIterator[Callable[..., Awaitable[DiscordEmulator]]]:
    """An emulator with non-default limits (deadline, TTL, upload limit)."""
    started: list[DiscordEmulator] = []

    async def factory(**kwargs: Any) -> DiscordEmulator:
        emulator = DiscordEmulator(spec_validator, **kwargs)
        await emulator.start()
        started.append(emulator)
        return emulator

    yield factory
    for emulator in started:
        await emulator.stop()


class Upscale(discord.ui.View):
    def __init__(self) -> None:
        super().__init__(timeout=None)

    @discord.ui.button(
        label="U1", custom_id="upscale:task-123:1", style=discord.ButtonStyle.secondary
    )
    async def u1(self, interaction: discord.Interaction, button: discord.ui.Button[Any]) -> None:
        button.disabled = True
        await interaction.response.edit_message(content="Upscaling U1…", view=self)


def imagine_bot(
    outcome: dict[str, Any], *, ephemeral: bool = False, guild: int | None = None
) -> commands.Bot:
    """A small /imagine: thinking defer, followup, thread from original_response(), a file."""
    bot = new_bot()

    @app_commands.command(name="imagine", description="Generate an image")
    @app_commands.describe(prompt="What to draw", mode="Model", image1="Reference image")
    @app_commands.choices(mode=MODES)
    async def imagine(
        interaction: discord.Interaction,
        prompt: str,
        mode: app_commands.Choice[str] | None = None,
        image1: discord.Attachment | None = None,
    ) -> None:
        await interaction.response.defer(thinking=True, ephemeral=ephemeral)
        if image1 is not None:
            outcome["reference"] = await image1.read()
        chosen = mode.value if mode else "MID_JOURNEY"
        outcome["followup"] = await interaction.followup.send(
            f"**{prompt}** ({chosen}) for {interaction.user.mention}",
            allowed_mentions=discord.AllowedMentions(
                everyone=False, roles=False, users=[interaction.user]
            ),
            wait=True,
        )
        if ephemeral:
            return
        message = await interaction.original_response()
        try:
            thread = await message.create_thread(name=prompt[:100])
        except discord.HTTPException as exc:
            outcome["thread_error"] = exc
            await interaction.channel.send("I could not open a thread; carrying on here.")  # type: ignore[union-attr]
            return
        outcome["thread"] = thread
        await thread.send("Task ID: `task-123`")
        embed = discord.Embed(title=prompt).set_image(url="attachment://result.png")
        outcome["result"] = await thread.send(
            f"Done {interaction.user.mention}",
            file=discord.File(io.BytesIO(RESULT_PNG), filename="result.png"),
            embed=embed,
            view=Upscale(),
            allowed_mentions=discord.AllowedMentions(
                everyone=False, roles=False, users=[interaction.user]
            ),
        )

    bot.tree.add_command(imagine)
    sync_on_setup(bot, guild=guild)
    return bot


# -- the /imagine flow --------------------------------------------------------------------------


async def test_imagine_flow_end_to_end(
    emu: DiscordEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    outcome: dict[str, Any] = {}
    bot = imagine_bot(outcome)
    errors = errors_recorder(bot)
    alice = emu.add_user("alice")
    ref = emu.add_attachment("cat.png", png_bytes(), "image/png")
    async with running_bot(emu, bot, monkeypatch) as run:
        assert [c["name"] for c in emu.global_commands] == ["imagine"]
        inter = await emu.slash_command(
            "imagine",
            {"prompt": "a cat @everyone", "mode": "NIJI_JOURNEY", "image1": ref},
            user_id=alice,
        )
        await run.wait(lambda: "result" in outcome or bool(errors), what="result posted")
        assert errors == []

        # Acknowledged in time, with a thinking defer.
        assert inter.acked_at is not None and inter.acked_at - inter.dispatched_at < 3.0
        assert [c["type"] for c in inter.callbacks] == [5]
        assert outcome["reference"] == png_bytes()

        # The first followup replaced the loading message: same id, LOADING cleared.
        original = emu.message(inter.original_message_id)  # type: ignore[arg-type]
        assert original is not None
        assert outcome["followup"].id == int(original["id"])
        assert original["flags"] & 128 == 0
        assert original["content"] == f"**a cat @everyone** (NIJI_JOURNEY) for <@{alice}>"
        # allowed_mentions honoured: @everyone in the prompt pings nobody, the requester is pinged.
        assert original["mention_everyone"] is False
        assert [u["id"] for u in original["mentions"]] == [str(alice)]

        # Thread id == message id; THREAD_CREATED system message in the parent.
        thread = outcome["thread"]
        assert thread.id == int(original["id"])
        assert bot.get_channel(thread.id) is not None
        stored_thread = emu.channel(thread.id)
        assert stored_thread is not None and stored_thread["type"] == 11
        assert stored_thread["message_count"] == 2
        general = emu.messages(emu.channel_id)
        assert [m["type"] for m in general] == [20, 18]
        assert general[1]["message_reference"]["channel_id"] == str(thread.id)
        assert general[0]["thread"]["id"] == str(thread.id)

        # The result file is served from the CDN with the right bytes; attachment:// rewritten.
        in_thread = emu.messages(thread.id)
        assert [m["content"] for m in in_thread] == ["Task ID: `task-123`", f"Done <@{alice}>"]
        result = in_thread[1]
        att = result["attachments"][0]
        assert (att["filename"], att["size"], att["width"], att["height"]) == (
            "result.png",
            len(RESULT_PNG),
            8,
            6,
        )
        assert emu.cdn_bytes(att["url"]) == RESULT_PNG
        assert result["embeds"][0]["image"]["url"] == att["url"]
        async with aiohttp.ClientSession() as http, http.get(att["url"]) as resp:
            assert resp.status == 200 and await resp.read() == RESULT_PNG
        assert await outcome["result"].attachments[0].read() == RESULT_PNG
        # Every component carries an id, as Discord returns them.
        row = result["components"][0]
        assert row["id"] == 1 and row["components"][0]["id"] == 2
    assert spec_state(emu) == {"unhandled": [], "violations": []}


async def test_button_press_edits_the_message(
    emu: DiscordEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    outcome: dict[str, Any] = {}
    bot = imagine_bot(outcome, guild=emu.guild_id)
    errors = errors_recorder(bot)
    alice = emu.add_user("alice")
    async with running_bot(emu, bot, monkeypatch) as run:
        # A guild-synced command is dispatched with data.guild_id (discord.py looks there).
        assert emu.global_commands == [] and [c["name"] for c in emu.guild_commands] == ["imagine"]
        await emu.slash_command("imagine", {"prompt": "a dog"}, user_id=alice)
        await run.wait(lambda: "result" in outcome or bool(errors), what="result posted")
        result_id = outcome["result"].id
        press = await emu.press_button(result_id, "upscale:task-123:1", user_id=alice)
        await run.wait(lambda: press.acked_at is not None, what="button acknowledged")
        assert [c["type"] for c in press.callbacks] == [7]
        message = emu.message(result_id)
        assert message is not None and message["content"] == "Upscaling U1…"
        assert message["components"][0]["components"][0]["disabled"] is True
        with pytest.raises(ValueError, match="disabled"):
            await emu.press_button(result_id, "upscale:task-123:1", user_id=alice)
        assert errors == []
    assert spec_state(emu) == {"unhandled": [], "violations": []}


# -- a scriptable bot for the Discord rules ----------------------------------------------------

Behaviour = Callable[[discord.Interaction], Awaitable[None]]


def probe_bot(behaviour: Behaviour) -> tuple[commands.Bot, list[BaseException]]:
    bot = new_bot()

    @app_commands.command(name="probe", description="Run the test's behaviour")
    async def probe(interaction: discord.Interaction) -> None:
        await behaviour(interaction)

    bot.tree.add_command(probe)
    sync_on_setup(bot)
    return bot, errors_recorder(bot)


async def test_late_first_response_gets_10062(
    make_emu: Callable[..., Awaitable[DiscordEmulator]], monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = await make_emu(interaction_deadline=0.2)

    async def slow(interaction: discord.Interaction) -> None:
        await asyncio.sleep(0.3)
        await interaction.response.defer(thinking=True)

    bot, errors = probe_bot(slow)
    alice = emu.add_user("alice")
    async with running_bot(emu, bot, monkeypatch) as run:
        inter = await emu.slash_command("probe", user_id=alice)
        await run.wait(lambda: bool(errors), what="bot saw an error")
        assert isinstance(errors[0], discord.NotFound) and errors[0].code == 10062
        assert inter.acked_at is None and inter.callbacks == []
    assert spec_state(emu) == {"unhandled": [], "violations": []}


async def test_second_ack_gets_40060_and_ephemeral_stays_private(
    emu: DiscordEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def reply(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("only you can see this", ephemeral=True)

    bot, errors = probe_bot(reply)
    alice = emu.add_user("alice")
    async with running_bot(emu, bot, monkeypatch) as run:
        inter = await emu.slash_command("probe", user_id=alice)
        await run.wait(lambda: inter.acked_at is not None, what="acknowledged")
        url = f"{emu.api_base_url}/interactions/{inter.id}/{inter.token}/callback"
        async with aiohttp.ClientSession() as http, http.post(url, json={"type": 5}) as resp:
            assert resp.status == 400
            assert await resp.json() == {
                "message": "Interaction has already been acknowledged.",
                "code": 40060,
            }
        assert [m["content"] for m in inter.ephemeral_messages] == ["only you can see this"]
        assert emu.messages(emu.channel_id) == []
        assert len(emu.messages(emu.channel_id, include_ephemeral=True)) == 1
        assert not [e for e, _ in emu.events if e == "MESSAGE_CREATE"]
        assert errors == []
    assert spec_state(emu) == {"unhandled": [], "violations": []}


async def test_followups_after_defer_follow_discord_rules(
    emu: DiscordEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    async def flow(interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True, ephemeral=True)
        # The ephemeral flag of the first followup is ignored: it *is* the deferred reply.
        seen["first"] = await interaction.followup.send("first", ephemeral=False, wait=True)
        seen["second"] = await interaction.followup.send("second", wait=True)
        await interaction.delete_original_response()
        seen["third"] = await interaction.followup.send("third", ephemeral=True, wait=True)

    bot, errors = probe_bot(flow)
    alice = emu.add_user("alice")
    async with running_bot(emu, bot, monkeypatch) as run:
        inter = await emu.slash_command("probe", user_id=alice)
        await run.wait(lambda: "third" in seen or bool(errors), what="three followups")
        assert errors == []
        assert seen["first"].id == inter.original_message_id
        assert [m["content"] for m in inter.ephemeral_messages] == ["third"]
        public = emu.messages(emu.channel_id)
        assert [m["content"] for m in public] == ["second"]
        assert seen["second"].id not in (seen["first"].id, seen["third"].id)
    assert spec_state(emu) == {"unhandled": [], "violations": []}


async def test_expired_token_rejects_followups(
    make_emu: Callable[..., Awaitable[DiscordEmulator]], monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = await make_emu(token_ttl=0.3)

    async def late(interaction: discord.Interaction) -> None:
        await interaction.response.defer()
        await asyncio.sleep(0.4)
        await interaction.followup.send("too late")

    bot, errors = probe_bot(late)
    alice = emu.add_user("alice")
    async with running_bot(emu, bot, monkeypatch) as run:
        await emu.slash_command("probe", user_id=alice)
        await run.wait(lambda: bool(errors), what="bot saw an error")
        assert isinstance(errors[0], discord.HTTPException) and errors[0].code == 50027
    assert spec_state(emu) == {"unhandled": [], "violations": []}


async def test_thread_rules(emu: DiscordEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    async def flow(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("starter")
        starter = await interaction.original_response()
        thread = await starter.create_thread(name="job")
        try:
            await starter.create_thread(name="again")
        except discord.HTTPException as exc:
            seen["again"] = exc
        inner = await thread.send("inside")
        try:
            await inner.create_thread(name="nested")
        except discord.HTTPException as exc:
            seen["nested"] = exc

    bot, errors = probe_bot(flow)
    alice = emu.add_user("alice")
    async with running_bot(emu, bot, monkeypatch) as run:
        await emu.slash_command("probe", user_id=alice)
        await run.wait(lambda: "nested" in seen or bool(errors), what="thread errors")
        assert errors == []
        assert (seen["again"].status, seen["again"].code) == (400, 160004)
        assert (seen["nested"].status, seen["nested"].code) == (400, 50024)
        assert len(emu.threads()) == 1
    assert spec_state(emu) == {"unhandled": [], "violations": []}


async def test_denied_permission_is_50013(
    emu: DiscordEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    outcome: dict[str, Any] = {}
    bot = imagine_bot(outcome)
    errors = errors_recorder(bot)
    alice = emu.add_user("alice")
    emu.deny_permission(emu.channel_id, "CREATE_PUBLIC_THREADS")
    async with running_bot(emu, bot, monkeypatch) as run:
        channel = bot.get_channel(emu.channel_id)
        assert isinstance(channel, discord.TextChannel)
        # The overwrite reached the client too, so discord.py's own permission view agrees.
        assert not channel.permissions_for(channel.guild.me).create_public_threads
        await emu.slash_command("imagine", {"prompt": "a fox"}, user_id=alice)
        await run.wait(lambda: "thread_error" in outcome or bool(errors), what="thread refused")
        await run.wait(lambda: len(emu.messages(emu.channel_id)) == 2, what="fallback note")
        error = outcome["thread_error"]
        assert isinstance(error, discord.Forbidden) and error.code == 50013
        assert emu.threads() == []
        assert emu.messages(emu.channel_id)[-1]["content"].startswith("I could not open a thread")
    assert spec_state(emu) == {"unhandled": [], "violations": []}


async def test_channel_messages_nonce_mentions_and_faults(
    emu: DiscordEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = emu.add_user("alice")
    role = emu.add_role("artists", 0, mentionable=True)
    scratch = emu.add_channel("scratch")
    async with running_bot(emu, new_bot(), monkeypatch) as run:
        channel = run.bot.get_channel(emu.channel_id)
        assert isinstance(channel, discord.TextChannel)

        # Nonce + enforce_nonce: a retried send returns the existing message.
        first = await channel.send("exactly once", nonce=424242)
        again = await channel.send("exactly once", nonce=424242)
        assert again.id == first.id and str(first.nonce) == "424242"
        assert [m["content"] for m in emu.messages(emu.channel_id)] == ["exactly once"]
        history = [m async for m in channel.history(limit=5)]
        assert [m.id for m in history] == [first.id] and history[0].nonce is None

        # allowed_mentions decides who is pinged.
        text = f"@everyone <@{alice}> <@&{role}>"
        pinged = await channel.send(text)
        quiet = await channel.send(text, allowed_mentions=discord.AllowedMentions.none())
        loud, silent = emu.message(pinged.id), emu.message(quiet.id)
        assert loud is not None and silent is not None
        assert (
            loud["mention_everyone"],
            [u["id"] for u in loud["mentions"]],
            loud["mention_roles"],
        ) == (
            True,
            [str(alice)],
            [str(role)],
        )
        assert (silent["mention_everyone"], silent["mentions"], silent["mention_roles"]) == (
            False,
            [],
            [],
        )

        # A 429 is retried by discord.py (Retry-After, retry_after, global, Via as Discord sends).
        with pytest.raises(ValueError, match="no route"):
            emu.fail_next("POST", "/channels/{id}/messages", 500)
        emu.fail_next("POST", "/channels/{channel_id}/messages", 429, retry_after=0.05)
        await channel.send("after a rate limit")
        statuses = [r.status for r in emu.requests if r.route == "/channels/{channel_id}/messages"]
        assert statuses[-2:] == [429, 200]

        # Over the upload limit → 413 / 40005.
        big = discord.File(io.BytesIO(b"x" * (emu.limits.upload_limit + 1)), filename="big.bin")
        with pytest.raises(discord.HTTPException) as too_big:
            await channel.send(file=big)
        assert (too_big.value.status, too_big.value.code) == (413, 40005)

        # A deleted channel is gone from the client cache and answers 10003.
        other = run.bot.get_channel(scratch)
        assert isinstance(other, discord.TextChannel)
        await other.send("before")
        await emu.delete_channel(scratch)
        await run.wait(lambda: run.bot.get_channel(scratch) is None, what="CHANNEL_DELETE seen")
        with pytest.raises(discord.NotFound) as gone:
            await other.send("after")
        assert gone.value.code == 10003
    assert spec_state(emu) == {"unhandled": [], "violations": []}


async def test_gateway_drop_reconnects_and_keeps_working(
    emu: DiscordEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def reply(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("pong")

    bot, errors = probe_bot(reply)
    alice = emu.add_user("alice")
    async with running_bot(emu, bot, monkeypatch) as run:
        await emu.drop_gateway()
        await run.wait(
            lambda: emu.gateway_connected and emu.resume_attempts == 1,
            what="RESUME after the drop",
        )
        assert len(emu.identify_payloads) == 1  # resumed: no second IDENTIFY
        inter = await emu.slash_command("probe", user_id=alice)
        await run.wait(lambda: inter.acked_at is not None, what="acknowledged after reconnect")
        assert errors == []
    assert spec_state(emu) == {"unhandled": [], "violations": []}


async def test_modal_submit_reaches_the_modal(
    emu: DiscordEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, str] = {}

    class Zoom(discord.ui.Modal, title="Custom zoom"):
        zoom: discord.ui.TextInput[Any] = discord.ui.TextInput(label="Zoom", custom_id="zoom")

        async def on_submit(self, interaction: discord.Interaction) -> None:
            seen["zoom"] = self.zoom.value
            await interaction.response.send_message("zooming", ephemeral=True)

    async def open_modal(interaction: discord.Interaction) -> None:
        await interaction.response.send_modal(Zoom())

    bot, errors = probe_bot(open_modal)
    alice = emu.add_user("alice")
    async with running_bot(emu, bot, monkeypatch) as run:
        inter = await emu.slash_command("probe", user_id=alice)
        await run.wait(lambda: inter.acked_at is not None, what="modal opened")
        assert inter.callbacks[0]["type"] == 9
        submitted = await emu.submit_modal(inter, {"zoom": "1.5"})
        await run.wait(lambda: submitted.acked_at is not None, what="modal answered")
        assert seen == {"zoom": "1.5"} and errors == []
    assert spec_state(emu) == {"unhandled": [], "violations": []}


# -- the emulator's own contract ----------------------------------------------------------------


async def test_slash_command_requires_the_synced_schema(
    emu: DiscordEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    outcome: dict[str, Any] = {}
    bot = imagine_bot(outcome)
    bot.setup_hook = commands.Bot.setup_hook.__get__(bot)  # type: ignore[method-assign]  # no sync
    alice = emu.add_user("alice")
    async with running_bot(emu, bot, monkeypatch):
        with pytest.raises(LookupError, match="never synced"):
            await emu.slash_command("imagine", {"prompt": "x"}, user_id=alice)
    sync_bot = imagine_bot(outcome)
    async with running_bot(emu, sync_bot, monkeypatch):
        with pytest.raises(ValueError, match="not one of"):
            await emu.slash_command("imagine", {"prompt": "x", "mode": "DALL_E"}, user_id=alice)
        with pytest.raises(ValueError, match="required"):
            await emu.slash_command("imagine", {"mode": "NIJI_JOURNEY"}, user_id=alice)


async def test_raw_rest_contract(emu: DiscordEmulator) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{emu.api_base_url}/users/@me") as resp:
            assert resp.status == 401
        headers = {"Authorization": f"Bot {emu.token}"}
        async with http.get(f"{emu.api_base_url}/users/@me", headers=headers) as resp:
            # discord.py parses JSON only for exactly this header value.
            assert resp.headers["Content-Type"] == "application/json"
            assert (await resp.json())["id"] == str(emu.bot_user_id)
        async with http.get(
            f"{emu.api_base_url}/guilds/{emu.guild_id}/bans", headers=headers
        ) as resp:
            assert resp.status == 404
    assert [(r.method, r.route) for r in emu.unhandled] == [("GET", None)]
    assert emu.unhandled[0].path == f"/guilds/{emu.guild_id}/bans"


def test_openapi_validator_checks_and_allowlist(spec_validator: OpenApiValidator | None) -> None:
    if spec_validator is None:
        pytest.skip("Discord's OpenAPI spec is not available on this machine")
    v = spec_validator
    assert v.match("GET", "/webhooks/1/t/messages/@original").template.endswith("/@original")  # type: ignore[union-attr]
    # discord.py's integer upload ids and uint64 nonces are admitted (documented allowlist).
    body = {"content": "x", "nonce": 2**64 - 1, "attachments": [{"id": 0, "filename": "a.png"}]}
    assert v.validate_request("POST", "/channels/1/messages", body, multipart=True) == []
    assert v.validate_request("POST", "/channels/1/messages", {"content": 5}) != []
    # A type-5 callback answer must not carry a resource (only 4, 7 and 12 do).
    bad = {"interaction": {"id": "1", "type": 2}, "resource": {"type": 5, "message": {}}}
    assert v.validate_response("POST", "/interactions/1/t/callback", 200, bad) != []


def test_load_spec_validator_fails_in_ci_only(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.sandbox.discord import openapi

    monkeypatch.setattr(openapi, "_CACHED", None)
    monkeypatch.setattr(openapi, "find_spec_path", lambda: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(RuntimeError, match="required in CI"):
        load_spec_validator()
    monkeypatch.setenv("CI", "false")
    assert load_spec_validator() is None
