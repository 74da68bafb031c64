"""Finish calls take turns: in arrival order, one caller woken for each free slot of the budget.

Every finish call (a post, or the history read that looks for an earlier post) waits for the
Discord budget (`bot.discord_ui.budget`). Sixty-four posts each sleeping until the same moment
would all wake for every free slot; one would take it and the others sleep again: at 43 slots a
second, 2,700 wake-ups of nothing, and every one that runs late on a busy loop can leave a slot
unused (issue 12: 1,000 finishes within 25 s). Here one timer wakes only the caller whose turn it
is. That caller books its call as it sends it (the budget's rule: a call booked ahead and sent
late would crowd the window after it), and its booking arms the timer for the next caller.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

from bot.discord_ui.budget import EditBudget


class FinishTurns:
    """The queue of finish calls waiting for the budget (see the module docstring).

    A caller whose channel is busy (its own window is full) lets the callers behind it go
    first; nobody is ever refused, only delayed.
    """

    def __init__(
        self, budget: EditBudget, *, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._budget = budget
        self._monotonic = monotonic
        self._waiting: deque[tuple[int, asyncio.Future[None]]] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._called: asyncio.Future[None] | None = None  # woken, not yet booked

    @property
    def waiting(self) -> int:
        """Callers waiting for their turn."""
        return len(self._waiting)

    async def take(self, channel_id: int) -> None:
        """Return once one finish call to `channel_id` may be sent, booked in the budget; the
        caller sends it at once (nothing may await in between)."""
        if not self._waiting and self._called is None and self._book(channel_id):
            return
        loop = asyncio.get_running_loop()
        first = False
        while True:
            turn: asyncio.Future[None] = loop.create_future()
            if first:
                self._waiting.appendleft((channel_id, turn))
            else:
                self._waiting.append((channel_id, turn))
            self._arm()
            try:
                await turn
            except asyncio.CancelledError:
                self._leave(turn)
                raise
            self._called = None
            if self._book(channel_id):
                self._arm()  # the next caller's turn
                return
            # A status edit took the slot between the wake-up and now: first in line again.
            first = True

    def _book(self, channel_id: int) -> bool:
        now = self._monotonic()
        if self._budget.finish_wait(channel_id, now) > 0:
            return False
        self._budget.take(channel_id, now)
        return True

    def _leave(self, turn: asyncio.Future[None]) -> None:
        """A cancelled caller leaves the line; if it had been woken, the next one goes."""
        if turn is self._called:
            self._called = None
        else:
            for entry in self._waiting:
                if entry[1] is turn:
                    self._waiting.remove(entry)
                    break
        self._arm()

    def _arm(self) -> None:
        """Wake the first caller that may go now, or set the timer for when one may."""
        if self._timer is not None or self._called is not None or not self._waiting:
            return
        now = self._monotonic()
        wait = self._budget.bot_wait(now)
        if wait <= 0:
            wait = float("inf")
            for entry in self._waiting:
                channel_wait = self._budget.finish_wait(entry[0], now)
                if channel_wait <= 0:
                    self._waiting.remove(entry)
                    self._called = entry[1]
                    entry[1].set_result(None)
                    return
                wait = min(wait, channel_wait)
        self._timer = asyncio.get_running_loop().call_later(wait, self._ring)

    def _ring(self) -> None:
        self._timer = None
        self._arm()
