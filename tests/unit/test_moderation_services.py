"""The submit use case and the gate: the quota is reserved for the recorded job, and a refused
reservation fails that job before any API call."""

from __future__ import annotations

import pytest

from bot.core.errors import Refused
from bot.core.jobs import JobStatus, Mode, PostState, Route
from bot.core.ledger import Ledger
from bot.core.ports import Ticket
from bot.core.services import ImagineService
from tests.unit.fakes import FakeApi, FakeClock, InMemoryJobs, RecordingGate

ROUTE = Route(guild_id=1, channel_id=2, requester_id=3)
TICKET = Ticket(guild_id=1, channel_id=2, user_id=3, prompt="a cat")


async def test_submit_with_a_ticket_reserves_for_the_recorded_job() -> None:
    api, jobs, gate = FakeApi(), InMemoryJobs(), RecordingGate()
    service = ImagineService(api, Ledger(jobs), gate, FakeClock())
    job = await service.submit(ROUTE, Mode.MID_JOURNEY, "a cat", ticket=TICKET)
    assert [t.job_id for t in gate.admitted] == [job.id]
    assert len(api.submitted) == 1


async def test_a_refused_reservation_fails_the_job_before_the_api_is_called() -> None:
    api, jobs, gate = FakeApi(), InMemoryJobs(), RecordingGate()
    gate.refuse_reservations = "You have used your 5 images for today."
    service = ImagineService(api, Ledger(jobs), gate, FakeClock())
    with pytest.raises(Refused, match="quota"):
        await service.submit(ROUTE, Mode.MID_JOURNEY, "a cat", ticket=TICKET)
    (row,) = jobs.rows.values()
    assert row.status is JobStatus.FAILED and row.post_state is PostState.POSTED
    assert "5 images" in row.fail_reason
    assert api.submitted == [] and gate.settled == []
