"""The job ledger on SQL: `bot.core.ports.JobRepository` over the `jobs` table.

Rows never leave this module: every method takes and returns `bot.core.jobs.Job`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    Update,
    and_,
    bindparam,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.adapters.storage.engine import SQLITE_BEGIN_OPTION, SQLITE_NO_BEGIN, StorageError
from bot.adapters.storage.schema import jobs
from bot.core.jobs import Ack, Button, Inputs, Job, JobStatus, Mode, PostState, Route, Source
from bot.core.leases import LEASE
from bot.core.watchlist import Watched

_UNFINISHED = [status.value for status in JobStatus if not status.finished]

#: The lease columns belong to bot.adapters.storage.leases, not to Job.
_LEASE_COLUMNS = ("worked_by", "worked_until")


def _dump_buttons(buttons: tuple[Button, ...]) -> str:
    return json.dumps(
        [
            {"custom_id": b.custom_id, "label": b.label, "emoji": b.emoji, "style": b.style}
            for b in buttons
        ],
        ensure_ascii=False,
    )


def _load_buttons(text: str) -> tuple[Button, ...]:
    if not text or text == "[]":  # most rows (every unfinished job): skip the JSON parser
        return ()
    return tuple(
        Button(
            custom_id=str(item["custom_id"]),
            label=str(item.get("label", "")),
            emoji=str(item.get("emoji", "")),
            style=int(item.get("style", 2)),
        )
        for item in json.loads(text or "[]")
    )


def _dump_inputs(inputs: Inputs) -> str:
    return json.dumps(
        {
            "sources": [
                {"option": x.option, "url": x.url, "filename": x.filename, "size": x.size}
                for x in inputs.sources
            ],
            "dimensions": inputs.dimensions,
            "parent_task_id": inputs.parent_task_id,
            "modal_prompt": inputs.modal_prompt,
            "role_ids": list(inputs.role_ids),
            "manage_guild": inputs.manage_guild,
        },
        ensure_ascii=False,
        sort_keys=True,
    )


# Rows mostly repeat a few texts (every /imagine without attachments has the same one); Inputs
# is immutable, so one parse serves them all (the tracker reads thousands of jobs a second).
@functools.lru_cache(maxsize=1024)
def _load_inputs(text: str) -> Inputs:
    raw = json.loads(text or "{}")
    modal = raw.get("modal_prompt")
    return Inputs(
        sources=tuple(
            Source(str(x["option"]), str(x["url"]), str(x["filename"]), int(x["size"]))
            for x in raw.get("sources", [])
        ),
        dimensions=str(raw.get("dimensions", "")),
        parent_task_id=str(raw.get("parent_task_id", "")),
        modal_prompt=None if modal is None else str(modal),
        role_ids=tuple(int(r) for r in raw.get("role_ids", [])),
        manage_guild=bool(raw.get("manage_guild", False)),
    )


def _values(job: Job) -> dict[str, Any]:
    """Every Job field as column values (the id excepted: the database owns it)."""
    route = job.route
    return {
        "guild_id": route.guild_id,
        "channel_id": route.channel_id,
        "requester_id": route.requester_id,
        "reply_message_id": route.reply_message_id,
        "thread_id": route.thread_id,
        "status_message_id": route.status_message_id,
        "mode": job.mode.value,
        "prompt": job.prompt,
        "action": job.action,
        "task_id": job.task_id,
        "parent_job_id": job.parent_job_id,
        "custom_id": job.custom_id,
        "status": job.status.value,
        "progress": job.progress,
        "queue_position": job.queue_position,
        "image_url": job.image_url,
        "fail_reason": job.fail_reason,
        "final_prompt": job.final_prompt,
        "buttons": _dump_buttons(job.buttons),
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "finished_at": job.finished_at,
        "post_state": job.post_state.value,
        "result_message_id": job.result_message_id,
        "reference_count": job.reference_count,
        "no_thread": route.no_thread,
        "application_id": job.ack.application_id if job.ack else 0,
        "interaction_token": job.ack.token if job.ack else "",
        "token_expires_at": job.ack.expires_at if job.ack else None,
        "inputs": _dump_inputs(job.inputs),
        "sent_at": job.sent_at,
    }


@contextmanager
def _ledger_errors() -> Iterator[None]:
    """Database failures as `StorageError`, the one error the ledger's callers handle."""
    try:
        yield
    except IntegrityError as exc:
        raise StorageError(f"job ledger constraint violated: {exc.orig}") from exc
    except SQLAlchemyError as exc:
        raise StorageError(f"job ledger unavailable: {exc}") from exc


@functools.cache
def _compare_and_set(names: tuple[str, ...]) -> Update:
    """`replace`'s UPDATE, built once: every column compared null-safely (`IS` on SQLite, `IS
    NOT DISTINCT FROM` on PostgreSQL) with its expected value and set to its new one, all as
    bound parameters. Built afresh each time, its 62 literal values cost SQLAlchemy a new cache
    key per call, most of a compare-and-set's CPU (issue 12)."""
    c = jobs.c
    return (
        update(jobs)
        .where(
            c.id == bindparam("cas_id"),
            *(c[n].is_not_distinct_from(bindparam(f"old_{n}", type_=c[n].type)) for n in names),
        )
        .values({n: bindparam(f"new_{n}", type_=c[n].type) for n in names})
    )


def _job(row: Mapping[str, Any]) -> Job:
    return Job(
        id=row["id"],
        route=Route(
            guild_id=row["guild_id"],
            channel_id=row["channel_id"],
            requester_id=row["requester_id"],
            reply_message_id=row["reply_message_id"],
            thread_id=row["thread_id"],
            status_message_id=row["status_message_id"],
            no_thread=bool(row["no_thread"]),
        ),
        mode=Mode(row["mode"]),
        prompt=row["prompt"],
        action=row["action"],
        task_id=row["task_id"],
        parent_job_id=row["parent_job_id"],
        custom_id=row["custom_id"],
        status=JobStatus(row["status"]),
        progress=row["progress"],
        queue_position=row["queue_position"],
        image_url=row["image_url"],
        fail_reason=row["fail_reason"],
        final_prompt=row["final_prompt"],
        buttons=_load_buttons(row["buttons"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        finished_at=row["finished_at"],
        post_state=PostState(row["post_state"]),
        result_message_id=row["result_message_id"],
        reference_count=row["reference_count"],
        ack=(
            Ack(row["application_id"], row["interaction_token"], row["token_expires_at"])
            if row["interaction_token"] and row["token_expires_at"] is not None
            else None
        ),
        inputs=_load_inputs(row["inputs"]),
        sent_at=row["sent_at"],
    )


_JOB_COLUMNS = [column for column in jobs.c if column.name not in _LEASE_COLUMNS]
# What `progress_view` reads; `finished` stands for finished_at (only whether it is set matters
# to a snapshot's absorption, and parsing it would cost what the view saves).
_PROGRESS_COLUMNS = [
    jobs.c.id,
    jobs.c.task_id,
    jobs.c.status,
    jobs.c.progress,
    jobs.c.queue_position,
    jobs.c.image_url,
    jobs.c.fail_reason,
    jobs.c.final_prompt,
    jobs.c.buttons,
    jobs.c.post_state,
    jobs.c.finished_at.is_not(None).label("finished"),
]
_NO_ROUTE = Route(guild_id=0, channel_id=0, requester_id=0)
_UNSET_FINISH = datetime.fromtimestamp(0, UTC)


def left_midway() -> ColumnElement[bool]:
    """A job some process may have left midway: still submitting, still holding an interaction
    token, or not finished posting with a Discord object (reply, thread, status message) not
    yet recorded. The one SQL form of "its command has steps left" (recovery and leases)."""
    unplaced = and_(
        jobs.c.post_state != PostState.POSTED.value,
        or_(
            jobs.c.reply_message_id == 0,
            and_(jobs.c.thread_id == 0, jobs.c.no_thread.is_(False)),
            jobs.c.status_message_id == 0,
        ),
    )
    return or_(
        jobs.c.status == JobStatus.SUBMITTING.value,
        jobs.c.interaction_token != "",
        unplaced,
    )


class SqlJobRepository:
    """`JobRepository` on SQLite or PostgreSQL. Each call is one transaction.

    `replace` is a compare-and-set, for processes that share one database. With `worker`, each
    job `add`s is leased to that process for `lease` from its creation (bot.core.leases), in
    the same INSERT: no other process may take it over before its first renewal.
    Database failures are raised as `StorageError`.
    """

    def __init__(self, engine: AsyncEngine, *, worker: str = "", lease: timedelta = LEASE) -> None:
        self._engine = engine
        # Reads are one SELECT each: on SQLite they need no BEGIN and COMMIT around them (the
        # same pool; the option is read by the engine's begin hook, other backends ignore it).
        self._reader = engine.execution_options(**{SQLITE_BEGIN_OPTION: SQLITE_NO_BEGIN})
        self._worker = worker
        self._lease = lease

    @asynccontextmanager
    async def _begin(self) -> AsyncIterator[AsyncConnection]:
        """One transaction."""
        with _ledger_errors():
            async with self._engine.begin() as conn:
                yield conn

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for one SELECT (see `_reader`)."""
        with _ledger_errors():
            async with self._reader.connect() as conn:
                yield conn

    async def add(self, job: Job) -> Job:
        """Store a new job (its `id` is ignored) and return it with the id the ledger gave it."""
        values = _values(job)
        if self._worker:
            values.update(worked_by=self._worker, worked_until=job.created_at + self._lease)
        async with self._begin() as conn:
            result = await conn.execute(insert(jobs).values(values).returning(jobs.c.id))
            new_id = result.scalar_one()
        return dataclasses.replace(job, id=new_id)

    async def save(self, job: Job) -> None:
        """Write every field of an existing job. StorageError if there is no such job."""
        async with self._begin() as conn:
            result = await conn.execute(
                update(jobs).where(jobs.c.id == job.id).values(_values(job))
            )
            if result.rowcount != 1:
                raise StorageError(f"job {job.id} is not in the ledger; it cannot be saved")

    async def replace(self, expected: Job, job: Job) -> bool:
        """Write `job` only if the stored row still equals `expected` (compare-and-set).

        False means another process changed the job in between: reload it with `get`, apply
        the change again, and retry. This is how two processes that both receive an update
        for one job avoid a later, staler write undoing an earlier one (a finished job going
        back to IN_PROGRESS, say).
        """
        if expected.id != job.id:
            raise ValueError("replace needs two versions of the same job")
        old, new = _values(expected), _values(job)
        params = {"cas_id": job.id}
        params.update({f"old_{name}": value for name, value in old.items()})
        params.update({f"new_{name}": value for name, value in new.items()})
        async with self._begin() as conn:
            result = await conn.execute(_compare_and_set(tuple(old)), params)
            return result.rowcount == 1

    async def get(self, job_id: int) -> Job | None:
        """One job by id."""
        return await self._one(jobs.c.id == job_id)

    async def by_task_id(self, task_id: str) -> Job | None:
        """The job that owns an API task id."""
        return await self._one(jobs.c.task_id == task_id)

    async def children(self, parent_job_id: int) -> list[Job]:
        """Jobs made by pressing a button on this job, oldest first."""
        return await self._many(jobs.c.parent_job_id == parent_job_id)

    async def unfinished(self) -> list[Job]:
        """Jobs whose task is still running (have a task id, not finished), oldest first."""
        # IN over the unfinished statuses (not NOT IN over the finished ones) lets the
        # status index serve the query.
        return await self._many(jobs.c.task_id.is_not(None), jobs.c.status.in_(_UNFINISHED))

    async def unposted(self) -> list[Job]:
        """Finished jobs whose finish post is not yet recorded (post_state INTENT)."""
        return await self._many(jobs.c.post_state == PostState.INTENT.value)

    async def stuck_submitting(self) -> list[Job]:
        """Jobs left in SUBMITTING (the process died during a submit)."""
        return await self._many(jobs.c.status == JobStatus.SUBMITTING.value)

    async def interrupted(self) -> list[Job]:
        """Jobs a process may have left midway, oldest first: still submitting, still holding
        an interaction token, or not finished posting with a Discord object (reply, thread,
        status message) not yet recorded."""
        return await self._many(left_midway())

    # --- the tracker's batched view (bot.core.watchlist.TrackingStore) --------------------------

    async def watched(self) -> list[Watched]:
        """Every unfinished job with a task id, oldest first: three columns, no timestamps."""
        query = (
            select(jobs.c.id, jobs.c.task_id, jobs.c.status)
            .where(jobs.c.task_id.is_not(None), jobs.c.status.in_(_UNFINISHED))
            .order_by(jobs.c.id)
        )
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        statuses = {s.value: s for s in JobStatus}
        return [Watched(i, t, statuses[s]) for i, t, s in rows]

    async def watched_version(self) -> tuple[int, ...]:
        """A fingerprint of the watched view, aggregated in the database (one row back): the
        count and id sum change when a job joins or leaves it, the sum of id × status length
        when a status changes (the five unfinished statuses have five different lengths).
        Progress is not in the view, so moving progress leaves the fingerprint alone."""
        query = select(
            func.count(jobs.c.id),
            func.coalesce(func.sum(jobs.c.id), 0),
            func.coalesce(func.sum(jobs.c.id * func.length(jobs.c.status)), 0),
        ).where(jobs.c.task_id.is_not(None), jobs.c.status.in_(_UNFINISHED))
        async with self._read() as conn:
            row = (await conn.execute(query)).one()
        return tuple(int(v) for v in row)

    async def overdue(self, created_before: datetime) -> list[int]:
        """Ids of unfinished jobs with a task id created before the given time."""
        query = (
            select(jobs.c.id)
            .where(
                jobs.c.task_id.is_not(None),
                jobs.c.status.in_(_UNFINISHED),
                jobs.c.created_at < created_before,
            )
            .order_by(jobs.c.id)
        )
        async with self._read() as conn:
            return list((await conn.execute(query)).scalars().all())

    async def many(self, job_ids: Sequence[int]) -> list[Job]:
        """Full jobs by id in one read (at most a chunk's worth), oldest first."""
        if not job_ids:
            return []
        return await self._many(jobs.c.id.in_(list(job_ids)))

    async def progress_view(self, job_ids: Sequence[int]) -> list[Job]:
        """Jobs by id with only what absorbing a snapshot reads (see `TrackingStore`), in one
        read: a third of the columns and none of the timestamps to parse."""
        if not job_ids:
            return []
        statement = (
            select(*_PROGRESS_COLUMNS).where(jobs.c.id.in_(list(job_ids))).order_by(jobs.c.id)
        )
        async with self._read() as conn:
            rows = (await conn.execute(statement)).all()
        return [
            Job(
                id=row.id,
                route=_NO_ROUTE,
                mode=Mode.MID_JOURNEY,
                prompt="",
                task_id=row.task_id,
                status=JobStatus(row.status),
                progress=row.progress,
                queue_position=row.queue_position,
                image_url=row.image_url,
                fail_reason=row.fail_reason,
                final_prompt=row.final_prompt,
                buttons=_load_buttons(row.buttons),
                finished_at=_UNSET_FINISH if row.finished else None,
                post_state=PostState(row.post_state),
            )
            for row in rows
        ]

    async def save_progress(self, batch: Sequence[Job]) -> None:
        """One transaction writing progress, preview, final prompt, buttons and updated_at of
        each job, only where the stored row still has the job's status and no higher progress
        (so a status written meanwhile by a compare-and-set is never undone)."""
        if not batch:
            return
        statement = (
            update(jobs)
            .where(
                jobs.c.id == bindparam("b_id"),
                jobs.c.status == bindparam("b_status"),
                jobs.c.progress <= bindparam("b_progress"),
            )
            .values(
                progress=bindparam("b_progress"),
                image_url=bindparam("b_image_url"),
                final_prompt=bindparam("b_final_prompt"),
                buttons=bindparam("b_buttons"),
                updated_at=bindparam("b_updated_at"),
            )
        )
        params = [
            {
                "b_id": job.id,
                "b_status": job.status.value,
                "b_progress": job.progress,
                "b_image_url": job.image_url,
                "b_final_prompt": job.final_prompt,
                "b_buttons": _dump_buttons(job.buttons) if job.buttons else "[]",
                "b_updated_at": job.updated_at,
            }
            for job in batch
        ]
        async with self._begin() as conn:
            await conn.execute(statement, params)

    def _select(self, *where: ColumnElement[bool]) -> Select[Any]:
        return select(*_JOB_COLUMNS).where(and_(*where)).order_by(jobs.c.id)

    async def _one(self, *where: ColumnElement[bool]) -> Job | None:
        async with self._read() as conn:
            row = (await conn.execute(self._select(*where))).mappings().first()
        return None if row is None else _job(row)

    async def _many(self, *where: ColumnElement[bool]) -> list[Job]:
        async with self._read() as conn:
            rows = (await conn.execute(self._select(*where))).mappings().all()
        return [_job(row) for row in rows]
