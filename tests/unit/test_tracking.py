"""The tracker at scale and with callbacks, with hand-written fakes and a fake timer."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from datetime import timedelta

import pytest

from bot.core.errors import RateLimited, TaskNotFound, Unavailable
from bot.core.jobs import Job, JobStatus, Mode, Route, TaskSnapshot, TaskStatus
from bot.core.ledger import Ledger
from bot.core.pacing import recovery_bound
from bot.core.tracking import CALLBACK_POLL_FACTOR, MIN_REQUESTS_PER_SECOND, Tracker
from bot.core.watchlist import PROGRESS_SAVE_EVERY, PROGRESS_THROTTLE_ABOVE
from tests.unit.fakes import FakeApi, FakeClock, FakeObserver, InMemoryJobs, RecordingGate

ROUTE = Route(1, 2, 3, reply_message_id=4, thread_id=4, status_message_id=5)


class FakeTime:
    """Monotonic time that only moves when the tracker sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class ScriptedApi(FakeApi):
    """Records every read; can answer 429 or fail on a chosen list request."""

    def __init__(self, time: FakeTime) -> None:
        super().__init__()
        self.time = time
        self.at: list[float] = []  # when each list request was made
        self.lists: list[list[str]] = []
        self.fetches: list[str] = []
        self.limit_on: set[int] = set()  # 1-based list request numbers that answer 429
        self.retry_after: float | None = None
        self.down = False

    async def list_by_ids(self, task_ids: Sequence[str]) -> list[TaskSnapshot]:
        self.lists.append(list(task_ids))
        self.at.append(self.time.now)
        if len(self.lists) in self.limit_on:
            raise RateLimited("HTTP 429", retry_after=self.retry_after)
        if self.down:
            raise Unavailable("HTTP 502")
        return [self.snapshots[t] for t in task_ids if t in self.snapshots]

    async def fetch(self, task_id: str) -> TaskSnapshot:
        self.fetches.append(task_id)
        if task_id not in self.snapshots:
            raise TaskNotFound("no such task")
        return self.snapshots[task_id]


class CountingJobs(InMemoryJobs):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    async def replace(self, expected: Job, job: Job) -> bool:
        self.writes += 1
        return await super().replace(expected, job)


class World:
    def __init__(self, *, jobs: int = 0, rate: float = 10.0, callbacks: bool = False) -> None:
        self.time = FakeTime()
        self.api = ScriptedApi(self.time)
        self.jobs = CountingJobs()
        self.observer = FakeObserver()
        self.gate = RecordingGate()
        self.clock = FakeClock()
        self.tracker = Tracker(
            self.api,
            Ledger(self.jobs),
            self.observer,
            self.gate,
            self.clock,
            timeout=timedelta(minutes=15),
            interval=2.0,
            chunk_size=100,
            max_requests_per_second=rate,
            callbacks=callbacks,
            sleep=self.time.sleep,
            monotonic=self.time.monotonic,
        )
        for n in range(jobs):
            self.add(f"17306217181{n:05d}")

    def add(self, task_id: str) -> Job:
        job = Job(
            id=len(self.jobs.rows) + 1,
            route=ROUTE,
            mode=Mode.MID_JOURNEY,
            prompt="p",
            task_id=task_id,
            status=JobStatus.SUBMITTED,
            created_at=self.clock.now(),
            updated_at=self.clock.now(),
        )
        self.jobs.rows[job.id] = job
        return job

    def say(self, task_id: str, status: TaskStatus, progress: int = 0) -> None:
        url = "https://cdn.example/x.png" if status is TaskStatus.SUCCESS else None
        self.api.snapshots[task_id] = TaskSnapshot(task_id, status, progress, image_url=url)


# --- the cycle at scale ----------------------------------------------------------------------


async def test_a_cycle_makes_one_list_request_per_chunk_and_no_fetches() -> None:
    w = World(jobs=1_050)
    await w.tracker.poll_once()
    assert [len(ids) for ids in w.api.lists] == [100] * 10 + [50]
    assert len({t for ids in w.api.lists for t in ids}) == 1_050
    assert w.api.fetches == []
    assert w.tracker.tracked == 1_050


async def test_requests_are_paced_so_the_cycle_grows_with_the_number_of_jobs() -> None:
    w = World(jobs=1_000, rate=5.0)
    start = w.time.now
    await w.tracker.poll_once()
    # Ten requests, 0.2 s apart: the tenth goes 1.8 s after the first.
    assert w.time.now - start == pytest.approx(1.8)
    assert all(s == pytest.approx(0.2) for s in w.time.slept)
    assert w.tracker.cycle_seconds(100) == 2.0  # the poll interval bounds small loads
    assert w.tracker.cycle_seconds(1_000) == 2.0
    assert w.tracker.cycle_seconds(10_000) == pytest.approx(20.0)  # 100 chunks at 5/s
    assert w.tracker.cycle_seconds(100_000) == pytest.approx(200.0)


async def test_unchanged_jobs_cost_no_database_writes_and_no_discord_traffic() -> None:
    w = World(jobs=300)
    for job in list(w.jobs.rows.values())[:10]:
        w.say(job.task_id or "", TaskStatus.IN_PROGRESS, 31)
    await w.tracker.poll_once()
    assert w.jobs.writes == 10 and len(w.observer.progress) == 10
    await w.tracker.poll_once()  # the API says the same again
    assert w.jobs.writes == 10 and len(w.observer.progress) == 10


async def test_a_429_halves_the_rate_waits_retry_after_and_resumes_where_it_stopped() -> None:
    w = World(jobs=500, rate=8.0)
    w.api.limit_on = {3}
    w.api.retry_after = 30.0
    await w.tracker.poll_once()
    assert len(w.api.lists) == 3 and w.tracker.rate == 4.0
    cut_at = w.api.lists[2][0]  # the chunk that was refused

    await w.tracker.poll_once()
    assert w.api.at[3] - w.api.at[2] >= 30.0  # Retry-After is honoured
    assert w.api.lists[3][0] == cut_at  # resumed at the refused chunk
    assert len(w.api.lists) == 3 + 5  # then a whole cycle
    assert w.tracker.rate == pytest.approx(4.8)  # a clean cycle wins a tenth back


async def test_repeated_429s_without_retry_after_back_off_but_never_stop() -> None:
    w = World(jobs=100, rate=4.0)
    w.api.limit_on = set(range(1, 20))
    for _ in range(12):
        await w.tracker.poll_once()
    assert w.tracker.rate == MIN_REQUESTS_PER_SECOND
    assert len(w.api.lists) == 12  # one attempt per cycle
    gaps = [b - a for a, b in zip(w.api.at, w.api.at[1:], strict=False)]
    assert gaps == sorted(gaps) and gaps[0] >= 2.0 and gaps[-1] == 300.0  # doubling, capped


async def test_an_outage_backs_off_and_jobs_still_time_out() -> None:
    w = World(jobs=3)
    w.api.down = True
    w.clock.advance(minutes=16)
    await w.tracker.poll_once()
    assert {s for _, s in w.observer.posts} == {JobStatus.FAILED}
    assert len(w.observer.posts) == 3


async def test_finishes_in_one_cycle_are_each_posted_once() -> None:
    w = World(jobs=250)
    for job in w.jobs.rows.values():
        w.say(job.task_id or "", TaskStatus.SUCCESS)
    await w.tracker.poll_once()
    await w.tracker.poll_once()
    await w.tracker.flush_posts()
    assert sorted(j for j, _ in w.observer.posts) == list(range(1, 251))
    assert len(w.gate.settled) == 250


async def test_with_callbacks_polling_is_a_slower_safety_net() -> None:
    assert World(callbacks=True).tracker.interval == 2.0 * CALLBACK_POLL_FACTOR
    assert World().tracker.interval == 2.0


# --- hints (callbacks) -----------------------------------------------------------------------


async def test_a_hint_for_no_tracked_job_is_refused_without_an_api_call() -> None:
    w = World()
    done = w.add("1730621718151999")
    w.jobs.rows[done.id] = done.fail("over", w.clock.now())
    assert await w.tracker.hint("1730621718151000") is False  # unknown
    assert await w.tracker.hint("1730621718151999") is False  # already finished
    await w.tracker._look_up(w.tracker._hinted)
    assert w.api.fetches == [] and w.api.lists == []


async def test_a_hint_finds_a_tracked_job_in_the_cycles_view_without_a_ledger_read() -> None:
    """A burst of callbacks costs no ledger read each (issue 12's finish-1000): the owner of a
    tracked task comes from the last cycle's view; a job newer than the view from the ledger."""
    w = World(jobs=3)
    await w.tracker.poll_once()
    asked: list[str] = []
    by_task_id = w.jobs.by_task_id

    async def counted(task_id: str) -> Job | None:
        asked.append(task_id)
        return await by_task_id(task_id)

    w.jobs.by_task_id = counted  # type: ignore[method-assign]
    assert await w.tracker.hint("1730621718100001") is True
    assert asked == [] and w.tracker._hinted == {"1730621718100001": 2}
    newer = w.add("1730621718199999")  # accepted after the cycle read its view
    assert await w.tracker.hint("1730621718199999") is True
    assert asked == ["1730621718199999"] and w.tracker._hinted["1730621718199999"] == newer.id


async def test_a_hint_acts_on_what_the_api_says_not_on_the_callback() -> None:
    w = World()
    job = w.add("1730621718151844")
    w.say("1730621718151844", TaskStatus.IN_PROGRESS, 46)  # the API: not finished
    assert await w.tracker.hint("1730621718151844") is True
    await w.tracker._look_up(w.tracker._hinted)
    assert w.api.fetches == ["1730621718151844"]
    assert w.observer.posts == []
    assert w.observer.progress == [(job.id, JobStatus.IN_PROGRESS, 46)]

    w.say("1730621718151844", TaskStatus.SUCCESS)
    await w.tracker.hint("1730621718151844")
    await w.tracker.hint("1730621718151844")  # a repeated callback is one look-up
    batch, w.tracker._hinted = w.tracker._hinted, {}
    await w.tracker._look_up(batch)
    assert w.api.fetches == ["1730621718151844"] * 2
    assert w.observer.posts == [(job.id, JobStatus.SUCCEEDED)]


async def test_many_hints_at_once_are_looked_up_in_list_requests() -> None:
    w = World(jobs=250)
    for job in w.jobs.rows.values():
        assert await w.tracker.hint(job.task_id or "")
    await w.tracker._look_up(w.tracker._hinted)
    assert [len(ids) for ids in w.api.lists] == [100, 100, 50] and w.api.fetches == []


async def test_a_hint_for_a_task_the_api_does_not_know_changes_nothing() -> None:
    w = World()
    job = w.add("1730621718151844")
    await w.tracker.hint("1730621718151844")
    await w.tracker._look_up(w.tracker._hinted)
    assert w.api.fetches == ["1730621718151844"]
    assert w.jobs.rows[job.id] == job and w.observer.progress == []


async def test_an_outage_never_pauses_longer_than_a_third_of_the_recovery_bound() -> None:
    w = World(jobs=3)
    w.api.down = True
    for _ in range(10):
        await w.tracker.poll_once()
    gaps = [b - a for a, b in zip(w.api.at, w.api.at[1:], strict=False)]
    bound = recovery_bound(2.0)  # the World polls every 2 s: the 15 s floor applies
    assert gaps[0] == 2.0 and max(gaps) == pytest.approx(bound / 3)
    assert w.tracker.pacer.outage_since is not None
    w.api.down = False
    await w.tracker.poll_once()
    assert w.tracker.pacer.outage_since is None and len(w.api.lists) == 11


async def test_a_long_outage_is_shown_once_and_taken_back_when_it_ends() -> None:
    class Noting(FakeObserver):
        def __init__(self) -> None:
            super().__init__()
            self.notes: list[tuple[object, list[int]]] = []

        async def show_outage(self, since: object, jobs: Sequence[Job]) -> None:
            self.notes.append((since, [j.id for j in jobs]))

    w = World(jobs=3)
    noting = Noting()
    w.tracker.observer = noting
    w.api.down = True
    await w.tracker.poll_once()
    assert noting.notes == []  # not yet past the threshold
    w.clock.advance(seconds=61)
    await w.tracker.poll_once()
    await w.tracker.poll_once()
    assert noting.notes == [(w.tracker.pacer.outage_since, [1, 2, 3])]
    w.api.down = False
    await w.tracker.poll_once()
    assert noting.notes[1:] == [(None, [1, 2, 3])]


# --- unchanged answers (issue 12: an idle cycle parses nothing) -------------------------------


class MarkingApi(ScriptedApi):
    """Answers like `MjClient.list_if_changed`: a mark per answer, None for a repeated one."""

    def __init__(self, time: FakeTime) -> None:
        super().__init__(time)
        self.lasts: list[object] = []
        self.unchanged = 0

    async def list_if_changed(
        self, task_ids: Sequence[str], last: Hashable | None
    ) -> tuple[Hashable | None, list[TaskSnapshot] | None]:
        self.lasts.append(last)
        snaps = await self.list_by_ids(task_ids)
        mark = hash(tuple(snaps))
        if mark == last:
            self.unchanged += 1
            return mark, None
        return mark, snaps


class FlakyJobs(CountingJobs):
    def __init__(self) -> None:
        super().__init__()
        self.fail_writes = 0

    async def replace(self, expected: Job, job: Job) -> bool:
        if self.fail_writes:
            self.fail_writes -= 1
            raise OSError("disk full")
        return await super().replace(expected, job)


def marking_world(jobs: int) -> World:
    w = World()
    w.api = MarkingApi(w.time)
    w.jobs = FlakyJobs()
    w.tracker = Tracker(
        w.api,
        Ledger(w.jobs),
        w.observer,
        w.gate,
        w.clock,
        timeout=timedelta(minutes=15),
        interval=2.0,
        sleep=w.time.sleep,
        monotonic=w.time.monotonic,
    )
    for n in range(jobs):
        w.add(f"17306217181{n:05d}")
    return w


async def test_an_unchanged_answer_is_not_absorbed_again() -> None:
    w = marking_world(250)
    for n in range(250):
        w.say(f"17306217181{n:05d}", TaskStatus.IN_PROGRESS, 10)
    await w.tracker.poll_once()
    writes, shown = w.jobs.writes, len(w.observer.progress)
    assert writes > 0 and shown == 250
    await w.tracker.poll_once()
    assert w.api.unchanged == 3  # every chunk, unparsed
    assert (w.jobs.writes, len(w.observer.progress)) == (writes, shown)
    w.say("1730621718100007", TaskStatus.IN_PROGRESS, 20)  # one task moves on
    await w.tracker.poll_once()
    assert w.api.unchanged == 5  # the other two chunks
    assert w.jobs.rows[8].progress == 20


async def test_an_answer_that_failed_to_apply_is_applied_on_the_next_cycle() -> None:
    """A chunk's mark is kept only once all of it was applied: a status change whose write
    failed is read and applied again, though the API's answer has not changed."""
    w = marking_world(3)
    w.say("1730621718100001", TaskStatus.IN_PROGRESS, 10)
    w.jobs.fail_writes = 1
    await w.tracker.poll_once()
    assert w.jobs.rows[2].status is JobStatus.SUBMITTED  # the write failed
    await w.tracker.poll_once()
    assert w.api.lasts[-1] is None  # no mark kept: the answer is read again
    assert (w.jobs.rows[2].status, w.jobs.rows[2].progress) == (JobStatus.IN_PROGRESS, 10)
    await w.tracker.poll_once()
    assert w.api.unchanged == 1


class IdObserver(FakeObserver):
    """An observer that reads the jobs it shows (as the presenter with `load` does)."""

    reads_jobs = True

    def __init__(self) -> None:
        super().__init__()
        self.by_id: list[int] = []

    async def show_progress_of(self, job_id: int) -> None:
        self.by_id.append(job_id)


async def test_an_observer_that_reads_jobs_is_told_progress_by_id() -> None:
    w = World(jobs=3)
    w.observer = IdObserver()
    w.tracker = Tracker(
        w.api,
        Ledger(w.jobs),
        w.observer,
        w.gate,
        w.clock,
        timeout=timedelta(minutes=15),
        interval=2.0,
        sleep=w.time.sleep,
        monotonic=w.time.monotonic,
    )
    for n in range(3):
        w.say(f"17306217181{n:05d}", TaskStatus.SUBMITTED)
    await w.tracker.poll_once()  # SUBMITTED is no change for a SUBMITTED job
    w.say("1730621718100000", TaskStatus.IN_PROGRESS, 30)  # a status change: shown whole
    await w.tracker.poll_once()
    assert [p[0] for p in w.observer.progress] == [1] and w.observer.by_id == []
    w.say("1730621718100000", TaskStatus.IN_PROGRESS, 60)  # progress only: by id
    await w.tracker.poll_once()
    assert w.observer.by_id == [1] and w.jobs.rows[1].progress == 60


async def test_at_scale_progress_is_saved_at_most_every_so_often_and_finishes_never_wait() -> None:
    """Above PROGRESS_THROTTLE_ABOVE jobs a running job's progress is saved at most once every
    PROGRESS_SAVE_EVERY seconds (progress is what a crash may lose); its finish goes at once."""
    w = World(jobs=PROGRESS_THROTTLE_ABOVE + 1)
    first, second = "1730621718100000", "1730621718100001"
    w.say(first, TaskStatus.IN_PROGRESS, 10)
    w.say(second, TaskStatus.IN_PROGRESS, 10)
    await w.tracker.poll_once()  # a status change for both: applied at once
    w.say(first, TaskStatus.IN_PROGRESS, 20)
    await w.tracker.poll_once()  # progress only, never saved before: saved
    assert w.jobs.rows[1].progress == 20
    w.say(first, TaskStatus.IN_PROGRESS, 30)
    w.say(second, TaskStatus.SUCCESS, 100)
    await w.tracker.poll_once()
    assert w.jobs.rows[1].progress == 20  # held back: saved moments ago
    assert w.jobs.rows[2].status is JobStatus.SUCCEEDED  # a finish never waits
    w.time.now += PROGRESS_SAVE_EVERY
    await w.tracker.poll_once()
    assert w.jobs.rows[1].progress == 30  # due again: the newest progress is saved


async def test_below_the_threshold_every_progress_change_is_saved() -> None:
    w = World(jobs=10)
    task = "1730621718100000"
    for progress in (10, 20, 30):
        w.say(task, TaskStatus.IN_PROGRESS, progress)
        await w.tracker.poll_once()
        assert w.jobs.rows[1].progress == progress
