"""Leases on a command's steps: which process works on a job, and until when (see
bot.core.leases); the unused finish-post claim column goes.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

Frozen: states the columns as they are at revision 0006 and does not import schema.py. The new
columns are nullable or have a server default, so existing rows stay valid (held by nobody:
the next process to start takes any of them still left midway).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(
            sa.Column("worked_by", sa.String(length=64), nullable=False, server_default="")
        )
        batch.add_column(sa.Column("worked_until", sa.DateTime(timezone=True), nullable=True))
        batch.drop_column("post_claimed_until")
    op.create_index("ix_jobs_worked_by", "jobs", ["worked_by"])
    op.create_index("ix_jobs_worked_until", "jobs", ["worked_until"])


def downgrade() -> None:
    op.drop_index("ix_jobs_worked_until", table_name="jobs")
    op.drop_index("ix_jobs_worked_by", table_name="jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("post_claimed_until", sa.DateTime(timezone=True), nullable=True))
        batch.drop_column("worked_until")
        batch.drop_column("worked_by")
