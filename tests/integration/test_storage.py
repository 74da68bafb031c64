"""The storage contract, run against SQLite and PostgreSQL alike.

PostgreSQL is the one on 127.0.0.1:5432 (database `test`), or MJCORD_TEST_POSTGRES_URL. Each
test gets its own schema there, so tests can run in parallel processes. When PostgreSQL is not
reachable its half is skipped, except under CI=true, where that is a failure.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, text

from bot.adapters.storage import (
    Storage,
    StorageError,
    database_url,
    open_storage,
)
from bot.adapters.storage.engine import create_engine
from bot.adapters.storage.migrate import head_revision
from bot.adapters.storage.schema import metadata
from bot.core.jobs import Ack, Button, Inputs, Job, JobStatus, Mode, PostState, Route, Source
from bot.core.ledger import Ledger

POSTGRES_URL = os.environ.get(
    "MJCORD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)

BIG_ID = 1300842274347028520  # a real-size Discord snowflake (needs 64 bits)
T0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


# --- fixtures ------------------------------------------------------------------------------


@dataclass
class Target:
    """One database to test against, and how to open storage on it."""

    backend: str
    url: str
    schema: str | None = None

    async def open(self) -> Storage:
        return await open_storage(self.url, schema=self.schema)


async def _postgres_problem() -> str | None:
    """None when PostgreSQL answers, else why not."""
    try:
        conn = await asyncio.wait_for(asyncpg.connect(POSTGRES_URL), timeout=3)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        return f"{type(exc).__name__}: {exc}"
    await conn.close()
    return None


@pytest.fixture(params=["sqlite", "postgresql"])
async def target(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Target]:
    if request.param == "sqlite":
        yield Target("sqlite", f"sqlite:///{tmp_path}/data/mjcord.db")
        return
    problem = await _postgres_problem()
    if problem is not None:
        message = f"PostgreSQL at {POSTGRES_URL} is not reachable ({problem})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; CI must run the storage tests on PostgreSQL too")
        pytest.skip(f"{message}; set MJCORD_TEST_POSTGRES_URL or start PostgreSQL")
    schema = f"mjcord_test_{uuid.uuid4().hex[:16]}"
    try:
        yield Target("postgresql", POSTGRES_URL, schema)
    finally:
        conn = await asyncpg.connect(POSTGRES_URL)
        try:
            await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        finally:
            await conn.close()


@pytest.fixture
async def storage(target: Target) -> AsyncIterator[Storage]:
    opened = await target.open()
    try:
        yield opened
    finally:
        await opened.close()


def make_job(**changes: object) -> Job:
    """A job with every field set to something other than its default."""
    job = Job(
        id=0,
        route=Route(
            guild_id=BIG_ID,
            channel_id=BIG_ID + 1,
            requester_id=BIG_ID + 2,
            reply_message_id=BIG_ID + 3,
            thread_id=BIG_ID + 4,
            status_message_id=BIG_ID + 5,
        ),
        mode=Mode.NIJI_JOURNEY,
        prompt="一只猫 in a café, 🌸 «soft light» --ar 16:9 --v 6",
        action="UPSCALE",
        task_id="1712345678901234",
        parent_job_id=7,
        custom_id="MJ::JOB::upsample::1::a1b2c3",
        status=JobStatus.IN_PROGRESS,
        progress=42,
        queue_position=3,
        image_url="https://cdn.example/img/1.png?ex=1&sig=é",
        fail_reason="",
        final_prompt="一只猫 in a café --ar 16:9 --v 6.0",
        buttons=(
            Button("MJ::JOB::upsample::1::a1", "U1"),
            Button("MJ::JOB::reroll::0::a1::SOLO", "", "🔄", 2),
            Button("MJ::JOB::variation::1::a1", "V1", "", 1),
        ),
        created_at=T0,
        updated_at=T0 + timedelta(seconds=5),
        finished_at=None,
        post_state=PostState.NONE,
        result_message_id=0,
        reference_count=2,
        ack=Ack(BIG_ID + 6, "aW50ZXJhY3Rpb246MTIzNDU2Nzg5MDp0b2tlbg", T0 + timedelta(minutes=15)),
        inputs=Inputs(
            sources=(
                Source("image1", "https://cdn.discordapp.com/a/1/ref é.png?ex=1", "ref é.png", 9),
                Source("image2", "https://cdn.discordapp.com/a/2/b.jpg", "b.jpg", 2**40),
            ),
            dimensions="PORTRAIT",
            parent_task_id="1712345678900000",
            modal_prompt="a cat --zoom 1.5",
            role_ids=(BIG_ID + 7, BIG_ID + 8),
            manage_guild=True,
        ),
        sent_at=T0 + timedelta(seconds=1),
    )
    return dataclasses.replace(job, **changes)  # type: ignore[arg-type]


# --- the JobRepository contract ------------------------------------------------------------


async def test_add_returns_the_job_with_a_new_id_and_get_round_trips_every_field(
    storage: Storage,
) -> None:
    job = make_job(id=999)

    added = await storage.jobs.add(job)

    assert added.id > 0
    assert added == dataclasses.replace(job, id=added.id)
    assert await storage.jobs.get(added.id) == added


async def test_every_field_survives_with_its_type(storage: Storage) -> None:
    paris = timezone(timedelta(hours=2))
    job = make_job(
        status=JobStatus.SUCCEEDED,
        finished_at=datetime(2025, 3, 1, 14, 0, 1, 5, tzinfo=paris),
        post_state=PostState.POSTED,
        result_message_id=2**63 - 1,
    )

    got = await storage.jobs.get((await storage.jobs.add(job)).id)

    assert got is not None
    assert got.route.guild_id == BIG_ID
    assert got.result_message_id == 2**63 - 1
    assert got.buttons == job.buttons
    assert got.prompt == job.prompt
    assert got.status is JobStatus.SUCCEEDED
    assert got.mode is Mode.NIJI_JOURNEY
    assert got.post_state is PostState.POSTED
    for moment in (got.created_at, got.updated_at, got.finished_at):
        assert moment is not None
        assert moment.tzinfo is not None and moment.utcoffset() == timedelta(0)
    assert got.created_at == T0
    assert got.finished_at == datetime(2025, 3, 1, 12, 0, 1, 5, tzinfo=UTC)


async def test_a_job_with_default_and_empty_fields_round_trips(storage: Storage) -> None:
    job = Job(
        id=0,
        route=Route(guild_id=1, channel_id=2, requester_id=3),
        mode=Mode.MID_JOURNEY,
        prompt="",
        created_at=T0,
        updated_at=T0,
    )

    added = await storage.jobs.add(job)

    assert await storage.jobs.get(added.id) == added
    assert added.task_id is None and added.image_url is None and added.buttons == ()


async def test_each_add_gets_its_own_id(storage: Storage) -> None:
    first = await storage.jobs.add(make_job(task_id="a"))
    second = await storage.jobs.add(make_job(task_id="b"))
    untasked = await storage.jobs.add(make_job(task_id=None))
    also_untasked = await storage.jobs.add(make_job(task_id=None))

    assert len({first.id, second.id, untasked.id, also_untasked.id}) == 4


async def test_get_of_an_unknown_id_is_none(storage: Storage) -> None:
    assert await storage.jobs.get(123456) is None


async def test_save_writes_every_field(storage: Storage) -> None:
    added = await storage.jobs.add(make_job(task_id=None, status=JobStatus.SUBMITTING))
    changed = Job(
        id=added.id,
        route=Route(1, 2, 3, reply_message_id=4, thread_id=5, status_message_id=BIG_ID),
        mode=Mode.MID_JOURNEY,
        prompt="rewritten ✨",
        action="VARIATION",
        task_id="task-2",
        parent_job_id=None,
        custom_id="",
        status=JobStatus.FAILED,
        progress=100,
        queue_position=None,
        image_url=None,
        fail_reason="Banned prompt: ✂",
        final_prompt="",
        buttons=(),
        created_at=T0 - timedelta(days=1),
        updated_at=T0 + timedelta(hours=1),
        finished_at=T0 + timedelta(hours=1),
        post_state=PostState.INTENT,
        result_message_id=BIG_ID + 9,
        reference_count=0,
    )

    await storage.jobs.save(changed)

    assert await storage.jobs.get(added.id) == changed


async def test_saving_a_job_that_was_never_added_is_an_error(storage: Storage) -> None:
    with pytest.raises(StorageError, match="not in the ledger"):
        await storage.jobs.save(make_job(id=424242))


async def test_by_task_id_finds_the_owner_and_nothing_else(storage: Storage) -> None:
    owner = await storage.jobs.add(make_job(task_id="owner-task"))
    await storage.jobs.add(make_job(task_id="other-task"))

    assert await storage.jobs.by_task_id("owner-task") == owner
    assert await storage.jobs.by_task_id("missing") is None


async def test_two_jobs_cannot_share_a_task_id(storage: Storage) -> None:
    await storage.jobs.add(make_job(task_id="dup"))

    with pytest.raises(StorageError):
        await storage.jobs.add(make_job(task_id="dup"))


async def test_unfinished_lists_running_tasks_only(storage: Storage) -> None:
    running = []
    for n, status in enumerate(
        [JobStatus.QUEUED, JobStatus.SUBMITTED, JobStatus.IN_PROGRESS, JobStatus.MODAL]
    ):
        running.append(await storage.jobs.add(make_job(task_id=f"run-{n}", status=status)))
    submitting_with_task = await storage.jobs.add(
        make_job(task_id="sub-1", status=JobStatus.SUBMITTING)
    )
    await storage.jobs.add(make_job(task_id=None, status=JobStatus.SUBMITTING))
    await storage.jobs.add(make_job(task_id="done", status=JobStatus.SUCCEEDED))
    await storage.jobs.add(make_job(task_id="failed", status=JobStatus.FAILED))

    assert await storage.jobs.unfinished() == [*running, submitting_with_task]


async def test_unposted_lists_jobs_whose_finish_post_is_pending(storage: Storage) -> None:
    pending = await storage.jobs.add(
        make_job(task_id="a", status=JobStatus.SUCCEEDED, post_state=PostState.INTENT)
    )
    failed_pending = await storage.jobs.add(
        make_job(task_id="b", status=JobStatus.FAILED, post_state=PostState.INTENT)
    )
    await storage.jobs.add(
        make_job(task_id="c", status=JobStatus.SUCCEEDED, post_state=PostState.POSTED)
    )
    await storage.jobs.add(make_job(task_id="d", post_state=PostState.NONE))

    assert await storage.jobs.unposted() == [pending, failed_pending]


async def test_stuck_submitting_lists_jobs_left_in_submitting(storage: Storage) -> None:
    stuck = await storage.jobs.add(make_job(task_id=None, status=JobStatus.SUBMITTING))
    await storage.jobs.add(make_job(task_id="x", status=JobStatus.QUEUED))

    assert await storage.jobs.stuck_submitting() == [stuck]


async def test_interrupted_lists_jobs_with_a_step_left(storage: Storage) -> None:
    placed = Route(1, 2, 3, reply_message_id=4, thread_id=4, status_message_id=5)
    done = dict(route=placed, ack=None, status=JobStatus.QUEUED)
    submitting = await storage.jobs.add(make_job(task_id=None, status=JobStatus.SUBMITTING))
    with_token = await storage.jobs.add(make_job(task_id="a", status=JobStatus.QUEUED))
    no_reply = await storage.jobs.add(
        make_job(task_id="b", ack=None, route=Route(1, 2, 3), status=JobStatus.QUEUED)
    )
    undecided_thread = await storage.jobs.add(
        make_job(task_id="c", **{**done, "route": Route(1, 2, 3, 4, 0, 5)})
    )
    await storage.jobs.add(make_job(task_id="d", **done))
    await storage.jobs.add(  # no thread could be made: placed in the channel
        make_job(task_id="e", **{**done, "route": Route(1, 2, 3, 4, 0, 5, no_thread=True)})
    )
    await storage.jobs.add(  # refused and told: nothing left
        make_job(
            task_id=None,
            ack=None,
            route=Route(1, 2, 3),
            status=JobStatus.FAILED,
            post_state=PostState.POSTED,
        )
    )

    assert await storage.jobs.interrupted() == [submitting, with_token, no_reply, undecided_thread]


async def test_a_job_without_an_acknowledgement_round_trips_without_one(storage: Storage) -> None:
    job = await storage.jobs.add(make_job(ack=None, inputs=Inputs(), sent_at=None))
    got = await storage.jobs.get(job.id)
    assert got == job and got.ack is None and got.inputs == Inputs()


async def test_a_saved_change_moves_a_job_between_the_queries(storage: Storage) -> None:
    job = await storage.jobs.add(make_job(task_id="t", status=JobStatus.IN_PROGRESS))
    finished = job.fail("time limit", T0 + timedelta(minutes=30))

    await storage.jobs.save(finished)

    assert await storage.jobs.unfinished() == []
    assert await storage.jobs.unposted() == [finished]


# --- helpers for several processes on one database ----------------------------------------


async def test_replace_writes_only_over_the_expected_version(storage: Storage) -> None:
    stored = await storage.jobs.add(make_job(task_id="cas"))
    finished = dataclasses.replace(
        stored, status=JobStatus.SUCCEEDED, progress=100, post_state=PostState.INTENT
    )
    stale = dataclasses.replace(stored, progress=60)

    assert await storage.jobs.replace(stored, finished) is True
    assert await storage.jobs.replace(stored, stale) is False
    assert await storage.jobs.get(stored.id) == finished


# Another value for every stored field of the job `make_job` builds, nulls both ways (a
# compare-and-set must tell NULL from a value and a value from NULL).
_OTHER = {
    "route": dataclasses.replace(make_job().route, thread_id=BIG_ID + 99),
    "mode": Mode.MID_JOURNEY,
    "prompt": "another prompt",
    "action": "IMAGINE",
    "task_id": None,
    "parent_job_id": None,
    "custom_id": "",
    "status": JobStatus.SUBMITTED,
    "progress": 43,
    "queue_position": None,
    "image_url": None,
    "fail_reason": "failed",
    "final_prompt": "",
    "buttons": (),
    "created_at": T0 - timedelta(seconds=1),
    "updated_at": T0,
    "finished_at": T0 + timedelta(minutes=1),
    "post_state": PostState.INTENT,
    "result_message_id": BIG_ID + 98,
    "reference_count": 0,
    "ack": None,
    "inputs": Inputs(),
    "sent_at": None,
}


def test_the_compare_and_set_table_covers_every_job_field() -> None:
    assert set(_OTHER) == {f.name for f in dataclasses.fields(Job)} - {"id"}


@pytest.mark.parametrize("field", sorted(_OTHER))
async def test_replace_refuses_a_copy_stale_in_any_one_field(storage: Storage, field: str) -> None:
    stored = await storage.jobs.add(make_job(task_id=f"cas-{field}"))
    other = dataclasses.replace(stored, **{field: _OTHER[field]})
    bumped = dataclasses.replace(stored, progress=99)

    assert await storage.jobs.replace(other, bumped) is False  # the row holds `stored`
    assert await storage.jobs.replace(stored, other) is True
    assert await storage.jobs.replace(stored, bumped) is False  # now it holds `other`
    assert await storage.jobs.get(stored.id) == other


async def test_an_update_from_a_stale_copy_is_applied_to_the_fresh_one(storage: Storage) -> None:
    stored = await storage.jobs.add(make_job(task_id="stale-copy"))
    ledger = Ledger(storage.jobs)
    fresh = await ledger.update(stored.id, lambda j: dataclasses.replace(j, progress=80))

    posted = await ledger.update(
        stored.id, lambda j: dataclasses.replace(j, result_message_id=5), current=stored
    )

    assert fresh is not None and posted == dataclasses.replace(fresh, result_message_id=5)
    assert await storage.jobs.get(stored.id) == posted
    # A change that would do nothing to a stale copy is still made to the stored job.
    progressed = await ledger.update(
        stored.id, lambda j: dataclasses.replace(j, progress=42), current=stored
    )
    assert progressed == dataclasses.replace(posted, progress=42)


# --- migrations, restarts, health ----------------------------------------------------------


async def test_open_migrates_to_head_and_a_second_migration_is_a_no_op(
    target: Target,
) -> None:
    storage = await target.open()
    try:
        job = await storage.jobs.add(make_job())
        assert await storage.revision() == head_revision() == "0006"

        await storage.migrate()
        again = await target.open()
        await again.close()

        assert await storage.revision() == head_revision()
        async with storage.engine.connect() as conn:
            versions = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
        assert [tuple(row) for row in versions] == [("0006",)]
        assert await storage.jobs.get(job.id) == job
    finally:
        await storage.close()


async def test_processes_starting_at_once_on_a_new_database_both_succeed(
    target: Target,
) -> None:
    opened = await asyncio.gather(target.open(), target.open(), target.open())
    try:
        assert {await s.revision() for s in opened} == {head_revision()}
    finally:
        for s in opened:
            await s.close()


async def test_a_database_from_a_newer_release_is_refused_with_a_clear_error(
    target: Target,
) -> None:
    storage = await target.open()
    try:
        async with storage.engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    finally:
        await storage.close()

    with pytest.raises(StorageError, match="newer mjcord release"):
        await target.open()


async def test_the_migrations_build_exactly_the_schema_the_code_uses(storage: Storage) -> None:
    def diff(conn: Connection) -> list[object]:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))

    async with storage.engine.connect() as conn:
        assert await conn.run_sync(diff) == []


async def test_a_restarted_process_sees_what_was_stored(target: Target) -> None:
    before = await target.open()
    job = await before.jobs.add(make_job())
    await before.close()

    after = await target.open()
    try:
        assert await after.jobs.get(job.id) == job
        assert await after.jobs.unfinished() == [job]
    finally:
        await after.close()


async def test_ping_is_true_for_a_reachable_database(storage: Storage) -> None:
    assert await storage.ping() is True


async def test_sqlite_is_in_wal_mode_so_a_second_process_can_read(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/nested/dir/bot.db"
    writer = await open_storage(url)
    reader = await open_storage(url)
    try:
        async with writer.engine.connect() as conn:
            mode = (await conn.execute(text("PRAGMA journal_mode"))).scalar_one()
        assert mode == "wal"
        assert (tmp_path / "nested" / "dir" / "bot.db").exists()
        job = await writer.jobs.add(make_job())
        assert await reader.jobs.get(job.id) == job
    finally:
        await writer.close()
        await reader.close()


async def test_in_memory_sqlite_works_for_concurrent_callers() -> None:
    storage = await open_storage("sqlite://")
    try:
        added = await asyncio.gather(
            *(storage.jobs.add(make_job(task_id=f"m{n}")) for n in range(5))
        )
        assert len(await storage.jobs.unfinished()) == 5
        assert sorted(job.id for job in added) == [1, 2, 3, 4, 5]
    finally:
        await storage.close()


async def test_ping_is_false_when_the_database_is_unreachable() -> None:
    storage = Storage(create_engine(database_url("postgresql://bot:s3cret@127.0.0.1:1/none")))
    try:
        assert await storage.ping(timeout=3) is False
    finally:
        await storage.close()


async def test_opening_an_unreachable_database_says_so_without_the_password() -> None:
    with pytest.raises(StorageError) as caught:
        await open_storage("postgres://bot:s3cret@127.0.0.1:1/none")

    assert "127.0.0.1:1" in str(caught.value)
    assert "s3cret" not in str(caught.value)


# --- DATABASE_URL handling -----------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "mysql://bot:s3cret@db/mjcord",
        "postgresql+psycopg2://bot:s3cret@db/mjcord",
        "sqlite+pysqlite:///x.db",
        "redis://:s3cret@localhost",
        "not a url",
        "",
    ],
)
async def test_an_unsupported_url_is_refused_naming_the_setting(raw: str) -> None:
    with pytest.raises(ValueError) as caught:
        await open_storage(raw)

    message = str(caught.value)
    assert "DATABASE_URL" in message
    assert "sqlite:///" in message and "postgresql://" in message
    assert "s3cret" not in message


@pytest.mark.parametrize(
    "raw",
    [
        "postgresql://bot:pw@db.example:5432/mjcord",
        "postgres://bot:pw@db.example:5432/mjcord",
        "postgresql+asyncpg://bot:pw@db.example:5432/mjcord",
    ],
)
def test_every_postgres_spelling_uses_asyncpg(raw: str) -> None:
    url = database_url(raw)

    assert url.drivername == "postgresql+asyncpg"
    assert (url.host, url.port, url.database, url.username) == ("db.example", 5432, "mjcord", "bot")


def test_libpq_sslmode_becomes_asyncpg_ssl() -> None:
    url = database_url("postgres://bot:pw@db.example/mjcord?sslmode=require")

    assert dict(url.query) == {"ssl": "require"}


def test_a_relative_sqlite_path_is_made_absolute_and_its_directory_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    url = database_url("sqlite:///./data/mjcord.db")

    assert url.drivername == "sqlite+aiosqlite"
    assert url.database == str(tmp_path / "data" / "mjcord.db")
    assert (tmp_path / "data").is_dir()


def test_an_absolute_sqlite_path_is_kept(tmp_path: Path) -> None:
    url = database_url(f"sqlite+aiosqlite:///{tmp_path}/a/b.db")

    assert url.database == str(tmp_path / "a" / "b.db")
    assert (tmp_path / "a").is_dir()


async def test_a_schema_is_refused_for_sqlite(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="PostgreSQL"):
        await open_storage(f"sqlite:///{tmp_path}/x.db", schema="mjcord")


def test_a_schema_name_must_be_a_plain_identifier() -> None:
    with pytest.raises(ValueError, match="identifier"):
        create_engine(database_url(POSTGRES_URL), schema="x; drop table jobs")


async def test_upgrading_from_0002_keeps_old_jobs_placed(target: Target) -> None:
    """Before 0003 a replied job with thread 0 meant "no thread could be made"; after the
    upgrade it must still count as placed (its outcome goes to the channel, without waiting)."""
    from alembic import command
    from alembic.config import Config

    from bot.adapters.storage.migrate import MIGRATIONS_DIR

    def to_0002(connection: Connection) -> None:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
        config.attributes["connection"] = connection
        command.upgrade(config, "0002")

    engine = create_engine(database_url(target.url), schema=target.schema)
    try:
        async with engine.begin() as conn:
            if target.schema:
                await conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {target.schema}"))
            await conn.run_sync(to_0002)
            columns = (
                "guild_id, channel_id, requester_id, reply_message_id, thread_id, "
                "status_message_id, mode, prompt, action, custom_id, status, progress, "
                "fail_reason, final_prompt, buttons, created_at, updated_at, post_state, "
                "result_message_id, reference_count"
            )
            for reply, thread in ((11, 0), (12, 12), (0, 0)):
                await conn.execute(
                    text(
                        f"INSERT INTO jobs ({columns}) VALUES (1, 2, 3, :r, :t, 0, 'MID_JOURNEY',"
                        " 'p', 'IMAGINE', '', 'QUEUED', 0, '', '', '[]', :at, :at, 'NONE', 0, 0)"
                    ),
                    {"r": reply, "t": thread, "at": T0},
                )
    finally:
        await engine.dispose()
    storage = await target.open()  # upgrades to head
    try:
        jobs = [await storage.jobs.get(i) for i in (1, 2, 3)]
        assert [(j.route.no_thread, j.route.placed) for j in jobs if j] == [
            (True, True),  # replied, no thread: the channel
            (False, True),  # its thread
            (False, False),  # not replied yet
        ]
        assert all(j is not None and j.ack is None and j.sent_at is None for j in jobs)
    finally:
        await storage.close()
