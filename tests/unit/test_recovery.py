"""Recovery: a restarted process carries on each job from the last step the ledger recorded,
and tells "never sent" from "sent, not recorded" with the API's look-up by state."""

from __future__ import annotations

import dataclasses
import io
from datetime import timedelta

import pytest
from PIL import Image

from bot.core.errors import Refused, Unavailable
from bot.core.jobs import Ack, Job, JobStatus, Mode, PostState, Route, Source
from bot.core.ledger import Ledger
from bot.core.ports import Ticket
from bot.core.recovery import NEVER_CONFIRMED, UNKNOWN_ARRIVAL, Recovery
from bot.core.services import ActionService, ImagineService, job_state
from bot.core.tracking import Tracker
from tests.unit.fakes import (
    FakeApi,
    FakeClock,
    FakeFiles,
    FakeObserver,
    FakePlaces,
    InMemoryJobs,
    RecordingGate,
)

ROUTE = Route(guild_id=1, channel_id=2, requester_id=3)
TICKET = Ticket(guild_id=1, channel_id=2, user_id=3, role_ids=(7,), prompt="a cat")
URL = "https://cdn.discordapp.com/ephemeral-attachments/1/2/ref.png"


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


@dataclasses.dataclass
class World:
    api: FakeApi
    jobs: InMemoryJobs
    gate: RecordingGate
    clock: FakeClock
    files: FakeFiles
    places: FakePlaces
    service: ImagineService
    recovery: Recovery
    slept: list[float]

    async def restart(self) -> None:
        """A new process starts a second later and carries on."""
        self.clock.advance(seconds=1)
        await self.recovery.run(self.clock.now())


@pytest.fixture
def w() -> World:
    api, jobs, gate, clock = FakeApi(), InMemoryJobs(), RecordingGate(), FakeClock()
    files, places = FakeFiles({URL: png()}), FakePlaces()
    service = ImagineService(api, Ledger(jobs), gate, clock, files=files)
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds=seconds)
        api.look_up_error = None  # the API is back after one pause

    recovery = Recovery(service, places, clock, timeout=timedelta(minutes=10), retry=5, sleep=sleep)
    return World(api, jobs, gate, clock, files, places, service, recovery, slept)


async def opened(w: World, *, sources: tuple[Source, ...] = ()) -> Job:
    """An /imagine recorded at acknowledgement by a process that then died."""
    ack = Ack(99, "secret-token", w.clock.now() + timedelta(minutes=14))
    return await w.service.open_imagine(ROUTE, Mode.MID_JOURNEY, "a cat", sources, ack, TICKET)


async def test_a_job_recorded_at_acknowledgement_keeps_what_a_restart_needs(w: World) -> None:
    job = await opened(w, sources=(Source("image1", URL, "ref.png", 10),))
    row = w.jobs.rows[job.id]
    assert row.status is JobStatus.SUBMITTING and row.sent_at is None
    assert row.ack is not None and row.ack.token == "secret-token"
    assert "secret-token" not in repr(row)  # never in a log line that prints the job
    assert row.inputs.sources[0].url == URL and row.inputs.role_ids == (7,)
    assert w.api.submitted == [] and w.gate.admitted == []


async def test_a_submit_that_never_went_out_is_sent_by_the_restarted_process(w: World) -> None:
    job = await opened(w, sources=(Source("image1", URL, "ref.png", 10),))
    await w.restart()
    (request,) = w.api.submitted
    assert request.state == job_state(job.id) and request.images[0].data == png()
    row = w.jobs.rows[job.id]
    assert row.status is JobStatus.QUEUED and row.task_id
    # The quota is reserved for this job with the member's roles, as the command would have.
    (reserved,) = [t for t in w.gate.admitted if t.job_id]
    assert reserved.job_id == job.id and reserved.role_ids == (7,)
    assert [j.id for j in w.places.restored] == [job.id]


async def test_a_submit_whose_answer_is_lost_is_found_by_state_not_failed(w: World) -> None:
    job = await opened(w)
    w.api.lost_answers = 1  # the API accepts the submit; the connection drops before the answer
    accepted = await w.service.send(job, [])
    task = w.api.by_state[job_state(job.id)]  # type: ignore[index]
    assert accepted.task_id == task.task_id and accepted.status is JobStatus.QUEUED
    assert len(w.api.submitted) == 1
    assert w.gate.settled == []  # not failed, not refunded: its task runs upstream


async def test_after_a_kill_during_the_submit_the_task_is_found_not_sent_twice(w: World) -> None:
    job = await sent_unanswered(w)
    w.api.by_state[job_state(job.id)] = await _snap(w, job)  # type: ignore[index]
    await w.restart()
    assert w.api.submitted == []
    row = w.jobs.rows[job.id]
    assert row.task_id == "x" and row.status is JobStatus.IN_PROGRESS and row.progress == 20
    assert w.gate.settled == []


async def sent_unanswered(w: World) -> Job:
    job = await opened(w)  # what a SIGKILL during the submit leaves:
    w.jobs.rows[job.id] = dataclasses.replace(job, sent_at=w.clock.now())
    return w.jobs.rows[job.id]


async def test_a_submit_sent_but_absent_upstream_is_sent_again(w: World) -> None:
    job = await sent_unanswered(w)
    await w.restart()
    assert [r.state for r in w.api.submitted] == [job_state(job.id)]
    assert w.jobs.rows[job.id].status is JobStatus.QUEUED


async def test_where_the_server_cannot_look_the_job_fails_saying_so_without_resubmitting(
    w: World,
) -> None:
    w.api.by_state = None  # an aggregator
    job = await sent_unanswered(w)
    await w.restart()
    assert w.api.submitted == []
    row = w.jobs.rows[job.id]
    assert row.status is JobStatus.FAILED and row.fail_reason == UNKNOWN_ARRIVAL
    assert row.post_state is PostState.INTENT  # the tracker posts it, then settles (refunds)
    observer = FakeObserver()
    tracker = Tracker(
        w.api,
        w.service.ledger,
        observer,
        w.gate,
        w.clock,
        timeout=timedelta(minutes=10),
        interval=1,
    )
    w.jobs.rows[job.id] = dataclasses.replace(
        row, route=dataclasses.replace(row.route, reply_message_id=5, thread_id=5)
    )
    await tracker.flush_posts()
    assert observer.posts == [(job.id, JobStatus.FAILED)]
    assert w.gate.settled == [(job.id, JobStatus.FAILED)]


async def test_while_the_api_is_down_the_job_waits_and_is_found_when_it_is_back(
    w: World,
) -> None:
    job = await sent_unanswered(w)
    w.api.by_state[job_state(job.id)] = dataclasses.replace(  # type: ignore[index]
        (await _snap(w, job)), task_id="1730000000000001"
    )
    w.api.look_up_error = Unavailable("502")
    await w.restart()
    assert w.slept == [5]  # one pause, then found
    assert w.jobs.rows[job.id].task_id == "1730000000000001"
    assert w.api.submitted == []


async def _snap(w: World, job: Job):  # type: ignore[no-untyped-def]
    from bot.core.jobs import TaskSnapshot, TaskStatus

    return TaskSnapshot("x", TaskStatus.IN_PROGRESS, 20, state=job_state(job.id))


async def test_past_the_time_limit_an_unanswerable_look_up_fails_the_job(w: World) -> None:
    job = await sent_unanswered(w)
    w.clock.advance(minutes=11)
    w.api.look_up_error = Unavailable("502")
    await w.restart()
    assert w.jobs.rows[job.id].fail_reason == NEVER_CONFIRMED


async def test_a_refusal_on_restart_fails_the_job_with_nothing_sent(w: World) -> None:
    job = await opened(w)
    w.gate.refuse_reservations = "You have used your 5 images for today."
    await w.restart()
    row = w.jobs.rows[job.id]
    assert row.status is JobStatus.FAILED and row.post_state is PostState.POSTED
    assert w.api.submitted == []
    assert [j.id for j in w.places.restored] == [job.id]  # restore tells the member


async def test_jobs_this_process_is_making_are_left_alone(w: World) -> None:
    w.clock.advance(seconds=5)
    born = w.clock.now() - timedelta(seconds=1)
    await opened(w)
    await w.recovery.run(born)
    assert w.api.submitted == [] and w.places.restored == []


async def test_a_placed_running_job_is_not_touched(w: World) -> None:
    job = await w.service.submit(ROUTE, Mode.MID_JOURNEY, "a cat", ticket=TICKET)
    await w.service.place(job.id, reply_message_id=5)
    await w.service.place(job.id, thread_id=5)
    await w.service.place(job.id, status_message_id=6)
    await w.restart()
    assert w.places.restored == [] and len(w.api.submitted) == 1


async def test_imagine_n_is_a_core_service_that_takes_the_ticket(w: World) -> None:
    parent = await w.jobs.add(
        Job(
            id=0,
            route=dataclasses.replace(ROUTE, reply_message_id=5, thread_id=5),
            mode=Mode.NIJI_JOURNEY,
            prompt="Describe x.png",
            action="DESCRIBE",
            status=JobStatus.SUCCEEDED,
            final_prompt="1️⃣ a red fox\n2️⃣ a blue bird",
        )
    )
    stranger = Ticket(guild_id=1, channel_id=5, user_id=4)
    with pytest.raises(Refused, match="pressed describe"):
        await w.service.imagine_described(parent.id, 1, stranger)
    with pytest.raises(Refused, match="has no prompt"):
        await w.service.imagine_described(parent.id, 3, TICKET)
    job = await w.service.imagine_described(parent.id, 1, TICKET)
    assert w.api.submitted[-1].prompt == "a blue bird" and job.mode is Mode.NIJI_JOURNEY
    assert job.route.thread_id == 5 and job.route.placed
    assert [t.job_id for t in w.gate.admitted if t.job_id] == [job.id]


async def test_a_press_is_recorded_with_what_resending_it_needs(w: World) -> None:
    from bot.core.jobs import Button

    actions = ActionService(w.api, w.service.ledger, w.gate, w.clock)
    parent = await w.jobs.add(
        Job(
            id=0,
            route=dataclasses.replace(ROUTE, reply_message_id=5, thread_id=5),
            mode=Mode.MID_JOURNEY,
            prompt="a cat",
            task_id="17",
            status=JobStatus.SUCCEEDED,
            buttons=(Button("MJ::CustomZoom::17"),),
        )
    )
    pressed: list[tuple[str, str]] = []

    async def action(task_id: str, custom_id: str, **_: object):  # type: ignore[no-untyped-def]
        pressed.append((task_id, custom_id))
        raise Unavailable("down")

    w.api.action = action  # type: ignore[method-assign]
    with pytest.raises(Unavailable):
        await actions.press(parent.id, 0, TICKET, prompt="a cat --zoom 1.5")
    child = next(j for j in w.jobs.rows.values() if j.parent_job_id == parent.id)
    assert child.inputs.parent_task_id == "17" and child.inputs.modal_prompt == "a cat --zoom 1.5"
    assert child.custom_id == "MJ::CustomZoom::17" and pressed == [("17", "MJ::CustomZoom::17")]


def test_an_interaction_token_in_a_webhook_url_is_redacted_from_logs() -> None:
    from bot.log import RedactingFilter

    line = "PATCH https://discord.com/api/v10/webhooks/1234/aW50ZXJhY3Rpb24.x-y/messages/@original"
    redacted = RedactingFilter().redact(line)
    assert "aW50ZXJhY3Rpb24" not in redacted
    assert redacted.endswith("/webhooks/***/messages/@original")


async def test_a_finish_is_settled_before_it_is_recorded_as_posted(w: World) -> None:
    """A kill between the two must not lose the refund: the restart re-posts (finding the
    earlier post) and settles again, which the gate makes a no-op when it was done."""
    job = await sent_unanswered(w)
    w.api.by_state = None
    await w.restart()  # failed for want of a look-up: INTENT, to be posted and refunded
    placed = dataclasses.replace(
        w.jobs.rows[job.id].route, reply_message_id=5, thread_id=5, status_message_id=6
    )
    w.jobs.rows[job.id] = dataclasses.replace(w.jobs.rows[job.id], route=placed)
    real_replace = w.jobs.replace

    async def dies_on_posted(expected: Job, new: Job) -> bool:
        if new.post_state is PostState.POSTED:
            raise RuntimeError("SIGKILL")
        return await real_replace(expected, new)

    w.jobs.replace = dies_on_posted  # type: ignore[method-assign]
    tracker = Tracker(
        w.api,
        w.service.ledger,
        FakeObserver(),
        w.gate,
        w.clock,
        timeout=timedelta(minutes=10),
        interval=1,
    )
    await tracker.flush_posts()  # the POSTED write "dies" (logged, left for a restart)
    assert w.gate.settled == [(job.id, JobStatus.FAILED)]
    assert w.jobs.rows[job.id].post_state is PostState.INTENT  # posted again after a restart
