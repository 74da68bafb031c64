"""The Discord emulator's limits, checked against the numbers Discord documents.

Sources (discord/discord-api-docs): docs/topics/rate-limits.md (headers, 429 bodies, scopes,
the global 50/s, interaction endpoints exempt, invalid requests 401/403/429), threads.md
(archive, unarchive on send, locks, the active cap), opcodes-and-status-codes.md (40005,
10008, 50083, 160005, 160006), resources/message.md (enforce_nonce, 25-character nonces),
application-commands.md (naming, lengths, 8,000 characters), guild premium tiers (10, 10, 50,
100 MiB). Raw HTTP checks the wire; the real discord.py client checks what a bot experiences.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import discord
import pytest
from discord import app_commands
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.sandbox.discord import DiscordEmulator, OpenApiValidator, models, threads
from bot.sandbox.discord import limits as limits_module
from bot.sandbox.discord.commands import valid_chat_input_name
from bot.sandbox.discord.errors import DiscordHTTPError
from bot.sandbox.discord.limits import BOOST_TIER_UPLOAD_LIMITS, GLOBAL_PER_SECOND, MIB, Limits
from tests.integration.discord_helpers import (
    errors_recorder,
    new_bot,
    running_bot,
    spec_state,
    sync_on_setup,
)

RATE_HEADERS = (
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "X-RateLimit-Reset-After",
    "X-RateLimit-Bucket",
)


@pytest.fixture
async def make_emu(
    spec_validator: OpenApiValidator | None,
) -> AsyncIterator[Callable[..., Awaitable[DiscordEmulator]]]:
    started: list[DiscordEmulator] = []

    async def factory(**kwargs: Any) -> DiscordEmulator:
        emulator = DiscordEmulator(spec_validator, **kwargs)
        await emulator.start()
        started.append(emulator)
        return emulator

    yield factory
    for emulator in started:
        await emulator.stop()
        assert spec_state(emulator) == {"unhandled": [], "violations": []}


class Raw:
    """Plain HTTP to the emulator, as the bot's token (to see headers exactly)."""

    def __init__(self, emu: DiscordEmulator, http: aiohttp.ClientSession) -> None:
        self.emu, self.http = emu, http

    async def call(
        self, method: str, path: str, body: Any = None, *, auth: bool = True
    ) -> tuple[int, dict[str, str], Any]:
        headers = {"Authorization": f"Bot {self.emu.token}"} if auth else {}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body)
        async with self.http.request(
            method, self.emu.api_base_url + path, data=data, headers=headers
        ) as resp:
            text = await resp.text()
            return resp.status, dict(resp.headers), json.loads(text) if text else None

    async def send(self, channel_id: int, body: dict[str, Any]) -> tuple[int, Any]:
        status, _, out = await self.call("POST", f"/channels/{channel_id}/messages", body)
        return status, out


@pytest.fixture
async def raw(make_emu: Callable[..., Awaitable[DiscordEmulator]]) -> AsyncIterator[Raw]:
    emu = await make_emu()
    async with aiohttp.ClientSession() as http:
        yield Raw(emu, http)


# -- rate limits --------------------------------------------------------------------------------


async def test_every_response_carries_the_bucket_headers_and_via(raw: Raw) -> None:
    for method, path in [("GET", "/users/@me"), ("GET", f"/channels/{raw.emu.channel_id}")]:
        status, headers, _ = await raw.call(method, path)
        assert status == 200
        assert all(h in headers for h in RATE_HEADERS), headers
        assert headers["Via"] == "1.1 google"
        assert int(headers["X-RateLimit-Remaining"]) == int(headers["X-RateLimit-Limit"]) - 1
        assert abs(float(headers["X-RateLimit-Reset"]) - time.time() - 1.0) < 0.5
    # Errors pass the same front end: a 404 carries the bucket and Via too.
    status, headers, body = await raw.call("GET", f"/channels/{raw.emu.channel_id}/messages/1")
    assert (status, body["code"]) == (404, 10008)
    assert "X-RateLimit-Bucket" in headers and headers["Via"] == "1.1 google"


async def test_the_channel_message_bucket_allows_5_per_5_seconds_per_channel(raw: Raw) -> None:
    general, other = raw.emu.channel_id, raw.emu.add_channel("other")
    statuses, buckets = [], set()
    for i in range(6):
        status, headers, body = await raw.call(
            "POST", f"/channels/{general}/messages", {"content": f"m{i}"}
        )
        statuses.append(status)
        buckets.add(headers["X-RateLimit-Bucket"])
    assert statuses == [200] * 5 + [429]
    assert len(buckets) == 1  # one bucket, counted per channel (a top-level resource)
    assert set(body) >= {"message", "retry_after", "global"} and body["global"] is False
    assert 4.0 < body["retry_after"] <= 5.0
    assert headers["X-RateLimit-Scope"] == "user" and headers["X-RateLimit-Remaining"] == "0"
    assert headers["Via"] == "1.1 google" and int(headers["Retry-After"]) == 5
    # Another channel has its own bucket; edits have their own, with the same figure.
    status, _ = await raw.send(other, {"content": "elsewhere"})
    assert status == 200
    msg_id = raw.emu.messages(general)[0]["id"]
    edits = [
        (await raw.call("PATCH", f"/channels/{general}/messages/{msg_id}", {"content": "x"}))[0]
        for _ in range(6)
    ]
    assert edits == [200] * 5 + [429]
    assert raw.emu.limits.invalid[429] == 2
    assert len(raw.emu.messages(general)) == 5


async def test_the_global_limit_is_50_a_second_and_spares_interaction_endpoints(
    raw: Raw,
) -> None:
    # Spread over two routes so no route bucket (50/s each) is the one that trips.
    results = [await raw.call("GET", p) for p in ["/users/@me", "/oauth2/applications/@me"] * 25]
    assert [r[0] for r in results] == [200] * 50
    status, headers, body = await raw.call("GET", "/users/@me")
    assert status == 429
    assert body["global"] is True and 0 < body["retry_after"] <= 1.0
    assert headers["X-RateLimit-Global"] == "true" and headers["X-RateLimit-Scope"] == "global"
    assert "X-RateLimit-Bucket" not in headers  # the global 429 names no route bucket
    # An interaction endpoint is not bound by it: it answers (here: an unknown token, 401).
    app = raw.emu.application_id
    status, _, body = await raw.call("POST", f"/webhooks/{app}/nope?wait=1", {"content": "x"})
    assert (status, body["code"]) == (401, 50027)
    await asyncio.sleep(1.05)
    assert (await raw.call("GET", "/users/@me"))[0] == 200
    assert raw.emu.limits.invalid == {429: 1, 401: 1}
    assert raw.emu.limits.rate_limited == [("GET", "/users/@me", "global")]


async def test_a_burst_of_interaction_callbacks_meets_no_limit(raw: Raw) -> None:
    # 120 callbacks (to unknown interactions: 404 10062) within a second: neither the global
    # limit nor a shared bucket turns them away; each interaction has its own.
    results = [
        await raw.call("POST", f"/interactions/{n}/tok{n}/callback", {"type": 5}, auth=False)
        for n in range(1, 121)
    ]
    assert {(status, body["code"]) for status, _, body in results} == {(404, 10062)}
    assert raw.emu.limits.rate_limited == []


async def test_invalid_requests_count_401_403_429_but_not_shared_429s(raw: Raw) -> None:
    assert (await raw.call("GET", "/users/@me", auth=False))[0] == 401
    raw.emu.deny_permission(raw.emu.channel_id, "SEND_MESSAGES")
    assert (await raw.send(raw.emu.channel_id, {"content": "x"}))[0] == 403
    raw.emu.fail_next("GET", "/users/@me", 429, scope="shared")
    status, headers, _ = await raw.call("GET", "/users/@me")
    assert status == 429 and headers["X-RateLimit-Scope"] == "shared"
    assert raw.emu.limits.invalid == {401: 1, 403: 1}


async def test_rate_limits_can_be_switched_off_by_name(
    make_emu: Callable[..., Awaitable[DiscordEmulator]],
) -> None:
    emu = await make_emu(rate_limits=False)
    async with aiohttp.ClientSession() as http:
        raw = Raw(emu, http)
        statuses = [(await raw.send(emu.channel_id, {"content": str(i)}))[0] for i in range(8)]
        _, headers, _ = await raw.call("GET", "/users/@me")
    assert statuses == [200] * 8
    assert "X-RateLimit-Bucket" not in headers and headers["Via"] == "1.1 google"


async def test_discordpy_waits_out_buckets_and_retries_global_429s(
    make_emu: Callable[..., Awaitable[DiscordEmulator]], monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = await make_emu()
    emu.limits.channel_messages = (2, 0.5)
    bot = new_bot()
    async with running_bot(emu, bot, monkeypatch):
        channel = bot.get_partial_messageable(emu.channel_id, guild_id=emu.guild_id)
        started = time.monotonic()
        await asyncio.gather(*(channel.send(f"n{i}") for i in range(6)))
        took = time.monotonic() - started
        # 60 concurrent calls on two routes (30 each, under their 50/s buckets) exceed the
        # global 50/s; discord.py sleeps retry_after under its global lock and retries.
        fetched = await asyncio.gather(
            *(bot.fetch_user(emu.bot_user_id) for _ in range(30)),
            *(bot.fetch_channel(emu.channel_id) for _ in range(30)),
        )
    assert len(emu.messages(emu.channel_id)) == 6 and took >= 1.0  # 2 per 0.5 s
    assert len(fetched) == 60
    assert any(scope == "global" for *_, scope in emu.limits.rate_limited)


# -- uploads ------------------------------------------------------------------------------------


@pytest.mark.parametrize("tier", [0, 1, 2, 3])
async def test_the_bot_upload_limit_follows_the_boost_tier(
    make_emu: Callable[..., Awaitable[DiscordEmulator]],
    monkeypatch: pytest.MonkeyPatch,
    tier: int,
) -> None:
    emu = await make_emu(boost_tier=tier)
    assert emu.limits.upload_limit == [10, 10, 50, 100][tier] * MIB
    assert emu.guild_create_payload()["premium_tier"] == tier
    bot = new_bot()
    async with running_bot(emu, bot, monkeypatch):
        guild = bot.get_guild(emu.guild_id)
        assert guild is not None and guild.filesize_limit == BOOST_TIER_UPLOAD_LIMITS[tier]


async def test_the_upload_limit_is_checked_per_file_with_413_40005(
    make_emu: Callable[..., Awaitable[DiscordEmulator]], monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = await make_emu()
    bot = new_bot()
    limit = emu.limits.upload_limit
    async with running_bot(emu, bot, monkeypatch):
        channel = bot.get_partial_messageable(emu.channel_id, guild_id=emu.guild_id)
        two = [discord.File(io.BytesIO(b"a" * (6 * MIB)), f"{n}.bin") for n in "ab"]
        sent = await channel.send(files=two)  # 12 MiB in all, each file under 10 MiB
        assert [a.size for a in sent.attachments] == [6 * MIB, 6 * MIB]
        with pytest.raises(discord.HTTPException) as raised:
            await channel.send(file=discord.File(io.BytesIO(b"b" * (limit + 1)), "big.bin"))
    assert (raised.value.status, raised.value.code) == (413, 40005)


async def test_a_members_nitro_limit_is_reported_in_their_interactions(
    make_emu: Callable[..., Awaitable[DiscordEmulator]], monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = await make_emu(boost_tier=2)
    alice, bob = emu.add_user("alice"), emu.add_user("bob")
    emu.limits.member_upload_limits[alice] = 500 * MIB  # Nitro
    seen: dict[int, int] = {}
    bot = new_bot()

    @app_commands.command(name="probe", description="Report the limit")
    async def probe(interaction: discord.Interaction) -> None:
        seen[interaction.user.id] = interaction.filesize_limit
        await interaction.response.send_message("ok", ephemeral=True)

    bot.tree.add_command(probe)
    sync_on_setup(bot)
    async with running_bot(emu, bot, monkeypatch) as run:
        for user in (alice, bob):
            await emu.slash_command("probe", user_id=user)
        await run.wait(lambda: len(seen) == 2, what="both probes answered")
    # Alice's own limit is larger; Bob gets the server's (tier 2: 50 MiB).
    assert seen == {alice: 500 * MIB, bob: 50 * MIB}


# -- nonces -------------------------------------------------------------------------------------


async def test_enforced_nonces_dedupe_per_channel_and_author_within_the_window(raw: Raw) -> None:
    general, other = raw.emu.channel_id, raw.emu.add_channel("other")
    body = {"content": "once", "nonce": "job-1", "enforce_nonce": True}
    first, again = await raw.send(general, body), await raw.send(general, body)
    assert first[0] == again[0] == 200 and first[1]["id"] == again[1]["id"]
    assert again[1]["nonce"] == "job-1"
    elsewhere = await raw.send(other, body)
    assert elsewhere[1]["id"] != first[1]["id"]  # the nonce is per channel
    unenforced = await raw.send(general, {"content": "twice", "nonce": "job-1"})
    assert unenforced[1]["id"] != first[1]["id"]
    assert [m["content"] for m in raw.emu.messages(general)] == ["once", "twice"]
    raw.emu.limits.nonce_window = 0.2
    await asyncio.sleep(0.25)
    later = await raw.send(general, body)
    assert later[1]["id"] != first[1]["id"]  # outside the window: a new message


async def test_a_repeated_nonce_whose_message_was_deleted_is_404_10008(raw: Raw) -> None:
    general = raw.emu.channel_id
    body = {"content": "once", "nonce": "job-2", "enforce_nonce": True}
    status, msg = await raw.send(general, body)
    assert status == 200
    status, _, _ = await raw.call("DELETE", f"/channels/{general}/messages/{msg['id']}")
    assert status == 204
    status, err = await raw.send(general, body)
    assert (status, err["code"]) == (404, 10008)
    assert raw.emu.messages(general) == []


@pytest.mark.parametrize(("nonce", "ok"), [("x" * 25, True), ("x" * 26, False), (2**62, True)])
async def test_a_nonce_has_at_most_25_characters(raw: Raw, nonce: Any, ok: bool) -> None:
    status, out = await raw.send(raw.emu.channel_id, {"content": "n", "nonce": nonce})
    assert (status == 200) is ok
    if not ok:
        assert out["code"] == 50035 and "nonce" in out["errors"]
        raw.emu.violations.clear()  # the request broke the spec's nonce format on purpose


# -- threads ------------------------------------------------------------------------------------


async def _thread(raw: Raw, name: str = "t") -> tuple[int, str]:
    status, msg = await raw.send(raw.emu.channel_id, {"content": name})
    assert status == 200
    status, _, thread = await raw.call(
        "POST",
        f"/channels/{raw.emu.channel_id}/messages/{msg['id']}/threads",
        {"name": name, "auto_archive_duration": 60},
    )
    assert status == 201, thread
    status, first = await raw.send(int(thread["id"]), {"content": "inside"})
    assert status == 200
    return int(thread["id"]), first["id"]


async def test_threads_archive_when_idle_and_a_send_reopens_them(raw: Raw) -> None:
    raw.emu.limits.thread_archive_after = 0.3
    thread_id, inside = await _thread(raw)
    assert [t["id"] for t in raw.emu.guild_create_payload()["threads"]] == [str(thread_id)]
    await asyncio.sleep(0.35)
    status, _, channel = await raw.call("GET", f"/channels/{thread_id}")
    assert channel["thread_metadata"]["archived"] is True
    assert raw.emu.guild_create_payload()["threads"] == []  # archived: not synced up front
    status, _, err = await raw.call(
        "PATCH", f"/channels/{thread_id}/messages/{inside}", {"content": "edit"}
    )
    assert (status, err["code"]) == (400, 50083)
    status, _ = await raw.send(thread_id, {"content": "reopen"})
    assert status == 200
    reopened = raw.emu.channel(thread_id)
    assert reopened is not None and reopened["thread_metadata"]["archived"] is False
    status, _, _ = await raw.call(
        "PATCH", f"/channels/{thread_id}/messages/{inside}", {"content": "edit"}
    )
    assert status == 200


async def test_the_default_archive_timer_is_the_threads_duration_in_minutes(raw: Raw) -> None:
    thread_id, _ = await _thread(raw)
    raw.emu.limits.thread_activity[thread_id] -= 59 * 60
    await raw.call("GET", "/users/@me")
    assert raw.emu.channel(thread_id)["thread_metadata"]["archived"] is False  # type: ignore[index]
    raw.emu.limits.thread_activity[thread_id] -= 60
    await raw.call("GET", "/users/@me")
    assert raw.emu.channel(thread_id)["thread_metadata"]["archived"] is True  # type: ignore[index]


async def test_a_locked_thread_refuses_the_bots_messages_with_160005(raw: Raw) -> None:
    thread_id, inside = await _thread(raw)
    await threads.set_state(raw.emu, thread_id, locked=True)
    status, err = await raw.send(thread_id, {"content": "no"})
    assert (status, err["code"]) == (400, 160005)
    status, _, err = await raw.call(
        "PATCH", f"/channels/{thread_id}/messages/{inside}", {"content": "no"}
    )
    assert (status, err["code"]) == (400, 160005)
    # Locked and archived: only Manage Threads may reopen it, which the invite does not grant.
    await threads.set_state(raw.emu, thread_id, archived=True)
    status, _, err = await raw.call("PATCH", f"/channels/{thread_id}", {"archived": False})
    assert (status, err["code"]) == (403, 50013)
    assert raw.emu.limits.invalid[403] == 1


async def test_the_active_thread_cap_answers_160006(raw: Raw) -> None:
    raw.emu.limits.max_active_threads = 1
    first, _ = await _thread(raw, "one")
    status, msg = await raw.send(raw.emu.channel_id, {"content": "two"})
    status, _, err = await raw.call(
        "POST", f"/channels/{raw.emu.channel_id}/messages/{msg['id']}/threads", {"name": "two"}
    )
    assert (status, err["code"]) == (400, 160006)
    # Archiving frees a slot; reopening over the cap is refused the same way.
    await threads.set_state(raw.emu, first, archived=True)
    status, _, _ = await raw.call(
        "POST", f"/channels/{raw.emu.channel_id}/messages/{msg['id']}/threads", {"name": "two"}
    )
    assert status == 201
    status, _, err = await raw.call("PATCH", f"/channels/{first}", {"archived": False})
    assert (status, err["code"]) == (400, 160006)


async def test_the_bot_reopens_its_own_thread_with_send_messages_only(raw: Raw) -> None:
    thread_id, _ = await _thread(raw)
    await threads.set_state(raw.emu, thread_id, archived=True)
    status, _, thread = await raw.call("PATCH", f"/channels/{thread_id}", {"archived": False})
    assert status == 200 and thread["thread_metadata"]["archived"] is False
    status, _, err = await raw.call("PATCH", f"/channels/{thread_id}", {"locked": True})
    assert (status, err["code"]) == (403, 50013)  # locking needs Manage Threads


# -- permissions --------------------------------------------------------------------------------


def test_the_bot_role_holds_exactly_the_readme_invite_permissions() -> None:
    emu = DiscordEmulator()
    role = emu.roles[emu.bot_role_id]
    names = {n for n, bit in models.PERMISSIONS.items() if int(role["permissions"]) & bit}
    assert names == {
        "VIEW_CHANNEL",
        "SEND_MESSAGES",
        "CREATE_PUBLIC_THREADS",
        "SEND_MESSAGES_IN_THREADS",
        "ATTACH_FILES",
        "EMBED_LINKS",
        "READ_MESSAGE_HISTORY",
    }


async def test_without_manage_messages_the_bot_cannot_delete_a_members_message(
    raw: Raw,
) -> None:
    emu = raw.emu
    alice = emu.add_user("alice")
    msg = {
        "id": str(emu.snowflakes.next()),
        "channel_id": str(emu.channel_id),
        "author": emu.user_payload(alice),
        "flags": 0,
    }
    emu.stored[int(msg["id"])] = msg
    emu.channel_log[emu.channel_id].append(int(msg["id"]))
    status, _, err = await raw.call("DELETE", f"/channels/{emu.channel_id}/messages/{msg['id']}")
    assert (status, err["code"]) == (403, 50013)


# -- latency ------------------------------------------------------------------------------------


async def test_rest_latency_counts_against_the_3_second_window(
    make_emu: Callable[..., Awaitable[DiscordEmulator]], monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = await make_emu()
    bot = new_bot()
    failures: list[BaseException] = []

    @app_commands.command(name="probe", description="Defer at once")
    async def probe(interaction: discord.Interaction) -> None:
        try:
            await interaction.response.defer()
        except discord.HTTPException as exc:
            failures.append(exc)

    bot.tree.add_command(probe)
    sync_on_setup(bot)
    errors = errors_recorder(bot)
    async with running_bot(emu, bot, monkeypatch) as run:
        # A 6.4 s round trip: the defer reaches Discord 3.2 s after the interaction was sent.
        emu.limits.rest_delay = 6.4
        inter = await emu.slash_command("probe", user_id=emu.add_user("alice"))
        await run.wait(lambda: bool(failures or errors), timeout=15, what="the late defer")
        emu.limits.rest_delay = 0.0
    assert inter.acked_at is None
    assert isinstance(failures[0], discord.NotFound) and failures[0].code == 10062


async def test_rest_latency_is_a_round_trip(
    make_emu: Callable[..., Awaitable[DiscordEmulator]],
) -> None:
    emu = await make_emu(rest_delay=0.4)
    async with aiohttp.ClientSession() as http:
        started = time.monotonic()
        status, _, _ = await Raw(emu, http).call("GET", "/users/@me")
        took = time.monotonic() - started
    assert status == 200 and 0.4 <= took < 1.5


# -- command sync -------------------------------------------------------------------------------


def _cmd(**over: Any) -> dict[str, Any]:
    return {"name": "imagine", "type": 1, "description": "Draw", **over}


def _opt(name: str, *, required: bool = False, **over: Any) -> dict[str, Any]:
    return {"name": name, "type": 3, "description": "d", "required": required, **over}


BAD_SYNCS: list[tuple[str, list[dict[str, Any]]]] = [
    ("upper case", [_cmd(name="Imagine")]),
    ("a space", [_cmd(name="im agine")]),
    ("33 characters", [_cmd(name="a" * 33)]),
    ("empty description", [_cmd(description="")]),
    ("101-character description", [_cmd(description="d" * 101)]),
    ("duplicate names", [_cmd(), _cmd()]),
    ("required after optional", [_cmd(options=[_opt("a"), _opt("b", required=True)])]),
    ("26 options", [_cmd(options=[_opt(f"o{i}") for i in range(26)])]),
    ("bad option name", [_cmd(options=[_opt("Mode")])]),
    ("localized upper case", [_cmd(name_localizations={"fr": "Imaginer"})]),
    (
        "over 8,000 characters",
        [
            _cmd(
                options=[
                    _opt(
                        f"o{i}",
                        description="d" * 100,
                        choices=[{"name": "c" * 100, "value": "v" * 100} for _ in range(25)],
                    )
                    for i in range(2)
                ]
            )
        ],
    ),
    ("a description on a user command", [{"name": "Report", "type": 2, "description": "x"}]),
]
GOOD_SYNCS: list[tuple[str, list[dict[str, Any]]]] = [
    ("hindi", [_cmd(name="चित्र")]),
    ("thai", [_cmd(name="วาด")]),
    ("apostrophe and dash", [_cmd(name="don't-stop_1")]),
    ("user command: mixed case, spaces", [{"name": "Report User", "type": 2, "description": ""}]),
    ("same name, other type", [_cmd(name="report"), {"name": "report", "type": 3}]),
    ("required first", [_cmd(options=[_opt("a", required=True), _opt("b")])]),
]


@pytest.mark.parametrize(("why", "body"), BAD_SYNCS, ids=[w for w, _ in BAD_SYNCS])
async def test_command_sync_rejects_what_discord_rejects(
    raw: Raw, why: str, body: list[dict[str, Any]]
) -> None:
    status, _, err = await raw.call("PUT", f"/applications/{raw.emu.application_id}/commands", body)
    assert (status, err["code"]) == (400, 50035), why
    raw.emu.violations.clear()  # some of these break the spec's own lengths, on purpose


@pytest.mark.parametrize(("why", "body"), GOOD_SYNCS, ids=[w for w, _ in GOOD_SYNCS])
async def test_command_sync_accepts_what_discord_accepts(
    raw: Raw, why: str, body: list[dict[str, Any]]
) -> None:
    status, _, out = await raw.call("PUT", f"/applications/{raw.emu.application_id}/commands", body)
    assert status == 200, (why, out)
    assert [c["name"] for c in out] == [c["name"] for c in body]


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("imagine", True),
        ("a", True),
        ("é", True),
        ("É", False),
        ("ß", True),
        ("日本", True),
        ("x" * 32, True),
        ("", False),
        ("a.b", False),
        ("a b", False),
        ("١٢", True),
    ],
)
def test_chat_input_names_follow_discords_pattern(name: str, ok: bool) -> None:
    assert valid_chat_input_name(name) is ok


# -- OpenAPI formats ----------------------------------------------------------------------------


def test_the_openapi_check_enforces_formats(spec_validator: OpenApiValidator | None) -> None:
    if spec_validator is None:
        pytest.skip("Discord's OpenAPI spec is not available here")
    route = "/channels/{channel_id}/messages"
    ok = {"content": "x", "embeds": [{"url": "https://example.com/a", "title": "t"}]}
    assert spec_validator.validate_request("POST", route, ok) == []
    bad_uri = {"content": "x", "embeds": [{"url": "not a uri", "title": "t"}]}
    assert any("uri" in v for v in spec_validator.validate_request("POST", route, bad_uri))
    long_nonce = {"content": "x", "nonce": "n" * 26}
    assert spec_validator.validate_request("POST", route, long_nonce) != []
    user = {**models.user_payload(1, "u"), "id": "not-a-snowflake"}
    assert spec_validator.validate_response("GET", "/users/{user_id}", 200, user) != []
    good_user = models.user_payload(1, "u")
    assert spec_validator.validate_response("GET", "/users/{user_id}", 200, good_user) == []


# -- sweeps and properties ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "route",
    DiscordEmulator.routes,
    ids=[f"{r.method} {r.template}" for r in DiscordEmulator.routes],
)
async def test_every_route_answers_with_its_bucket_and_via(raw: Raw, route: Any) -> None:
    # Every route of the emulator's table, with placeholder ids: whatever it answers (often an
    # error), the answer names its bucket and passes Via, as Discord's do.
    path = re.sub(r"\{(\w+)\}", "1", route.template)
    body = {} if route.method in ("POST", "PUT", "PATCH") else None
    if route.template.endswith("/commands") and route.method == "PUT":
        body = []
    status, headers, _ = await raw.call(route.method, path, body, auth=route.auth)
    assert headers["Via"] == "1.1 google", (route.template, status)
    assert all(h in headers for h in RATE_HEADERS), (route.template, status, headers)
    raw.emu.violations.clear()  # placeholder bodies are not what the spec describes


@settings(max_examples=60, deadline=None)
@given(
    gaps=st.lists(st.floats(min_value=0.0, max_value=0.05), min_size=1, max_size=300),
    routes=st.lists(st.sampled_from(["a", "b", "c"]), min_size=300, max_size=300),
)
def test_no_second_ever_admits_more_than_50_calls(gaps: list[float], routes: list[str]) -> None:
    clock = [1000.0]
    limits = Limits()
    admitted: list[float] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(limits_module.time, "monotonic", lambda: clock[0])
        for gap, route in zip(gaps, routes, strict=False):
            clock[0] += gap
            try:
                limits.admit(
                    "GET", f"/{route}/{{channel_id}}", {"channel_id": route}, authenticated=True
                )
            except DiscordHTTPError as err:
                assert err.status == 429 and err.body()["retry_after"] > 0
                continue
            admitted.append(clock[0])
    for i, start in enumerate(admitted):
        in_window = [t for t in admitted[i:] if t < start + 1.0]
        assert len(in_window) <= GLOBAL_PER_SECOND


@settings(max_examples=60, deadline=None)
@given(gaps=st.lists(st.floats(min_value=0.0, max_value=1.5), min_size=1, max_size=60))
def test_the_channel_bucket_never_admits_more_than_its_limit_per_window(
    gaps: list[float],
) -> None:
    clock = [1000.0]
    limits = Limits()
    limit, period = limits.channel_messages
    admitted: list[float] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(limits_module.time, "monotonic", lambda: clock[0])
        for gap in gaps:
            clock[0] += gap
            try:
                headers = limits.admit(
                    "POST",
                    "/channels/{channel_id}/messages",
                    {"channel_id": "9"},
                    authenticated=True,
                )
            except DiscordHTTPError as err:
                assert err.headers["X-RateLimit-Remaining"] == "0"
                continue
            admitted.append(clock[0])
            assert int(headers["X-RateLimit-Remaining"]) >= 0
    # Fixed windows opened by a first call: no window holds more than the limit, and so no
    # span of one period holds more than twice it.
    for i, start in enumerate(admitted):
        assert len([t for t in admitted[i:] if t < start + period]) <= 2 * limit
