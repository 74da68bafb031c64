"""The tables, as SQLAlchemy Core objects in one `MetaData` shared by every storage module.

This module describes the schema *as the code expects it at head*. The migrations under
`migrations/versions/` are what actually create it, frozen per revision; a test checks that
the two agree. A new table (moderation settings, bans, quota ledger, audit log …) is added
here and in a new numbered migration, never by editing an applied one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)

# Deterministic constraint names on both backends: later migrations (and SQLite's
# table-rebuilding batch mode) must be able to name the constraint they alter or drop.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend.

    PostgreSQL's timestamptz keeps the instant, but SQLite has no time zone type: SQLAlchemy
    stores the wall-clock digits and reads them back naive. Writing everything as UTC and
    tagging what comes back as UTC makes both return the same aware value. A naive value
    given to us is read as local time, as `datetime.astimezone` does.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Normalise to aware UTC before writing."""
        return None if value is None else value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        """Return aware UTC whatever the backend gave back."""
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# Discord ids are 64-bit snowflakes: BigInteger everywhere one is stored; 0 means "not yet".
jobs = Table(
    "jobs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("guild_id", BigInteger, nullable=False),
    Column("channel_id", BigInteger, nullable=False),
    Column("requester_id", BigInteger, nullable=False),
    Column("reply_message_id", BigInteger, nullable=False),
    Column("thread_id", BigInteger, nullable=False),
    Column("status_message_id", BigInteger, nullable=False),
    Column("mode", String(32), nullable=False),
    Column("prompt", Text, nullable=False),
    Column("action", String(64), nullable=False),
    Column("task_id", String(255), nullable=True),
    # Not a FOREIGN KEY on purpose: jobs are never deleted, and a self-reference would make
    # every later SQLite table rebuild of `jobs` (alembic batch mode) juggle the constraint.
    Column("parent_job_id", Integer, nullable=True),
    Column("custom_id", Text, nullable=False),
    Column("status", String(32), nullable=False),
    Column("progress", Integer, nullable=False),
    Column("queue_position", Integer, nullable=True),
    Column("image_url", Text, nullable=True),
    Column("fail_reason", Text, nullable=False),
    Column("final_prompt", Text, nullable=False),
    # JSON text of [{"custom_id", "label", "emoji", "style"}]; only ever read whole.
    Column("buttons", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("post_state", String(16), nullable=False),
    Column("result_message_id", BigInteger, nullable=False),
    Column("reference_count", Integer, nullable=False),
    # --- revision 0003: each step of a command recorded as it happens (see recovery) ---
    Column("no_thread", Boolean, nullable=False, server_default="0"),
    # The interaction that started the job: its application id and token (a credential for
    # the member's reply for 15 minutes; '' once no longer needed) and when it expires.
    Column("application_id", BigInteger, nullable=False, server_default="0"),
    Column("interaction_token", Text, nullable=False, server_default=""),
    Column("token_expires_at", UTCDateTime, nullable=True),
    # JSON text of core.jobs.Inputs: what a restart needs to send the submit again.
    Column("inputs", Text, nullable=False, server_default="{}"),
    # When the submit went out; NULL while it never did.
    Column("sent_at", UTCDateTime, nullable=True),
    # --- revision 0006: not part of Job; the lease on a command's steps (bot.core.leases) ---
    # The process working on the job's steps ('' when none), and until when its lease runs.
    Column("worked_by", String(64), nullable=False, server_default=""),
    Column("worked_until", UTCDateTime, nullable=True),
    # One job per API task; NULLs (not yet submitted) do not collide on either backend.
    UniqueConstraint("task_id"),
    # The hot queries: reconcile's unfinished jobs, and the unposted-finish sweep.
    Index(None, "status"),
    Index(None, "post_state"),
    # A button press looks up its parent's children (the double-press rule).
    Index(None, "parent_job_id"),
    # Each process's renewal finds its own leases; every sweep, the lapsed ones.
    Index(None, "worked_by"),
    Index(None, "worked_until"),
)


# --- moderation (revision 0002) ----------------------------------------------------------------

# One row per server that has settings. `serial` is bumped by every quota reservation: the
# update takes the row's lock, which serialises reservations per server on both backends.
mod_settings = Table(
    "mod_settings",
    metadata,
    Column("guild_id", BigInteger, primary_key=True, autoincrement=False),
    Column("per_day", Integer, nullable=True),
    Column("per_hour", Integer, nullable=True),
    Column("server_per_day", Integer, nullable=True),
    Column("cooldown_s", Integer, nullable=False),
    Column("member_in_flight", Integer, nullable=True),
    Column("server_in_flight", Integer, nullable=True),
    Column("strike_limit", Integer, nullable=False),
    Column("strike_window_s", Integer, nullable=False),
    Column("strike_ban_s", Integer, nullable=False),
    # Comma-separated channel ids; empty means every channel.
    Column("allowed_channels", Text, nullable=False),
    Column("default_mode", String(32), nullable=False),
    Column("log_channel_id", BigInteger, nullable=False),
    Column("moderator_role_id", BigInteger, nullable=False),
    # The public language a moderator chose (a Discord locale); empty: Discord's server setting.
    Column("language", String(16), nullable=False, server_default=""),
    Column("serial", Integer, nullable=False),
    Column("updated_at", UTCDateTime, nullable=True),
)

mod_role_limits = Table(
    "mod_role_limits",
    metadata,
    Column("guild_id", BigInteger, primary_key=True, autoincrement=False),
    Column("role_id", BigInteger, primary_key=True, autoincrement=False),
    Column("per_day", Integer, nullable=True),
    Column("per_hour", Integer, nullable=True),
)

mod_bans = Table(
    "mod_bans",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("guild_id", BigInteger, nullable=False),
    Column("user_id", BigInteger, nullable=False),
    Column("reason", Text, nullable=False),
    Column("by_id", BigInteger, nullable=False),  # 0: an automatic ban after strikes
    Column("at", UTCDateTime, nullable=False),
    Column("until", UTCDateTime, nullable=True),  # NULL: until lifted
    Column("lifted_at", UTCDateTime, nullable=True),
    Index(None, "guild_id", "user_id"),
)

mod_terms = Table(
    "mod_terms",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("guild_id", BigInteger, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("text", String(200), nullable=False),
    Column("by_id", BigInteger, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    UniqueConstraint("guild_id", "kind", "text"),
)

# The usage ledger: one row per job that passed the gate. `charge` says how it is paid
# (core.moderation.Charge) and `outcome` how it ended; `settled_at` makes settling happen once.
mod_usage = Table(
    "mod_usage",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("guild_id", BigInteger, nullable=False),
    Column("user_id", BigInteger, nullable=False),
    Column("channel_id", BigInteger, nullable=False),
    Column("job_id", Integer, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("charge", String(16), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("settled_at", UTCDateTime, nullable=True),
    UniqueConstraint("job_id"),
    Index(None, "guild_id", "at"),
    Index(None, "guild_id", "user_id", "at"),
)

mod_credits = Table(
    "mod_credits",
    metadata,
    Column("guild_id", BigInteger, primary_key=True, autoincrement=False),
    Column("user_id", BigInteger, primary_key=True, autoincrement=False),
    Column("credits", Integer, nullable=False),
)

mod_strikes = Table(
    "mod_strikes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("guild_id", BigInteger, nullable=False),
    Column("user_id", BigInteger, nullable=False),
    Column("job_id", Integer, nullable=True),  # NULL: not from a job
    Column("reason", Text, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    UniqueConstraint("job_id"),
    Index(None, "guild_id", "user_id", "at"),
)

mod_audit = Table(
    "mod_audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("guild_id", BigInteger, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("actor_id", BigInteger, nullable=False),
    Column("target_id", BigInteger, nullable=False),
    Column("action", String(64), nullable=False),
    Column("detail", Text, nullable=False),
    Column("prompt", Text, nullable=False),
    Column("mode", String(32), nullable=False),
    Column("job_id", Integer, nullable=False),
    Column("channel_id", BigInteger, nullable=False),
    Index(None, "guild_id", "at"),
)

#: The hash of the slash-command payload last synced to each scope ("global", "guild:<id>"),
#: so start-up syncs only when the command tree changed.
command_sync = Table(
    "command_sync",
    metadata,
    Column("scope", String(64), primary_key=True),
    Column("payload_hash", String(64), nullable=False),
    Column("synced_at", UTCDateTime, nullable=False),
)
