"""Community moderation: settings, role limits, bans, banned terms, the usage ledger, credits,
strikes and the audit log.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24

Frozen like 0001: it states the tables as they are at revision 0002 and does not import
schema.py.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _at(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "mod_settings",
        sa.Column("guild_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("per_day", sa.Integer(), nullable=True),
        sa.Column("per_hour", sa.Integer(), nullable=True),
        sa.Column("server_per_day", sa.Integer(), nullable=True),
        sa.Column("cooldown_s", sa.Integer(), nullable=False),
        sa.Column("member_in_flight", sa.Integer(), nullable=True),
        sa.Column("server_in_flight", sa.Integer(), nullable=True),
        sa.Column("strike_limit", sa.Integer(), nullable=False),
        sa.Column("strike_window_s", sa.Integer(), nullable=False),
        sa.Column("strike_ban_s", sa.Integer(), nullable=False),
        sa.Column("allowed_channels", sa.Text(), nullable=False),
        sa.Column("default_mode", sa.String(length=32), nullable=False),
        sa.Column("log_channel_id", sa.BigInteger(), nullable=False),
        sa.Column("moderator_role_id", sa.BigInteger(), nullable=False),
        sa.Column("serial", sa.Integer(), nullable=False),
        _at("updated_at", nullable=True),
        sa.PrimaryKeyConstraint("guild_id", name="pk_mod_settings"),
    )
    op.create_table(
        "mod_role_limits",
        sa.Column("guild_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("role_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("per_day", sa.Integer(), nullable=True),
        sa.Column("per_hour", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("guild_id", "role_id", name="pk_mod_role_limits"),
    )
    op.create_table(
        "mod_bans",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("guild_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("by_id", sa.BigInteger(), nullable=False),
        _at("at"),
        _at("until", nullable=True),
        _at("lifted_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_mod_bans"),
    )
    op.create_index("ix_mod_bans_guild_id_user_id", "mod_bans", ["guild_id", "user_id"])
    op.create_table(
        "mod_terms",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("guild_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("text", sa.String(length=200), nullable=False),
        sa.Column("by_id", sa.BigInteger(), nullable=False),
        _at("at"),
        sa.PrimaryKeyConstraint("id", name="pk_mod_terms"),
        sa.UniqueConstraint("guild_id", "kind", "text", name="uq_mod_terms_guild_id_kind_text"),
    )
    op.create_table(
        "mod_usage",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("guild_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("channel_id", sa.BigInteger(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        _at("at"),
        sa.Column("charge", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        _at("settled_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_mod_usage"),
        sa.UniqueConstraint("job_id", name="uq_mod_usage_job_id"),
    )
    op.create_index("ix_mod_usage_guild_id_at", "mod_usage", ["guild_id", "at"])
    op.create_index("ix_mod_usage_guild_id_user_id_at", "mod_usage", ["guild_id", "user_id", "at"])
    op.create_table(
        "mod_credits",
        sa.Column("guild_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("user_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("credits", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("guild_id", "user_id", name="pk_mod_credits"),
    )
    op.create_table(
        "mod_strikes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("guild_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        _at("at"),
        sa.PrimaryKeyConstraint("id", name="pk_mod_strikes"),
        sa.UniqueConstraint("job_id", name="uq_mod_strikes_job_id"),
    )
    op.create_index(
        "ix_mod_strikes_guild_id_user_id_at", "mod_strikes", ["guild_id", "user_id", "at"]
    )
    op.create_table(
        "mod_audit",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("guild_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        _at("at"),
        sa.Column("actor_id", sa.BigInteger(), nullable=False),
        sa.Column("target_id", sa.BigInteger(), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("mode", sa.String(length=32), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("channel_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_mod_audit"),
    )
    op.create_index("ix_mod_audit_guild_id_at", "mod_audit", ["guild_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_mod_audit_guild_id_at", table_name="mod_audit")
    op.drop_table("mod_audit")
    op.drop_index("ix_mod_strikes_guild_id_user_id_at", table_name="mod_strikes")
    op.drop_table("mod_strikes")
    op.drop_table("mod_credits")
    op.drop_index("ix_mod_usage_guild_id_user_id_at", table_name="mod_usage")
    op.drop_index("ix_mod_usage_guild_id_at", table_name="mod_usage")
    op.drop_table("mod_usage")
    op.drop_table("mod_terms")
    op.drop_index("ix_mod_bans_guild_id_user_id", table_name="mod_bans")
    op.drop_table("mod_bans")
    op.drop_table("mod_role_limits")
    op.drop_table("mod_settings")
