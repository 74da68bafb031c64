"""The leases on a command's steps (bot.core.leases) on SQLite and PostgreSQL: a new job is its
recording process's, a lapsed one is won by exactly one claimant however many race for it, and
a process whose job was taken over cannot extend its lease to submit it."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from bot.adapters.storage import Storage
from bot.adapters.storage.jobs import SqlJobRepository
from bot.core.jobs import Job, JobStatus, PostState, Route
from bot.core.leases import LEASE, STEPS_HORIZON
from tests.integration.test_storage import T0, Target, make_job
from tests.integration.test_storage import target as target  # the fixture

LAPSED = T0 + LEASE + timedelta(seconds=1)
_tasks = itertools.count(1)


def left_midway(**changes: object) -> Job:
    """A command cut short after its submit: no reply, no thread, no status message yet."""
    fields: dict[str, object] = {
        "task_id": f"task-{next(_tasks)}",
        "created_at": T0,
        "status": JobStatus.QUEUED,
        "route": Route(guild_id=1, channel_id=2, requester_id=3),
    }
    return make_job(**{**fields, **changes})


def done(job: Job) -> Job:
    """The same job with every step done: shown in its thread, its token forgotten."""
    route = dataclasses.replace(job.route, reply_message_id=9, thread_id=9, status_message_id=10)
    return dataclasses.replace(job, route=route, ack=None)


@pytest.fixture
async def processes(target: Target) -> AsyncIterator[list[Storage]]:
    """Four bot processes' storage on one database."""
    opened = [await target.open() for _ in range(4)]
    try:
        yield opened
    finally:
        for storage in opened:
            await storage.close()


async def test_a_new_job_is_its_process_s_until_the_lease_lapses(
    processes: list[Storage],
) -> None:
    first, second = processes[0], processes[1]
    job = await first.jobs.add(left_midway())
    claimer = second.leases()

    assert await claimer.claim(T0 + timedelta(seconds=1), LAPSED, orphans=False) == []
    assert await claimer.claim(LAPSED, LAPSED + LEASE, orphans=False) == [job.id]
    # The first process (alive after all, say) cannot extend its lease to submit it.
    assert await first.leases().keep(job.id, LAPSED + LEASE) is False
    assert await claimer.keep(job.id, LAPSED + LEASE) is True
    # Nobody else may claim it from the new holder while its lease runs.
    assert await processes[2].leases().claim(LAPSED, LAPSED, orphans=False) == []


async def test_renewal_keeps_a_live_process_s_jobs_and_gives_up_those_whose_steps_are_done(
    processes: list[Storage],
) -> None:
    first, second = processes[0], processes[1]
    working = await first.jobs.add(left_midway())
    shown = await first.jobs.add(left_midway())
    await first.jobs.save(done(shown))

    await first.leases().renew(T0 + timedelta(minutes=1), done_before=T0 - STEPS_HORIZON)

    later = T0 + timedelta(seconds=30)
    assert await second.leases().claim(later, later + LEASE, orphans=False) == []
    # The renewal gave up the finished one: nobody holds it, and nobody needs to.
    row = await _lease(first, shown.id)
    assert row == ("", None)
    assert (await _lease(first, working.id))[0] == first.worker


async def test_jobs_still_left_midway_after_the_horizon_wait_for_the_next_start(
    processes: list[Storage],
) -> None:
    first, second = processes[0], processes[1]
    old = await first.jobs.add(left_midway())
    await first.leases().renew(T0 + STEPS_HORIZON, done_before=T0 + timedelta(seconds=1))

    assert await _lease(first, old.id) == ("", None)
    now = T0 + STEPS_HORIZON
    assert await second.leases().claim(now, now + LEASE, orphans=False) == []
    assert await second.leases().claim(now, now + LEASE, orphans=True) == [old.id]


async def test_a_job_nobody_holds_is_taken_only_at_a_start(processes: list[Storage]) -> None:
    unleased = SqlJobRepository(processes[0].engine)  # a row from before leases existed
    job = await unleased.add(left_midway())
    claimer = processes[1].leases()

    assert await claimer.claim(LAPSED, LAPSED + LEASE, orphans=False) == []
    assert await claimer.claim(LAPSED, LAPSED + LEASE, orphans=True) == [job.id]


async def test_a_lapsed_lease_on_a_job_with_no_step_left_is_cleared_not_claimed(
    processes: list[Storage],
) -> None:
    first, second = processes[0], processes[1]
    job = await first.jobs.add(left_midway())
    await first.jobs.save(done(job))  # its process died before the renewal that gives it up

    assert await second.leases().claim(LAPSED, LAPSED + LEASE, orphans=True) == []
    assert await _lease(first, job.id) == ("", None)


async def test_many_processes_racing_for_lapsed_jobs_win_each_exactly_once(
    processes: list[Storage],
) -> None:
    dead, *alive = processes
    jobs = [await dead.jobs.add(left_midway(task_id=f"t{i}")) for i in range(30)]
    # On PostgreSQL, also jobs nobody holds, taken by the claims of processes starting.
    shared = dead.backend == "postgresql"
    if shared:
        unleased = SqlJobRepository(dead.engine)
        jobs += [await unleased.add(left_midway(task_id=f"u{i}")) for i in range(10)]
    rounds = [
        leases.claim(LAPSED + timedelta(milliseconds=n), LAPSED + LEASE, orphans=shared and n > 1)
        for n in range(4)
        for leases in (s.leases() for s in alive)
    ]
    won = await asyncio.gather(*rounds)

    every = [job_id for ids in won for job_id in ids]
    assert sorted(every) == [j.id for j in jobs]  # each exactly once
    holders = {(await _lease(dead, j.id))[0] for j in jobs}
    assert holders <= {s.worker for s in alive}


async def test_a_slow_holder_and_a_claimant_racing_never_both_get_the_submit(
    processes: list[Storage],
) -> None:
    holder, claimant = processes[0], processes[1]
    jobs = [await holder.jobs.add(left_midway(task_id=f"r{i}")) for i in range(20)]
    keeps = [holder.leases().keep(j.id, LAPSED + LEASE) for j in jobs]
    claims = [claimant.leases().claim(LAPSED, LAPSED + LEASE, orphans=False)]
    *kept, claimed = await asyncio.gather(*keeps, *claims)

    for job, still_held in zip(jobs, kept, strict=True):
        assert still_held is (job.id not in claimed), job.id


async def test_on_a_database_one_process_serves_a_start_takes_everything_at_once(
    processes: list[Storage],
) -> None:
    earlier, restarted = processes[0], processes[1]
    job = await earlier.jobs.add(left_midway())  # its lease has not lapsed yet
    soon = T0 + timedelta(seconds=1)

    got = await restarted.leases().claim(soon, soon + LEASE, orphans=True)
    assert got == ([job.id] if restarted.backend == "sqlite" else [])


async def _lease(storage: Storage, job_id: int) -> tuple[str, object]:
    from sqlalchemy import select

    from bot.adapters.storage.schema import jobs

    async with storage.engine.connect() as conn:
        row = (
            await conn.execute(
                select(jobs.c.worked_by, jobs.c.worked_until).where(jobs.c.id == job_id)
            )
        ).one()
    return (row[0], row[1])


# Jobs whose post is due are not the leases' business (the tracker posts them).
async def test_a_finished_job_waiting_for_its_post_is_not_left_midway(
    processes: list[Storage],
) -> None:
    first, second = processes[0], processes[1]
    job = await first.jobs.add(
        done(left_midway(status=JobStatus.SUCCEEDED, post_state=PostState.INTENT))
    )
    assert await second.leases().claim(LAPSED, LAPSED + LEASE, orphans=True) == []
    assert job.id
