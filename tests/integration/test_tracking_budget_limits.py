"""The presenter's Discord budget against the emulator's real limits (global 50/s per bot, 5 per
5 s per channel, 429s with Retry-After): a burst of finishes and progress edits from the real
discord.py client earns no 429, never puts more than 45 calls in any second, and posts every
finish."""

from __future__ import annotations

import asyncio
import bisect
import time

import pytest

from bot.core.jobs import Job, JobStatus, Mode, Route
from bot.discord_ui.budget import LIMIT, WINDOW_SECONDS
from bot.discord_ui.presenter import DiscordPresenter
from bot.sandbox.discord import DiscordEmulator
from tests.integration.discord_helpers import new_bot, running_bot

FINISHES = 120
EDITS = 200


class NoFiles:
    async def fetch_reference(self, url: str, max_bytes: int) -> bytes:
        raise AssertionError("not used")

    async def download(self, url: str) -> bytes:
        raise AssertionError("not used")

    async def fit(self, data: bytes, max_bytes: int) -> bytes | None:
        raise AssertionError("not used")


def most_in_any_second(times: list[float]) -> int:
    ordered = sorted(times)
    return max((bisect.bisect_left(ordered, t + 1.0) - i for i, t in enumerate(ordered)), default=0)


async def test_finishes_and_edits_stay_within_the_emulators_limits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    emu = DiscordEmulator()  # rate limits on, as Discord's
    await emu.start()
    try:
        channels = [emu.add_channel(f"job-{n}") for n in range(FINISHES)]
        user = emu.add_user("member")
        bot = new_bot()
        async with running_bot(emu, bot, monkeypatch):
            statuses = []
            for n, channel in enumerate(channels):
                sent = await bot.get_partial_messageable(channel, guild_id=emu.guild_id).send(
                    f"job {n}: running"
                )
                statuses.append(sent.id)
            # Setting up went faster than 50/s and earned 429s of its own: they do not count,
            # and the burst starts once its calls have left the emulator's one-second window
            # (calls made outside the presenter are not in its budget).
            await asyncio.sleep(1.1)
            first, limited = len(emu.requests), len(emu.limits.rate_limited)

            def job(n: int, status: JobStatus, progress: int = 0) -> Job:
                route = Route(
                    guild_id=emu.guild_id,
                    channel_id=channels[n % FINISHES],
                    requester_id=user,
                    reply_message_id=statuses[n % FINISHES],
                    status_message_id=statuses[n % FINISHES],
                )
                return Job(
                    id=n + 1,
                    route=route,
                    mode=Mode.MID_JOURNEY,
                    prompt=f"job {n}",
                    task_id=f"17306217181{n:05d}",
                    status=status,
                    progress=progress,
                    fail_reason="the image service gave up" if status.finished else "",
                )

            shown = DiscordPresenter(bot, NoFiles(), min_edit_interval=0.2)  # type: ignore[arg-type]
            try:
                for step in (15, 46, 78):  # many progress states, more than the budget allows
                    for n in range(FINISHES):
                        await shown.show_progress(job(n, JobStatus.IN_PROGRESS, step))
                started = time.monotonic()
                posted = await asyncio.gather(
                    *(shown.post_finish(job(n, JobStatus.FAILED)) for n in range(FINISHES))
                )
                took = time.monotonic() - started
                await asyncio.sleep(1.0)  # some status edits follow the finishes
            finally:
                await shown.close()
        calls = [
            r
            for r in emu.requests[first:]
            if "/interactions/" not in r.path and "/webhooks/" not in r.path
        ]
        assert all(posted) and len(set(posted)) == FINISHES  # every finish, once
        assert emu.limits.rate_limited[limited:] == []  # not one 429, global or per channel
        assert most_in_any_second([r.at for r in calls]) <= 45
        # Finishes first: 120 of them at the budget's pace, whatever the progress edits waiting.
        assert took < FINISHES / LIMIT * WINDOW_SECONDS + 1.5
    finally:
        await emu.stop()
