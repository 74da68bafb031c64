"""The public language a server's moderators chose (`/mod language`).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

Empty means Discord's server setting (its preferred locale), which every existing server keeps.
Frozen: does not import schema.py.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "mod_settings",
        sa.Column("language", sa.String(length=16), nullable=False, server_default=""),
    )


def downgrade() -> None:
    with op.batch_alter_table("mod_settings") as batch:
        batch.drop_column("language")
