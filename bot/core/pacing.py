"""One budget for every image-API request the tracker makes, and how it backs off.

- requests are paced at most `rate` a second (slots 1/rate apart);
- a 429 (or new-api's code 30) halves the rate and pauses for its Retry-After at least, doubling
  per repeat up to MAX_BACKOFF; each clean cycle wins a tenth of the rate back;
- an outage (any other failure: no answer, 5xx, garbage) pauses too, but never longer than a
  third of the recovery bound `max(2 × interval, 15 s)`: once the API answers again, the next
  probe comes within that third and the cycle it starts reaches every job (chunks / rate seconds)
  well inside the bound. A doubling back-off to minutes would leave jobs unpolled for minutes
  after the API came back (issue 10: 58–59 s after a 70 s outage).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Protocol, TypeVar, runtime_checkable

from bot.core.errors import ApiError, RateLimited
from bot.core.jobs import Job
from bot.core.ports import Clock

T = TypeVar("T")

log = logging.getLogger(__name__)

#: The rate never drops below this many requests per second, whatever the 429s say.
MIN_REQUESTS_PER_SECOND = 0.2
#: The longest pause after a 429, in seconds.
MAX_BACKOFF = 300.0
#: Every unfinished job is polled within max(RECOVERY_FACTOR × interval, RECOVERY_FLOOR) of the
#: API answering again.
RECOVERY_FACTOR = 2.0
RECOVERY_FLOOR = 15.0

Sleep = Callable[[float], Awaitable[None]]


def recovery_bound(interval: float) -> float:
    """Seconds within which every unfinished job is polled once the API answers again."""
    return max(RECOVERY_FACTOR * interval, RECOVERY_FLOOR)


@runtime_checkable
class OutageNotices(Protocol):
    """An observer that can tell members the image service is down (the presenter)."""

    async def show_outage(self, since: datetime | None, jobs: Sequence[Job]) -> None:
        """Note on each job's status message that the API is down since `since`; with None,
        take the note away again."""
        ...


class Pacer:
    """Paces the tracker's API requests and keeps the back-off and outage state (see module)."""

    def __init__(
        self,
        clock: Clock,
        *,
        max_rate: float,
        interval: float,
        sleep: Sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.clock = clock
        self.max_rate = max_rate
        self.rate = max_rate
        self.interval = interval
        self._sleep = sleep
        self._monotonic = monotonic
        self._next_slot = 0.0  # monotonic time of the next free request slot
        self.paused_until = 0.0  # monotonic; set by 429s and outages
        self._failures = 0
        self.last_success: datetime | None = None
        #: When the current outage began (None while the API answers).
        self.outage_since: datetime | None = None

    @property
    def outage_pause(self) -> float:
        """The longest pause an outage causes: a third of the recovery bound."""
        return recovery_bound(self.interval) / 3

    async def request(self, call: Callable[[], Awaitable[T]]) -> T | None:
        """Make one paced API request. None when it failed (the back-off is already set)."""
        await self._pace()
        try:
            snaps = await call()
        except RateLimited as exc:
            self.rate = max(MIN_REQUESTS_PER_SECOND, self.rate / 2)
            self._pause(exc.retry_after, MAX_BACKOFF)
            log.warning(
                "tracker: rate limited; %.1f requests/s from now, next request in %.1fs",
                self.rate,
                self.paused_until - self._monotonic(),
            )
            return None
        except ApiError as exc:
            if self.outage_since is None:
                self.outage_since = self.clock.now()
            self._pause(None, self.outage_pause)
            log.warning("tracker: polling failed (%s): %s", type(exc).__name__, exc.detail)
            return None
        if self.outage_since is not None:
            log.warning("tracker: the image API answers again (down since %s)", self.outage_since)
        self._failures = 0
        self.outage_since = None
        self.last_success = self.clock.now()
        return snaps

    def recover(self) -> None:
        """A clean cycle: win a tenth of the rate back."""
        self.rate = min(self.max_rate, self.rate + self.max_rate / 10)

    async def _pace(self) -> None:
        """Wait for the next request slot: slots are 1/rate apart, and none during a pause."""
        now = self._monotonic()
        slot = max(now, self._next_slot, self.paused_until)
        self._next_slot = slot + 1 / self.rate
        if slot > now:
            await self._sleep(slot - now)

    def _pause(self, retry_after: float | None, cap: float) -> None:
        self._failures += 1
        doubling = min(cap, self.interval * 2 ** min(self._failures - 1, 16))
        wait = min(MAX_BACKOFF, max(retry_after or 0.0, doubling))
        self.paused_until = max(self.paused_until, self._monotonic() + wait)
