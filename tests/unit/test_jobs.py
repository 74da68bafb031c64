import dataclasses
from datetime import UTC, datetime

from bot.core.jobs import Job, JobStatus, Mode, PostState, Route, TaskSnapshot, TaskStatus

NOW = datetime(2026, 11, 24, tzinfo=UTC)


def job(**kw: object) -> Job:
    base = Job(id=1, route=Route(1, 2, 3), mode=Mode.MID_JOURNEY, prompt="cat", task_id="t")
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


def snap(status: TaskStatus, progress: int = 0, **kw: object) -> TaskSnapshot:
    return TaskSnapshot(task_id="t", status=status, progress=progress, **kw)  # type: ignore[arg-type]


def test_progress_moves_forward_and_never_back() -> None:
    j = job(status=JobStatus.QUEUED).absorb(snap(TaskStatus.IN_PROGRESS, 46), NOW)
    assert (j.status, j.progress) == (JobStatus.IN_PROGRESS, 46)
    assert j.absorb(snap(TaskStatus.IN_PROGRESS, 31), NOW) is j
    assert j.absorb(snap(TaskStatus.SUBMITTED, 0), NOW) is j


def test_success_sets_intent_to_post_and_is_final() -> None:
    j = job(status=JobStatus.IN_PROGRESS).absorb(snap(TaskStatus.SUCCESS, 100, image_url="u"), NOW)
    assert j.status is JobStatus.SUCCEEDED and j.post_state is PostState.INTENT
    assert j.finished_at == NOW and j.image_url == "u"
    assert j.absorb(snap(TaskStatus.FAILURE, fail_reason="late"), NOW) is j


def test_new_api_failure_with_progress_100_is_a_failure() -> None:
    j = job(status=JobStatus.QUEUED).absorb(snap(TaskStatus.FAILURE, 100, fail_reason="x"), NOW)
    assert j.status is JobStatus.FAILED and j.fail_reason == "x"


def test_repeated_snapshot_changes_nothing() -> None:
    j = job(status=JobStatus.QUEUED).absorb(snap(TaskStatus.IN_PROGRESS, 15), NOW)
    assert j.absorb(snap(TaskStatus.IN_PROGRESS, 15), NOW) is j


def test_lenient_status_parsing() -> None:
    assert TaskStatus.parse("") is TaskStatus.UNKNOWN
    assert TaskStatus.parse(None) is TaskStatus.UNKNOWN
    assert TaskStatus.parse("in_progress") is TaskStatus.IN_PROGRESS
    assert TaskStatus.parse("CANCEL") is TaskStatus.FAILURE
    assert TaskStatus.parse("SOMETHING_NEW") is TaskStatus.UNKNOWN


def test_fail_leaves_finished_jobs_alone() -> None:
    done = job(status=JobStatus.SUCCEEDED)
    assert done.fail("late", NOW) is done
    failed = job(status=JobStatus.IN_PROGRESS).fail("timed out", NOW)
    assert failed.status is JobStatus.FAILED and failed.post_state is PostState.INTENT
