"""Small hand-written fakes of the core ports, for unit tests of bot.core."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from bot.core.errors import ApiError, Refused, Unavailable, Unsupported
from bot.core.jobs import (
    Job,
    JobStatus,
    Mode,
    PostState,
    ReferenceImage,
    Submission,
    TaskSnapshot,
    TaskStatus,
)
from bot.core.ports import ImagineRequest, Ticket


class FakeClock:
    def __init__(self) -> None:
        self.current = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.current

    def advance(self, **kwargs: float) -> None:
        self.current += timedelta(**kwargs)


class FakeApi:
    def __init__(self) -> None:
        self.submitted: list[ImagineRequest] = []
        self.snapshots: dict[str, TaskSnapshot] = {}
        self.refuse_with: ApiError | None = None
        self.list_calls = 0
        self._next = 1730621826053000
        #: Tasks by their `state`, as an upstream server lists them; None: the server cannot
        #: look (an aggregator); an ApiError: the server is down.
        self.by_state: dict[str, TaskSnapshot] | None = {}
        self.look_up_error: ApiError | None = None
        self.lost_answers = 0  # the next submits arrive but their answer is lost

    async def imagine(self, request: ImagineRequest) -> Submission:
        if self.refuse_with:
            raise self.refuse_with
        self.submitted.append(request)
        self._next += 1
        task_id = str(self._next)
        if self.by_state is not None:
            self.by_state[request.state] = TaskSnapshot(
                task_id, TaskStatus.SUBMITTED, state=request.state
            )
        if self.lost_answers:
            self.lost_answers -= 1
            raise Unavailable("connection closed before the answer")
        return Submission(task_id=task_id)

    async def find_by_state(self, state: str) -> TaskSnapshot | None:
        if self.look_up_error is not None:
            raise self.look_up_error
        if self.by_state is None:
            raise Unsupported("no task list here")
        return self.by_state.get(state)

    async def list_by_ids(self, task_ids: Sequence[str]) -> list[TaskSnapshot]:
        self.list_calls += 1
        return [self.snapshots[t] for t in task_ids if t in self.snapshots]

    async def action(self, *a: object, **k: object) -> Submission:
        raise NotImplementedError

    async def modal(self, *a: object, **k: object) -> Submission:
        raise NotImplementedError

    async def describe(self, image: ReferenceImage, mode: Mode, **k: object) -> Submission:
        raise NotImplementedError

    async def blend(self, *a: object, **k: object) -> Submission:
        raise NotImplementedError

    async def fetch(self, task_id: str) -> TaskSnapshot:
        return self.snapshots[task_id]


class InMemoryJobs:
    def __init__(self) -> None:
        self.rows: dict[int, Job] = {}

    async def add(self, job: Job) -> Job:
        job = dataclasses.replace(job, id=len(self.rows) + 1)
        self.rows[job.id] = job
        return job

    async def save(self, job: Job) -> None:
        self.rows[job.id] = job

    async def replace(self, expected: Job, job: Job) -> bool:
        if self.rows.get(job.id) != expected:
            return False
        self.rows[job.id] = job
        return True

    async def get(self, job_id: int) -> Job | None:
        return self.rows.get(job_id)

    async def by_task_id(self, task_id: str) -> Job | None:
        return next((j for j in self.rows.values() if j.task_id == task_id), None)

    async def children(self, parent_job_id: int) -> list[Job]:
        return [j for j in self.rows.values() if j.parent_job_id == parent_job_id]

    async def unfinished(self) -> list[Job]:
        return [j for j in self.rows.values() if j.task_id and not j.finished]

    async def unposted(self) -> list[Job]:
        return [j for j in self.rows.values() if j.post_state is PostState.INTENT]

    async def stuck_submitting(self) -> list[Job]:
        return [j for j in self.rows.values() if j.status is JobStatus.SUBMITTING]

    async def interrupted(self) -> list[Job]:
        r = [j for j in self.rows.values()]
        return [
            j
            for j in r
            if j.status is JobStatus.SUBMITTING
            or j.ack is not None
            or (
                j.post_state is not PostState.POSTED
                and not (j.route.placed and j.route.status_message_id)
            )
        ]


class FakeFiles:
    """Attachments by URL (what Discord's CDN would serve)."""

    def __init__(self, blobs: dict[str, bytes] | None = None) -> None:
        self.blobs = blobs or {}
        self.fetched: list[str] = []

    async def fetch_reference(self, url: str, max_bytes: int) -> bytes:
        self.fetched.append(url)
        return self.blobs[url]

    async def download(self, url: str) -> bytes:
        return self.blobs[url]

    async def fit(self, data: bytes, max_bytes: int) -> bytes | None:
        return None


class FakePlaces:
    """Records which jobs recovery asked to restore in Discord (and in what state)."""

    def __init__(self) -> None:
        self.restored: list[Job] = []

    async def restore(self, job: Job) -> None:
        self.restored.append(job)


class FakeObserver:
    def __init__(self) -> None:
        self.progress: list[tuple[int, JobStatus, int]] = []
        self.posts: list[tuple[int, JobStatus]] = []
        self.fail_next_posts = 0

    async def show_progress(self, job: Job) -> None:
        self.progress.append((job.id, job.status, job.progress))

    async def post_finish(self, job: Job) -> int:
        if self.fail_next_posts:
            self.fail_next_posts -= 1
            raise RuntimeError("Discord 503")
        self.posts.append((job.id, job.status))
        return 9000 + job.id


class RecordingGate:
    def __init__(self) -> None:
        self.admitted: list[Ticket] = []
        self.settled: list[tuple[int, JobStatus]] = []
        self.refuse_reservations = ""  # a member sentence: refuse every ticket with a job id

    async def admit(self, ticket: Ticket) -> None:
        self.admitted.append(ticket)
        if ticket.job_id and self.refuse_reservations:
            raise Refused("quota", member_message=self.refuse_reservations)

    async def settle(self, job: Job) -> None:
        self.settled.append((job.id, job.status))

    async def is_moderator(self, ticket: Ticket) -> bool:
        return ticket.manage_guild
