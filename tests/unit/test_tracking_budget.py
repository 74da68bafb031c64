"""The Discord budget shared by all jobs: the pure token buckets, and the presenter under load
with a small hand-written fake of the discord.py objects it calls."""

from __future__ import annotations

import asyncio
import bisect
import dataclasses
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.jobs import Button, Job, JobStatus, Mode, Route
from bot.discord_ui.budget import EditBudget
from bot.discord_ui.presenter import DiscordPresenter
from bot.discord_ui.render import status_content

# --- the windows -----------------------------------------------------------------------------


def most_in_any_window(times: list[float], span: float) -> int:
    """The largest number of `times` inside one half-open window of `span` seconds."""
    ordered = sorted(times)
    return max(
        (bisect.bisect_right(ordered, t + span - 1e-9) - i for i, t in enumerate(ordered)),
        default=0,
    )


def test_progress_stops_at_the_reserve_while_finishes_still_go_at_once() -> None:
    budget = EditBudget(limit=10, window=1.0, reserve=3, channel_limit=100, spread=False)
    sent = 0
    while budget.progress_wait(0.0) == 0:
        budget.take(sent, 0.0)
        sent += 1
    assert sent == 7  # the limit of 10 minus the reserve of 3
    for n in range(3):  # the reserve is the finishes'
        assert budget.finish_wait(100 + n, 0.0) == 0.0
        budget.take(100 + n, 0.0)
    # Beyond the limit a finish waits for the window to move on, and is never refused.
    assert budget.finish_wait(200, 0.0) == pytest.approx(1.0)
    assert budget.finish_wait(200, 0.5) == pytest.approx(0.5)
    assert budget.progress_wait(0.5) == pytest.approx(0.5)
    assert budget.finish_wait(200, 1.0) == 0.0 and budget.progress_wait(1.0) == 0.0


def test_a_busy_channel_holds_back_only_its_own_progress() -> None:
    budget = EditBudget(
        limit=100, channel_limit=5, channel_window=5.0, channel_reserve=1, spread=False
    )
    for _ in range(4):
        assert budget.channel_wait(7, 0.0) == 0
        budget.take(7, 0.0)
    assert budget.channel_wait(7, 0.0) == pytest.approx(5.0)  # its reserve is for the finish
    assert budget.channel_wait(8, 0.0) == 0
    assert budget.finish_wait(7, 0.0) == 0.0  # the finish takes the reserved slot
    budget.take(7, 0.0)
    assert budget.finish_wait(7, 0.0) == pytest.approx(5.0)
    assert budget.channel_wait(7, 10.0) == 0  # the window has moved on


def test_idle_channel_windows_are_forgotten() -> None:
    budget = EditBudget(limit=45)
    for channel in range(3000):
        budget.take(channel, channel / 1000)
    for channel in range(3000, 5000):  # later, other threads
        budget.take(channel, 100.0 + channel / 1000)
    assert budget.channel_wait(0, 200.0) == 0 and len(budget._channels) <= 2100


def test_a_burst_goes_out_evenly_spread() -> None:
    budget = EditBudget(limit=45, window=1.0, channel_limit=1000)
    now, sent = 0.0, []
    for n in range(90):
        now += budget.finish_wait(n, now)
        budget.take(n, now)
        sent.append(now)
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert min(gaps) == pytest.approx(0.9 / 45)  # evenly, a little under the average
    assert sent[44] == pytest.approx(44 * 0.9 / 45) and sent[45] == pytest.approx(1.0)


@given(
    st.lists(
        st.tuples(
            st.floats(min_value=0, max_value=0.3),  # time passing before the call
            st.booleans(),  # a finish (True) or a progress edit
            st.integers(min_value=0, max_value=3),  # the channel
        ),
        max_size=400,
    )
)
@settings(max_examples=200, deadline=None)
def test_no_window_ever_holds_more_than_its_limit(calls: list[tuple[float, bool, int]]) -> None:
    budget = EditBudget(limit=45, window=1.0, reserve=10, channel_limit=5, channel_window=5.0)
    now = 0.0
    sent: list[tuple[float, int]] = []
    for gap, finish, channel in calls:
        now += gap
        if finish:  # waits (time passes) until both windows have room, then goes
            now += budget.finish_wait(channel, now)
            budget.take(channel, now)
            sent.append((now, channel))
        elif budget.progress_wait(now) == 0 and budget.channel_wait(channel, now) == 0:
            budget.take(channel, now)
            sent.append((now, channel))
    assert most_in_any_window([t for t, _ in sent], 1.0) <= 45
    for c in range(4):
        assert most_in_any_window([t for t, ch in sent if ch == c], 5.0) <= 5


# --- the presenter under load ------------------------------------------------------------------


@dataclass
class Call:
    kind: str  # "edit" or "send"
    channel: int
    job: int
    content: str
    at: float = field(default_factory=time.monotonic)


class FakeDiscord:
    """What DiscordPresenter calls on discord.py: partial channels and messages. Each call is
    recorded with its time and takes `latency` seconds."""

    def __init__(self, latency: float = 0.001) -> None:
        self.calls: list[Call] = []
        self.latency = latency
        self.user = None
        self._ids = iter(range(10_000, 10**9))

    def get_partial_messageable(self, channel_id: int, *, guild_id: int) -> FakeChannel:
        return FakeChannel(self, channel_id)

    def get_guild(self, guild_id: int) -> None:
        return None


class FakeChannel:
    def __init__(self, discord: FakeDiscord, channel_id: int) -> None:
        self.discord, self.id = discord, channel_id

    def get_partial_message(self, message_id: int) -> FakeMessage:
        return FakeMessage(self, message_id)

    async def send(self, **kwargs: Any) -> Any:
        await asyncio.sleep(self.discord.latency)
        job = int(kwargs["nonce"].removeprefix("mjcord-"))
        self.discord.calls.append(Call("send", self.id, job, kwargs["content"]))
        return type("Sent", (), {"id": next(self.discord._ids)})()


class FakeMessage:
    def __init__(self, channel: FakeChannel, message_id: int) -> None:
        self.channel, self.id = channel, message_id

    async def edit(self, **kwargs: Any) -> None:
        await asyncio.sleep(self.channel.discord.latency)
        job = self.id - 500_000
        self.channel.discord.calls.append(Call("edit", self.channel.id, job, kwargs["content"]))


class NoFiles:
    async def fetch_reference(self, url: str, max_bytes: int) -> bytes:
        raise AssertionError("not used")

    async def download(self, url: str) -> bytes:
        raise AssertionError("not used")

    async def fit(self, data: bytes, max_bytes: int) -> bytes | None:
        raise AssertionError("not used")


def job(n: int, status: JobStatus = JobStatus.IN_PROGRESS, progress: int = 0) -> Job:
    route = Route(
        guild_id=1,
        channel_id=2,
        requester_id=3,
        thread_id=1_000 + n,  # one thread per job, as /imagine makes
        status_message_id=500_000 + n,
    )
    return Job(
        id=n,
        route=route,
        mode=Mode.MID_JOURNEY,
        prompt=f"job {n}",
        task_id=str(1730621718151000 + n),
        status=status,
        progress=progress,
        fail_reason="over" if status is JobStatus.FAILED else "",
    )


def presenter(discord: FakeDiscord, budget: EditBudget) -> DiscordPresenter:
    return DiscordPresenter(discord, NoFiles(), min_edit_interval=0.2, budget=budget)  # type: ignore[arg-type]


async def test_under_load_progress_is_coalesced_and_finishes_are_not_held_back() -> None:
    discord = FakeDiscord()
    # As in production, the window is a little longer than the one checked: calls are booked
    # when asked for and arrive a latency later.
    budget = EditBudget(limit=100, window=0.55, reserve=5)
    shown = presenter(discord, budget)
    jobs = 400
    try:
        for step in (15, 31, 46, 62, 78):  # five progress states for each of 400 jobs
            for n in range(1, jobs + 1):
                await shown.show_progress(job(n, progress=step))
        await asyncio.sleep(0.3)  # the pump is busy: far more edits are due than the budget
        asked = time.monotonic()
        finishing = [job(n, JobStatus.FAILED) for n in range(1, 31)]
        ids = await asyncio.gather(*(shown.post_finish(j) for j in finishing))
        finish_time = time.monotonic() - asked

        sends = [c for c in discord.calls if c.kind == "send"]
        assert len(sends) == 30 and all(ids)  # every finish posted, none dropped
        # 30 finishes fit in one window (the reserve, then the slots progress leaves free),
        # whatever the backlog of progress edits.
        assert finish_time < 0.5 + 0.1
        assert shown.counts["coalesced"] > 0
        # Every REST call, edits and posts together, stayed within the one budget.
        assert most_in_any_window([c.at for c in discord.calls], 0.5) <= 100
    finally:
        await shown.close()


async def test_every_job_ends_showing_its_newest_state() -> None:
    discord = FakeDiscord()
    shown = presenter(discord, EditBudget(limit=500, window=0.5, reserve=5))
    try:
        for step in (15, 31, 46, 62, 78, 93):
            for n in range(1, 51):
                await shown.show_progress(job(n, progress=step))
        await shown.show_progress(job(7, JobStatus.SUCCEEDED, 100))

        def last_edit(n: int) -> str:
            return [c.content for c in discord.calls if c.kind == "edit" and c.job == n][-1]

        assert shown._pump is not None
        await asyncio.wait_for(shown._pump, 5)  # it ends when the queue is empty
        await asyncio.gather(*shown._in_flight)
        assert "93%" in last_edit(1) and "93%" in last_edit(50)
        assert "93%" not in last_edit(7)  # replaced by its finish state
        edits_per_job = len([c for c in discord.calls if c.kind == "edit"]) / 50
        assert edits_per_job < 6  # six states each: some were coalesced away
    finally:
        await shown.close()


@pytest.mark.parametrize("status", [s for s in JobStatus if not s.finished])
async def test_a_waiting_edit_shows_what_the_full_job_would(status: JobStatus) -> None:
    discord = FakeDiscord()
    shown = presenter(discord, EditBudget())
    full = dataclasses.replace(
        job(1, status, progress=46),
        prompt="a long prompt " * 200,
        final_prompt="a long final prompt " * 100,
        custom_id="MJ::JOB::variation::2::abc",
        queue_position=3,
        fail_reason="why",
        buttons=(Button("MJ::JOB::upsample::1::abc", "U1"),),
    )
    try:
        await shown.show_progress(full)
        assert shown._pump is not None
        await asyncio.wait_for(shown._pump, 5)
        await asyncio.gather(*shown._in_flight)
        assert [c.content for c in discord.calls] == [status_content(full)]
    finally:
        await shown.close()


async def test_with_a_loader_waiting_edits_hold_ids_and_show_the_ledgers_newest_state() -> None:
    """With `load` (issue 12's memory goal), a waiting edit holds no job, only its id, and
    shows what the ledger holds when its turn comes; a finish not yet posted is never edited
    ahead of its post, and the state a finish post gives is shown as given."""
    discord = FakeDiscord()
    ledger = {n: job(n, progress=15) for n in range(1, 41)}
    reads: list[list[int]] = []

    async def load(ids: Any) -> list[Job]:
        reads.append(list(ids))
        return [ledger[i] for i in ids if i in ledger]

    shown = DiscordPresenter(
        discord,  # type: ignore[arg-type]
        NoFiles(),  # type: ignore[arg-type]
        min_edit_interval=0.2,
        budget=EditBudget(limit=500, window=0.5, reserve=5),
        load=load,
    )
    try:
        for n in range(1, 41):
            await shown.show_progress(ledger[n])
        assert all(state is None for state in shown._pending.values())  # ids only
        for n in range(1, 41):
            ledger[n] = job(n, progress=62)  # the ledger moves on before the edits go
        ledger[5] = job(5, JobStatus.SUCCEEDED, 100)  # finished, its post not made yet
        del ledger[6]  # gone
        assert shown._pump is not None
        await asyncio.wait_for(shown._pump, 5)
        await asyncio.gather(*shown._in_flight)
        edits = {c.job: c.content for c in discord.calls if c.kind == "edit"}
        assert set(edits) == set(range(1, 41)) - {5, 6}
        assert all("62%" in text for text in edits.values())
        assert len(reads) < 40 and max(len(r) for r in reads) > 1  # read several at once
        await shown.post_finish(ledger[5])
        await asyncio.wait_for(shown._pump, 5)
        await asyncio.gather(*shown._in_flight)
        last = [c for c in discord.calls if c.job == 5]
        assert [c.kind for c in last] == ["send", "edit"]  # the finish first, then its edit
        assert last[1].content == status_content(ledger[5])
    finally:
        await shown.close()
