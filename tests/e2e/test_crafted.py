"""The crafted catalogue: interactions as a modified client, a replayed payload or a hostile
file would send them, against the real bot (in-process), the Discord emulator and the API
simulator.

Every row asserts what the member notices: one sentence of the expected kind, ephemeral,
acknowledged within Discord's 3 s; nothing public posted; nothing submitted to the image API
and nothing charged (no job row, no usage row); the bot still connected. After the table, a
normal /imagine still finishes. /mod rows live in the moderation tests.
"""

from __future__ import annotations

import asyncio
import io
import re
import struct
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from PIL import Image
from sqlalchemy import text

from bot.app import Application
from bot.sandbox.discord import DiscordEmulator
from bot.sandbox.discord.interactions import Interaction
from bot.sandbox.mjproxy import MjProxySimulator
from tests.conftest import free_port
from tests.e2e import crafting as c
from tests.e2e.conftest import EDIT_INTERVAL, make_settings

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    # The emulator measures uploaded images with Pillow, which warns about the bombs below.
    pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning"),
]

LIMIT_MB = 1  # MAX_REFERENCE_MB for this module: small files can be "too big"


# --- files -------------------------------------------------------------------------------------


def png(size: tuple[int, int] = (8, 8)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_bomb(width: int = 20000, height: int = 20000) -> bytes:
    """A whole PNG of a few hundred bytes whose header declares `width`×`height` pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(b"\x00" * 1024, 9))
        + _chunk(b"IEND", b"")
    )


def jpeg_bomb(width: int = 10000, height: int = 10000) -> bytes:
    sof0 = b"\xff\xc0\x00\x0b\x08" + struct.pack(">HH", height, width) + b"\x01\x01\x11\x00"
    return b"\xff\xd8" + sof0 + b"\xff\xd9"


def gif_bomb() -> bytes:
    return b"GIF89a" + struct.pack("<HH", 65535, 65535) + b"\x00\x00\x00" + b";"


def webp_bomb() -> bytes:
    vp8x = b"\x00\x00\x00\x00" + (16382).to_bytes(3, "little") * 2  # 16383×16383 canvas
    chunk = b"VP8X" + struct.pack("<I", len(vp8x)) + vp8x
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


# --- the bench: one bot for the whole table ----------------------------------------------------


@dataclass
class Bench:
    emu: DiscordEmulator
    sim: MjProxySimulator
    app: Application
    alice: int
    cdn: str  # a hostile "CDN" on an allowed host (127.0.0.1): statuses, redirects, lies
    finished: dict[str, Any]  # a real finish post (a template for crafted component messages)
    opener: Interaction  # a real interaction, standing in for what opened a crafted modal
    secret: str
    web_port: int

    def imagine(self, **options: Any) -> dict[str, Any]:
        return c.command(
            self.emu, "imagine", {"prompt": "a lighthouse", **options}, user_id=self.alice
        )

    def attach(self, name: str, data: bytes, mime: str | None = "image/png") -> dict[str, Any]:
        return self.emu.add_attachment(name, data, mime)

    def hosted(self, name: str, path: str, size: int = 1000) -> dict[str, Any]:
        """An attachment whose URL points at the hostile CDN."""
        att = self.attach(name, png())
        att["url"] = att["proxy_url"] = f"{self.cdn}{path}"
        att["size"] = size
        return att


async def _hostile_cdn() -> tuple[web.AppRunner, str]:
    async def status(request: web.Request) -> web.Response:
        return web.Response(status=int(request.match_info["code"]), text="no")

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound("https://evil.example.com/cat.png")

    async def big(request: web.Request) -> web.StreamResponse:
        # No Content-Length (chunked): only counting the bytes can tell the real size.
        response = web.StreamResponse()
        await response.prepare(request)
        for _ in range(24):
            await response.write(b"\x89PNG\r\n\x1a\n" + b"\x00" * (64 * 1024 - 8))
        return response

    server = web.Application()
    server.router.add_get("/status/{code}", status)
    server.router.add_get("/redirect", redirect)
    server.router.add_get("/big", big)
    runner = web.AppRunner(server)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bench(
    spec_validator: Any, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Bench]:
    emu = DiscordEmulator(spec_validator)
    await emu.start()
    sim = MjProxySimulator(profile="aggregator", api_key="sk-test", step_seconds=0.05)
    await sim.start()
    runner, cdn = await _hostile_cdn()
    secret = "crafted-secret-0123456789"
    port = free_port()
    db = f"sqlite:///{tmp_path_factory.mktemp('crafted')}/mjcord.db"
    settings = make_settings(
        emu,
        sim,
        db,
        MAX_REFERENCE_MB=str(LIMIT_MB),
        PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
        WEBHOOK_SECRET=secret,
        PORT=str(port),
    )
    app = Application(
        settings, guild_ready_timeout=0.01, web_host="127.0.0.1", min_edit_interval=EDIT_INTERVAL
    )
    await app.start()
    alice = emu.add_user("alice")
    opener = await emu.slash_command("quota", {}, user_id=alice)
    finished = await _one_normal_job(emu, alice, "a first lighthouse")
    yield Bench(emu, sim, app, alice, cdn, finished, opener, secret, port)
    await app.stop()
    await runner.cleanup()
    await sim.stop()
    await emu.stop()
    assert emu.unhandled == [], f"the bot called routes the emulator lacks: {emu.unhandled}"
    assert emu.violations == [], "\n".join(emu.violations)


def _finish_posts(emu: DiscordEmulator, channel_id: int) -> list[dict[str, Any]]:
    return [
        m
        for m in emu.messages(channel_id)
        if "-# job " in (m.get("content") or "") and "Task ID" not in m["content"]
    ]


async def _one_normal_job(emu: DiscordEmulator, user: int, prompt: str) -> dict[str, Any]:
    """A plain /imagine, waited for until its image is posted in its thread."""
    record = await emu.slash_command("imagine", {"prompt": prompt}, user_id=user)
    await emu.wait_for(lambda: record.original_message_id is not None, timeout=15)
    thread_id = record.original_message_id
    assert thread_id is not None
    await emu.wait_for(lambda: bool(_finish_posts(emu, thread_id)), timeout=20, what="finish post")
    return _finish_posts(emu, thread_id)[-1]


# --- the table ---------------------------------------------------------------------------------

Build = Callable[[Bench], dict[str, Any]]


@dataclass(frozen=True)
class Row:
    id: str
    build: Build
    sentence: str  # a regex the member's one sentence must match


def row(id: str, sentence: str) -> Callable[[Build], Row]:
    def make(build: Build) -> Row:
        return Row(id, build, sentence)

    return make


def prompt_is(value: Any, kind: int | None = None) -> Build:
    return lambda b: c.set_value(b.imagine(), "prompt", value, kind=kind)


def mode_is(value: Any, kind: int | None = None) -> Build:
    return lambda b: c.set_value(b.imagine(), "mode", value, kind=kind)


def image1(make: Callable[[Bench], dict[str, Any]]) -> Build:
    return lambda b: b.imagine(image1=make(b))


EMPTY = r"^`prompt` can't be empty\.$"
TOO_LONG = r"^`prompt` is \d+ characters long; the limit is 4000\.$"
TEXT = r"^`prompt` must be text\.$"
MODES = r"^`mode` must be one of: Midjourney, Niji\.$"
SERVER_ONLY = r"works only in servers"
NO_DETAILS = r"^`image1`: Discord did not send the file's details\. Please attach it again\.$"
UNKNOWN_BUTTON = r"^I don't recognise this button"
EXPIRED = r"^This form has expired"


def _no_resolved(b: Bench) -> dict[str, Any]:
    payload = b.imagine(image1=b.attach("cat.png", png()))
    del payload["data"]["resolved"]
    return payload


def _resolved_without(b: Bench, key: str) -> dict[str, Any]:
    payload = b.imagine(image1=b.attach("cat.png", png()))
    (attachment,) = payload["data"]["resolved"]["attachments"].values()
    del attachment[key]
    return payload


def _other_id(b: Bench) -> dict[str, Any]:
    payload = b.imagine(image1=b.attach("cat.png", png()))
    c.set_value(payload, "image1", str(b.emu.snowflakes.next()))
    return payload


def _press(custom_id: str, *, on_message: bool = True, component_type: int = 2) -> Build:
    def build(b: Bench) -> dict[str, Any]:
        message = (
            c.message_with(b.finished, custom_id) if on_message else c.message_with(b.finished)
        )
        return c.component(
            b.emu, b.imagine(), custom_id, message=message, component_type=component_type
        )

    return build


def _mod(b: Bench, sub: str, **options: Any) -> dict[str, Any]:
    """A valid `/mod limits <sub>` payload."""
    return c.command(b.emu, "mod", {"limits": {sub: options}}, user_id=b.alice)


def _dm(build: Build) -> Build:
    return lambda b: c.in_dm(build(b))


ROWS: list[Row] = [
    # prompts
    Row("prompt-empty", prompt_is(""), EMPTY),
    Row("prompt-spaces", prompt_is("    "), EMPTY),
    Row("prompt-newlines-tabs", prompt_is("\n\t \n"), EMPTY),
    Row("prompt-zero-width-only", prompt_is("\u200b\u200d\ufeff"), EMPTY),
    Row("prompt-soft-hyphens-only", prompt_is("\u00ad\u00ad"), EMPTY),
    Row("prompt-4001", prompt_is("a" * 4001), TOO_LONG),
    Row("prompt-100k", prompt_is("ab" * 50_000), TOO_LONG),
    Row("prompt-4001-emoji", prompt_is("🎨" * 4001), TOO_LONG),
    Row("prompt-integer", prompt_is(42), TEXT),
    Row("prompt-null", prompt_is(None), TEXT),
    Row("prompt-list", prompt_is(["a", "b"]), TEXT),
    Row("prompt-object", prompt_is({"text": "a"}), TEXT),
    Row("prompt-bool", prompt_is(True), TEXT),
    Row("prompt-declared-integer", prompt_is(5, kind=4), TEXT),
    Row("prompt-declared-attachment", prompt_is("1234", kind=11), TEXT),
    Row("prompt-missing", lambda b: c.drop(b.imagine(), "prompt"), r"^`prompt` is required\.$"),
    Row(
        "prompt-twice",
        lambda b: (p := b.imagine(), c.leaf(p).append(dict(c.option(p, "prompt"))), p)[2],
        r"^`prompt` was given twice\.$",
    ),
    # options
    Row(
        "option-unknown",
        lambda b: c.set_value(b.imagine(), "zzfail", "x"),
        r"^/imagine has no option `zzfail`\.$",
    ),
    Row(
        "option-unknown-hostile-name",
        lambda b: c.set_value(b.imagine(), "@everyone <@1>", "x"),
        r"^/imagine has no such option\.$",
    ),
    Row(
        "option-no-name",
        lambda b: (p := b.imagine(), c.leaf(p).append({"type": 3, "value": "x"}), p)[2],
        r"^/imagine has no such option\.$",
    ),
    Row("mode-outside-choices", mode_is("FAST_JOURNEY"), MODES),
    Row("mode-lowercase", mode_is("niji_journey"), MODES),
    Row("mode-choice-name", mode_is("Niji"), MODES),
    Row("mode-trailing-space", mode_is("MID_JOURNEY "), MODES),
    Row("mode-empty", mode_is(""), r"^`mode` can't be empty\.$"),
    Row("mode-integer", mode_is(1), r"^`mode` must be text\.$"),
    Row("mode-declared-boolean", mode_is(True, kind=5), r"^`mode` must be text\.$"),
    Row(
        "command-unknown",
        lambda b: (p := b.imagine(), p["data"].update(name="nuke"), p)[2],
        r"no longer available",
    ),
    Row(
        "quota-unknown-option",
        lambda b: c.set_value(c.command(b.emu, "quota", {}, user_id=b.alice), "member", "1"),
        r"^/quota has no option `member`\.$",
    ),
    Row(
        "describe-image-missing",
        lambda b: c.drop(
            c.command(b.emu, "describe", {"image": b.attach("a.png", png())}, user_id=b.alice),
            "image",
        ),
        r"^`image` is required\.$",
    ),
    Row(
        "blend-dimensions-outside-choices",
        lambda b: c.set_value(
            c.command(
                b.emu,
                "blend",
                {"image1": b.attach("a.png", png()), "image2": b.attach("b.png", png())},
                user_id=b.alice,
            ),
            "dimensions",
            "HUGE",
        ),
        r"^`dimensions` must be one of: Portrait \(2:3\), Square \(1:1\), Landscape \(3:2\)\.$",
    ),
    # the same check reaches subcommands (moderation's own /mod rows live in its tests)
    Row(
        "mod-quota-negative",
        lambda b: c.set_value(_mod(b, "default", per_day=5), "per_day", -5),
        r"^`per_day` must be from 0 to 100000\.$",
    ),
    Row(
        "mod-cooldown-overflow",
        lambda b: c.set_value(_mod(b, "cooldown", seconds=5), "seconds", 10**30),
        r"^`seconds` must be from 0 to 86400\.$",
    ),
    Row(
        "mod-cooldown-fraction",
        lambda b: c.set_value(_mod(b, "cooldown", seconds=5), "seconds", 1.5),
        r"^`seconds` must be a whole number\.$",
    ),
    # attachments: what Discord sent about the file
    Row("attachment-no-resolved", _no_resolved, NO_DETAILS),
    Row("attachment-id-not-resolved", _other_id, NO_DETAILS),
    Row("attachment-resolved-without-url", lambda b: _resolved_without(b, "url"), NO_DETAILS),
    Row("attachment-resolved-without-size", lambda b: _resolved_without(b, "size"), NO_DETAILS),
    Row(
        "attachment-resolved-without-filename",
        lambda b: _resolved_without(b, "filename"),
        r"^`image1`: the file has no name",
    ),
    Row(
        "attachment-id-not-a-snowflake",
        lambda b: c.set_value(b.imagine(image1=b.attach("a.png", png())), "image1", "abc"),
        r"^`image1` must be an attached file\.$",
    ),
    Row(
        "attachment-id-too-long",
        lambda b: c.set_value(b.imagine(image1=b.attach("a.png", png())), "image1", "9" * 30),
        r"^`image1` must be an attached file\.$",
    ),
    Row(
        "attachment-declared-string",
        lambda b: c.set_value(b.imagine(), "image1", "hello", kind=3),
        r"^`image1` must be an attached file\.$",
    ),
    # attachments: where the file is and how it arrives
    Row(
        "attachment-off-cdn",
        image1(lambda b: {**b.attach("cat.png", png()), "url": "https://evil.example.com/cat.png"}),
        r"^image1: `cat\.png` is not on Discord's CDN, so I can't use it\.$",
    ),
    Row(
        "attachment-cdn-404",
        image1(lambda b: b.hosted("gone.png", "/status/404")),
        r"^image1: `gone\.png` is no longer on Discord's CDN\. Please attach it again\.$",
    ),
    Row(
        "attachment-cdn-403",
        image1(lambda b: b.hosted("expired.png", "/status/403")),
        r"^image1: `expired\.png` is no longer on Discord's CDN",
    ),
    Row(
        "attachment-cdn-500",
        image1(lambda b: b.hosted("cat.png", "/status/500")),
        r"^image1: `cat\.png` could not be downloaded \(Discord's CDN answered HTTP 500\)",
    ),
    Row(
        "attachment-cdn-503",
        image1(lambda b: b.hosted("cat.png", "/status/503")),
        r"^image1: `cat\.png` could not be downloaded \(Discord's CDN answered HTTP 503\)",
    ),
    Row(
        "attachment-cdn-redirect",
        image1(lambda b: b.hosted("cat.png", "/redirect")),
        r"^image1: `cat\.png` is not on Discord's CDN \(its link redirects elsewhere\)",
    ),
    Row(
        "attachment-declared-size-over-limit",
        image1(lambda b: {**b.attach("huge.png", png()), "size": 20 * 1024 * 1024}),
        r"^image1: `huge\.png` is 20 MB; the limit is 1 MB\.$",
    ),
    Row(
        "attachment-declared-size-lies-low",
        image1(lambda b: b.hosted("small.png", "/big", size=1000)),
        r"^image1: `small\.png` is larger than the limit of 1 MB\.$",
    ),
    Row(
        "attachment-not-an-image",
        image1(lambda b: b.attach("notes.pdf", b"%PDF-1.7\n" + b"x" * 200, "application/pdf")),
        r"^image1: `notes\.pdf` is not a PNG, JPEG, WebP or GIF image\.$",
    ),
    Row(
        "attachment-declared-png-is-html",
        image1(lambda b: b.attach("cat.png", b"<html>hi</html>", "image/png")),
        r"^image1: `cat\.png` is not a PNG, JPEG, WebP or GIF image\.$",
    ),
    Row(
        "attachment-empty",
        image1(lambda b: b.attach("empty.png", b"")),
        r"^image1: `empty\.png` is empty\.",
    ),
    Row(
        "attachment-truncated",
        image1(lambda b: b.attach("cut.png", png((64, 64))[:60])),
        r"^image1: `cut\.png` is incomplete",
    ),
    Row(
        "attachment-hostile-filename",
        image1(lambda b: b.attach("`@everyone`.pdf", b"%PDF-1.7\n")),
        r"^image1: `@\u200beveryone\.pdf` is not a PNG",
    ),
    Row(
        "attachment-second-bad",
        lambda b: b.imagine(
            image1=b.attach("ok.png", png()), image2=b.attach("bad.gif", b"GIF89a")
        ),
        r"^image2: `bad\.gif` is incomplete",
    ),
    Row(
        "describe-off-cdn",
        lambda b: c.command(
            b.emu,
            "describe",
            {"image": {**b.attach("p.png", png()), "url": "https://example.org/p.png"}},
            user_id=b.alice,
        ),
        r"^image: `p\.png` is not on Discord's CDN",
    ),
    Row(
        "blend-third-not-an-image",
        lambda b: c.command(
            b.emu,
            "blend",
            {
                "image1": b.attach("a.png", png()),
                "image2": b.attach("b.png", png()),
                "image3": b.attach("c.txt", b"hello", "text/plain"),
            },
            user_id=b.alice,
        ),
        r"^image3: `c\.txt` is not a PNG, JPEG, WebP or GIF image\.$",
    ),
    # attachments: decompression bombs (a few hundred bytes declaring huge pixel counts)
    Row(
        "bomb-png-20000",
        image1(lambda b: b.attach("bomb.png", png_bomb())),
        r"^image1: `bomb\.png` is 20000×20000 pixels \(400 megapixels\); "
        r"the limit is 50 megapixels\.$",
    ),
    Row(
        "bomb-png-wide",
        image1(lambda b: b.attach("wide.png", png_bomb(1_000_000, 60))),
        r"^image1: `wide\.png` is 1000000×60 pixels \(60 megapixels\)",
    ),
    Row(
        "bomb-jpeg",
        image1(lambda b: b.attach("bomb.jpg", jpeg_bomb(), "image/jpeg")),
        r"^image1: `bomb\.jpg` is 10000×10000 pixels \(100 megapixels\)",
    ),
    Row(
        "bomb-gif",
        image1(lambda b: b.attach("bomb.gif", gif_bomb(), "image/gif")),
        r"^image1: `bomb\.gif` is 65535×65535 pixels",
    ),
    Row(
        "bomb-webp",
        image1(lambda b: b.attach("bomb.webp", webp_bomb(), "image/webp")),
        r"^image1: `bomb\.webp` is 16383×16383 pixels",
    ),
    Row(
        "png-without-size",
        image1(lambda b: b.attach("zero.png", png_bomb(0, 0))),
        r"^image1: `zero\.png` has no readable image size",
    ),
    # DMs
    Row("dm-imagine", _dm(lambda b: b.imagine()), SERVER_ONLY),
    Row("dm-imagine-bad-prompt", _dm(prompt_is("")), SERVER_ONLY),
    Row(
        "dm-describe",
        _dm(
            lambda b: c.command(
                b.emu, "describe", {"image": b.attach("a.png", png())}, user_id=b.alice
            )
        ),
        SERVER_ONLY,
    ),
    Row("dm-quota", _dm(lambda b: c.command(b.emu, "quota", {}, user_id=b.alice)), SERVER_ONLY),
    Row("dm-job-button", _dm(_press("mj:1:0")), SERVER_ONLY),
    Row(
        "dm-unknown-modal",
        _dm(lambda b: c.modal_submit(b.emu, b.imagine(), "nope", {"prompt": "x"})),
        EXPIRED,
    ),
    # buttons
    Row("button-garbage", _press("garbage"), UNKNOWN_BUTTON),
    Row("button-prefix-only", _press("mj:"), UNKNOWN_BUTTON),
    Row("button-job-not-a-number", _press("mj:abc:1"), UNKNOWN_BUTTON),
    Row("button-unknown-kind", _press("mj:1:2:x"), UNKNOWN_BUTTON),
    Row("button-job-23-digits", _press("mj:" + "9" * 23 + ":0"), UNKNOWN_BUTTON),
    Row("button-job-over-63-bits", _press("mj:9223372036854775808:0"), UNKNOWN_BUTTON),
    Row("button-job-leading-zero", _press("mj:01:0"), UNKNOWN_BUTTON),
    Row("button-job-negative", _press("mj:-1:0"), UNKNOWN_BUTTON),
    Row("button-index-25", _press("mj:1:25"), UNKNOWN_BUTTON),
    Row("button-job-at-63-bits", _press("mj:9223372036854775807:0"), r"no longer available"),
    Row("report-over-63-bits", _press("mjreport:9223372036854775808"), UNKNOWN_BUTTON),
    Row("modlog-user-over-63-bits", _press("mjmod:ban:1:99999999999999999999"), UNKNOWN_BUTTON),
    Row("button-unicode-digits", _press("mj:\u0661:\u0660"), UNKNOWN_BUTTON),
    Row("button-no-such-job", _press("mj:424242:0"), r"no longer available|not available"),
    Row("button-not-on-message", _press("mj:1:0", on_message=False), UNKNOWN_BUTTON),
    Row("button-as-select-menu", _press("mj:1:0", component_type=3), UNKNOWN_BUTTON),
    Row("continue-not-a-number", _press("mjin:abc"), UNKNOWN_BUTTON),
    Row("continue-over-63-bits", _press("mjin:9999999999999999999"), UNKNOWN_BUTTON),
    Row("report-job-zero", _press("mjreport:0"), UNKNOWN_BUTTON),
    Row("modlog-unknown-action", _press("mjmod:nuke:1:1"), UNKNOWN_BUTTON),
    Row("button-100-chars", _press("mj:1:0:" + "z" * 93), UNKNOWN_BUTTON),
    # modals
    Row(
        "modal-unknown-id",
        lambda b: c.modal_submit(b.emu, b.imagine(), "nope", {"prompt": "x"}),
        EXPIRED,
    ),
    Row(
        "modal-random-id-from-before-a-restart",
        lambda b: c.modal_submit(b.emu, b.imagine(), "0f" * 16, {"prompt": "a", "zoom": "1.5"}),
        EXPIRED,
    ),
    Row("modal-no-fields", lambda b: c.modal_submit(b.emu, b.imagine(), "mj:1:0", {}), EXPIRED),
]


#: Dispatch-to-acknowledgement time of every row (printed by the last test, run with -s).
ACK_SECONDS: list[float] = []


async def _count(app: Application, table: str) -> int:
    assert app.storage is not None
    async with app.storage.engine.connect() as conn:
        return int((await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())


#: Jobs that went ahead. A command's job is recorded when it is acknowledged (so a restart can
#: carry it on); one refused before its submit is recorded FAILED with nothing sent.
WENT_AHEAD = "jobs WHERE sent_at IS NOT NULL OR status <> 'FAILED'"


def _submits(sim: MjProxySimulator) -> int:
    return sum(1 for r in sim.requests if "/submit/" in r.path)


@pytest.mark.parametrize("case", ROWS, ids=[r.id for r in ROWS])
async def test_crafted_interaction_gets_one_private_sentence(bench: Bench, case: Row) -> None:
    b = bench
    before = (_submits(b.sim), await _count(b.app, WENT_AHEAD), await _count(b.app, "mod_usage"))
    public_before = len(b.emu.messages(b.emu.channel_id))

    payload = case.build(b)
    trigger = b.opener if payload["type"] == c.MODAL_SUBMIT else None
    record = await c.send(b.emu, payload, trigger=trigger)
    await b.emu.wait_for(
        lambda: bool(record.ephemeral_messages), timeout=10, what=f"{case.id}: a sentence"
    )

    assert record.acked_at is not None and record.acked_at - record.dispatched_at < 3.0
    ACK_SECONDS.append(record.acked_at - record.dispatched_at)
    (said,) = record.ephemeral_messages
    assert re.search(case.sentence, said["content"]), f"{case.id}: {said['content']!r}"
    assert said["flags"] & 64 and said["mentions"] == [] and not said["mention_everyone"]
    await asyncio.sleep(0.05)  # anything wrongly sent after the sentence would show up now
    assert len(b.emu.messages(b.emu.channel_id)) == public_before
    after = (_submits(b.sim), await _count(b.app, WENT_AHEAD), await _count(b.app, "mod_usage"))
    assert after == before, f"{case.id}: submitted or charged ({before} → {after})"
    assert b.emu.gateway_connected


# --- API callbacks (forged or malformed) -------------------------------------------------------


CALLBACKS = [
    ("wrong-secret", "/mj/callback/not-the-secret", b'{"id": "1"}', 404),
    ("no-secret", "/mj/callback/", b'{"id": "1"}', 404),
    ("not-json", "/mj/callback/{secret}", b"{nope", 400),
    ("json-list", "/mj/callback/{secret}", b"[1, 2]", 400),
    # Answered (so the API does not retry) and ignored: no job tracks that task.
    ("unknown-task", "/mj/callback/{secret}", b'{"id": "999999", "status": "SUCCESS"}', 200),
    ("huge-body", "/mj/callback/{secret}", b'{"id": "' + b"9" * 3_000_000 + b'"}', 413),
]


@pytest.mark.parametrize(
    ("name", "path", "body", "status"), CALLBACKS, ids=[x[0] for x in CALLBACKS]
)
async def test_forged_callback_changes_nothing(
    bench: Bench, name: str, path: str, body: bytes, status: int
) -> None:
    import aiohttp

    b = bench
    before = (
        _submits(b.sim),
        await _count(b.app, WENT_AHEAD),
        len(b.emu.messages(b.emu.channel_id)),
    )
    url = f"http://127.0.0.1:{b.web_port}{path.format(secret=b.secret)}"
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers={"Content-Type": "application/json"}) as response,
    ):
        assert response.status == status, name
    await asyncio.sleep(0.2)
    assert (
        _submits(b.sim),
        await _count(b.app, WENT_AHEAD),
        len(b.emu.messages(b.emu.channel_id)),
    ) == before
    assert b.emu.gateway_connected


async def test_after_the_table_a_normal_imagine_still_finishes(bench: Bench) -> None:
    """Runs last in this module: the bot is up and serves members as before."""
    if ACK_SECONDS:
        ordered = sorted(ACK_SECONDS)
        median = ordered[len(ordered) // 2]
        count, slowest = len(ordered), ordered[-1]
        print(f"\n{count} crafted rows acknowledged: median {median:.3f} s, max {slowest:.3f} s")
    submits, usage = _submits(bench.sim), await _count(bench.app, "mod_usage")
    final = await _one_normal_job(bench.emu, bench.alice, "a lighthouse after the storm")
    assert final["attachments"] and _submits(bench.sim) == submits + 1
    assert await _count(bench.app, WENT_AHEAD) == 2
    # The charge counter the rows watch does move for a real job (so "unchanged" means something).
    assert await _count(bench.app, "mod_usage") == usage + 1
