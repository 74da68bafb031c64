"""Which process tracks jobs: one leader per database, the others standing by.

PostgreSQL: the leader holds a session-level advisory lock on a connection of its own
(`pg_try_advisory_lock`). PostgreSQL releases such a lock when the session ends, and a process
killed with SIGKILL ends its session as soon as the kernel closes its socket, so a standby that
retries every few seconds takes over within that interval — no lease to expire, no clock to
trust, and no new server. (PostgreSQL manual, "Advisory Locks": "Once acquired at session level,
an advisory lock is held until explicitly released or the session ends.")

SQLite serves one process: `claim_sqlite_file` takes an exclusive `flock` on a file beside the
database, so a second process on the same file refuses to start with a sentence saying what to
set, instead of racing the first for every finish post. The kernel drops the lock when the
holder dies, so a restart after a crash is never refused.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
from pathlib import Path
from typing import IO

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.adapters.storage.engine import StorageError, is_sqlite_memory

log = logging.getLogger(__name__)

#: What the advisory lock is named after; the schema is added so deployments (and test runs)
#: sharing one database each elect their own leader.
LOCK_NAME = "mjcord.tracking"


def advisory_key(schema: str | None) -> int:
    """A stable signed 64-bit key for `pg_try_advisory_lock`, from the lock name and schema."""
    digest = hashlib.blake2b(f"{LOCK_NAME}:{schema or ''}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class PostgresLeadership:
    """The tracking leadership on PostgreSQL: try, check, step down.

    Not safe to share between coroutines that call it at once; the tracker's loop owns it.
    """

    def __init__(self, engine: AsyncEngine, *, schema: str | None = None) -> None:
        self.engine = engine
        self.key = advisory_key(schema)
        self._conn: AsyncConnection | None = None

    @property
    def leading(self) -> bool:
        """True while this process holds the lock (as far as it last knew)."""
        return self._conn is not None

    async def try_lead(self) -> bool:
        """Take the leadership if nobody holds it; True when this process leads now."""
        if self._conn is not None:
            return await self.still_leading()
        conn = await self.engine.connect()
        try:
            got = (
                await conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key})
            ).scalar_one()
            # The session must outlive this call: end the implicit transaction, keep the session.
            await conn.commit()
        except (SQLAlchemyError, OSError) as exc:
            await conn.close()
            log.warning("could not ask PostgreSQL for the tracking leadership: %s", exc)
            return False
        if not got:
            await conn.close()
            return False
        self._conn = conn
        log.info("this process now leads tracking (advisory lock %d)", self.key)
        return True

    async def still_leading(self) -> bool:
        """True while the lock's session is alive; a dead session means someone else may lead."""
        if self._conn is None:
            return False
        try:
            await self._conn.execute(text("SELECT 1"))
            await self._conn.commit()
        except (SQLAlchemyError, OSError) as exc:
            log.warning("lost the tracking leadership (its database session ended): %s", exc)
            await self._drop()
            return False
        return True

    async def step_down(self) -> None:
        """Release the lock (on shutdown), so a standby takes over at once."""
        if self._conn is None:
            return
        try:
            await self._conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
            await self._conn.commit()
        except (SQLAlchemyError, OSError) as exc:
            log.info("stepping down: the session had already ended (%s)", exc)
        await self._drop()

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.close()
            except (SQLAlchemyError, OSError) as exc:
                log.debug("closing the leadership connection: %s", exc)


class SoleLeadership:
    """SQLite's leadership: the one process allowed on the file always leads."""

    leading = True

    async def try_lead(self) -> bool:
        """Always True: `claim_sqlite_file` already made this the only process."""
        return True

    async def still_leading(self) -> bool:
        """Always True."""
        return True

    async def step_down(self) -> None:
        """Nothing to release."""


def claim_sqlite_file(engine: AsyncEngine) -> IO[str] | None:
    """Make this the only process using the SQLite file, or raise StorageError saying why.

    Returns the open lock file (keep it open for the life of the process; closing it, or the
    process ending, releases the claim), or None for an in-memory or non-SQLite database.
    """
    url = engine.url
    if engine.dialect.name != "sqlite" or is_sqlite_memory(url) or not url.database:
        return None
    path = Path(f"{url.database}.lock")
    handle = path.open("a+", encoding="utf-8")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise StorageError(
            f"another mjcord process is already using the SQLite database {url.database}. "
            "SQLite serves one bot process: stop the other one, or set "
            "DATABASE_URL=postgresql://… to run several processes."
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle
