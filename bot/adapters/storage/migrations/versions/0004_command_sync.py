"""The hash of the last synced slash-command payload, per scope.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

Numbered 0004 because 0003 was written in parallel (jobs); it follows 0003 since the branches
merged. Frozen: does not import schema.py.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "command_sync",
        sa.Column("scope", sa.String(length=64), nullable=False),
        sa.Column("payload_hash", sa.String(length=64), nullable=False),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("scope", name="pk_command_sync"),
    )


def downgrade() -> None:
    op.drop_table("command_sync")
