"""mjcord's database: SQLite by default, PostgreSQL for real deployments, one interface.

    storage = await open_storage(settings.database_url)
    storage.jobs            # bot.core.ports.JobRepository (plus replace); new jobs leased
    storage.leases()        # bot.core.leases.JobLeases: this process's leases on its jobs
    storage.moderation      # bot.core.ports.ModerationRepository
    await storage.ping()    # for /healthz and `python -m bot check`
    await storage.close()

Everything here speaks core types; SQLAlchemy stays inside this package. Failures reaching the
database raise `StorageError`; a malformed DATABASE_URL raises `ValueError`.
"""

from __future__ import annotations

import asyncio
import logging
from types import TracebackType
from typing import IO

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.adapters.storage import migrate
from bot.adapters.storage.command_sync import SqlCommandSync
from bot.adapters.storage.engine import (
    ACCEPTED_FORMS,
    StorageError,
    create_engine,
    database_url,
    safe_url,
)
from bot.adapters.storage.jobs import SqlJobRepository
from bot.adapters.storage.leadership import PostgresLeadership, SoleLeadership, claim_sqlite_file
from bot.adapters.storage.leases import SqlJobLeases, worker_name
from bot.adapters.storage.moderation import SqlModerationRepository

__all__ = [
    "ACCEPTED_FORMS",
    "SqlJobRepository",
    "SqlModerationRepository",
    "Storage",
    "StorageError",
    "database_url",
    "open_storage",
]

log = logging.getLogger(__name__)


class Storage:
    """An open database: its repositories, a health check, and shutdown.

    Build it with `open_storage`, which also migrates; the constructor only wraps an engine.
    """

    def __init__(self, engine: AsyncEngine, *, schema: str | None = None) -> None:
        self.engine = engine
        self.schema = schema
        #: This process's name in the job leases (a Storage is opened once per process).
        self.worker = worker_name()
        self.jobs = SqlJobRepository(engine, worker=self.worker)
        self.moderation = SqlModerationRepository(engine)
        self.command_sync = SqlCommandSync(engine)
        self._claim: IO[str] | None = None

    def claim_single_process(self) -> None:
        """On SQLite, make this the only bot process on the file (StorageError says what to
        set when another holds it); on PostgreSQL nothing: many processes may share it."""
        if self._claim is None:
            self._claim = claim_sqlite_file(self.engine)

    def leadership(self) -> PostgresLeadership | SoleLeadership:
        """Who tracks: on PostgreSQL an advisory-lock election, on SQLite this one process."""
        if self.backend == "postgresql":
            return PostgresLeadership(self.engine, schema=self.schema)
        return SoleLeadership()

    def leases(self) -> SqlJobLeases:
        """This process's leases on its jobs' steps (bot.core.leases). On SQLite one process
        serves the file, so at a start every other holder is known to be dead."""
        return SqlJobLeases(self.engine, self.worker, sole=self.backend != "postgresql")

    @property
    def url(self) -> str:
        """The database URL with its password masked, for logs and `check`."""
        return safe_url(self.engine.url)

    @property
    def backend(self) -> str:
        """The backend: sqlite or postgresql."""
        return self.engine.dialect.name

    async def ping(self, timeout: float = 5.0) -> bool:
        """True when the database answers a trivial query within `timeout` seconds."""
        try:
            async with asyncio.timeout(timeout), self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            log.warning("Database at %s is not reachable: %s", self.url, exc)
            return False
        return True

    async def revision(self) -> str | None:
        """The schema revision the database is at (for `python -m bot check`)."""
        return await migrate.current_revision(self.engine)

    async def migrate(self) -> None:
        """Apply pending migrations (open_storage already did; repeating is a no-op)."""
        await migrate.upgrade(self.engine)

    async def close(self) -> None:
        """Close every pooled connection (and release the SQLite claim). Unusable afterwards."""
        await self.engine.dispose()
        if self._claim is not None:
            self._claim.close()
            self._claim = None

    async def __aenter__(self) -> Storage:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


async def open_storage(url: str, *, schema: str | None = None) -> Storage:
    """Connect to DATABASE_URL, migrate it to the head revision, and return the Storage.

    Raises ValueError for a URL mjcord does not accept (the message names DATABASE_URL and the
    accepted forms) and StorageError when the database cannot be reached or migrated.
    `schema` (PostgreSQL only) keeps all tables in that schema, creating it if needed.
    """
    engine = create_engine(database_url(url), schema=schema)
    storage = Storage(engine, schema=schema)
    try:
        await migrate.upgrade(engine, create_schema=schema)
    except StorageError:
        await engine.dispose()
        raise
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        await engine.dispose()
        raise StorageError(f"cannot open the database at {storage.url}: {exc}") from exc
    log.info("Database ready: %s (%s)", storage.url, storage.backend)
    return storage
