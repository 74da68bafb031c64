from datetime import timedelta

import pytest

from bot.core.errors import BannedPrompt
from bot.core.jobs import JobStatus, Mode, PostState, Route, TaskSnapshot, TaskStatus
from bot.core.ledger import Ledger
from bot.core.ports import Ticket
from bot.core.services import ImagineService
from bot.core.tracking import Tracker
from bot.discord_ui.render import failure_text as describe_failure
from tests.unit.fakes import FakeApi, FakeClock, FakeObserver, InMemoryJobs, RecordingGate

ROUTE = Route(guild_id=1, channel_id=2, requester_id=3, reply_message_id=4, no_thread=True)
TICKET = Ticket(guild_id=1, channel_id=2, user_id=3)


@pytest.fixture
def world() -> tuple[FakeApi, InMemoryJobs, FakeObserver, RecordingGate, FakeClock]:
    return FakeApi(), InMemoryJobs(), FakeObserver(), RecordingGate(), FakeClock()


def make(world: tuple) -> tuple[ImagineService, Tracker]:  # type: ignore[type-arg]
    api, jobs, observer, gate, clock = world
    ledger = Ledger(jobs)
    service = ImagineService(api, ledger, gate, clock)
    tracker = Tracker(api, ledger, observer, gate, clock, timeout=timedelta(minutes=10), interval=1)
    return service, tracker


async def test_submit_stores_the_job_with_its_task_id_before_returning(world: tuple) -> None:
    api, jobs, *_ = world
    service, _ = make(world)
    job = await service.submit(ROUTE, Mode.NIJI_JOURNEY, "a cat", ticket=TICKET)
    assert jobs.rows[job.id].task_id == job.task_id is not None
    assert jobs.rows[job.id].status is JobStatus.QUEUED
    assert (
        api.submitted[0].state == f"mjcord:{job.id}" and api.submitted[0].mode is Mode.NIJI_JOURNEY
    )


async def test_refused_submit_is_recorded_failed_settled_and_reraised(world: tuple) -> None:
    api, jobs, observer, gate, _ = world
    api.refuse_with = BannedPrompt("code 24", word="gore")
    service, tracker = make(world)
    with pytest.raises(BannedPrompt):
        await service.submit(ROUTE, Mode.MID_JOURNEY, "gore", ticket=TICKET)
    (row,) = jobs.rows.values()
    assert row.status is JobStatus.FAILED and row.post_state is PostState.POSTED
    assert gate.settled == [(row.id, JobStatus.FAILED)]
    await tracker.poll_once()
    assert observer.posts == []  # the member was told directly; nothing is posted later


async def test_tracker_polls_all_jobs_in_one_call_and_posts_each_finish_once(world: tuple) -> None:
    api, jobs, observer, gate, _ = world
    service, tracker = make(world)
    a = await service.submit(ROUTE, Mode.MID_JOURNEY, "a", ticket=TICKET)
    b = await service.submit(ROUTE, Mode.MID_JOURNEY, "b", ticket=TICKET)
    api.snapshots[a.task_id] = TaskSnapshot(a.task_id, TaskStatus.IN_PROGRESS, 46)  # type: ignore[index, arg-type]
    api.snapshots[b.task_id] = TaskSnapshot(b.task_id, TaskStatus.SUCCESS, 100, image_url="u")  # type: ignore[index, arg-type]
    await tracker.poll_once()
    assert api.list_calls == 1
    assert observer.progress == [(a.id, JobStatus.IN_PROGRESS, 46)]
    assert observer.posts == [(b.id, JobStatus.SUCCEEDED)]
    await tracker.poll_once()
    assert observer.posts == [(b.id, JobStatus.SUCCEEDED)]
    assert (
        jobs.rows[b.id].post_state is PostState.POSTED
        and jobs.rows[b.id].result_message_id == 9000 + b.id
    )
    assert gate.settled == [(b.id, JobStatus.SUCCEEDED)]


async def test_a_failed_post_stays_pending_and_is_retried(world: tuple) -> None:
    api, jobs, observer, *_ = world
    service, tracker = make(world)
    job = await service.submit(ROUTE, Mode.MID_JOURNEY, "a", ticket=TICKET)
    api.snapshots[job.task_id] = TaskSnapshot(job.task_id, TaskStatus.FAILURE, fail_reason="x")  # type: ignore[index, arg-type]
    observer.fail_next_posts = 2  # the cycle's own attempt and its end-of-cycle retry
    await tracker.poll_once()
    assert jobs.rows[job.id].post_state is PostState.INTENT and observer.posts == []
    await tracker.poll_once()
    assert observer.posts == [(job.id, JobStatus.FAILED)]


async def test_jobs_past_the_time_limit_fail_with_a_message(world: tuple) -> None:
    api, jobs, observer, gate, clock = world
    service, tracker = make(world)
    job = await service.submit(ROUTE, Mode.MID_JOURNEY, "a", ticket=TICKET)
    api.snapshots[job.task_id] = TaskSnapshot(job.task_id, TaskStatus.IN_PROGRESS, 15)  # type: ignore[index, arg-type]
    clock.advance(minutes=11)
    await tracker.poll_once()
    row = jobs.rows[job.id]
    assert row.status is JobStatus.FAILED and "10 minutes" in row.fail_reason
    assert observer.posts == [(job.id, JobStatus.FAILED)]
    assert gate.settled == [(job.id, JobStatus.FAILED)]


def test_failure_reasons_in_plain_words() -> None:
    assert "content rules" in describe_failure("[Banned prompt detected] Sorry!")
    assert "content rules" in describe_failure("可能包含敏感词")
    assert "too long" in describe_failure("执行超时 5 分钟")
    assert "too long" in describe_failure("上游任务超时（超过1小时）")
    assert describe_failure("The bot restarted.") == "The bot restarted."
    assert "could not make" in describe_failure("weird")


async def test_a_stale_writer_cannot_undo_a_finish(world: tuple) -> None:
    import dataclasses

    _api, jobs, *_ = world
    service, _ = make(world)
    job = await service.submit(ROUTE, Mode.MID_JOURNEY, "a", ticket=TICKET)
    stale = jobs.rows[job.id]
    finished = dataclasses.replace(stale, status=JobStatus.SUCCEEDED, post_state=PostState.INTENT)
    assert await jobs.replace(stale, finished)
    # Another process still holding `stale` tries to write progress over the finish:
    assert not await jobs.replace(stale, dataclasses.replace(stale, progress=46))
    ledger = Ledger(jobs)
    assert (
        await ledger.update(
            job.id,
            lambda j: j.absorb(
                TaskSnapshot(job.task_id or "", TaskStatus.IN_PROGRESS, 46), j.updated_at
            ),
        )
        is None
    )
    assert jobs.rows[job.id].status is JobStatus.SUCCEEDED
