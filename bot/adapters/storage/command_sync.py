"""The slash-command sync record: which payload hash each scope last received.

Implements `bot.discord_ui.client.SyncRecord` (structurally) over the `command_sync` table.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.adapters.storage.engine import StorageError
from bot.adapters.storage.schema import command_sync


class SqlCommandSync:
    """Reads and records the hash of the last synced command payload per scope."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def synced_hash(self, scope: str) -> str | None:
        """The hash recorded for `scope`, or None when it was never synced from here."""
        try:
            async with self.engine.connect() as conn:
                row = await conn.execute(
                    select(command_sync.c.payload_hash).where(command_sync.c.scope == scope)
                )
                return row.scalar_one_or_none()
        except SQLAlchemyError as exc:
            raise StorageError(f"cannot read the command sync record: {exc}") from exc

    async def record_sync(self, scope: str, payload_hash: str) -> None:
        """Replace `scope`'s record (delete + insert in one transaction: portable upsert)."""
        try:
            async with self.engine.begin() as conn:
                await conn.execute(delete(command_sync).where(command_sync.c.scope == scope))
                await conn.execute(
                    insert(command_sync).values(
                        scope=scope, payload_hash=payload_hash, synced_at=datetime.now(UTC)
                    )
                )
        except SQLAlchemyError as exc:
            raise StorageError(f"cannot record the command sync: {exc}") from exc
