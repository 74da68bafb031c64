"""Applying the migrations under `migrations/` programmatically, at start-up.

Alembic runs on a connection we open (via `AsyncConnection.run_sync`), so there is no
alembic.ini and no second URL to keep in step with DATABASE_URL.
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.schema import CreateSchema

from bot.adapters.storage.engine import SQLITE_BEGIN_OPTION, StorageError

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# First half of the PostgreSQL advisory-lock key for migrations (the second half is the
# search_path's hash), an arbitrary constant that no other code of ours uses.
_PG_MIGRATION_LOCK = 0x6D6A63  # "mjc"


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    # set_main_option interpolates "%", which a directory name could contain.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision this code ships (what `upgrade` brings a database to)."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None, "no migrations found"
    return head


def _upgrade(connection: Connection) -> None:
    command.upgrade(_config(connection), "head")


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def upgrade(engine: AsyncEngine, *, create_schema: str | None = None) -> None:
    """Bring the database to the head revision; a no-op when it is there already.

    Safe when several processes start at once: they take turns, and the later ones find
    nothing to do. All pending migrations apply in one transaction on both backends.
    `create_schema` (PostgreSQL) is created first if missing, under the same lock: two
    concurrent CREATE SCHEMA IF NOT EXISTS can otherwise still collide.
    """
    dialect = engine.dialect.name
    try:
        async with engine.connect() as conn:
            if dialect == "sqlite":
                # BEGIN IMMEDIATE takes SQLite's write lock before alembic reads its version
                # table, so a second process waits (busy_timeout) instead of racing it.
                conn = await conn.execution_options(**{SQLITE_BEGIN_OPTION: "BEGIN IMMEDIATE"})
            async with conn.begin():
                if dialect == "postgresql":
                    # Several bot processes may share one PostgreSQL: the first to start
                    # migrates while the others wait here (released at commit). Keyed per
                    # search_path, so deployments in different schemas do not wait for each
                    # other (current_schema() would be NULL while the schema does not exist).
                    await conn.execute(
                        text(
                            "SELECT pg_advisory_xact_lock("
                            ":key, hashtext(current_setting('search_path')))"
                        ),
                        {"key": _PG_MIGRATION_LOCK},
                    )
                    if create_schema is not None:
                        await conn.execute(CreateSchema(create_schema, if_not_exists=True))
                before = await conn.run_sync(_current)
                await conn.run_sync(_upgrade)
                after = await conn.run_sync(_current)
    except CommandError as exc:
        raise StorageError(
            f"cannot migrate the database: {exc} (was it upgraded by a newer mjcord release?)"
        ) from exc
    if before != after:
        log.info("Database migrated from revision %s to %s", before or "empty", after)


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at (None before the first migration)."""
    async with engine.connect() as conn:
        return await conn.run_sync(_current)
