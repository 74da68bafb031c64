"""The durable job ledger seen by the use cases: the repository plus safe read-modify-write.

Every change to a job goes through `Ledger.update`, which serialises changes per job within a
process and writes with compare-and-set across processes, so the tracker and a command handler
never overwrite each other and a stale writer can never undo a finish.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from bot.core.jobs import Job
from bot.core.ports import JobRepository

_CAS_ATTEMPTS = 5


class Ledger:
    """The job repository plus per-job serialisation of read-modify-write changes."""

    def __init__(self, repo: JobRepository) -> None:
        self.repo = repo
        self._locks: dict[int, asyncio.Lock] = {}
        self._users: dict[int, int] = {}

    async def update(
        self, job_id: int, change: Callable[[Job], Job], *, current: Job | None = None
    ) -> Job | None:
        """Apply `change` to the freshest copy of the job and save it if anything changed.

        Returns the job as saved, or None when the job is gone or `change` changed nothing.
        Within a process a per-job lock serialises changes; across processes sharing one
        database, the write is a compare-and-set, retried on a fresh copy when another process
        wrote in between (so a stale writer can never undo a finish).

        `current`, a copy the caller has just read or saved, saves the first read: the
        compare-and-set fails if it is stale, and the change is then applied to a fresh copy
        (issue 12: a finish made ten transactions, each a millisecond or two of CPU).
        """
        if current is not None and current.id != job_id:
            raise ValueError("current must be a copy of the job being updated")
        lock = self._locks.setdefault(job_id, asyncio.Lock())
        # Count the coroutines holding or waiting for the lock, so the last one drops it (the
        # lock itself has no public way to say who waits).
        self._users[job_id] = self._users.get(job_id, 0) + 1
        try:
            async with lock:
                for _ in range(_CAS_ATTEMPTS):
                    given, current = current, None
                    job = given or await self.repo.get(job_id)
                    if job is None:
                        return None
                    new = change(job)
                    if new == job:
                        if given is not None:
                            continue  # nothing to do to the caller's copy: ask the ledger's
                        return None
                    if await self.repo.replace(job, new):
                        return new
                raise RuntimeError(f"job {job_id}: too many concurrent writers")
        finally:
            self._users[job_id] -= 1
            if not self._users[job_id]:
                del self._users[job_id]
                self._locks.pop(job_id, None)
