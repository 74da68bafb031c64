"""Who works on a command's steps: a lease per job, held by the process doing them.

A command's steps (record, submit, reply, thread, status message; bot.core.submitter) run in the
process that received its interaction. When several processes share one database and that one
dies, another must finish them (bot.core.recovery) — but only once it is dead: a live process
still working on them would otherwise race its successor into a second submit. So every job is
recorded with a lease naming the process that works on it (`worked_by`) and until when
(`worked_until`). Each process renews all its leases in one statement every `BEAT` seconds and
gives up those whose steps are done; a lease not renewed for `LEASE` has lapsed, and its job may
be claimed — with a compare-and-set, so exactly one process wins it.

The submit is the one step that must never happen twice (it makes and charges a task), so just
before it a process extends its lease on that job alone (`JobLeases.keep`): the extension
succeeds only while no other process has claimed the job, and once it succeeds nobody may claim
it for another `LEASE`. A process that finds its job taken over stops that command at once
(`LeaseLost`); the taker carries it on.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Protocol

from bot.core.ports import Clock

log = logging.getLogger(__name__)

#: How long a lease lasts without renewal. A dead process's jobs are claimed once it lapses.
LEASE = timedelta(seconds=6)
#: How often a process renews its leases (one statement for all of them).
BEAT = 2.0
#: Jobs still left midway this long after they were recorded are given up by their process
#: (no longer renewed): they wait for the next start, as before several processes existed.
STEPS_HORIZON = timedelta(hours=1)


class LeaseLost(asyncio.CancelledError):
    """Another process has taken this job over; this process must stop working on it.

    A `CancelledError`, not an `Exception`: the command handlers' `except Exception` would treat
    it as the command's failure (fail the job, tell the member), undoing the other process's
    work. The command's task ends as if cancelled, and the other process carries the job on.
    """

    def __init__(self, job_id: int) -> None:
        super().__init__(f"job {job_id} was taken over by another process")
        self.job_id = job_id


class JobLeases(Protocol):
    """This process's leases on the jobs whose steps it works on (see the module docstring).

    A job is leased to the process that records it. Claims are atomic across processes: two
    processes claiming the same lapsed job never both get it.
    """

    @property
    def worker(self) -> str:
        """This process's name in the leases."""
        ...

    @property
    def shared(self) -> bool:
        """True when other live processes may use the database (PostgreSQL). False: this is
        the only one (SQLite), so no lease needs renewing, fencing or sweeping for."""
        ...

    async def renew(self, until: datetime, *, done_before: datetime) -> None:
        """Extend every lease this process holds to `until`, giving up first those whose steps
        are all done, or whose job was recorded before `done_before` (see STEPS_HORIZON)."""
        ...

    async def keep(self, job_id: int, until: datetime) -> bool:
        """Extend this process's lease on one job to `until`; False when another process has
        claimed it (this one must then stop working on it)."""
        ...

    async def claim(self, now: datetime, until: datetime, *, orphans: bool) -> list[int]:
        """Take over, until `until`, every job left midway whose lease lapsed before `now`,
        and with `orphans` those no live process holds (rows from before leases existed,
        jobs given up after STEPS_HORIZON, and on a database one process serves, all of
        another process's: it cannot be running). The ids this process won, oldest first."""
        ...


async def heartbeat(
    leases: JobLeases, clock: Clock, *, every: float = BEAT, lease: timedelta = LEASE
) -> None:
    """Renew this process's leases every `every` seconds, forever (until cancelled). A failed
    renewal is logged and tried again: the leases lapse only if renewal keeps failing. Returns
    at once where no other process can claim them."""
    if not leases.shared:
        return
    while True:
        now = clock.now()
        try:
            await leases.renew(now + lease, done_before=now - STEPS_HORIZON)
        except Exception as exc:
            log.warning("could not renew this process's job leases: %r", exc)
        await asyncio.sleep(every)
