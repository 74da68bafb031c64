"""The leases on a command's steps, on SQL: `bot.core.leases.JobLeases` over two columns of the
`jobs` table (`worked_by`, `worked_until`).

Every claim is one UPDATE whose WHERE clause is the claim's condition, so it is a
compare-and-set on either backend: on PostgreSQL a second, concurrent UPDATE of the same row
waits for the first to commit and then checks the condition again on the row as the first left
it ("READ COMMITTED" in the manual's "Transaction Isolation"), which no longer holds; SQLite
runs one writer at a time. Exactly one process wins each job.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import datetime

from sqlalchemy import and_, not_, or_, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.adapters.storage.engine import StorageError
from bot.adapters.storage.jobs import left_midway
from bot.adapters.storage.schema import jobs


def worker_name() -> str:
    """A name for this process in the leases, unique across restarts and hosts, readable by an
    operator: host, pid and a random tail."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class SqlJobLeases:
    """`JobLeases` for one process. `sole`: the database serves one process (SQLite, claimed
    with `claim_sqlite_file`), so at a start every other holder is known to be dead."""

    def __init__(self, engine: AsyncEngine, worker: str, *, sole: bool) -> None:
        self._engine = engine
        self._worker = worker
        self._sole = sole

    @property
    def worker(self) -> str:
        """This process's name in the leases."""
        return self._worker

    @property
    def shared(self) -> bool:
        """False on a database one process serves (see `JobLeases.shared`)."""
        return not self._sole

    async def renew(self, until: datetime, *, done_before: datetime) -> None:
        """See `JobLeases.renew`: two statements in one transaction."""
        mine = jobs.c.worked_by == self._worker
        done = or_(not_(left_midway()), jobs.c.created_at < done_before)
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    update(jobs).where(mine, done).values(worked_by="", worked_until=None)
                )
                await conn.execute(update(jobs).where(mine).values(worked_until=until))
        except SQLAlchemyError as exc:
            raise StorageError(f"job leases unavailable: {exc}") from exc

    async def keep(self, job_id: int, until: datetime) -> bool:
        """See `JobLeases.keep`."""
        try:
            async with self._engine.begin() as conn:
                result = await conn.execute(
                    update(jobs)
                    .where(jobs.c.id == job_id, jobs.c.worked_by == self._worker)
                    .values(worked_until=until)
                )
        except SQLAlchemyError as exc:
            raise StorageError(f"job leases unavailable: {exc}") from exc
        return result.rowcount == 1

    async def claim(self, now: datetime, until: datetime, *, orphans: bool) -> list[int]:
        """See `JobLeases.claim`. Lapsed leases of jobs with no step left are cleared too."""
        others = and_(jobs.c.worked_by != "", jobs.c.worked_by != self._worker)
        lapsed = and_(others, jobs.c.worked_until < now)
        if not orphans:
            takeable = lapsed
        elif self._sole:
            takeable = jobs.c.worked_by != self._worker
        else:
            takeable = or_(lapsed, jobs.c.worked_by == "")
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    update(jobs)
                    .where(lapsed, not_(left_midway()))
                    .values(worked_by="", worked_until=None)
                )
                result = await conn.execute(
                    update(jobs)
                    .where(takeable, left_midway())
                    .values(worked_by=self._worker, worked_until=until)
                    .returning(jobs.c.id)
                )
                won = sorted(result.scalars().all())
        except SQLAlchemyError as exc:
            raise StorageError(f"job leases unavailable: {exc}") from exc
        return won
