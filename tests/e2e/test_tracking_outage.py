"""An image-API outage, end to end: members are told once it outlasts the threshold, and once the
API answers again every unfinished job is polled within max(2 × MJ_POLL_INTERVAL, 15 s)."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest

from bot.core.jobs import Job
from bot.core.pacing import recovery_bound
from bot.sandbox.discord import DiscordEmulator
from bot.sandbox.mjproxy import MjProxySimulator
from tests.e2e.conftest import Running

NOTE = "has not answered since"
POLL_INTERVAL = 3.0  # the default: the bound is then the 15 s floor
# Long enough for a doubling back-off (3, 6, 12, 24 s …) to leave the API unpolled for more than
# the bound after it came back; the bounded one probes at most every 5 s.
OUTAGE = 26.0


def status_texts(emu: DiscordEmulator, job: Job) -> list[str]:
    """Every content the job's status message was edited to, oldest first."""
    path = f"/channels/{job.route.post_channel_id}/messages/{job.route.status_message_id}"
    return [
        str((r.json or {}).get("content", ""))
        for r in emu.requests
        if r.method == "PATCH" and r.path.endswith(path)
    ]


def polled_at(sim: MjProxySimulator, task_id: str, after: float) -> float | None:
    """When the first list request naming the task arrived after `after` (monotonic)."""
    for r in sim.requests_to("/mj/task/list-by-condition"):
        if r.at > after and task_id in (r.json or {}).get("ids", []):
            return r.at
    return None


@pytest.mark.parametrize("profile", ["upstream"], indirect=True)
async def test_after_an_outage_every_job_is_polled_within_the_bound_and_members_were_told(
    emu: DiscordEmulator, sim: MjProxySimulator, bots: Running
) -> None:
    app = await bots.start(MJ_POLL_INTERVAL=str(POLL_INTERVAL))
    assert app.tracker is not None and app.storage is not None
    app.tracker.outage_notice_after = timedelta(seconds=4)
    sim.faults.never_finish = True  # the jobs stay running until the test finishes them
    alice = emu.add_user("alice")
    for n in range(3):
        await emu.slash_command("imagine", {"prompt": f"outage {n}"}, user_id=alice)

    async def placed() -> list[Job]:
        return [j for j in await app.storage.jobs.unfinished() if j.route.status_message_id]

    jobs: list[Job] = []
    deadline = time.monotonic() + 30
    while len(jobs) < 3:
        assert time.monotonic() < deadline, "the three jobs never got their status messages"
        jobs = await placed()
        await asyncio.sleep(0.2)
    await emu.wait_for(lambda: app.tracker is not None and app.tracker.tracked == 3, timeout=15)

    sim.faults.http_status = 503  # the outage begins
    down_at = time.monotonic()
    await emu.wait_for(
        lambda: all(any(NOTE in t for t in status_texts(emu, j)) for j in jobs),
        timeout=20,
        what="the outage note on every status message",
    )
    # Two of the three finish while the bot cannot see it; the third keeps running.
    finished, running = jobs[:2], jobs[2]
    for job in finished:
        assert job.task_id
        sim.complete(job.task_id)
    await emu.wait_for(lambda: time.monotonic() - down_at >= OUTAGE, timeout=OUTAGE + 5)
    sim.faults.http_status = None  # the API answers again
    back_at = time.monotonic()
    bound = recovery_bound(POLL_INTERVAL)

    for job in jobs:
        assert job.task_id
        task_id = job.task_id
        await emu.wait_for(
            lambda task_id=task_id: polled_at(sim, task_id, back_at) is not None,
            timeout=bound + 10,
            what=f"a poll of task {task_id} after the outage",
        )
        polled = polled_at(sim, task_id, back_at)
        assert polled is not None and polled - back_at <= bound, (
            f"job {job.id} first polled {polled - back_at:.1f}s after the API came back"
            if polled
            else ""
        )

    def posted(job: Job) -> bool:
        return any(
            r.method == "POST"
            and r.path.endswith(f"/channels/{job.route.post_channel_id}/messages")
            and f"job {job.id} " in str((r.json or {}).get("content", ""))
            for r in emu.requests
        )

    await emu.wait_for(lambda: all(posted(j) for j in finished), timeout=bound)
    # Told once per outage, and no note left behind once it is over: not on the job still
    # running, not on the two that finished.
    await emu.wait_for(
        lambda: all(status_texts(emu, j) and NOTE not in status_texts(emu, j)[-1] for j in jobs),
        timeout=10,
        what="the note taken back",
    )
    for job in jobs:
        noted = [t for t in status_texts(emu, job) if NOTE in t]
        assert len(noted) == 1, f"job {job.id} was told {len(noted)} times"
    assert not posted(running)
