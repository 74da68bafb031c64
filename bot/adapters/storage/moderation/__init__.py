"""Moderation state on SQL: `bot.core.ports.ModerationRepository` over the `mod_*` tables, one
module per table group (settings, bans and terms, the usage ledger, the audit log), sharing one
transaction helper and one retry (`base`).

Rows never leave this package: every method takes and returns core types. Each call is one
transaction; database failures are raised as `StorageError`.
"""

from bot.adapters.storage.moderation.audit import AuditStore
from bot.adapters.storage.moderation.bans import BanStore
from bot.adapters.storage.moderation.ledger import LedgerStore
from bot.adapters.storage.moderation.settings import SettingsStore


class SqlModerationRepository(SettingsStore, BanStore, LedgerStore, AuditStore):
    """`ModerationRepository` on SQLite or PostgreSQL."""


__all__ = ["SqlModerationRepository"]
