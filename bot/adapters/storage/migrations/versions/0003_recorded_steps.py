"""Each step of a command recorded as it happens: the interaction token, the inputs to send
the submit again, when it was sent, a refused thread; and the missing index on parent_job_id.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

Frozen like 0001: it states the columns as they are at revision 0003 and does not import
schema.py. Every new column has a server default (or is nullable), so existing rows stay valid
and SQLite can add them without rebuilding the table.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("no_thread", sa.Boolean(), nullable=False, server_default="0"))
    op.add_column(
        "jobs", sa.Column("application_id", sa.BigInteger(), nullable=False, server_default="0")
    )
    op.add_column(
        "jobs", sa.Column("interaction_token", sa.Text(), nullable=False, server_default="")
    )
    op.add_column("jobs", sa.Column("token_expires_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("jobs", sa.Column("inputs", sa.Text(), nullable=False, server_default="{}"))
    op.add_column("jobs", sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True))
    # Before 0003 a replied job with thread 0 meant "no thread could be made".
    jobs = sa.table(
        "jobs",
        sa.column("no_thread", sa.Boolean()),
        sa.column("thread_id", sa.BigInteger()),
        sa.column("reply_message_id", sa.BigInteger()),
    )
    op.execute(
        jobs.update()
        .where(jobs.c.thread_id == 0, jobs.c.reply_message_id != 0)
        .values(no_thread=True)
    )
    op.create_index("ix_jobs_parent_job_id", "jobs", ["parent_job_id"])


def downgrade() -> None:
    op.drop_index("ix_jobs_parent_job_id", table_name="jobs")
    with op.batch_alter_table("jobs") as batch:
        for name in (
            "sent_at",
            "inputs",
            "token_expires_at",
            "interaction_token",
            "application_id",
            "no_thread",
        ):
            batch.drop_column(name)
