"""One tracker for many bot processes: the leader tracks, the others stand by.

Several bot processes may share one database (each running some of Discord's shards). Only one
of them may poll the image API and post outcomes, or every job would be polled once per process
and every finish raced. The processes elect that one through the database (the `Leadership`
port; PostgreSQL's advisory lock in `bot.adapters.storage.leadership`); `lead` runs the tracker
while this process holds the leadership, stops it the moment it is lost, and otherwise retries
every few seconds, so a standby takes over soon after the leader dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

log = logging.getLogger(__name__)

#: How often a standby asks for the leadership, and a leader checks it still holds it. A killed
#: leader's database session ends at once, so a takeover takes at most this long (plus start-up).
RETRY_SECONDS = 2.0


class Leadership(Protocol):
    """The right to track, held by at most one process per database at a time."""

    async def try_lead(self) -> bool:
        """Take the leadership if nobody holds it; True when this process leads now."""
        ...

    async def still_leading(self) -> bool:
        """True while this process still holds it."""
        ...

    async def step_down(self) -> None:
        """Give it up (on shutdown), so a standby takes over at once."""
        ...


async def lead(
    leadership: Leadership,
    work: Callable[[], Awaitable[None]],
    *,
    every: float = RETRY_SECONDS,
) -> None:
    """Run `work` (the tracker) only while leading; stand by otherwise. Runs until cancelled.

    When the leadership is lost, `work` is cancelled at once and started again from scratch
    (it resumes from the database) if this process leads again later. A crash of `work`
    re-raises here after stepping down, so the process fails loudly and a standby takes over.
    """
    try:
        while True:
            if not await leadership.try_lead():
                await asyncio.sleep(every)
                continue
            log.info("leading: tracking starts in this process")
            task = asyncio.ensure_future(work())
            try:
                while not task.done():
                    await asyncio.wait({task}, timeout=every)
                    if not task.done() and not await leadership.still_leading():
                        log.warning("leadership lost: tracking stops in this process")
                        break
                if task.done():
                    task.result()
                    return
            finally:
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
    finally:
        await leadership.step_down()
