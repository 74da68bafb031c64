"""`python -m bot demo`: the whole product, offline.

Starts the Discord emulator and the Midjourney-proxy simulator in this process, starts the real
bot against them (configured only through settings, as in production), plays a member running
`/imagine` in Niji mode with a reference image, and prints the transcript as it happens. Midway,
Discord asks the bot's gateway to reconnect (op 7) and the bot resumes its session, as it must
in production. Then it plays one refusal (a banned prompt). The emulator adds 40 ms of one-way
network latency throughout, so the 3-second acknowledgement window is measured honestly.
"""

from __future__ import annotations

import asyncio
import io
import logging
import socket
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from PIL import Image

from bot.app import Application
from bot.log import configure
from bot.sandbox.discord import DiscordEmulator
from bot.sandbox.mjproxy import MjProxySimulator
from bot.settings import load_settings

OUTPUT = Path("demo-output")


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def reference_png() -> bytes:
    """A small reference image made on the spot."""
    image = Image.new("RGB", (64, 64), (250, 180, 200))
    for x in range(16, 48):
        for y in range(16, 48):
            image.putpixel((x, y), (90, 60, 160))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


class Transcript:
    """Prints what a member would see, as it changes: new messages and edits, in order."""

    def __init__(self, emu: DiscordEmulator, started: float) -> None:
        self.emu = emu
        self.started = started
        self.seen: dict[str, str] = {}

    def poll(self, channel_ids: list[int]) -> None:
        for channel_id in channel_ids:
            for message in self.emu.messages(channel_id):
                self._show(channel_id, message)

    def _show(self, channel_id: int, message: dict[str, Any]) -> None:
        text = (message.get("content") or "").strip()
        if message.get("type") == 18:  # Discord's "started a thread" system message
            text = f"(system) started a thread: {text}"
        files = [a["filename"] for a in message.get("attachments") or []]
        embeds = [e.get("image", {}).get("url", "") for e in message.get("embeds") or []]
        buttons = [
            c.get("label") or (c.get("emoji") or {}).get("name", "")
            for row in message.get("components") or []
            for c in row.get("components", [])
        ]
        render = text + (f"  [file: {', '.join(files)}]" if files else "")
        render += "  [preview image]" if any(embeds) else ""
        render += f"  [buttons: {' '.join(buttons)}]" if buttons else ""
        key = str(message["id"])
        if self.seen.get(key) == render:
            return
        verb = "edit" if key in self.seen else "post"
        self.seen[key] = render
        channel = self.emu.channel(channel_id) or {}
        where = "thread " if channel.get("type") == 11 else "#"
        name = channel.get("name", channel_id)
        author = (message.get("author") or {}).get("username", "?")
        stamp = f"{time.monotonic() - self.started:6.1f}s"
        print(f"[{stamp}] {verb:4} {where}{name} · {author}: {render.replace(chr(10), ' ⏎ ')}")


async def play() -> int:
    """Run the demo; returns the exit code."""
    configure("WARNING")
    emu = DiscordEmulator(latency_ms=40)
    sim = MjProxySimulator(profile="aggregator", step_seconds=0.8, image_px=512)
    await emu.start()
    await sim.start()
    workdir = tempfile.mkdtemp(prefix="mjcord-demo-")
    settings = load_settings(
        {
            "DISCORD_TOKEN": emu.token,
            "DISCORD_API_BASE_URL": emu.api_base_url,
            "DISCORD_GATEWAY_URL": emu.gateway_url,
            "DEV_GUILD_ID": str(emu.guild_id),
            "MJ_API_BASE_URL": sim.base_url,
            "MJ_API_KEY": sim.api_key,
            "DATABASE_URL": f"sqlite:///{workdir}/demo.db",
            "PORT": str(free_port()),
            "MJ_POLL_INTERVAL": "0.5",
        },
        env_file=None,
    )
    app = Application(
        settings, guild_ready_timeout=0.05, web_host="127.0.0.1", min_edit_interval=1.0
    )
    started = time.monotonic()
    print(f"Discord emulator on {emu.base_url}; image API simulator on {sim.base_url}")
    await app.start()
    print(f"The bot is online as {app.bot.user if app.bot else '?'}.\n")
    transcript = Transcript(emu, started)
    try:
        alice = emu.add_user("alice")
        attachment = emu.add_attachment("reference.png", reference_png(), "image/png")
        print(
            "alice runs: /imagine prompt: a lighthouse in a storm, watercolor  mode: Niji  "
            "image1: reference.png"
        )
        await emu.slash_command(
            "imagine",
            {
                "prompt": "a lighthouse in a storm, watercolor",
                "mode": "NIJI_JOURNEY",
                "image1": attachment,
            },
            user_id=alice,
        )
        result = await _follow(emu, transcript, timeout=60, midway=_reconnect)
        if result is None:
            print("The job did not finish in time.")
            return 1
        path = OUTPUT / (result["filename"])
        await asyncio.to_thread(path.write_bytes, emu.cdn_bytes(result["url"]) or b"")
        print(f"\nThe final image ({result['size']} bytes) is saved at {path.resolve()}\n")

        print("alice runs: /imagine prompt: gore everywhere")
        refused = await emu.slash_command("imagine", {"prompt": "gore everywhere"}, user_id=alice)
        await emu.wait_for(lambda: bool(refused.ephemeral_messages), timeout=15)
        for message in refused.ephemeral_messages:
            print(f"  only alice sees: {message['content']}")
        received = len(sim.requests_to("/mj/submit/imagine"))
        print(f"\nThe simulator received {received} imagine submissions in all.")
        resumed = sum(s.resumes for s in emu.sessions.values())
        print(
            f"The gateway was identified {len(emu.identify_payloads)} time(s) and resumed "
            f"{resumed} time(s); {sum(len(r) for _, r in emu.replayed)} missed event(s) replayed."
        )
        return 0
    finally:
        await app.stop()
        await sim.stop()
        await emu.stop()


async def _reconnect(emu: DiscordEmulator) -> None:
    print("  (Discord asks the bot's gateway to reconnect: op 7; the bot resumes its session)")
    await emu.request_reconnect()


async def _follow(
    emu: DiscordEmulator,
    transcript: Transcript,
    *,
    timeout: float,
    midway: Callable[[DiscordEmulator], Awaitable[None]] | None = None,
) -> dict[str, Any] | None:
    """Print the transcript until a message with an attachment appears in a thread.

    ``midway`` runs once, as soon as the job's thread exists (the job is running).
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        places = [emu.channel_id] + [t["id"] for t in emu.threads()]
        transcript.poll([int(p) for p in places])
        if midway is not None and emu.threads():
            await midway(emu)
            midway = None
        for thread in emu.threads():
            for message in emu.messages(int(thread["id"])):
                if message.get("attachments"):
                    await asyncio.sleep(1.5)  # the status message's last edit follows the post
                    transcript.poll([int(p) for p in places])
                    return dict(message["attachments"][0])
        await asyncio.sleep(0.1)
    return None


def main() -> int:
    """Entry point for `python -m bot demo`."""
    OUTPUT.mkdir(exist_ok=True)
    logging.captureWarnings(True)
    try:
        return asyncio.run(play())
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
