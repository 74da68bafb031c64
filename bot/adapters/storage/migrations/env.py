"""Alembic environment, run only through `bot.adapters.storage.migrate`.

The runner hands over an open connection (already inside a transaction, and on PostgreSQL
already holding the migration lock) in `config.attributes["connection"]`; this file never
opens its own, so there is no URL or alembic.ini to keep in step with the settings.
"""

from __future__ import annotations

from alembic import context

from bot.adapters.storage.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "mjcord's migrations run through bot.adapters.storage.migrate (open_storage applies "
        "them at start-up); they are not meant for the alembic command line"
    )

context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite cannot ALTER most things; batch mode rebuilds the table instead, and the same
    # migration code then runs unchanged on PostgreSQL.
    render_as_batch=True,
    # SQLAlchemy drives BEGIN on SQLite (see engine.py), so DDL there is transactional too:
    # all pending migrations apply together or not at all, as on PostgreSQL.
    transactional_ddl=True,
    compare_type=True,
)

with context.begin_transaction():
    context.run_migrations()
