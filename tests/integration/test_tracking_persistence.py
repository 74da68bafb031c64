"""The tracker's batched persistence on SQLite and PostgreSQL: a crash between chunks loses at
most progress, never a status change or a finish, and a restart picks up from the database."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest

from bot.adapters.storage import Storage, StorageError
from bot.adapters.storage.jobs import SqlJobRepository
from bot.core import tracking
from bot.core.jobs import Job, JobStatus, PostState, TaskSnapshot, TaskStatus
from bot.core.ledger import Ledger
from bot.core.tracking import Tracker
from bot.core.watchlist import TrackingStore, Watched
from tests.integration import test_storage as contract
from tests.unit.fakes import FakeApi, FakeClock, FakeObserver, RecordingGate

# The storage contract's fixtures: each test runs on SQLite and on PostgreSQL.
target = contract.target
storage = contract.storage
make_job = contract.make_job


class Mortal:
    """The SQL repository of a process that dies at the `die_at`-th full read: from then on
    nothing it does reaches the database (as after SIGKILL)."""

    def __init__(self, repo: SqlJobRepository, die_at: int) -> None:
        self.repo = repo
        self.reads = 0
        self.die_at = die_at
        self.dead = False

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.repo, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            if self.dead:
                raise StorageError("the process is dead")
            return await method(*args, **kwargs)

        return call

    async def watched(self) -> list[Watched]:
        return await self.__getattr__("watched")()  # type: ignore[no-any-return]

    async def many(self, job_ids: Sequence[int]) -> list[Job]:
        self.reads += 1
        if self.reads >= self.die_at:
            self.dead = True
        return await self.__getattr__("many")(job_ids)  # type: ignore[no-any-return]

    async def save_progress(self, jobs: Sequence[Job]) -> None:
        await self.__getattr__("save_progress")(jobs)


def tracker(repo: Any, api: FakeApi, observer: FakeObserver, clock: FakeClock) -> Tracker:
    async def no_sleep(_: float) -> None:
        return None

    return Tracker(
        api,
        Ledger(repo),
        observer,
        RecordingGate(),
        clock,
        timeout=timedelta(minutes=15),
        interval=1.0,
        chunk_size=10,
        max_requests_per_second=1000.0,
        sleep=no_sleep,
    )


async def seed(storage: Storage, n: int, clock: FakeClock) -> list[Job]:
    jobs = []
    for i in range(n):
        job = make_job(
            task_id=f"task-{i}",
            status=JobStatus.SUBMITTED,
            progress=0,
            queue_position=None,
            buttons=(),
            image_url=None,
            created_at=clock.now(),
            updated_at=clock.now(),
        )
        jobs.append(await storage.jobs.add(job))
    return jobs


def script(api: FakeApi, jobs: list[Job]) -> dict[int, TaskSnapshot]:
    """Every third task moves on in progress only, every third starts running, every third
    finishes; returns the snapshot per job id."""
    said = {}
    for n, job in enumerate(jobs):
        assert job.task_id
        if n % 3 == 0:
            snap = TaskSnapshot(job.task_id, TaskStatus.SUBMITTED, 0, final_prompt="p2")
        elif n % 3 == 1:
            snap = TaskSnapshot(job.task_id, TaskStatus.IN_PROGRESS, 40, image_url="https://x/p")
        else:
            snap = TaskSnapshot(job.task_id, TaskStatus.SUCCESS, 100, image_url="https://x/i")
        api.snapshots[job.task_id] = said[job.id] = snap
    return said


async def test_save_progress_never_undoes_a_status_or_lowers_progress(storage: Storage) -> None:
    repo = storage.jobs
    assert isinstance(repo, TrackingStore)
    a = await repo.add(make_job(task_id="a", progress=10))
    b = await repo.add(make_job(task_id="b", progress=10))
    c = await repo.add(make_job(task_id="c", progress=50))
    # b finished meanwhile (another writer's compare-and-set); c moved further already.
    await repo.save(dataclasses.replace(b, status=JobStatus.SUCCEEDED, progress=100))
    await repo.save_progress(
        [dataclasses.replace(j, progress=30, image_url="https://x/preview") for j in (a, b, c)]
    )
    got = {j.task_id: j for j in await repo.many([a.id, b.id, c.id])}
    assert (got["a"].progress, got["a"].image_url) == (30, "https://x/preview")
    assert (got["b"].status, got["b"].progress) == (JobStatus.SUCCEEDED, 100)
    assert got["c"].progress == 50
    assert [w.task_id for w in await repo.watched()] == ["a", "c"]
    assert await repo.overdue(make_job().created_at) == []
    assert await repo.overdue(make_job().created_at + timedelta(microseconds=1)) == [a.id, c.id]


async def test_a_crash_between_chunks_loses_at_most_progress(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One chunk absorbed at a time, so the crash at the third chunk's read comes after the first
    # two were applied in full (with more ahead, it would land inside them: also allowed, but
    # then this test would show less).
    monkeypatch.setattr(tracking, "ABSORB_AHEAD", 1)
    clock = FakeClock()
    jobs = await seed(storage, 60, clock)
    api = FakeApi()
    said = script(api, jobs)
    observer = FakeObserver()
    mortal = Mortal(storage.jobs, die_at=3)  # dies at the third chunk's read
    with contextlib.suppress(StorageError):  # the cycle's last read, as the poll loop logs it
        await tracker(mortal, api, observer, clock).poll_once()
    assert mortal.dead

    stored = {j.id: j for j in await storage.jobs.many([j.id for j in jobs])}
    # What members saw before the crash is in the database, but for progress: every status
    # shown and every finish posted survived.
    for job_id, status, _ in observer.progress:
        assert stored[job_id].status is status
    for job_id, status in observer.posts:
        assert (stored[job_id].status, stored[job_id].post_state) == (status, PostState.POSTED)
    # Some jobs were never reached: the crash really came between chunks.
    assert any(
        stored[j.id].status is JobStatus.SUBMITTED and said[j.id].status is not TaskStatus.SUBMITTED
        for j in jobs
    )
    before = len(observer.posts)
    assert 0 < before < 20

    # The restart: a new tracker on the same database brings every job to what the API says,
    # and posts each finish exactly once overall.
    await tracker(storage.jobs, api, observer, clock).poll_once()
    stored = {j.id: j for j in await storage.jobs.many([j.id for j in jobs])}
    for job in jobs:
        snap, row = said[job.id], stored[job.id]
        assert row.final_prompt in ("p2", job.final_prompt)
        if snap.status is TaskStatus.SUCCESS:
            assert (row.status, row.post_state) == (JobStatus.SUCCEEDED, PostState.POSTED)
        elif snap.status is TaskStatus.IN_PROGRESS:
            assert (row.status, row.progress, row.image_url) == (
                JobStatus.IN_PROGRESS,
                40,
                "https://x/p",
            )
        else:
            assert (row.status, row.final_prompt) == (JobStatus.SUBMITTED, "p2")
    posted = [job_id for job_id, _ in observer.posts]
    assert sorted(posted) == sorted(j.id for j in jobs if said[j.id].status is TaskStatus.SUCCESS)


async def test_progress_is_one_write_per_chunk_not_one_per_job(storage: Storage) -> None:
    clock = FakeClock()
    jobs = await seed(storage, 30, clock)
    api = FakeApi()
    for job in jobs:
        assert job.task_id
        api.snapshots[job.task_id] = TaskSnapshot(
            job.task_id, TaskStatus.SUBMITTED, final_prompt="p"
        )
    observer = FakeObserver()
    calls: list[str] = []

    class Counting(SqlJobRepository):
        async def replace(self, expected: Job, job: Job) -> bool:
            calls.append("replace")
            return await super().replace(expected, job)

        async def save_progress(self, batch: Sequence[Job]) -> None:
            calls.append(f"batch of {len(batch)}")
            await super().save_progress(batch)

    counting = Counting(storage.engine)  # the same database, counted
    t = tracker(counting, api, observer, clock)
    await t.poll_once()
    assert calls == ["batch of 10"] * 3
    calls.clear()
    await t.poll_once()  # nothing changed: no writes, no reads of full rows
    assert calls == []


async def test_the_watched_fingerprint_moves_with_every_change_the_view_holds(
    storage: Storage,
) -> None:
    repo = storage.jobs
    a = await repo.add(make_job(task_id="a", status=JobStatus.QUEUED, progress=0))
    b = await repo.add(make_job(task_id="b", status=JobStatus.IN_PROGRESS, progress=10))
    seen = {await repo.watched_version()}
    assert await repo.watched_version() in seen  # nothing changed: the same

    async def changed() -> bool:
        version = await repo.watched_version()
        new = version not in seen
        seen.add(version)
        return new

    await repo.save_progress([dataclasses.replace(b, progress=20)])
    assert not await changed()  # progress is not in the view: a moving task costs no re-read
    await repo.save(dataclasses.replace(a, status=JobStatus.SUBMITTED))
    assert await changed()  # a status
    c = await repo.add(make_job(task_id=None, status=JobStatus.SUBMITTING))
    assert not await changed()  # no task id yet: not watched
    await repo.save(dataclasses.replace(c, task_id="c", status=JobStatus.QUEUED))
    assert await changed()  # joined
    await repo.save(dataclasses.replace(b, status=JobStatus.SUCCEEDED, progress=100))
    assert await changed()  # left


async def test_the_progress_view_holds_what_absorbing_reads(storage: Storage) -> None:
    """`progress_view` (what the tracker reads when its observer reads the jobs it shows) agrees
    with the full job on every field a snapshot's absorption reads, so both absorb alike."""
    repo = storage.jobs
    assert isinstance(repo, TrackingStore)
    rows = [
        await repo.add(make_job(task_id="a", progress=10, image_url="https://x/p")),
        await repo.add(
            make_job(task_id="b", status=JobStatus.QUEUED, queue_position=3, final_prompt="fp")
        ),
        await repo.add(
            make_job(task_id="c", status=JobStatus.FAILED, fail_reason="no", progress=0)
        ),
    ]
    done = dataclasses.replace(rows[2], finished_at=rows[2].created_at)
    await repo.save(done)
    full = {j.id: j for j in await repo.many([j.id for j in rows])}
    slim = {j.id: j for j in await repo.progress_view([j.id for j in rows])}
    assert set(slim) == set(full)
    now = rows[0].created_at
    for job_id, whole in full.items():
        part = slim[job_id]
        for field in ("task_id", "status", "progress", "queue_position", "image_url"):
            assert getattr(part, field) == getattr(whole, field)
        assert (part.fail_reason, part.final_prompt, part.buttons, part.post_state) == (
            whole.fail_reason,
            whole.final_prompt,
            whole.buttons,
            whole.post_state,
        )
        assert (part.finished_at is None) == (whole.finished_at is None)
        for snap in (
            TaskSnapshot(whole.task_id or "", TaskStatus.IN_PROGRESS, 55, image_url="https://y"),
            TaskSnapshot(whole.task_id or "", TaskStatus.SUCCESS, 100),
        ):
            a, b = whole.absorb(snap, now), part.absorb(snap, now)
            assert (a is whole) == (b is part)
            assert (a.status, a.progress, a.image_url, a.final_prompt) == (
                b.status,
                b.progress,
                b.image_url,
                b.final_prompt,
            )
