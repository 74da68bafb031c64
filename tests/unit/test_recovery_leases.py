"""Recovery across live processes (bot.core.leases, bot.core.recovery): a process's sweep takes
over the commands whose process died, the submit is fenced by the job's lease, and the
heartbeat keeps renewing through a failure."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime, timedelta

import pytest

from bot.core.jobs import Ack, Job, JobStatus, Mode, Route
from bot.core.leases import LEASE, LeaseLost, heartbeat
from bot.core.ledger import Ledger
from bot.core.ports import Ticket
from bot.core.recovery import Recovery
from bot.core.services import ImagineService, job_state
from tests.unit.fakes import FakeApi, FakeClock, FakeFiles, FakePlaces, InMemoryJobs, RecordingGate

ROUTE = Route(guild_id=1, channel_id=2, requester_id=3)
TICKET = Ticket(guild_id=1, channel_id=2, user_id=3, prompt="a cat")


class SharedLeases:
    """The leases column as every process sees it: job id → (holder, until)."""

    def __init__(self, jobs: InMemoryJobs) -> None:
        self.jobs = jobs
        self.rows: dict[int, tuple[str, datetime]] = {}
        self.failures = 0  # renewals to fail before one succeeds

    def of(self, worker: str) -> FakeLeases:
        return FakeLeases(self, worker)


@dataclasses.dataclass
class FakeLeases:
    pool: SharedLeases
    worker: str
    renewals: int = 0
    shared: bool = True  # several processes on the database

    async def renew(self, until: datetime, *, done_before: datetime) -> None:
        if self.pool.failures:
            self.pool.failures -= 1
            raise OSError("database away")
        self.renewals += 1
        for job_id, (holder, _) in list(self.pool.rows.items()):
            if holder == self.worker:
                self.pool.rows[job_id] = (holder, until)

    async def keep(self, job_id: int, until: datetime) -> bool:
        holder, _ = self.pool.rows.get(job_id, ("", until))
        if holder != self.worker:
            return False
        self.pool.rows[job_id] = (holder, until)
        return True

    async def claim(self, now: datetime, until: datetime, *, orphans: bool) -> list[int]:
        left = {j.id for j in await self.pool.jobs.interrupted()}
        won = []
        for job_id in sorted(left):
            holder, lease = self.pool.rows.get(job_id, ("", now))
            lapsed = holder not in ("", self.worker) and lease < now
            if lapsed or (orphans and holder == ""):
                self.pool.rows[job_id] = (self.worker, until)
                won.append(job_id)
        return won


World = tuple[FakeApi, InMemoryJobs, FakeClock, SharedLeases]


@pytest.fixture
def world() -> World:
    jobs = InMemoryJobs()
    return FakeApi(), jobs, FakeClock(), SharedLeases(jobs)


def process(world: World, worker: str) -> tuple[ImagineService, Recovery, FakeLeases, FakePlaces]:
    api, jobs, clock, shared = world
    leases, places = shared.of(worker), FakePlaces()
    service = ImagineService(
        api, Ledger(jobs), RecordingGate(), clock, files=FakeFiles({}), leases=leases
    )
    recovery = Recovery(
        service, places, clock, timeout=timedelta(minutes=10), leases=leases, sweep=0.01
    )
    return service, recovery, leases, places


async def opened_by(world: World, service: ImagineService) -> Job:
    _, _, clock, shared = world
    ack = Ack(99, "token", clock.now() + timedelta(minutes=14))
    job = await service.open_imagine(ROUTE, Mode.MID_JOURNEY, "a cat", (), ack, TICKET)
    assert service.leases is not None
    shared.rows[job.id] = (service.leases.worker, clock.now() + LEASE)  # leased at its INSERT
    return job


async def test_a_live_process_s_sweep_takes_over_a_dead_one_s_command_once(world: World) -> None:
    api, jobs, clock, _ = world
    dead, _, _, _ = process(world, "dead")
    job = await opened_by(world, dead)  # then its process died, before the submit
    _, recovery, _, places = process(world, "alive")
    watching = asyncio.ensure_future(recovery.watch(clock.now()))
    try:
        await asyncio.sleep(0.05)
        assert api.submitted == []  # its lease runs: maybe it is only slow
        clock.advance(seconds=LEASE.total_seconds() + 1)
        for _ in range(100):
            if api.submitted:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
    finally:
        watching.cancel()
        await asyncio.gather(watching, return_exceptions=True)
    assert [r.state for r in api.submitted] == [job_state(job.id)]
    assert jobs.rows[job.id].status is JobStatus.QUEUED
    assert [j.id for j in places.restored] == [job.id]


async def test_a_process_whose_command_was_taken_over_stops_before_submitting(world: World) -> None:
    api, jobs, clock, shared = world
    slow, _, _, _ = process(world, "slow")
    job = await opened_by(world, slow)
    shared.rows[job.id] = ("taker", clock.now() + LEASE)  # claimed while `slow` stalled

    with pytest.raises(LeaseLost):
        await slow.run(job, TICKET)

    assert api.submitted == []
    row = jobs.rows[job.id]  # left as it was for the taker: not failed, not marked sent
    assert row.status is JobStatus.SUBMITTING and row.sent_at is None
    assert not isinstance(LeaseLost(job.id), Exception)  # no `except Exception` swallows it


async def test_the_holder_extends_its_lease_right_before_the_submit(world: World) -> None:
    api, _, clock, shared = world
    service, _, _, _ = process(world, "me")
    job = await opened_by(world, service)
    clock.advance(seconds=30)  # its renewals stalled; nobody claimed it meanwhile

    await service.run(job, TICKET)

    assert len(api.submitted) == 1
    assert shared.rows[job.id] == ("me", clock.now() + LEASE)


async def test_the_heartbeat_keeps_renewing_after_a_failed_renewal(world: World) -> None:
    _, _, clock, shared = world
    _, _, leases, _ = process(world, "me")
    shared.failures = 1
    beating = asyncio.ensure_future(heartbeat(leases, clock, every=0.01))
    await asyncio.sleep(0.1)
    beating.cancel()
    await asyncio.gather(beating, return_exceptions=True)
    assert leases.renewals >= 2


async def test_where_one_process_serves_the_database_nothing_is_fenced_or_renewed(
    world: World,
) -> None:
    api, _, clock, shared = world
    service, _, leases, _ = process(world, "only")
    leases.shared = False
    job = await opened_by(world, service)
    shared.rows[job.id] = ("an earlier process", clock.now())  # not to be asked: it is dead

    await service.run(job, TICKET)
    await heartbeat(leases, clock, every=0.01)  # returns at once

    assert len(api.submitted) == 1 and leases.renewals == 0


async def test_of_two_status_messages_posted_for_one_job_the_first_recorded_stays(
    world: World,
) -> None:
    """A stalled process and the one that took its job over may both post a status message;
    the ledger keeps the first recorded, so the second poster knows to delete its own."""
    stalled, _, _, _ = process(world, "stalled")
    taker, _, _, _ = process(world, "taker")
    job = await opened_by(world, stalled)
    first = await taker.place_status(job.id, 1001)
    second = await stalled.place_status(job.id, 1002)
    assert first is not None and first.route.status_message_id == 1001
    assert second is None  # not recorded: its poster deletes it
    assert (await taker.ledger.repo.get(job.id)).route.status_message_id == 1001  # type: ignore[union-attr]
