"""What every moderation table group shares: one transaction per call, database failures as
`StorageError`, and the one retry for writes that may collide with another process creating
the same row (`retrying`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.adapters.storage.engine import SQLITE_BEGIN_OPTION, StorageError

T = TypeVar("T")

#: How often a transaction that collided on a unique key is tried in all.
ATTEMPTS = 5


class Store:
    """A table group's access to the engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @asynccontextmanager
    async def _begin(self, *, serial: bool = False) -> AsyncIterator[AsyncConnection]:
        """One transaction. `serial`: on SQLite, take the write lock at BEGIN (IMMEDIATE), so
        a read-then-write transaction cannot be overtaken between its read and its write."""
        try:
            async with self._engine.connect() as conn:
                if serial and self._engine.dialect.name == "sqlite":
                    conn = await conn.execution_options(**{SQLITE_BEGIN_OPTION: "BEGIN IMMEDIATE"})
                async with conn.begin():
                    yield conn
        except IntegrityError:
            raise
        except SQLAlchemyError as exc:
            raise StorageError(f"moderation store unavailable: {exc}") from exc

    async def _retrying(
        self, what: str, body: Callable[[AsyncConnection], Awaitable[T]], *, serial: bool = True
    ) -> T:
        """Run `body` in one transaction, again from the start when it collided with another
        writer inserting the same row (an IntegrityError), up to `ATTEMPTS` times in all."""
        for attempt in range(ATTEMPTS):
            try:
                async with self._begin(serial=serial) as conn:
                    return await body(conn)
            except IntegrityError:
                if attempt == ATTEMPTS - 1:
                    raise StorageError(f"{what} kept colliding with another writer") from None
        raise AssertionError("unreachable")


def aware(value: datetime | None) -> datetime | None:
    """Aggregates (max) bypass the column type on SQLite and may come back naive or as text."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
