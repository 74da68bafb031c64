"""Tracking leadership: one leader per PostgreSQL database (advisory lock), one process per
SQLite file; a killed holder is replaced within seconds. Real PostgreSQL, real processes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.adapters.storage.engine import StorageError, create_engine, database_url
from bot.adapters.storage.leadership import PostgresLeadership, advisory_key, claim_sqlite_file

POSTGRES_URL = os.environ.get(
    "MJCORD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def pg_schema() -> AsyncIterator[str]:
    try:
        conn = await asyncio.wait_for(asyncpg.connect(POSTGRES_URL), timeout=3)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at {POSTGRES_URL} is not reachable ({exc}); CI needs it")
        pytest.skip(f"PostgreSQL at {POSTGRES_URL} is not reachable ({exc})")
    await conn.close()
    yield f"mjcord_lead_{uuid.uuid4().hex[:12]}"


def _engine() -> AsyncEngine:
    return create_engine(database_url(POSTGRES_URL))


async def test_one_leader_at_a_time_and_a_standby_takes_over_when_it_steps_down(
    pg_schema: str,
) -> None:
    first, second = _engine(), _engine()
    a, b = PostgresLeadership(first, schema=pg_schema), PostgresLeadership(second, schema=pg_schema)
    try:
        assert await a.try_lead()
        assert not await b.try_lead()
        assert await a.still_leading() and not await b.still_leading()
        await a.step_down()
        assert await b.try_lead()
        assert not await a.try_lead()
    finally:
        await a.step_down()
        await b.step_down()
        await first.dispose()
        await second.dispose()


async def test_deployments_in_other_schemas_elect_their_own_leader(pg_schema: str) -> None:
    engine = _engine()
    a = PostgresLeadership(engine, schema=pg_schema)
    b = PostgresLeadership(engine, schema=pg_schema + "_other")
    try:
        assert advisory_key(pg_schema) != advisory_key(pg_schema + "_other")
        assert await a.try_lead() and await b.try_lead()
    finally:
        await a.step_down()
        await b.step_down()
        await engine.dispose()


async def test_a_leader_whose_session_is_cut_knows_it_no_longer_leads(pg_schema: str) -> None:
    engine, other = _engine(), _engine()
    a, b = PostgresLeadership(engine, schema=pg_schema), PostgresLeadership(other, schema=pg_schema)
    try:
        assert await a.try_lead()
        admin = await asyncpg.connect(POSTGRES_URL)
        try:
            # The session holding our key's advisory lock, cut as a failover or restart would.
            # A bigint key shows in pg_locks as classid (high 32 bits) and objid (low 32 bits).
            key = advisory_key(pg_schema) & 0xFFFFFFFFFFFFFFFF
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
                "AND classid = $1::bigint::oid AND objid = $2::bigint::oid AND objsubid = 1",
                key >> 32,
                key & 0xFFFFFFFF,
            )
        finally:
            await admin.close()
        assert await b.try_lead()
        assert not await a.still_leading()
        assert not a.leading
    finally:
        await a.step_down()
        await b.step_down()
        await engine.dispose()
        await other.dispose()


HOLDER = """
import asyncio, sys
from bot.adapters.storage.engine import create_engine, database_url
from bot.adapters.storage.leadership import PostgresLeadership
async def main():
    lead = PostgresLeadership(create_engine(database_url(sys.argv[1])), schema=sys.argv[2])
    assert await lead.try_lead()
    print("leading", flush=True)
    await asyncio.sleep(3600)
asyncio.run(main())
"""


async def test_a_standby_takes_over_within_seconds_of_the_leader_being_killed(
    pg_schema: str,
) -> None:
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HOLDER, POSTGRES_URL, pg_schema, stdout=subprocess.PIPE, cwd=ROOT
    )
    engine = _engine()
    standby = PostgresLeadership(engine, schema=pg_schema)
    try:
        assert holder.stdout is not None
        line = await asyncio.wait_for(holder.stdout.readline(), timeout=30)
        assert line.strip() == b"leading"
        assert not await standby.try_lead()
        holder.send_signal(signal.SIGKILL)
        await asyncio.wait_for(holder.wait(), timeout=10)
        killed = time.monotonic()
        while not await standby.try_lead():
            assert time.monotonic() - killed < 10, "no takeover within 10 s of the kill"
            await asyncio.sleep(0.2)
    finally:
        if holder.returncode is None:
            holder.kill()
            await holder.wait()
        await standby.step_down()
        await engine.dispose()


def test_a_second_process_on_one_sqlite_file_is_refused_with_what_to_set(tmp_path: Path) -> None:
    engine = create_engine(database_url(f"sqlite:///{tmp_path}/mjcord.db"))
    held = claim_sqlite_file(engine)
    assert held is not None
    try:
        with pytest.raises(StorageError) as refused:
            claim_sqlite_file(engine)
        message = str(refused.value)
        assert "another mjcord process" in message and "DATABASE_URL=postgresql://" in message
    finally:
        held.close()
    again = claim_sqlite_file(engine)  # released: the next start is allowed
    assert again is not None
    again.close()


def test_a_killed_process_never_blocks_the_restart_on_its_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/mjcord.db"
    script = (
        "import sys, time\n"
        "from bot.adapters.storage.engine import create_engine, database_url\n"
        "from bot.adapters.storage.leadership import claim_sqlite_file\n"
        "h = claim_sqlite_file(create_engine(database_url(sys.argv[1])))\n"
        "print('claimed', flush=True); time.sleep(3600)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script, url], stdout=subprocess.PIPE, cwd=ROOT, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "claimed"
        engine = create_engine(database_url(url))
        with pytest.raises(StorageError):
            claim_sqlite_file(engine)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        handle = claim_sqlite_file(engine)
        assert handle is not None
        handle.close()
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_in_memory_sqlite_needs_no_claim() -> None:
    assert claim_sqlite_file(create_engine(database_url("sqlite:///:memory:"))) is None
