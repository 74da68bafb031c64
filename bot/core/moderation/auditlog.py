"""The audit log as a collaborator: every refusal, submission, strike, report and moderator
action is written through `AuditLog.record`, which also shows it to the observer (the
moderators' log channel). The gate and the moderator service share one."""

from __future__ import annotations

import logging

from bot.core.moderation.audit import AuditEntry
from bot.core.ports import AuditObserver, ModerationRepository

log = logging.getLogger(__name__)


class AuditLog:
    """Writes audit entries and hands each to the observer, whose failures never reach the
    caller (the log channel is a courtesy; the entry is already stored)."""

    def __init__(self, repo: ModerationRepository, observer: AuditObserver | None = None) -> None:
        self.repo = repo
        self.observer = observer

    async def record(self, entry: AuditEntry) -> AuditEntry:
        """Store the entry, show it to the observer, and return it with its id."""
        saved = await self.repo.record(entry)
        if self.observer is not None:
            try:
                await self.observer.recorded(saved)
            except Exception:
                log.exception("audit entry %s could not be shown in the log channel", saved.id)
        return saved
