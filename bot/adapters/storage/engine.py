"""Database URLs and engines: which URLs mjcord accepts, and how each backend is tuned.

Both backends are driven by SQLAlchemy's async engine, so the rest of the package writes one
set of statements. The few backend differences live here (connection set-up) and in
`migrate.py` (a lock for concurrent start-ups), each with the reason next to it.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool

from bot.core.errors import MjcordError
from bot.core.messages import msg

log = logging.getLogger(__name__)

SQLITE_DRIVER = "sqlite+aiosqlite"
POSTGRES_DRIVER = "postgresql+asyncpg"

_SQLITE_SCHEMES = {"sqlite", SQLITE_DRIVER}
# "postgres" is the spelling Heroku and some other hosts put in DATABASE_URL.
_POSTGRES_SCHEMES = {"postgresql", "postgres", POSTGRES_DRIVER}

ACCEPTED_FORMS = (
    "sqlite:///relative/path.db, sqlite:////absolute/path.db (or sqlite+aiosqlite://…), "
    "postgresql://user:password@host:5432/dbname (or postgres://… or postgresql+asyncpg://…)"
)

#: Each SQLite connection's page cache, KiB (SQLite's default is 2,000).
SQLITE_CACHE_KIB = 256
# How long a SQLite connection waits for another process's write lock before giving up.
SQLITE_BUSY_TIMEOUT_MS = 5_000

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

# Execution option read by the SQLite "begin" hook: the migration runner asks for
# BEGIN IMMEDIATE so two processes starting on one file take turns instead of both migrating.
SQLITE_BEGIN_OPTION = "mjcord_sqlite_begin"
#: Its value for a connection that runs one SELECT alone: no BEGIN and no COMMIT (SQLite runs a
#: lone statement in its own read transaction). Each is a round trip to aiosqlite's thread, and
#: a one-row read made nine of them (issue 12).
SQLITE_NO_BEGIN = ""


class StorageError(MjcordError):
    """The database could not be reached, migrated or written. `detail` is for the log."""

    message = msg("The bot's database is not answering right now. Please try again in a minute.")


def safe_url(url: URL) -> str:
    """The URL as a string fit for logs and messages: the password is masked."""
    return url.render_as_string(hide_password=True)


def _bad_url(got: str) -> ValueError:
    return ValueError(f"DATABASE_URL is not a supported database URL ({got}); use {ACCEPTED_FORMS}")


def database_url(raw: str) -> URL:
    """Parse DATABASE_URL into the async-driver URL mjcord uses; ValueError names the key.

    SQLite paths are made absolute (so logs say where the file really is) and their parent
    directory is created. PostgreSQL URLs of any accepted spelling become asyncpg URLs.
    """
    text = raw.strip()
    try:
        url = make_url(text)
    except ArgumentError:
        # The raw text may hold a password, so only the part before "://" is echoed.
        scheme = text.split("://", 1)[0] if "://" in text else "no scheme"
        raise _bad_url(f"scheme: {scheme or 'empty'}") from None
    if url.drivername in _SQLITE_SCHEMES:
        return _sqlite_url(url)
    if url.drivername in _POSTGRES_SCHEMES:
        return _postgres_url(url)
    raise _bad_url(f"got {safe_url(url)}")


def is_sqlite_memory(url: URL) -> bool:
    """True for a SQLite in-memory database (gone when the process ends)."""
    database = url.database or ""
    return url.drivername in _SQLITE_SCHEMES and (
        database in ("", ":memory:") or "mode=memory" in database
    )


def _sqlite_url(url: URL) -> URL:
    uri_form = str(url.query.get("uri", "")).lower() == "true"
    if is_sqlite_memory(url) or uri_form:
        return url.set(drivername=SQLITE_DRIVER)
    path = Path(url.database or "").expanduser().absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    return url.set(drivername=SQLITE_DRIVER, database=str(path))


def _postgres_url(url: URL) -> URL:
    url = url.set(drivername=POSTGRES_DRIVER)
    query = dict(url.query)
    if "sslmode" in query:
        # libpq spells it sslmode; asyncpg.connect() takes the same values as `ssl` and would
        # reject an unknown `sslmode` keyword, which hosted DATABASE_URLs often carry.
        query["ssl"] = query.pop("sslmode")
        url = url.set(query=query)
    return url


def check_schema_name(schema: str) -> str:
    """Validate a PostgreSQL schema name (plain lowercase identifiers only, never quoted)."""
    if not _SCHEMA_NAME.match(schema):
        raise ValueError(
            f"database schema {schema!r} is not a plain lowercase identifier "
            "(letters, digits and _; at most 63 characters)"
        )
    return schema


def create_engine(url: URL, *, schema: str | None = None) -> AsyncEngine:
    """An async engine for a URL from `database_url`, tuned for its backend.

    `schema` (PostgreSQL only) puts every table in that schema via the connection's
    search_path, so several deployments or test runs can share one database.
    """
    if url.drivername == SQLITE_DRIVER:
        if schema is not None:
            raise ValueError("a database schema can only be chosen for PostgreSQL")
        if is_sqlite_memory(url):
            # One connection, shared in turn: an in-memory database lives only as long as its
            # connection, and SQLite allows one transaction per connection, so coroutines
            # queue for it instead of sharing it at once (StaticPool's default).
            engine = create_async_engine(
                url, poolclass=AsyncAdaptedQueuePool, pool_size=1, max_overflow=0
            )
        else:
            engine = create_async_engine(url)
        _tune_sqlite(engine)
        return engine
    connect_args: dict[str, Any] = {}
    if schema is not None:
        connect_args["server_settings"] = {"search_path": check_schema_name(schema)}
    # pre_ping: hosted PostgreSQL closes idle connections; a dead one is replaced, not raised.
    return create_async_engine(url, pool_pre_ping=True, connect_args=connect_args)


def _tune_sqlite(engine: AsyncEngine) -> None:
    """Per-connection SQLite set-up, and SQLAlchemy-driven transactions.

    Python's sqlite3 (under aiosqlite) by default neither begins a transaction before a SELECT
    nor before DDL, so migrations would not be atomic. Following SQLAlchemy's documented recipe,
    the driver's own transaction handling is switched off and SQLAlchemy emits BEGIN itself.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            # Wait for another process's lock rather than failing at once.
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            _enable_wal(cursor)
            # PostgreSQL always enforces foreign keys; SQLite only when asked per connection.
            cursor.execute("PRAGMA foreign_keys = ON")
            # Each pooled connection keeps its own page cache (2 MB by default): with a dozen
            # connections over a 10,000-job ledger that is most of the bot's memory, while the
            # operating system caches the file once for all of them.
            cursor.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        begin = connection.get_execution_options().get(SQLITE_BEGIN_OPTION, "BEGIN")
        if begin != SQLITE_NO_BEGIN:
            connection.exec_driver_sql(begin)


def _enable_wal(cursor: Any) -> None:
    """Switch the file to WAL, so readers (a second bot process, `python -m bot check`) work
    while the bot writes. WAL is a property of the file, so once any connection has switched
    it, it stays; hence a connection that loses the race to switch it may simply carry on.
    """
    cursor.execute("PRAGMA journal_mode")
    row = cursor.fetchone()
    if row is not None and str(row[0]).lower() in ("wal", "memory"):
        return
    try:
        cursor.execute("PRAGMA journal_mode = WAL")
    except sqlite3.OperationalError as exc:
        # The switch needs an exclusive lock and SQLite does not wait (busy_timeout) for it:
        # another connection starting at the same moment is switching or using the file.
        if "locked" not in str(exc) and "busy" not in str(exc):
            raise
        log.debug("SQLite WAL switch deferred to another connection: %s", exc)
